"""Beyond one process: `peftrun RECIPE` re-launches itself under accelerate's launcher.

    peftrun recipe.yaml launch.num_processes=2
runs
    python -m accelerate.commands.launch --multi_gpu --num_processes 2 ... -m peftrun run recipe.yaml launch.num_processes=2

and every launched process loads the same recipe, resolves it to the same plan and
runs the ordinary single-process path (runner.train); torch.distributed, started
by the trainer, makes them one run. A launched process never launches again.

The launcher's argv and its description are pure (peftrun/recipe/launch_command.py);
this module runs the launcher and checks that it really started the processes asked for; what each launched process does
lives in peftrun/launch/ranks.py and peftrun/train/sharded.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from peftrun.errors import LaunchError
from peftrun.launch.preflight import read_accelerate_config
from peftrun.launch.ranks import EXPECTED_WORLD_SIZE, check_worker, is_worker, quiet_this_rank, rank
from peftrun.launch.runmode import RunMode
from peftrun.recipe.launch_command import describe, given, launch_argv, total_processes
from peftrun.recipe.launch_rules import uses_launcher
from peftrun.recipe.plan import Plan



@dataclass(frozen=True)
class HeldLock:
    """The run directory's lock, held by the launching process for the processes it starts."""

    env: dict[str, str] = field(default_factory=dict)  # tells their rank 0 who holds it
    fds: tuple[int, ...] = ()  # the launcher process keeps the lock too, should this process die first


class RunDirChecks(Protocol):
    """What the run side tells the launcher about the run directory (the launch layer cannot import it)."""

    manifest: Path  # written last by a finished run

    def hold(self) -> AbstractContextManager[HeldLock]:
        """Take the run directory's lock (one writer) for as long as the launched run lasts."""

    def check_before_launch(self) -> str | None:
        """Refuse an occupied run directory before any process starts; a message when there is nothing
        to run (--resume of a finished run)."""


def needs_launch(plan: Plan, env: Mapping[str, str] | None = None) -> bool:
    """The plan asks for accelerate's launcher and this process is not already one of its workers."""
    return uses_launcher(plan.recipe.launch) and not is_worker(env)


def expected_world_size(plan: Plan) -> int | None:
    """Processes the launcher must start (None: an accelerate config file decides and does not say)."""
    launch = plan.recipe.launch
    if launch.accelerate_config is None or given(plan, "launch.num_processes"):
        return total_processes(plan)
    try:
        found = read_accelerate_config(Path(launch.accelerate_config)).get("num_processes")
    except (OSError, ValueError):
        return None
    return int(found) if isinstance(found, int) and found > 0 else None


# --- the launching process ---------------------------------------------------------------------------

def from_cli(plan: Plan, recipe: str, overrides: Sequence[str], *, mode: RunMode, dry_run: bool,
             run_dir: RunDirChecks) -> tuple[Plan, int | None]:
    """The runner's hook: (plan for this process, exit code when the run happened under the launcher).

    Every launched process runs `peftrun run RECIPE OVERRIDES [--overwrite | --resume]`, this same command.

    Launching process: checks the machine and (through the runner's `run_dir` checks) the run directory,
    runs the launcher, returns its exit code.
    Launched process: checks what the launcher started and quiets ranks other than 0; returns (plan, None).
    """
    if is_worker() or EXPECTED_WORLD_SIZE in os.environ:
        check_worker(plan)
        quiet_this_rank()
        if rank() != 0:
            from dataclasses import replace

            plan = replace(plan, warnings=())  # rank 0 prints them
        return plan, None
    if not uses_launcher(plan.recipe.launch):
        return plan, None
    if dry_run:
        return plan, None
    script_args = ["run", recipe, *overrides, *mode.flags]
    return plan, run_launcher(plan, script_args, run_dir)  # rank 0 prints the warnings


def run_launcher(plan: Plan, script_args: Sequence[str], run_dir: RunDirChecks) -> int:
    """Run the launcher, wait for it, and propagate its exit code; 0 only when the run really had its processes."""
    launch = plan.recipe.launch
    with run_dir.hold() if launch.machine_rank == 0 else nullcontext(HeldLock()) as held:
        if launch.machine_rank == 0:  # refuse an occupied directory before starting anything
            done = run_dir.check_before_launch()
            if done is not None:
                print(done)
                return 0
        return _launch(plan, script_args, run_dir, held)


def _launch(plan: Plan, script_args: Sequence[str], run_dir: RunDirChecks, held: HeldLock) -> int:
    launch = plan.recipe.launch
    expected = expected_world_size(plan)
    argv = launch_argv(plan, script_args)
    env = {**os.environ, **held.env}
    env[EXPECTED_WORLD_SIZE] = str(expected) if expected else "unknown"  # also marks them as launched by peftrun
    _warn_default_accelerate_config(plan)
    print(f"peftrun: launching {describe(plan)}\n  {shlex.join(argv)}", file=sys.stderr, flush=True)
    started = time.time()
    code = _wait(subprocess.Popen(argv, env=env, pass_fds=held.fds))
    if code != 0:
        print(f"error: the launched run failed (launcher exit status {code}); the failing process's error is above",
              file=sys.stderr)
        return code
    if launch.machine_rank == 0:
        check_manifest(run_dir.manifest, expected, started)
    return 0


def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for the launcher; Ctrl-C reaches the workers too (they save a checkpoint), so keep waiting for them."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            print("\npeftrun: waiting for the launched processes to stop", file=sys.stderr)


def check_manifest(path: Path, expected: int | None, started: float) -> None:
    """After the launcher exits 0: the run's manifest is new and records the world size asked for."""
    if not path.is_file() or path.stat().st_mtime < started - 1:
        raise LaunchError(f"the launcher exited 0 but {path.parent} holds no new {path.name}: no process finished the run")
    found = json.loads(path.read_text()).get("world_size")
    if expected is not None and found != expected:
        raise LaunchError(
            f"asked for {expected} processes but the run reports world size {found}: the launcher did not start "
            "them (`accelerate launch --cpu` runs one process whatever --num_processes says)"
        )


def _warn_default_accelerate_config(plan: Plan) -> None:
    """accelerate fills options peftrun leaves unset from the machine's default config: say so."""
    if plan.recipe.launch.accelerate_config is not None:
        return
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    default = Path(os.path.expanduser(home)) / "accelerate" / "default_config.yaml"
    if default.is_file():
        print(f"warning: accelerate's default config {default} fills the launch options peftrun does not set; "
              "name it in launch.accelerate_config to make that part of the recipe", file=sys.stderr)
