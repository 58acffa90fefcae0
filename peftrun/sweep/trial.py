"""One trial of a sweep: checked against the plan first, then run as an ordinary `peftrun run` in a child process.

The child writes an ordinary, locked run directory (resolved recipe, checkpoints, manifest). Running it apart
keeps one trial's crash or out-of-memory from ending the sweep, and makes a restart safe: the child dies with
its worker (it is sent SIGTERM, so it saves a checkpoint and stops), and the trial is then resumed by the next
worker with `--resume`. While it runs, the eval metric it logs is read from each new complete checkpoint and
reported to Optuna; a trial the pruner stops is sent SIGTERM and ends at a checkpoint.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftrun.errors import INTERNAL_ERROR_EXIT, Interrupted, PeftrunError, RecipeError
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.sweep import EVAL_COMMAND_METRICS, SweepFile, override
from peftrun.recipe.validation import checked_plan
from peftrun.sweep.runs import log_history, metric_value
from peftrun.sweep.study import Next, SweepDir, wait_for_run_dir
from peftrun.train.durable import write_atomic
from peftrun.train.rundir import RESOLVED_RECIPE

POLL_S = 1.0
PR_SET_PDEATHSIG = 1


@dataclass
class Outcome:
    """How a trial ended: Optuna's state name, the metric (complete trials) and what the table shows."""

    state: str  # COMPLETE | PRUNED | FAIL
    status: str  # complete | pruned | failed | does not fit | invalid
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def exit_class(code: int) -> str:
    """The failure class a `peftrun` exit status stands for (errors.py)."""
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    if code == INTERNAL_ERROR_EXIT:
        return "internal error"
    classes, todo = {}, [PeftrunError]
    while todo:
        cls = todo.pop()
        classes.setdefault(cls.exit_code, cls.__name__)
        todo += cls.__subclasses__()
    return classes.get(code, f"exit {code}")


def trial_overrides(sweep: SweepFile, params: dict[str, Any], run_dir: Path) -> list[str]:
    return [*sweep.overrides, *(override(k, v) for k, v in params.items()), override("output.dir", str(run_dir))]


def plan_gate(recipe: Path, overrides: list[str], hardware: Hardware) -> Outcome | None:
    """Refuse a trial the target hardware cannot hold (or whose values do not go together), before it starts."""
    from peftrun.plan.estimate import estimate_or_warn

    try:
        plan = checked_plan(load_recipe(recipe, overrides), hardware)
    except RecipeError as error:
        problem = str(error.problems[0])
        return Outcome("FAIL", "invalid", attrs={"exit_class": "RecipeError", "error": problem, "note": problem})
    found = estimate_or_warn(plan)
    if found is None or found.fits is not False:
        return None
    expected, device = found.memory.band["expected"] / 1e9, (found.device_memory or 0) / 1e9
    note = f"needs {expected:.2f} GB, {plan.hardware.describe()} has {device:.2f} GB"
    return Outcome("FAIL", "does not fit", attrs={"expected_gb": round(expected, 2), "device_gb": round(device, 2),
                                                  "note": note})


def _die_with_parent(parent: int) -> Any:
    """preexec_fn: the child gets SIGTERM when its worker dies (Linux), so it checkpoints and stops."""
    def arm() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
    return arm


class _Stop:
    """SIGINT / SIGTERM to the worker: passed once to the running child (which checkpoints), then the
    worker stops without recording the trial, so a restart resumes it."""

    def __init__(self) -> None:
        self.requested = False
        self.child: subprocess.Popen[bytes] | None = None

    def handle(self, signum: int, frame: Any) -> None:
        if not self.requested and self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator["_Stop"]:
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Progress:
    """Reports the intermediate metric found in the run's newest complete checkpoint; says when to prune."""

    def __init__(self, chosen: Next, metric: str) -> None:
        self.trial, self.metric, self.reported = chosen.trial, metric, set(chosen.reported)
        self.last_step: int | None = max(self.reported, default=None)

    def prune(self, run_dir: Path) -> bool:
        new = [(int(e["step"]), float(e[self.metric])) for e in log_history(run_dir)
               if self.metric in e and "step" in e and int(e["step"]) not in self.reported]
        for step, value in new:
            self.trial.report(value, step)
            self.reported.add(step)
            self.last_step = step
        return bool(new) and self.trial.should_prune()


