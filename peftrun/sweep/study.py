"""The sweep's Optuna study, kept in the sweep directory, and which trial a worker runs next.

Any number of `peftrun sweep` processes (workers) may share one sweep directory. The study lives in an
Optuna journal file (`optuna.journal`, safe for concurrent processes); a sweep-wide lock file serializes
"which trial next"; each running trial is held by its worker through a lock file in `claims/`, which the
kernel drops when the worker dies, however it dies. A trial the storage says is running but nobody holds
was cut short: the next worker takes it over and resumes it from its run directory's checkpoint.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from peftrun.errors import RunDirError
from peftrun.recipe.schema.sweep import Range, SweepSection
from peftrun.recipe.sweep import SweepFile
from peftrun.train.durable import write_atomic

STUDY = "peftrun-sweep"
DEFINITION = "definition"


def _file(name: str, doc: str | None = None) -> property:
    """A file of the sweep directory, by its name."""
    return property(lambda self: self.root / name, doc=doc)


def _trial(number: int) -> str:
    return f"trial-{number:03d}"


@dataclass(frozen=True)
class SweepDir:
    """The files of a sweep directory."""

    root: Path

    journal = _file("optuna.journal")
    journal_lock = _file("optuna.journal.flock", "Held while a worker writes the journal (an OS lock).")
    recipe = _file("sweep.recipe.yaml", "The plain recipe every trial runs.")
    lock = _file(".sweep.lock")
    best = _file("best.yaml")
    plot = _file("metric.png")

    def trial_dir(self, number: int) -> Path:
        return self.root / _trial(number)

    def log(self, number: int) -> Path:
        return self.root / "logs" / f"{_trial(number)}.log"

    def claim(self, number: int) -> Path:
        return self.root / "claims" / f"{_trial(number)}.lock"


def distributions(section: SweepSection) -> dict[str, Any]:
    """Each parameter's Optuna distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for key, space in section.params.items():
        if not isinstance(space, Range):
            out[key] = CategoricalDistribution(space)
        elif space.is_int:
            out[key] = IntDistribution(int(space.low), int(space.high), log=space.log, step=int(space.step or 1))
        else:
            out[key] = FloatDistribution(float(space.low), float(space.high), log=space.log, step=space.step)
    return out


def _sampler(section: SweepSection, seed: int) -> Any:
    """Optuna's sampler. A grid is every combination, queued in order when the study is created (Optuna's own
    GridSampler draws them in random order and stops the study, which only works inside `optimize`)."""
    from optuna import samplers

    return samplers.TPESampler(seed=seed) if section.sampler == "tpe" else samplers.RandomSampler(seed=seed)


def grid_points(section: SweepSection) -> list[dict[str, Any]]:
    """Every combination of a grid's values, the last parameter varying fastest."""
    values = [list(v) if isinstance(v, list) else v.grid() or [] for v in section.params.values()]
    return [dict(zip(section.params, combination)) for combination in itertools.product(*values)]


def _pruner(section: SweepSection) -> Any:
    from optuna import pruners

    return pruners.MedianPruner(n_startup_trials=2) if section.prune else pruners.NopPruner()


def trial_count(section: SweepSection, override: int | None = None) -> int:
    """How many trials in all (a grid has no more points than its size)."""
    wanted = override or section.trial_count
    return min(wanted, section.grid_size()) if section.sampler == "grid" else wanted


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block (waits for other holders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class JournalLock:
    """The journal's write lock as an OS lock (Optuna's JournalFileBackend takes any object with acquire and
    release): a worker killed while writing releases it by dying. Optuna's own symlink lock stays behind a
    SIGKILL, and when the journal's path is relative its link dangles, so Optuna 5.0 never takes it over and
    spins (optuna/storages/journal/_file.py JournalFileSymlinkLock.acquire: stat of the link fails, `continue`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its lock
            self._fd = None


def try_claim(path: Path) -> int | None:
    """A held lock on a trial's claim file (its descriptor), or None when a live worker holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def open_study(sweep: SweepFile, where: SweepDir) -> Any:
    """The sweep's study: created with the sweep's definition, or loaded when it is the same sweep."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with exclusive(where.lock):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str(where.journal), lock_obj=JournalLock(where.journal_lock)))
        direction = sweep.section.metric.goal
        study = optuna.create_study(study_name=STUDY, storage=storage, direction=direction, load_if_exists=True,
                                    sampler=_sampler(sweep.section, sweep.recipe.seed), pruner=_pruner(sweep.section))
        definition, saved = sweep.definition(), study.user_attrs.get(DEFINITION)
        if saved is None:
            write_atomic(where.recipe, sweep.trial_recipe_text)
            for params in grid_points(sweep.section) if sweep.section.sampler == "grid" else []:
                study.enqueue_trial(params)
            study.set_user_attr(DEFINITION, definition)
        elif saved != definition:
            changed = ", ".join(k for k in definition if saved.get(k) != definition[k])
            raise RunDirError(f"{where.root} holds a different sweep (its {changed} changed): a sweep continues only "
                              "as it started; choose another output.dir for the new one")
    return study


@dataclass
class Next:
    """The trial a worker runs next, held through its claim (released by `release`)."""

    trial: Any  # optuna.Trial
    params: dict[str, Any]
    resumed: bool
    reported: set[int]  # steps whose intermediate value the storage already has
    claim: int

    def release(self) -> None:
        os.close(self.claim)


def spent_minutes(study: Any) -> float:
    """Minutes the sweep's trials have run, finished ones and running ones, over all starts."""
    now, total = datetime.now(), 0.0
    for trial in study.get_trials(deepcopy=False):
        if trial.datetime_start is not None:
            total += ((trial.datetime_complete or now) - trial.datetime_start).total_seconds()
    return total / 60


def next_trial(study: Any, where: SweepDir, section: SweepSection, trials: int | None = None) -> Next | None:
    """A trial cut short (nobody holds its claim) first, else a new one while the budget lasts, else None."""
    import optuna
    from optuna.trial import TrialState

    started = tuple(state for state in TrialState if state != TrialState.WAITING)
    with exclusive(where.lock):
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            claim = try_claim(where.claim(frozen.number))
            if claim is not None:
                trial = optuna.Trial(study, frozen._trial_id)
                return Next(trial, dict(frozen.params), True, set(frozen.intermediate_values), claim)
        if len(study.get_trials(deepcopy=False, states=started)) >= trial_count(section, trials):
            return None
        if section.max_minutes is not None and spent_minutes(study) >= section.max_minutes:
            return None
        trial = study.ask(distributions(section))
        claim = try_claim(where.claim(trial.number))
        assert claim is not None, "a new trial's claim is free"
        return Next(trial, dict(trial.params), False, set(), claim)


def wait_for_run_dir(run_dir: Path, timeout_s: float = 600.0) -> None:
    """Wait until no process holds the run directory's lock (a cut-short trial's run still saving its
    checkpoint after its worker died); the run then takes the lock itself."""
    from peftrun.train.lock import LOCK_FILE

    path, deadline = run_dir / LOCK_FILE, time.monotonic() + timeout_s
    while path.exists():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RunDirError(f"{run_dir} is still held by another process after {timeout_s:.0f} s") from None
            time.sleep(0.5)
        finally:
            os.close(fd)
