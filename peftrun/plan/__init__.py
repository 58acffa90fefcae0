"""Memory and parameter planning: will a recipe fit on a GPU? (peftrun plan, --dry-run, the run's manifest).

The model is built as a skeleton on the meta device from its config, so nothing here loads weights.
"""
