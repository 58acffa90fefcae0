"""Nothing is lost when a run is killed: at any moment (SIGKILL, also while a checkpoint is being written),
with a damaged newest checkpoint, or before the first checkpoint, the run resumes to the same final weights
as an uninterrupted one."""

from __future__ import annotations

import multiprocessing
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import peftrun
from peftrun.errors import RunDirError
from peftrun.train import checkpoints
from tests.train import crashing
from tests.train.test_resume import RESUMABLE, adapter_tensors, assert_same_weights, crash, model_with_hook, \
    resume_counting_steps
from tests.train.test_runner import LORA, recipe

# Every step saves a checkpoint and two are kept, so kills land in saves and in rotations.
CHAOS = {"type": "sft", "max_steps": 8, "save_steps": 1, "save_total_limit": 2}
KILLS, PER_RUN = 8, 4  # 2 runs killed 4 times each; a forked start takes about 3.5 s to finish, the whole test
#                       about 50-90 s on 2 shared cores
SEED = 1414


def server() -> Any:
    """A fork server that has imported peftrun and TRL once; each run is a fork of it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.train.crashing"])
    return context


def start(context: Any, directory: Path, data: dict) -> Any:
    process = context.Process(target=crashing.run_or_resume, args=(str(directory), data))
    process.start()
    return process


def checkpoint_names(run_dir: Path) -> set[str]:
    try:
        return {p.name for p in run_dir.iterdir() if p.name.startswith("checkpoint-")}
    except FileNotFoundError:
        return set()


def kill_while_saving(process: Any, run_dir: Path, rng: random.Random) -> bool:
    """SIGKILL a few milliseconds after the n-th new checkpoint directory appears (the trainer is writing it)."""
    seen, wanted = checkpoint_names(run_dir), rng.randint(1, 3)
    while process.is_alive():
        new = checkpoint_names(run_dir) - seen
        if len(new) >= wanted:
            time.sleep(rng.uniform(0, 0.01))
            process.kill()
            return True
        time.sleep(0.0005)
    return False


def kill_at_random(process: Any, rng: random.Random) -> bool:
    """SIGKILL at a moment anywhere in a run: loading, training, saving, writing the outputs."""
    process.join(rng.uniform(0.0, 4.0))  # a forked run takes about 3.5 s
    if not process.is_alive():
        return False
    process.kill()
    return True


def test_sigkill_at_random_moments_always_resumes_to_the_same_weights(tmp_path: Path, tiny_model_dir: Path,
                                                                      data_dir: Path) -> None:
    context, rng = server(), random.Random(SEED)
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", CHAOS, LORA)
    (tmp_path / "reference").mkdir()
    uninterrupted = start(context, tmp_path / "reference", data)
    uninterrupted.join()
    assert uninterrupted.exitcode == 0, (tmp_path / "reference/child.log").read_text()[-3000:]
    reference = adapter_tensors(tmp_path / "reference/runs/t")
    kills, mid_save, chains = 0, 0, 0
    while kills < KILLS:
        chains, limit = chains + 1, min(KILLS, kills + PER_RUN)
        directory = tmp_path / f"chain-{chains}"
        directory.mkdir()
        run_dir = directory / "runs/t"
        while True:  # kill this run, resume it, kill it again..., until one start finishes it
            process = start(context, directory, data)
            if kills < limit and (kill_while_saving(process, run_dir, rng) if rng.random() < 0.6
                                  else kill_at_random(process, rng)):
                process.join()
                kills += 1
                newest = checkpoints.all_checkpoints(run_dir)[-1:] if run_dir.is_dir() else []
                mid_save += bool(newest and checkpoints.problem(newest[0]) is not None)
                if (run_dir / "manifest.json").is_file():  # killed after the manifest: finished means finished
                    assert_same_weights(run_dir, reference)
                continue
            process.join()
            log = (directory / "child.log").read_text()
            assert process.exitcode == 0, log[-3000:]
            break
        assert (run_dir / "manifest.json").is_file()
        assert_same_weights(run_dir, reference)
    print(f"{kills} kills in {chains} runs, {mid_save} of them left the newest checkpoint incomplete")
    assert mid_save >= 1, "no kill landed while a checkpoint was being written"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Final adapter of the resumable recipe, uninterrupted."""
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    data["output"]["dir"] = str(tmp_path_factory.mktemp("reference") / "t")
    return adapter_tensors(peftrun.run(data))


def damaged_copies(source: Path, into: Path) -> dict[str, Path]:
    """Copies of a complete checkpoint, each damaged in one way a kill or a full disk can leave."""
    copies = {}
    for damage in ("missing", "cut short", "no marker, no state"):
        copy = into / damage / source.name
        shutil.copytree(source, copy)
        copies[damage] = copy
    (copies["missing"] / "optimizer.pt").unlink()
    weights = copies["cut short"] / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (copies["no marker, no state"] / checkpoints.MARKER).unlink()
    (copies["no marker, no state"] / checkpoints.TRAINER_STATE).unlink()
    return copies


def test_a_damaged_newest_checkpoint_is_skipped_and_the_run_resumes_from_the_one_before(
        reference: dict, in_tmp: Path, tiny_model_dir: Path, data_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    with pytest.raises(RuntimeError, match="simulated crash"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 5, crash))  # during step 5
    run_dir = in_tmp / "runs/t"
    copies = damaged_copies(run_dir / "checkpoint-4", in_tmp / "damaged")
    assert checkpoints.problem(copies["missing"]) == "optimizer.pt is missing"
    assert checkpoints.problem(copies["cut short"]) == "adapter_model.safetensors has 100 bytes, 19848 were written"
    assert checkpoints.problem(copies["no marker, no state"]) == "no trainer_state.json"
    (run_dir / "checkpoint-4" / "optimizer.pt").unlink()
    with pytest.raises(RunDirError, match=r"holds an unfinished run \(last checkpoint: checkpoint-2\): resume it"):
        peftrun.run(data)
    capfd.readouterr()
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert "skipping checkpoint-4: incomplete (optimizer.pt is missing)\nresuming from checkpoint-2" in capfd.readouterr().err
    assert steps == 4, "the resumed run must continue from checkpoint-2"
    assert_same_weights(run_dir, reference)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(
        reference: dict, in_tmp: Path, tiny_model_dir: Path, data_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    with pytest.raises(RuntimeError, match="simulated crash"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 1, crash))  # during step 1
    assert sorted(p.name for p in (in_tmp / "runs/t").iterdir()) == [".peftrun.lock", "recipe.resolved.yaml", "train.log"]
    capfd.readouterr()  # (a plain start would be accepted too: there is nothing to lose)
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert "no complete checkpoint yet: the run starts again from step 0" in capfd.readouterr().err
    assert steps == 6
    assert_same_weights(run_dir, reference)
