"""Beyond one process: the launcher that starts them, what each launched process checks, and the
checks of the machine a run starts on (preflight)."""