def _error_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("error:")]
    return lines[-1].removeprefix("error:").strip()[:500] if lines else ""


def run_child(recipe: Path, overrides: list[str], run_dir: Path, log: Path, progress: Progress | None) -> Outcome:
    """`peftrun run` for the trial (resuming what a cut-short start left), watched for pruning."""
    wait_for_run_dir(run_dir)
    resume = ["--resume"] if (run_dir / RESOLVED_RECIPE).is_file() else []
    command = [sys.executable, "-m", "peftrun", "run", str(recipe), *overrides, *resume]
    log.parent.mkdir(parents=True, exist_ok=True)
    pruned, stop = False, _Stop()
    with open(log, "ab") as out, stop.installed():
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        child = stop.child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                              preexec_fn=_die_with_parent(os.getpid()))  # noqa: PLW1509
        while child.poll() is None:
            time.sleep(POLL_S)
            if progress is not None and not pruned and not stop.requested and progress.prune(run_dir):
                pruned = True
                child.send_signal(signal.SIGTERM)
    if stop.requested:
        raise Interrupted(f"sweep stopped; the running trial ({run_dir}) keeps its checkpoint and resumes when the "
                          "sweep is started again")
    return _outcome(child.returncode, log, progress, pruned)


def _outcome(code: int, log: Path, progress: Progress | None, pruned: bool) -> Outcome:
    if pruned and code != 0:  # a run that ended before the pruner's signal counts as complete
        step = progress.last_step if progress else None
        return Outcome("PRUNED", "pruned", attrs={"note": f"pruned at step {step}", "step": step})
    if code != 0:
        name = exit_class(code)
        return Outcome("FAIL", "failed", attrs={"exit_code": code, "exit_class": name, "error": _error_line(log),
                                                "note": f"{name} (exit {code})"})
    return Outcome("COMPLETE", "complete")


def eval_command_metric(run_dir: Path, metric: str, where: SweepDir) -> float | None:
    """A metric of `peftrun eval RUN_DIR` (the tuned model on the run's eval split), run after the trial; its
    result is kept next to the trial's log."""
    number = int(run_dir.name.rsplit("-", 1)[-1])
    done = subprocess.run([sys.executable, "-m", "peftrun", "eval", str(run_dir), "--json"], capture_output=True,
                          text=True)
    with open(where.log(number), "a") as log:
        log.write(f"$ peftrun eval {run_dir} --json\n{done.stdout}{done.stderr}")
    if done.returncode != 0 or not done.stdout.strip():
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    write_atomic(where.log(number).with_suffix(".eval.json"), json.dumps(result, indent=2) + "\n")
    return float(result["tuned"][metric])


def run_trial(sweep: SweepFile, where: SweepDir, chosen: Next, hardware: Hardware) -> Outcome:
    """Check the trial against the plan, run it, and read its metric."""
    number = chosen.trial.number
    run_dir = where.trial_dir(number)
    overrides = trial_overrides(sweep, chosen.params, run_dir)
    outcome = plan_gate(where.recipe, overrides, hardware)
    if outcome is None:
        metric = sweep.section.metric.name
        progress = Progress(chosen, metric) if sweep.section.prune else None
        outcome = run_child(where.recipe, overrides, run_dir, where.log(number), progress)
        if outcome.state == "COMPLETE":
            outcome.value = eval_command_metric(run_dir, metric, where) if metric in EVAL_COMMAND_METRICS \
                else metric_value(run_dir, metric)
            if outcome.value is None:
                outcome = Outcome("FAIL", "failed", attrs={"note": f"the run recorded no {metric}"})
    outcome.attrs["run_dir"] = str(run_dir)
    return outcome


def record(study: Any, chosen: Next, outcome: Outcome) -> None:
    """Tell Optuna how the trial ended, with what the table shows."""
    from optuna.trial import TrialState

    chosen.trial.set_user_attr("status", outcome.status)
    for key, value in outcome.attrs.items():
        chosen.trial.set_user_attr(key, value)
    state = TrialState[outcome.state]
    study.tell(chosen.trial, outcome.value if state == TrialState.COMPLETE else None, state=state)

