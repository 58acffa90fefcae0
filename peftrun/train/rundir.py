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
from peftrun.recipe.explain import base_line
from peftrun.recipe.plan import Plan

RESOLVED_RECIPE = "recipe.resolved.yaml"
MANIFEST = "manifest.json"
LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


# Trainer settings a --resume may change: how long to go on, and how often to log, evaluate and save.
RESUMABLE_CHANGES = frozenset({
    "trainer.max_steps", "trainer.num_train_epochs", "trainer.save_steps", "trainer.save_total_limit",
    "trainer.logging_steps", "trainer.eval_steps", "trainer.report_to", "trainer.dataloader_num_workers",
})


def _occupied(run_dir: Path) -> bool:
    """Holds anything but the resolved recipe of a start that failed before training."""
    return run_dir.is_dir() and any(p.name != RESOLVED_RECIPE for p in run_dir.iterdir())


def check(run_dir: Path, recipe_label: str, resolved_text: str, *, overwrite: bool, resume: bool) -> Path | None:
    """Before anything loads: may this run use its directory? Returns the checkpoint to resume from.

    A non-empty directory is refused unless --overwrite (start over; only a peftrun run directory is
    ever deleted) or --resume (continue from its last checkpoint, with the same recipe) says what to do.
    """
    if resume:
        found = checkpoints(run_dir) if run_dir.is_dir() else []
        if not found:
            raise RunDirError(f"{run_dir} has no checkpoint to resume from; run without --resume to start")
        _check_same_recipe(run_dir, resolved_text)
        return found[-1]
    if _occupied(run_dir) and not overwrite:
        raise RunDirError(_occupied_message(run_dir, recipe_label))
    if _occupied(run_dir):
        _check_deletable(run_dir)
    return None


def claim(run_dir: Path, resolved_text: str, *, overwrite: bool) -> None:
    """Start the run: clear the directory (--overwrite, checked by `check`), create it, write the recipe."""
    if overwrite and _occupied(run_dir):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RESOLVED_RECIPE).write_text(resolved_text)


def _check_deletable(run_dir: Path) -> None:
    here, target = Path.cwd().resolve(), run_dir.resolve()
    if target in (here, *here.parents, Path.home().resolve()):
        raise RunDirError(f"--overwrite would delete {run_dir}, which holds the working directory or home: "
                          "choose another output.dir")
    if not ((run_dir / RESOLVED_RECIPE).is_file() or (run_dir / MANIFEST).is_file() or checkpoints(run_dir)):
        raise RunDirError(f"{run_dir} is not a peftrun run directory (no {RESOLVED_RECIPE}, {MANIFEST} or "
                          "checkpoints), and --overwrite deletes only runs: empty it yourself or choose another output.dir")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _check_same_recipe(run_dir: Path, resolved_text: str) -> None:
    """A resumed run must train what the checkpoint was trained with (it may go on longer)."""
    saved_file = run_dir / RESOLVED_RECIPE
    if not saved_file.is_file():
        return
    saved, now = _flatten(yaml.safe_load(saved_file.read_text())), _flatten(yaml.safe_load(resolved_text))
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        details = "; ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed[:8])
        raise RunDirError(f"--resume with a different recipe than {saved_file} was trained with ({details}); only "
                          f"{', '.join(sorted(RESUMABLE_CHANGES))} may change. Start over with --overwrite instead")


def _occupied_message(run_dir: Path, recipe_label: str) -> str:
    fix = "start over with --overwrite, or choose another output.dir"
    if (run_dir / MANIFEST).is_file():
        return f"{run_dir} already holds a finished run: {fix}"
    found = checkpoints(run_dir)
    if found:
        return (f"{run_dir} holds an unfinished run (last checkpoint: {found[-1].name}): resume it with "
                f"`peftrun {recipe_label} --resume`, or {fix}")
    return f"{run_dir} is not empty: {fix}"


def resolved_recipe_text(plan: Plan) -> str:
    """recipe.resolved.yaml: every value explicit; it validates and re-runs the same training.
    Values that came from `${oc.env:...}` keep the expression, so no secret is written out."""
    data = plan.recipe.model_dump(mode="json", exclude={"extends"})
    data["trainer"] = {"type": plan.trainer_type, **_trainer_values(plan)}
    for path, expression in plan.recipe.env_expressions.items():
        _set(data, path.split("."), expression)
    header = f"# Resolved by peftrun {__version__} from {plan.recipe.path or 'a mapping'}; re-run with `peftrun {RESOLVED_RECIPE}`\n"
    header += "".join(f"# base: {base_line(base)}\n" for base in plan.recipe.bases)
    return header + yaml.safe_dump(data, sort_keys=False)


def _set(data: Any, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data[int(key)] if isinstance(data, list) else data.setdefault(key, {})
    if isinstance(data, list):
        data[int(keys[-1])] = value
    else:
        data[keys[-1]] = value


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
