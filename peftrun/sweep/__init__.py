"""Many runs from one recipe: sweeps on Optuna (`peftrun sweep`) and the comparison of run directories
(`peftrun compare`). Imports Optuna only inside the functions that need it (the `sweep` extra)."""
