"""Activations: the meta-device step's peak equals the real step's peak on this CPU, as the allocator records it."""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import pytest
import torch

from peftrun.builders import build_peft_config
from peftrun.plan import activations
from peftrun.plan.estimate import skeleton_for
from peftrun.plan.settings import read_settings
from peftrun.plan.skeleton import Skeleton


def real_peak(plan: Any, settings: Any = None) -> int:
    from peft import get_peft_model
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32)
    skeleton = Skeleton(base, get_peft_model(base, build_peft_config(plan)))
    settings = settings or read_settings(plan)
    model = activations._prepare(skeleton, settings, "sdpa", None)
    with activations._meta_stand_ins(cuda=False), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss, held = activations._forward(model, settings)
        loss.backward()
        del loss
        if settings.loop_loss in activations.HOLDS_LOGITS_ACROSS_STEPS:  # the loop's next micro-batch
            activations._next_forward(model, settings)
        del held
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


@pytest.mark.parametrize(("loop", "accumulation"), [("litgpt", 1), ("litgpt", 4), ("torchtune", 1)])
def test_other_loops_loss_step_equals_the_real_step(make_plan: Any, loop: str, accumulation: int) -> None:
    """Another loop's loss path (litgpt: logits in the model's dtype, cross-entropy 128 tokens at a time, held
    until the next micro-batch's forward pass returns; torchtune: shifted float32 logits held through backward):
    the meta step's peak is the real step's, and differs from the model's own loss on full logits."""
    plan = make_plan({"method": "lora", "r": 4}, {"max_length": 300, "per_device_train_batch_size": 2,
                                                 "gradient_accumulation_steps": accumulation})
    settings = dataclasses.replace(read_settings(plan), full_logits=True, loop_loss=loop)
    estimate = activations.measure_step(skeleton_for(plan), settings, "sdpa", cuda=False, autocast=None)
    real = real_peak(plan, settings)
    assert abs(estimate.peak - real) <= 0.02 * real
    full = dataclasses.replace(settings, loop_loss=None)
    assert estimate.peak != activations.measure_step(skeleton_for(plan), full, "sdpa", cuda=False, autocast=None).peak


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


@pytest.mark.parametrize("saves_input", [False, True])
def test_old_bitsandbytes_keeps_the_input_while_the_graph_lives(saves_input: bool) -> None:
    """bitsandbytes <= 0.43.1 kept a 4-bit layer's input as an attribute of its autograd node (`ctx.tensors`):
    the backward pass does not free it; it goes when the graph's output does."""
    function = activations._four_bit_class(saves_input)
    leaf = torch.randn(4, 8, requires_grad=True)
    inner = leaf * 2  # only the 4-bit node can keep it
    kept = weakref.ref(inner)
    out = function.apply(inner, torch.randn(3, 8))
    del inner
    out.sum().backward()
    assert leaf.grad is not None and (kept() is not None) == saves_input
    del out
    assert kept() is None


def test_old_bitsandbytes_inputs_raise_the_litgpt_loops_peak(make_plan: Any) -> None:
    """With the old 4-bit matmul, the 4-bit layers' inputs outlive the backward pass in litgpt's loop (its logits
    hold the graph): the step's peak is higher than with bitsandbytes >= 0.43.2."""
    from peftrun.plan.memory import quantized_weights

    plan = make_plan({"method": "lora", "r": 4}, {"max_length": 256, "per_device_train_batch_size": 2})

    def peak(loop: str | None, saves_input: bool) -> int:
        skeleton = skeleton_for(plan)
        activations.four_bit_stand_ins(skeleton.model, set(quantized_weights(skeleton)), saves_input)
        settings = dataclasses.replace(read_settings(plan), full_logits=True, loop_loss=loop)
        return activations.measure_step(skeleton, settings, "sdpa", cuda=False, autocast=None).peak

    assert peak("litgpt", True) > peak("litgpt", False)
