"""The run directory: never overwritten by accident, resumable, and complete when a run ends."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from peftrun import __version__
from peftrun.errors import RunDirError
from peftrun.plan import Plan

RESOLVED_RECIPE = "recipe.resolved.yaml"
MANIFEST = "manifest.json"
LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def prepare(run_dir: Path, recipe_label: str, overwrite: bool, resume: bool) -> Path | None:
    """Make the run directory ready; returns the checkpoint to resume from, if any.

    Refuses to touch a non-empty directory unless --overwrite (start over) or
    --resume (continue from its last checkpoint) says what to do with it.
    """
    occupied = run_dir.is_dir() and any(run_dir.iterdir())
    if resume:
        found = checkpoints(run_dir) if run_dir.is_dir() else []
        if not found:
            raise RunDirError(f"{run_dir} has no checkpoint to resume from; run without --resume to start")
        return found[-1]
    if occupied and not overwrite:
        raise RunDirError(_occupied_message(run_dir, recipe_label))
    if occupied:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def _occupied_message(run_dir: Path, recipe_label: str) -> str:
    fix = "start over with --overwrite, or choose another output.dir"
    if (run_dir / MANIFEST).is_file():
        return f"{run_dir} already holds a finished run: {fix}"
    found = checkpoints(run_dir)
    if found:
        return (f"{run_dir} holds an unfinished run (last checkpoint: {found[-1].name}): resume it with "
                f"`peftrun {recipe_label} --resume`, or {fix}")
    return f"{run_dir} is not empty: {fix}"


def write_resolved_recipe(plan: Plan, run_dir: Path) -> Path:
    """recipe.resolved.yaml: every value explicit; it validates and re-runs the same training."""
    data = plan.recipe.model_dump(mode="json", exclude={"extends"})
    data["trainer"] = {"type": plan.trainer_type, **_trainer_values(plan)}
    header = f"# Resolved by peftrun {__version__} from {plan.recipe.path or 'a mapping'}; re-run with `peftrun {RESOLVED_RECIPE}`\n"
    path = run_dir / RESOLVED_RECIPE
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


def _trainer_values(plan: Plan) -> dict[str, Any]:
    trainer = plan.recipe.trainer.model_dump(mode="json", exclude={"type"})
    return {k: v for k, v in trainer.items() if v is not None}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"peftrun": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(path: Path | None) -> dict[str, Any]:
    """The recipe's git commit and whether its tree was dirty; nulls outside git."""
    if path is None:
        return {"commit": None, "dirty": None}
    folder = str(path.resolve().parent)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit.strip(), "dirty": bool((git("status", "--porcelain") or "").strip())}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_manifest(run_dir: Path, content: dict[str, Any]) -> Path:
    path = run_dir / MANIFEST
    path.write_text(json.dumps(content, indent=2, default=str) + "\n")
    return path


def host() -> dict[str, Any]:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
