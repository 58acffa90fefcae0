"""One run directory, one writer: of starts racing for it exactly one wins, the others say who holds it;
a killed holder leaves no stale lock; a launched rank 0 runs under its launching process's lock."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from peftrun.errors import RunDirError
from peftrun.launch.runmode import RunMode
from peftrun.train.lock import RunDirLock, holding
from tests.train.test_runner import LORA, recipe

RACERS, ROUNDS = 4, 40
HELD_BY = r"is being written by process (\d+) on {host}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d"


def race(base: str, barrier: Any, results: Any) -> None:
    """In each round, try to take the round's lock at the same moment as the others; hold it until all tried."""
    for round_ in range(ROUNDS):
        lock = RunDirLock(Path(base) / f"run-{round_}")
        barrier.wait()
        try:
            lock.acquire()
            results.put((round_, os.getpid(), None))
        except RunDirError as exc:
            results.put((round_, os.getpid(), str(exc)))
        barrier.wait()
        lock.release()


def test_of_starts_racing_for_a_run_directory_exactly_one_wins(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RACERS), context.Queue()
    racers = [context.Process(target=race, args=(str(tmp_path), barrier, results)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=120) for _ in range(RACERS * ROUNDS)]
    for racer in racers:
        racer.join(timeout=60)
    pattern = re.compile(HELD_BY.format(host=re.escape(socket.gethostname())))
    for round_ in range(ROUNDS):
        these = [(pid, error) for r, pid, error in outcomes if r == round_]
        winners = [pid for pid, error in these if error is None]
        assert len(winners) == 1, f"round {round_}: {these}"
        for pid, error in these:
            if error is not None:
                found = pattern.search(error)
                assert found and int(found[1]) == winners[0], error


def churn(run_dir: str, holders: Any, most: Any, wins: Any) -> None:
    """Take and drop the same lock over and over; each drop of an empty run directory deletes it and its lock."""
    for _ in range(100):
        lock = RunDirLock(Path(run_dir))
        try:
            lock.acquire()
        except RunDirError:
            continue
        with holders.get_lock():
            holders.value += 1
            most.value = max(most.value, holders.value)
            wins.value += 1
        time.sleep(0.0002)
        with holders.get_lock():
            holders.value -= 1
        lock.release()


def test_dropping_a_lock_file_never_lets_two_hold_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    holders, most, wins = context.Value("i", 0), context.Value("i", 0), context.Value("i", 0)
    run_dir = tmp_path / "runs" / "t"
    churners = [context.Process(target=churn, args=(str(run_dir), holders, most, wins)) for _ in range(RACERS)]
    for churner in churners:
        churner.start()
    for churner in churners:
        churner.join(timeout=120)
    assert [c.exitcode for c in churners] == [0] * RACERS
    assert most.value == 1 and wins.value >= 10  # (most attempts meet a holder: they fail, as they must)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "starts that wrote nothing leave no file"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from peftrun.train.lock import RunDirLock; "
        f"RunDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunDirError, match=f"process {holder.pid} on "):
        RunDirLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = RunDirLock(tmp_path)
    assert lock.acquire()
    lock.release()


def test_a_launched_rank_0_runs_under_its_launching_process_lock(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with holding(tmp_path):  # the launching process
        monkeypatch.setenv("PEFTRUN_RUN_DIR_LOCK_HOLDER", str(os.getpid()))
        with holding(tmp_path) as rank_0:  # accepted: held by its own launcher
            assert rank_0 is not None and rank_0.fd is None
        with holding(tmp_path, main=False):  # other ranks never take it
            pass
        monkeypatch.setenv("PEFTRUN_RUN_DIR_LOCK_HOLDER", "1")
        with pytest.raises(RunDirError, match=f"process {os.getpid()} on"), holding(tmp_path):
            pass


def test_two_real_starts_at_once_one_trains_one_is_refused(tmp_path: Path, tiny_model_dir: Path,
                                                           data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "max_steps": 40}, LORA)  # long enough to overlap
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    logs = [tmp_path / f"start-{i}.log" for i in range(2)]
    starts = [subprocess.Popen([sys.executable, "-m", "peftrun", str(path)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=log.open("w")) for log in logs]
    outcomes = sorted((p.wait(timeout=300), log.read_text(), p.pid) for p, log in zip(starts, logs))
    (ok, _, winner), (refused, message, _) = outcomes
    assert (ok, refused) == (0, 5), message[-3000:]
    assert re.search(HELD_BY.format(host=re.escape(socket.gethostname())), message)
    assert f"process {winner} on" in message and "Traceback" not in message
    assert (tmp_path / "runs/t/manifest.json").is_file()


def test_the_launching_process_takes_the_lock_before_it_launches(in_tmp: Path, write_recipe, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from peftrun.cli import main
    from peftrun.recipe.loader import load_recipe
    from peftrun.train import rundir
    from peftrun.train.runner import plan_for

    for key in ("WORLD_SIZE", "LOCAL_RANK", "RANK", "PEFTRUN_EXPECTED_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    path = write_recipe({"name": "t", "model": {"name_or_path": "org/model"}, "peft": {"method": "lora"},
                         "trainer": {"type": "sft"}, "dataset": {"path": "org/data"}, "output": {"dir": "runs/t"}})
    two = ["launch.num_processes=2"]
    with holding(in_tmp / "runs/t"):
        assert main(["run", str(path), *two]) == 5
    assert f"runs/t is being written by process {os.getpid()} on" in capsys.readouterr().err
    run_dir = in_tmp / "runs/t"  # a finished run: --resume says so and launches nothing
    rundir.claim(run_dir, rundir.resolved_recipe_text(plan_for(load_recipe(path, two))), RunMode.FRESH)
    (run_dir / "manifest.json").write_text('{"training": {"steps": 3}}')
    assert main(["run", str(path), *two, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "runs/t holds a finished run (3 steps, manifest.json): nothing to resume" in captured.out
    assert "launching" not in captured.err
