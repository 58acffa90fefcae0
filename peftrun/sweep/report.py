"""What a sweep leaves when it ends: the table of trials, the metric against each parameter, the best recipe."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from peftrun.recipe.schema.sweep import Range
from peftrun.recipe.sweep import SweepFile
from peftrun.sweep.study import SweepDir
from peftrun.train.durable import write_atomic
from peftrun.train.rundir import RESOLVED_RECIPE


def rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial: number, parameters, metric, status, seconds and a note (plan figure, exit class)."""
    out = []
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.WAITING:  # a grid point not started (yet)
            continue
        end = trial.datetime_complete or datetime.now()
        seconds = (end - trial.datetime_start).total_seconds() if trial.datetime_start else None
        attrs = trial.user_attrs
        out.append({"trial": trial.number, "params": dict(trial.params), "value": trial.value,
                    "status": attrs.get("status", trial.state.name.lower()), "seconds": seconds,
                    "note": attrs.get("note", ""), "run_dir": attrs.get("run_dir")})
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def as_table(table: list[dict[str, Any]], params: list[str], metric: str) -> str:
    """The trials as aligned text columns."""
    head = ["trial", *params, metric, "status", "time_s", "note"]
    body = [[str(r["trial"]), *(_cell(r["params"].get(p)) for p in params), _cell(r["value"]), r["status"],
             _cell(None if r["seconds"] is None else round(r["seconds"], 1)), r["note"]] for r in table]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body])


def plot(table: list[dict[str, Any]], sweep: SweepFile, path: Path) -> Path | None:
    """The metric of each complete trial against each parameter (None before any trial completes)."""
    done = complete(table)
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = sweep.section.params
    figure, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.2), squeeze=False)
    for ax, (key, space) in zip(axes[0], params.items()):
        values = [r["params"][key] for r in done]
        shown = values if isinstance(space, Range) else [str(v) for v in values]
        ax.scatter(shown, [r["value"] for r in done])
        if isinstance(space, Range) and space.log:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(sweep.section.metric.name)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def complete(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials that ran to the end with a metric (a pruned trial's value is its last intermediate one)."""
    return [r for r in table if r["status"] == "complete" and r["value"] is not None and not math.isnan(r["value"])]


def best_row(table: list[dict[str, Any]], goal: str) -> dict[str, Any] | None:
    done = complete(table)
    pick = min if goal == "minimize" else max
    return pick(done, key=lambda r: r["value"]) if done else None


def write_best(best: dict[str, Any], sweep: SweepFile, where: SweepDir) -> Path:
    """The best trial's resolved recipe as a plain recipe file that trains the same run again (into
    `<sweep dir>/best`)."""
    resolved = yaml.safe_load((Path(best["run_dir"]) / RESOLVED_RECIPE).read_text())
    resolved["name"] = f"{sweep.recipe.name}-best"
    resolved["output"]["dir"] = str(where.root / "best")
    values = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    header = (f"# The best trial ({best['trial']}) of the sweep {sweep.path}: {sweep.section.metric.name} "
              f"{best['value']:.6g} with {values}.\n# Every value resolved; train it again with `peftrun {where.best}`.\n")
    write_atomic(where.best, header + yaml.safe_dump(resolved, sort_keys=False))
    return where.best
