"""What a run directory records about its results: the manifest's training summary and memory, and the log
history of its newest complete checkpoint (every logged value, eval metrics included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftrun.errors import RunDirError
from peftrun.train.checkpoints import complete_checkpoints
from peftrun.train.rundir import MANIFEST, RESOLVED_RECIPE

# metric names the manifest's training summary holds under another name
SUMMARY_NAMES = {"eval_loss": "final_eval_loss", "train_loss": "final_train_loss", "loss": "final_train_loss"}
NOT_METRICS = ("_runtime", "_samples_per_second", "_steps_per_second", "eval_num_tokens")


def manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def log_history(run_dir: Path) -> list[dict[str, Any]]:
    """The log history of the newest complete checkpoint (empty before the first one)."""
    for checkpoint in reversed(complete_checkpoints(run_dir)):
        state = checkpoint / "trainer_state.json"
        if state.is_file():
            return list(json.loads(state.read_text()).get("log_history", []))
    return []


def metric_value(run_dir: Path, name: str) -> float | None:
    """The final value of a metric: the manifest's summary, else the last value the run logged."""
    training = (manifest(run_dir) or {}).get("training", {})
    summary = training.get(SUMMARY_NAMES.get(name, name))
    if isinstance(summary, (int, float)):
        return float(summary)
    logged = [e[name] for e in log_history(run_dir) if isinstance(e.get(name), (int, float))]
    return float(logged[-1]) if logged else None


def eval_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of each eval metric (not the timings)."""
    found: dict[str, float] = {}
    for entry in log_history(run_dir):
        for key, value in entry.items():
            if key.startswith("eval_") and isinstance(value, (int, float)) and not key.endswith(NOT_METRICS):
                found[key] = float(value)
    return found


def _find(data: Any, key: str) -> Any:
    """The first value under `key` at any depth of a manifest."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        return next((v for v in (_find(value, key) for value in data.values()) if v is not None), None)
    return None


def results(run_dir: Path) -> dict[str, Any]:
    """A run's results as `compare` shows them (None where the run does not record the value)."""
    if not (run_dir / RESOLVED_RECIPE).is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no {RESOLVED_RECIPE})")
    found = manifest(run_dir)
    training = (found or {}).get("training", {})
    measured = ((found or {}).get("memory") or {}).get("measured_gb") or {}
    return {
        "status": "finished" if found else "unfinished",
        "steps": training.get("steps"),
        "final_train_loss": training.get("final_train_loss"),
        "final_eval_loss": training.get("final_eval_loss"),
        **{key: value for key, value in eval_metrics(run_dir).items() if key != "eval_loss"},
        "wall_time_s": training.get("wall_time_s"),
        "useful_tokens_per_s": _find(found, "useful_tokens_per_s"),
        "peak_memory_gb": max(measured.values()) if measured else None,
    }
