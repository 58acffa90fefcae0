"""The run directory: never overwritten by accident, resumable, and complete when a run ends."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from peftrun import __version__
from peftrun.errors import RunDirError, scrub
from peftrun.launch.runmode import RunMode
from peftrun.recipe.explain import base_line
from peftrun.recipe.gitcache import SAFE_CONFIG
from peftrun.recipe.plan import Plan
from peftrun.train.checkpoints import all_checkpoints, remove_incomplete, resume_point
from peftrun.train.durable import fsync_tree, write_atomic
from peftrun.train.lock import LOCK_FILE
from peftrun.train.progress import LOG_FILE

RESOLVED_RECIPE = "recipe.resolved.yaml"
MANIFEST = "manifest.json"  # written last, whole or absent: a run directory with it holds a finished run
LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")
LENGTH = ("trainer.max_steps", "trainer.num_train_epochs")


# Trainer settings a --resume may change: how long to go on, and how often to log, evaluate and save.
RESUMABLE_CHANGES = frozenset({
    "trainer.max_steps", "trainer.num_train_epochs", "trainer.save_steps", "trainer.save_total_limit",
    "trainer.logging_steps", "trainer.eval_steps", "trainer.report_to", "trainer.dataloader_num_workers",
})


def _occupied(run_dir: Path) -> bool:
    """Holds anything but the lock, the resolved recipe and the log of a start that failed before training."""
    return run_dir.is_dir() and any(p.name not in (RESOLVED_RECIPE, LOCK_FILE, LOG_FILE) for p in run_dir.iterdir())


def check(run_dir: Path, recipe_label: str, resolved_text: str, mode: RunMode) -> Path | None:
    """Before anything loads: may this run use its directory? Returns the checkpoint to resume from.

    A non-empty directory is refused unless the mode is overwrite (start over; only a peftrun run directory is
    ever deleted) or resume (continue from its newest complete checkpoint, with the same recipe; from
    step 0 when the run was stopped before its first one).
    """
    if mode is RunMode.RESUME:
        point = resume_point(run_dir) if run_dir.is_dir() else None
        if point is None or (point.checkpoint is None and not (run_dir / RESOLVED_RECIPE).is_file()):
            raise RunDirError(f"{run_dir} has no checkpoint to resume from; run without --resume to start")
        _check_same_recipe(run_dir, resolved_text)
        print(point.describe(), file=sys.stderr)
        return point.checkpoint
    if _occupied(run_dir) and mode is not RunMode.OVERWRITE:
        raise RunDirError(_occupied_message(run_dir, recipe_label))
    if _occupied(run_dir):
        _check_deletable(run_dir)
    return None


def finished(run_dir: Path, resolved_text: str) -> str | None:
    """--resume of a finished run asking for no more training: the message that says so (None otherwise)."""
    saved = run_dir / RESOLVED_RECIPE
    if not (run_dir / MANIFEST).is_file() or not saved.is_file():
        return None
    before, now = _flatten(yaml.safe_load(saved.read_text())), _flatten(yaml.safe_load(resolved_text))
    if any(before.get(key) != now.get(key) for key in LENGTH):
        return None  # it goes on longer
    steps = json.loads((run_dir / MANIFEST).read_text()).get("training", {}).get("steps")
    return f"{run_dir} holds a finished run ({steps} steps, {MANIFEST}): nothing to resume"


def claim(run_dir: Path, resolved_text: str, mode: RunMode) -> None:
    """Start the run: clear the directory (overwrite, checked by `check`), create it, write the recipe.
    A resumed run drops incomplete checkpoints, and is unfinished (no manifest) until it ends again."""
    (run_dir / MANIFEST).unlink(missing_ok=True)  # first: a kill while this clears must not leave it finished
    if mode is RunMode.OVERWRITE and _occupied(run_dir):
        for path in run_dir.iterdir():
            if path.name in (LOCK_FILE, RESOLVED_RECIPE):  # held / replaced below: a clearing cut short still
                continue                                 # leaves a run directory that --overwrite may delete
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_incomplete(run_dir)
    write_atomic(run_dir / RESOLVED_RECIPE, resolved_text)


def require_finished(run_dir: Path) -> None:
    """eval, merge and generate read finished runs only."""
    if (run_dir / RESOLVED_RECIPE).is_file() and not (run_dir / MANIFEST).is_file():
        raise RunDirError(f"{run_dir} holds an unfinished run (no {MANIFEST}): resume it with `peftrun RECIPE "
                          "--resume`, or overwrite it with `peftrun RECIPE --overwrite`")


def _check_deletable(run_dir: Path) -> None:
    here, target = Path.cwd().resolve(), run_dir.resolve()
    if target in (here, *here.parents, Path.home().resolve()):
        raise RunDirError(f"--overwrite would delete {run_dir}, which holds the working directory or home: "
                          "choose another output.dir")
    if not ((run_dir / RESOLVED_RECIPE).is_file() or (run_dir / MANIFEST).is_file() or all_checkpoints(run_dir)):
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
    point = resume_point(run_dir)
    if point.checkpoint is not None or point.skipped or (run_dir / RESOLVED_RECIPE).is_file():
        last = point.checkpoint.name if point.checkpoint else "no complete checkpoint yet"
        return (f"{run_dir} holds an unfinished run (last checkpoint: {last}): resume it with "
                f"`peftrun {recipe_label} --resume`, or {fix}")
    return f"{run_dir} is not empty: {fix}"


def resolved_recipe_text(plan: Plan) -> str:
    """recipe.resolved.yaml: every value explicit; it validates and re-runs the same training.
    Values that came from `${oc.env:...}` keep the expression, so no secret is written out."""
    data = plan.recipe.model_dump(mode="json", exclude={"extends"})
    data["trainer"] = {"type": plan.trainer_type, **_trainer_values(plan)}
    data["dataset"] = plan.recipe.dataset.unshared_dump()
    for path, expression in plan.recipe.env_expressions.items():
        _set(data, path.split("."), expression)
    header = f"# Resolved by peftrun {__version__} from {plan.recipe.path or 'a mapping'}; re-run with `peftrun {RESOLVED_RECIPE}`\n"
    header += "".join(f"# base: {base_line(base)}\n" for base in plan.recipe.bases)
    return scrub(header + yaml.safe_dump(data, sort_keys=False))


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


# `git status` runs no command the work tree's configuration names: fsmonitor and hooks off (SAFE_CONFIG), every
# filter driver blanked, no transport (a partial clone's lazy fetch), no submodule (each has its own configuration).
STATUS = ("status", "--porcelain", "--ignore-submodules=all", "--no-renames")
BLANK_FILTER = (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false"))


def _git(folder: str, *args: str, env: dict[str, str] | None = None) -> str | None:
    try:
        done = subprocess.run(["git", *SAFE_CONFIG, "--no-optional-locks", "-C", folder, *args], capture_output=True,
                              text=True, timeout=10, stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _blanked_config(folder: str) -> dict[str, str]:
    """The environment for a `git status` that runs no configured command: every filter driver the repository's
    configuration (includes too) defines is blanked and not required, every transport refused. Given as
    GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n (command-line precedence; a driver's name may hold any character)."""
    overrides = {"protocol.allow": "never"}
    listed = _git(folder, "config", "--null", "--get-regexp", r"^(filter|protocol)\.") or ""
    for entry in filter(None, listed.split("\0")):
        section, _, rest = entry.split("\n", 1)[0].partition(".")
        name = rest.rpartition(".")[0]
        if section == "filter" and name:
            overrides.update({f"filter.{name}.{key}": value for key, value in BLANK_FILTER})
        elif section == "protocol" and name:
            overrides[f"protocol.{name}.allow"] = "never"
    env = dict(os.environ)
    count = int(env["GIT_CONFIG_COUNT"]) if env.get("GIT_CONFIG_COUNT", "").isdigit() else 0
    for index, (key, value) in enumerate(overrides.items(), start=count):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    env["GIT_CONFIG_COUNT"] = str(count + len(overrides))
    return env


def git_state(path: Path | None) -> dict[str, Any]:
    """The recipe's git commit and whether its tree was dirty (submodules not looked into); nulls outside git.
    The work tree's own configuration runs nothing (no fsmonitor command, hook, filter, fetch or index write)."""
    if path is None:
        return {"commit": None, "dirty": None}
    folder = str(path.resolve().parent)
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(folder, *STATUS, env=_blanked_config(folder))
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_manifest(run_dir: Path, content: dict[str, Any]) -> Path:
    """Written last: the run's outputs are flushed to disk first, then the manifest appears whole."""
    fsync_tree(run_dir, skip=lambda p: p.parent == run_dir and p.name.startswith("checkpoint-"))
    path = run_dir / MANIFEST
    write_atomic(path, scrub(json.dumps(content, indent=2, default=str) + "\n"))
    return path


def host() -> dict[str, Any]:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
