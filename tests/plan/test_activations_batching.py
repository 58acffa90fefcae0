"""The plan's activations follow trainer.throughput: a batch `auto` may flatten into one padding-free row is
measured as that row (the same tokens; eager attention's scores grow with the row's square)."""

from __future__ import annotations

from typing import Any

from peftrun.plan import activations
from peftrun.plan.estimate import skeleton_for
from peftrun.plan.settings import read_settings


def peak(make_plan: Any, attention: str, throughput: str) -> int:
    plan = make_plan({"method": "lora", "r": 4}, {"per_device_train_batch_size": 4, "max_length": 128,
                                                 "activation_checkpointing": False, "throughput": throughput},
                     model={"name_or_path": make_plan().recipe.model.name_or_path, "attn_implementation": attention})
    settings = read_settings(plan)
    assert settings.flattened == (throughput == "auto")
    return activations.measure_step(skeleton_for(plan), settings, attention, cuda=False, autocast=None).peak


def test_eager_attention_over_one_row_costs_more(make_plan: Any) -> None:
    """At least one layer's float32 scores over 4 heads: one row of 4 x 128 tokens vs 4 rows of 128."""
    extra = 4 * ((4 * 128) ** 2 - 4 * 128**2) * 4
    assert peak(make_plan, "eager", "auto") - peak(make_plan, "eager", "off") >= extra


def test_fused_attention_keeps_the_same_peak(make_plan: Any) -> None:
    flat, padded = peak(make_plan, "sdpa", "auto"), peak(make_plan, "sdpa", "off")
    assert abs(flat - padded) <= 0.02 * padded
