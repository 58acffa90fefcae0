"""`peftrun compare`: the resolved values that differ between run directories, next to their results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.recipe import explain
from peftrun.recipe.hardware import probe_light
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.sweep.runs import results
from peftrun.train.rundir import RESOLVED_RECIPE

ABSENT = "(absent)"


@dataclass(frozen=True)
class Comparison:
    runs: list[str]
    differences: list[tuple[str, list[Any]]]  # key, the value of each run
    results: list[dict[str, Any]]  # per run


def compare(run_dirs: Sequence[Path]) -> Comparison:
    """Each run's resolved recipe (recipe.resolved.yaml, resolved as `explain` does) and its results."""
    hardware = probe_light()
    found = [results(d) for d in run_dirs]  # first: a directory that is not a run fails here
    values = [{key: value for key, value, _ in explain.rows(resolve(load_recipe(d / RESOLVED_RECIPE), hardware))}
              for d in run_dirs]
    keys = list(dict.fromkeys(key for run in values for key in run))
    differences = [(key, [run.get(key, ABSENT) for run in values]) for key in keys
                   if len({repr(run.get(key, ABSENT)) for run in values}) > 1]
    return Comparison([str(d) for d in run_dirs], differences, found)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def as_table(comparison: Comparison) -> str:
    """Runs as columns: first the resolved values that differ, then the results."""
    names = list(dict.fromkeys(k for r in comparison.results for k in r))
    rows = [["", *comparison.runs]]
    rows += [[key, *map(_cell, values)] for key, values in comparison.differences] or [["(same resolved recipe)"]]
    rows += [["results"]] + [[name, *(_cell(r.get(name)) for r in comparison.results)] for name in names]
    widths = [max(len(row[i]) for row in rows if len(row) > i) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def as_data(comparison: Comparison) -> dict[str, Any]:
    return {"runs": comparison.runs,
            "differences": [{"key": key, "values": values} for key, values in comparison.differences],
            "results": [{"run": run, **found} for run, found in zip(comparison.runs, comparison.results)]}
