"""Workers sharing one sweep directory: each trial is run by one worker, a worker's death hands its trial to the
next one, the budget and the sweep's definition hold (real Optuna storage; no training)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from peftrun.errors import RunDirError
from peftrun.recipe.sweep import load_sweep
from peftrun.sweep.study import SweepDir, distributions, grid_points, next_trial, open_study, spent_minutes

pytest.importorskip("optuna")

BASE = {"model": {"name_or_path": "org/model"}, "peft": {"method": "lora"}, "trainer": {"type": "sft"},
        "dataset": {"path": "org/data"}}
GRID = """\
extends: base.yaml
sweep:
  sampler: grid
  params:
    trainer.learning_rate: {low: 1.0e-4, high: 2.0e-4, step: 1.0e-4}
    peft.r: [8, 16]
"""


@pytest.fixture
def sweep(in_tmp: Path):  # noqa: ANN201
    (in_tmp / "base.yaml").write_text(yaml.safe_dump(BASE))
    (in_tmp / "sweep.yaml").write_text(GRID)
    return load_sweep(in_tmp / "sweep.yaml")


def test_a_grid_is_every_combination_in_order(sweep) -> None:  # noqa: ANN001
    assert grid_points(sweep.section) == [{"trainer.learning_rate": lr, "peft.r": r} for lr in (1e-4, 2e-4) for r in (8, 16)]
    found = distributions(sweep.section)
    assert found["peft.r"].choices == (8, 16)
    assert (found["trainer.learning_rate"].low, found["trainer.learning_rate"].step) == (1e-4, 1e-4)


def test_workers_share_the_trials_and_take_over_a_dead_workers_trial(sweep) -> None:  # noqa: ANN001
    where = SweepDir(sweep.directory)
    a, b = open_study(sweep, where), open_study(sweep, where)  # two workers, each with its own handle
    first = next_trial(a, where, sweep.section)
    second = next_trial(b, where, sweep.section)
    assert (first.trial.number, second.trial.number) == (0, 1)
    assert first.params == {"trainer.learning_rate": 1e-4, "peft.r": 8} and not first.resumed
    first.trial.report(2.5, 4)
    first.release()  # worker a dies with trial 0 running: nobody holds it any more
    taken = next_trial(b, where, sweep.section)
    assert (taken.trial.number, taken.params, taken.resumed, taken.reported) == (0, first.params, True, {4})
    b.tell(taken.trial, 1.0)
    b.tell(second.trial, 2.0)
    rest = [next_trial(b, where, sweep.section) for _ in range(2)]
    assert [n.trial.number for n in rest] == [2, 3]
    for chosen in rest:
        b.tell(chosen.trial, 3.0)
    assert next_trial(a, where, sweep.section) is None  # the grid is done
    assert where.recipe.read_text() == sweep.trial_recipe_text


def test_the_trial_count_caps_a_run(sweep) -> None:  # noqa: ANN001
    where = SweepDir(sweep.directory)
    study = open_study(sweep, where)
    chosen = next_trial(study, where, sweep.section, trials=1)
    study.tell(chosen.trial, 1.0)
    assert next_trial(study, where, sweep.section, trials=1) is None
    assert next_trial(study, where, sweep.section, trials=2) is not None


def test_a_sweep_directory_holds_one_sweep(sweep, in_tmp: Path) -> None:  # noqa: ANN001
    open_study(sweep, SweepDir(sweep.directory))
    (in_tmp / "sweep.yaml").write_text(GRID.replace("[8, 16]", "[8, 32]"))
    changed = load_sweep(in_tmp / "sweep.yaml")
    with pytest.raises(RunDirError, match=r"holds a different sweep \(its sweep changed\)"):
        open_study(changed, SweepDir(changed.directory))


def test_the_time_budget_stops_new_trials(sweep, in_tmp: Path) -> None:  # noqa: ANN001
    (in_tmp / "sweep.yaml").write_text(GRID.replace("  sampler: grid\n", "  sampler: grid\n  max_minutes: 0.0001\n"))
    budgeted = load_sweep(in_tmp / "sweep.yaml")
    where = SweepDir(budgeted.directory)
    study = open_study(budgeted, where)
    chosen = next_trial(study, where, budgeted.section)
    time.sleep(0.05)  # 0.0008 minutes: past the budget
    study.tell(chosen.trial, 1.0)
    assert spent_minutes(study) > 0.0001
    assert next_trial(study, where, budgeted.section) is None


def test_a_worker_killed_while_writing_the_journal_does_not_lock_it_for_the_others(tmp_path: Path) -> None:
    """Optuna's symlink lock outlives a SIGKILL (and with a relative journal path its link dangles, so Optuna 5.0
    never takes it over): the sweep's journal lock is an OS lock, dropped when its holder dies."""
    import os
    import signal
    import subprocess
    import sys

    from peftrun.sweep.study import JournalLock

    where = SweepDir(tmp_path / "runs" / "sw")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from peftrun.sweep.study import JournalLock; "
        "JournalLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(600)"),
        str(where.journal_lock)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    lock = JournalLock(where.journal_lock)
    assert lock.acquire() and time.monotonic() - start < 5
    lock.release()
