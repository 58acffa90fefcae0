"""`peftrun sweep` end to end on a tiny model: six trials (learning rate x rank) that complete, do not fit, are
pruned, fail, and are killed mid-training and resumed; the best recipe trains the same run again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from peftrun.sweep.study import STUDY, JournalLock, SweepDir, wait_for_run_dir
from peftrun.train.checkpoints import MARKER

optuna = pytest.importorskip("optuna")

STEPS = 40


def base(model_dir: Path, data: Path) -> dict[str, Any]:
    return {
        "model": {"name_or_path": str(model_dir)},
        "peft": {"method": "lora", "r": 4, "lora_alpha": 8},
        "trainer": {"type": "sft", "max_steps": STEPS, "per_device_train_batch_size": 4, "logging_steps": 2,
                    "eval_strategy": "steps", "eval_steps": 2, "save_steps": 2, "report_to": "none",
                    "activation_checkpointing": False},
        "dataset": {"path": str(data), "eval": {"fraction": 0.25}},
    }


SWEEP = """\
extends: base.yaml
sweep:
  sampler: grid
  metric: {name: eval_loss, goal: minimize}
  prune: true
  params:
    trainer.learning_rate: [5.0e-3, 0.0]
    peft.r: [4, 8, 100000]
output: {dir: runs/sw}
"""


def peftrun(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "peftrun", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def trials(where: SweepDir) -> list[Any]:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(where.journal), lock_obj=JournalLock(where.journal_lock)))
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials()


def commands(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("$ ")]


def test_a_sweep_killed_mid_trial_ends_with_the_same_trials(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    (in_tmp / "base.yaml").write_text(yaml.safe_dump(base(tiny_model_dir, data_dir / "sft.jsonl")))
    (in_tmp / "sweep.yaml").write_text(SWEEP)
    where = SweepDir(in_tmp / "runs" / "sw")
    occupied = where.trial_dir(4)  # trial 4 is made to fail: its run directory holds someone else's file
    occupied.mkdir(parents=True)
    (occupied / "notes.txt").write_text("not a run")

    first = peftrun("sweep", "sweep.yaml", "--gpu", "2GB", cwd=in_tmp)
    wait_for(where.trial_dir(1) / "checkpoint-4" / MARKER)
    os.kill(first.pid, signal.SIGKILL)  # the worker dies at once; its trial's run checkpoints and stops
    first.communicate()
    wait_for_run_dir(where.trial_dir(1))
    assert not (where.trial_dir(1) / "manifest.json").exists(), "the trial was cut short"
    finished_before = (where.trial_dir(0) / "manifest.json").stat().st_mtime_ns

    second = peftrun("sweep", "sweep.yaml", "--gpu", "2GB", cwd=in_tmp)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert "resuming trial 1: trainer.learning_rate=0.005, peft.r=8" in out

    found = trials(where)
    assert [t.number for t in found] == list(range(6))
    assert [t.user_attrs["status"] for t in found] == ["complete", "complete", "does not fit", "pruned", "failed",
                                                       "does not fit"]
    assert [dict(t.params) for t in found] == [{"trainer.learning_rate": lr, "peft.r": r}
                                               for lr in (5e-3, 0.0) for r in (4, 8, 100000)]
    # no duplicated work: the finished trial was kept, the cut-short one resumed from its checkpoint
    assert (where.trial_dir(0) / "manifest.json").stat().st_mtime_ns == finished_before
    assert len(commands(where.log(0))) == 1
    resumed = commands(where.log(1))
    assert len(resumed) == 2 and not resumed[0].endswith("--resume") and resumed[1].endswith("--resume")
    assert "resuming from checkpoint-" in where.log(1).read_text()
    for number in (0, 1):
        run = where.trial_dir(number)
        assert json.loads((run / "manifest.json").read_text())["training"]["steps"] == STEPS
        assert (run / "adapter_model.safetensors").is_file() and (run / "recipe.resolved.yaml").is_file()
    # not started: the plan's figure for a 2 GB GPU
    for number in (2, 5):
        attrs = found[number].user_attrs
        assert attrs["device_gb"] == 2.0 and attrs["expected_gb"] > 10  # rank 100000 on a hidden size of 32
        assert re.fullmatch(r"needs \d+\.\d\d GB, 1 x 2GB GPU .* has 2\.00 GB", attrs["note"])
        assert not where.trial_dir(number).exists()
    # pruned on its intermediate eval loss, stopped at a checkpoint
    assert found[3].state.name == "PRUNED" and found[3].intermediate_values
    assert not (where.trial_dir(3) / "manifest.json").exists() and list(where.trial_dir(3).glob("checkpoint-*"))
    # failed with its exit class, and the sweep went on
    assert found[4].user_attrs["exit_class"] == "RunDirError" and found[4].user_attrs["exit_code"] == 5
    assert "is not empty" in found[4].user_attrs["error"]

    best = min(found[:2], key=lambda t: t.value)
    assert f"best: trial {best.number} (eval_loss {best.value:.6g})" in out
    assert where.plot.is_file()
    again = peftrun(str(where.best), cwd=in_tmp)
    rerun_out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, rerun_out
    rerun = json.loads((where.root / "best" / "manifest.json").read_text())
    assert rerun["training"]["final_eval_loss"] == pytest.approx(best.value, rel=1e-5)


def test_a_sweep_on_peftrun_evals_exact_match(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    recipe = base(tiny_model_dir, data_dir / "sft.jsonl")
    recipe["trainer"].update(max_steps=2, eval_strategy="no")
    (in_tmp / "base.yaml").write_text(yaml.safe_dump(recipe))
    (in_tmp / "sweep.yaml").write_text("extends: base.yaml\nsweep:\n  sampler: grid\n  metric: {name: exact_match, "
                                       "goal: maximize}\n  params:\n    peft.r: [4]\noutput: {dir: runs/em}\n")
    done = peftrun("sweep", "sweep.yaml", cwd=in_tmp)
    out, _ = done.communicate(timeout=300)
    assert done.returncode == 0, out
    where = SweepDir(in_tmp / "runs" / "em")
    (trial,) = trials(where)
    result = json.loads(where.log(0).with_suffix(".eval.json").read_text())
    assert result["n"] == 8  # the run's eval split: a quarter of 32 rows
    assert trial.user_attrs["status"] == "complete" and trial.value == result["tuned"]["exact_match"]
    assert "$ peftrun eval" in where.log(0).read_text()


def test_workers_started_together_share_the_trials(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    recipe = base(tiny_model_dir, data_dir / "sft.jsonl")
    recipe["trainer"].update(max_steps=2)
    (in_tmp / "base.yaml").write_text(yaml.safe_dump(recipe))
    (in_tmp / "sweep.yaml").write_text("extends: base.yaml\nsweep:\n  sampler: grid\n  params:\n"
                                       "    peft.r: [2, 4, 8]\noutput: {dir: runs/two}\n")
    workers = [peftrun("sweep", "sweep.yaml", cwd=in_tmp) for _ in range(2)]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    where = SweepDir(in_tmp / "runs" / "two")
    found = trials(where)
    assert [t.params["peft.r"] for t in found] == [2, 4, 8]
    assert [t.user_attrs["status"] for t in found] == ["complete"] * 3
    assert all(len(commands(where.log(t.number))) == 1 for t in found)  # each trial ran once
    started = [line for out in outputs for line in out.splitlines() if line.startswith("starting trial")]
    assert sorted(started) == [f"starting trial {n}: peft.r={r}" for n, r in ((0, 2), (1, 4), (2, 8))]
    assert all("starting trial" in out for out in outputs)  # both worked (a trial takes seconds, a start less)
