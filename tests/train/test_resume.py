"""Nothing lost: a crashed or interrupted run resumes to the same weights as an uninterrupted one."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

import peftrun
from peftrun.errors import Interrupted, RunDirError, TrainingError
from tests.train.test_runner import LORA, recipe

RESUMABLE = {"type": "sft", "max_steps": 6, "save_steps": 2}


def adapter_tensors(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter_model.safetensors"))


def model_with_hook(model_dir: Path, calls: list[int], fail_at: int = 0, action: Any = None) -> Any:
    """The tiny model, counting its forward passes in `calls` and running `action` on pass `fail_at`
    (a crash or a Ctrl-C mid-run)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))

    def hook(module: Any, args: Any) -> None:
        calls.append(1)
        if len(calls) == fail_at:
            action()

    model.model.register_forward_pre_hook(hook)
    return model


def resume_counting_steps(data: dict, model_dir: Path) -> tuple[Path, int]:
    """Resume the run; returns the run directory and the training steps the resumed run took."""
    calls: list[int] = []
    run_dir = peftrun.run(data, model=model_with_hook(model_dir, calls), mode="resume")
    return run_dir, len(calls)  # one forward pass per step: batch 4, no accumulation, no eval


def crash() -> None:
    raise RuntimeError("simulated crash")


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, data_dir: Path,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Final adapter weights of the same recipe run without interruption."""
    monkeypatch.chdir(tmp_path_factory.mktemp("reference"))
    return adapter_tensors(peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)))


def assert_same_weights(run_dir: Path, reference: dict[str, Any]) -> None:
    import torch

    resumed = adapter_tensors(run_dir)
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)


def test_crashed_run_resumes_to_the_same_weights(reference: dict, in_tmp: Path, tiny_model_dir: Path,
                                                 data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    with pytest.raises(RuntimeError, match="simulated crash"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 5, crash))  # during step 5
    assert sorted(p.name for p in (in_tmp / "runs/t").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    with pytest.raises(RunDirError, match=r"holds an unfinished run \(last checkpoint: checkpoint-4\): resume it"):
        peftrun.run(data)
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert steps == 2, "the resumed run must continue from checkpoint-4, not start over"
    assert_same_weights(run_dir, reference)


def test_ctrl_c_saves_a_checkpoint_that_resumes(reference: dict, in_tmp: Path, tiny_model_dir: Path,
                                                data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA)
    with pytest.raises(Interrupted, match=r"stopped at step 3; the checkpoint in runs/t resumes with"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 3, ctrl_c))
    assert (in_tmp / "runs/t/checkpoint-3").is_dir()
    run_dir, steps = resume_counting_steps(data, tiny_model_dir)
    assert steps == 3, "the resumed run must continue from checkpoint-3"
    assert_same_weights(run_dir, reference)


def test_resume_without_checkpoint_is_refused(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    with pytest.raises(RunDirError, match="runs/t has no checkpoint to resume from; run without --resume"):
        peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", RESUMABLE, LORA), mode="resume")


# Full learning rate for steps 1-3, a one-step decay (step 4), then 0: every step after checkpoint-4 leaves
# the weights exactly as the checkpoint holds them (AdamW at lr 0 moves nothing, weight decay included).
DECAYED_AT_4 = {**RESUMABLE, "lr_scheduler_type": "warmup_stable_decay",
                "lr_scheduler_kwargs": {"num_stable_steps": 3, "num_decay_steps": 1}}


def test_a_resumed_run_that_changes_nothing_is_a_failure(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    """Compared with the fresh initialization the weights differ (steps 1-4 trained them); compared with
    checkpoint-4, which the resumed steps start from, they never changed. (A normal resume passes the same
    check: the tests above.)"""
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", DECAYED_AT_4, LORA)
    with pytest.raises(RuntimeError, match="simulated crash"):
        peftrun.run(data, model=model_with_hook(tiny_model_dir, [], 5, crash))
    with pytest.raises(TrainingError, match=r"the trainable parameters never changed, so the saved weights would "
                       r"equal those of the checkpoint it resumed from \(step 4\)"):
        peftrun.run(data, mode="resume")

