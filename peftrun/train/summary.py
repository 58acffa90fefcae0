"""The end summary a run prints: final losses, time, tokens/s, peak memory against the plan, and where
everything it wrote is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftrun.recipe.plan import Plan
from peftrun.train import progress


def _losses(summary: dict[str, Any]) -> str:
    train, evaluation = summary.get("final_train_loss"), summary.get("final_eval_loss")
    parts = [f"train {train:.4f}" if train is not None else "train n/a"]
    if evaluation is not None:
        parts.append(f"eval {evaluation:.4f}")
    return ", ".join(parts)


def _memory(memory: dict[str, Any] | None) -> str | None:
    """`peak 2.31 GB (RSS), plan 2.10 GB (-9%)` from the manifest's memory record."""
    if not memory:
        return None
    measured = memory.get("measured_gb", {})
    key = "cuda_max_reserved" if "cuda_max_reserved" in measured else "peak_rss"
    if key not in measured:
        return None
    label = "reserved on the GPU" if key == "cuda_max_reserved" else "process RSS"
    planned = memory.get("estimate_gb", {}).get("expected")
    text = f"peak {measured[key]:.2f} GB ({label})"
    if planned is not None and measured[key]:
        text += f", plan {planned:.2f} GB ({(planned - measured[key]) / measured[key]:+.0%})"
    return text


def end_summary(plan: Plan, summary: dict[str, Any], files: dict[str, Path | None],
                memory: dict[str, Any] | None = None) -> str:
    """The lines printed when a run has saved everything; `files` maps a label to a path in the run."""
    steps, wall = summary["steps"], summary["wall_time_s"]
    runtime = summary.get("train_runtime_s") or 0.0
    speed = [f"{runtime / steps:.2f} s/step" if steps and runtime else None,
             f"{summary['tokens_per_s']:,.0f} tok/s" if summary.get("tokens_per_s") else None]
    share = summary["trainable_parameters"] / max(summary["total_parameters"], 1)
    rows = [
        ("final loss", _losses(summary)),
        ("time", f"{wall:.1f} s, of which training {runtime:.1f} s" + "".join(f", {s}" for s in speed if s)),
        ("memory", _memory(memory)),
        ("trainable", f"{summary['trainable_parameters']:,} of {summary['total_parameters']:,} parameters ({share:.2%})"),
        ("run dir", plan.output_dir),
        *((label, str(path)) for label, path in files.items() if path is not None),
        ("next", f"peftrun eval {plan.output_dir}   |   peftrun generate {plan.output_dir} --prompt \"...\""),
    ]
    head = f"done: {plan.recipe.name} in {wall:.1f} s ({steps} steps)"
    return "\n".join(["", head, *(f"  {label:<11} {value}" for label, value in rows if value)])


def print_summary(plan: Plan, summary: dict[str, Any], files: dict[str, Path | None],
                  memory: dict[str, Any] | None = None) -> None:
    progress.say(end_summary(plan, summary, files, memory))
