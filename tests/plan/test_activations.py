"""Activations: the meta-device step's peak equals the real step's peak on this CPU, as the allocator records it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from peftrun.builders import build_peft_config
from peftrun.plan import activations
from peftrun.plan.estimate import skeleton_for
from peftrun.plan.settings import read_settings
from peftrun.plan.skeleton import Skeleton


def real_peak(plan: Any) -> int:
    from peft import get_peft_model
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32)
    skeleton = Skeleton(base, get_peft_model(base, build_peft_config(plan)))
    settings = read_settings(plan)
    model = activations._prepare(skeleton, settings, "sdpa", None)
    with activations._meta_stand_ins(cuda=False), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        activations._forward(model, settings).backward()
    live = peak = 0
    for _, size in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"):
        live += size
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("checkpointing", [False, True])
def test_meta_step_peak_equals_the_real_step(make_plan: Any, checkpointing: bool) -> None:
    plan = make_plan({"method": "lora", "r": 4}, {"max_length": 64, "per_device_train_batch_size": 3,
                                                 "activation_checkpointing": checkpointing})
    estimate = activations.measure_step(skeleton_for(plan), read_settings(plan), "sdpa", cuda=False, autocast=None)
    real = real_peak(plan)
    assert abs(estimate.peak - real) <= 0.02 * real


def test_checkpointing_and_length_move_the_estimate(make_plan: Any) -> None:
    def peak(**trainer: Any) -> int:
        plan = make_plan({"method": "lora", "r": 4}, {"per_device_train_batch_size": 2, **trainer})
        return activations.measure_step(skeleton_for(plan), read_settings(plan), "sdpa", cuda=True, autocast=None).peak

    assert peak(max_length=256, activation_checkpointing=True) < peak(max_length=256, activation_checkpointing=False)
    assert peak(max_length=128, activation_checkpointing=False) < peak(max_length=256, activation_checkpointing=False)


def test_the_meta_stand_ins_are_undone_after_an_error() -> None:
    """The patches of torch and TRL last for the measurement only, also when it raises."""
    from trl.kernels import chunked_logprob

    original = torch.is_autocast_enabled
    kernels = {name: getattr(chunked_logprob, name) for name in ("_forward_tile", "_backward_tile", "_addmm_fp32")}
    with pytest.raises(RuntimeError, match="inside"), activations._meta_stand_ins(cuda=True):
        assert torch.is_autocast_enabled("meta") is False
        assert chunked_logprob._forward_tile is not kernels["_forward_tile"]
        raise RuntimeError("inside")
    assert torch.is_autocast_enabled is original
    assert {name: getattr(chunked_logprob, name) for name in kernels} == kernels
