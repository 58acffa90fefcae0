"""Runs that go wrong stop cleanly and leave an unfinished (never a finished-looking) run directory:
a non-finite loss, a disk too small, a disk that fills up or turns read-only while saving. Real small
file systems (tmpfs, mounted by the test; skipped where mounting is not allowed) make the disk fail."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import peftrun
from peftrun.cli import main
from peftrun.errors import DivergedError, RunDirError
from peftrun.train import checkpoints
from tests.train.test_crash import reference  # noqa: F401 (a fixture)
from tests.train.test_resume import RESUMABLE, assert_same_weights, model_with_hook, resume_counting_steps
from tests.train.test_runner import LORA, recipe


def test_a_non_finite_loss_stops_the_run_at_once_and_keeps_the_last_good_checkpoint(
        in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    calls: list[int] = []
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "max_steps": 20, "save_steps": 1,
                                                          "learning_rate": 1.0e30}, LORA)
    with pytest.raises(DivergedError, match=r"the training loss became nan at step 2: training stopped before applying "
                                            r"it. Usual causes: a learning rate too high \(trainer.learning_rate is "
                                            r"1e\+30\), float16 overflow .* or bad data") as raised:
        peftrun.run(data, model=model_with_hook(tiny_model_dir, calls))
    assert raised.value.exit_code == 10 and len(calls) == 2
    run_dir = in_tmp / "runs/t"
    assert [p.name for p in checkpoints.complete_checkpoints(run_dir)] == ["checkpoint-1"]
    assert not (run_dir / "adapter_model.safetensors").exists() and not (run_dir / "manifest.json").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """mount(size): a fresh tmpfs of that size (unmounted after the test)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "peftrun-test", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def on_disk(data: dict[str, Any], disk: Path) -> dict[str, Any]:
    return {**data, "output": {"dir": str(disk / "t")}}


def fill(disk: Path) -> None:
    """Write until the file system is full."""
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def test_a_run_that_cannot_fit_is_refused_before_training(small_disk, tiny_model_dir: Path, data_dir: Path) -> None:
    disk = small_disk("64k")
    data = on_disk(recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA), disk)
    with pytest.raises(RunDirError, match=r"t is on a file system with \d+ KiB free, but this run writes about "
                                          r"\d+ KiB \(checkpoints \d+ KiB, weights 16 KiB\): free some space, "
                                          r"lower trainer.save_total_limit, or choose another output.dir"):
        peftrun.run(data)
    assert not checkpoints.all_checkpoints(disk / "t")


def test_a_full_disk_while_saving_fails_cleanly_and_the_run_resumes_once_there_is_room(
        reference: dict, small_disk, tiny_model_dir: Path, data_dir: Path, write_recipe,
        capsys: pytest.CaptureFixture[str]) -> None:
    disk = small_disk("8m")
    data = on_disk(recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA), disk)
    with pytest.raises(RunDirError, match=r"could not write to .*/t: no space left on the device.* The run is "
                                          r"unfinished .* resume it with `peftrun RECIPE --resume`") as raised:
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 3, lambda: fill(disk)))  # fills it in step 3
    assert raised.value.exit_code == 5
    run_dir = disk / "t"
    assert [p.name for p in checkpoints.complete_checkpoints(run_dir)] == ["checkpoint-2"]
    assert not (run_dir / "manifest.json").exists()
    (disk / "filler").unlink()
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert steps == 4
    assert_same_weights(run_dir, reference)
    capsys.readouterr()
    assert main(["run", str(write_recipe(data)), "--resume"]) == 0  # finished: nothing to resume
    assert "t holds a finished run (6 steps, manifest.json): nothing to resume" in capsys.readouterr().out


def test_a_disk_turned_read_only_while_saving_fails_cleanly(small_disk, tiny_model_dir: Path, data_dir: Path,
                                                            write_recipe, capsys: pytest.CaptureFixture[str]) -> None:
    disk = small_disk("8m")
    data = on_disk(recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA), disk)

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    with pytest.raises(RunDirError, match=r"could not write to .*/t: the file system is read-only"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 3, read_only))
    run_dir = disk / "t"
    assert [p.name for p in checkpoints.complete_checkpoints(run_dir)] == ["checkpoint-2"]
    assert not (run_dir / "manifest.json").exists()
    capsys.readouterr()
    for command in (["eval", str(run_dir)], ["merge", str(run_dir), "-o", str(disk.parent / "merged")],
                    ["generate", str(run_dir), "--prompt", "hi"]):
        assert main(command) == 5
        err = capsys.readouterr().err
        assert f"{run_dir} holds an unfinished run (no manifest.json): resume it with" in err, err
    assert main(["run", str(write_recipe(data)), "--resume"]) == 5
    err = capsys.readouterr().err
    assert "could not write to" in err and "the file system is read-only" in err and "Traceback" not in err


def test_resume_finishes_a_run_killed_while_writing_its_outputs(reference: dict, in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    run_dir = peftrun.run(data)
    (run_dir / "manifest.json").unlink()  # as a kill before the manifest leaves it
    (run_dir / "README.md").unlink()
    with pytest.raises(RunDirError, match=r"holds an unfinished run \(last checkpoint: checkpoint-6\): resume it"):
        peftrun.run(data)
    _, steps = resume_counting_steps(data, tiny_model_dir)
    assert steps == 0 and (run_dir / "README.md").is_file()
    assert json.loads((run_dir / "manifest.json").read_text())["training"]["steps"] == 6
    assert_same_weights(run_dir, reference)


def test_a_full_disk_is_recognised_behind_the_errors_libraries_wrap_it_in(small_disk) -> None:
    import torch
    from safetensors.torch import save_file

    from peftrun.train.guards import disk_failure

    disk = small_disk("1m")
    fill(disk)
    tensors = {"a": torch.zeros(100_000)}
    for write in (lambda: torch.save(tensors, disk / "x.pt"), lambda: save_file(tensors, str(disk / "x.safetensors")),
                  lambda: (disk / "x.json").write_text("x" * 100_000)):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - each library raises its own
            write()
        why = disk_failure(raised.value, disk / "t")
        assert why is not None and why.startswith("no space left on the device"), raised.value
    assert disk_failure(RuntimeError("a bug"), Path(__file__)) is None  # a disk with room: not the disk's doing
    # a full disk does not make every error the disk's: a bug raised while it is full keeps its own report
    assert disk_failure(KeyError("lm_head.bias"), disk / "t") is None
    assert disk_failure(RuntimeError("file write failed"), disk / "t") == "no space left on the device"
