"""The estimate for every trainer type and launch strategy: it builds, its parts add up, the trainer's own
memory (DPO's two rows per example, GRPO's generations) is in it."""

from __future__ import annotations

from typing import Any

import pytest

from peftrun.plan.estimate import estimate
from peftrun.recipe.gpus import target_hardware

LORA = {"method": "lora", "r": 4}


@pytest.mark.parametrize(("trainer", "launch"), [
    pytest.param({"type": "sft"}, None, id="sft"),
    pytest.param({"type": "dpo"}, None, id="dpo"),
    pytest.param({"type": "reward"}, None, id="reward"),
    pytest.param({"type": "grpo", "reward_funcs": ["answer_match"], "num_generations": 2}, None, id="grpo"),
    pytest.param({"type": "sft"}, {"strategy": "fsdp", "num_processes": 2}, id="fsdp"),
])
def test_every_trainer_estimates(make_plan: Any, trainer: dict, launch: dict | None) -> None:
    sections = {"launch": launch} if launch else {}
    plan = make_plan(LORA, {**trainer, "per_device_train_batch_size": 2}, target_hardware("l4", 2 if launch else None), **sections)
    result = estimate(plan)
    memory = result.memory
    parts = (memory.weights + memory.adapter + memory.gradients + memory.optimizer + memory.activations
             + memory.gathered + memory.buffers + memory.overhead)
    assert parts == memory.band["expected"] and result.fits is True
    assert result.settings.rows == (4 if trainer["type"] in ("dpo", "reward") else 2)
    if trainer["type"] == "grpo":
        assert any("GRPO" in note for note in memory.notes)


def test_dpo_step_is_larger_than_sft(make_plan: Any) -> None:
    def activations(kind: str) -> int:
        plan = make_plan(LORA, {"type": kind, "per_device_train_batch_size": 2, "max_length": 128}, target_hardware("l4", None))
        return estimate(plan).memory.activations

    assert activations("dpo") > activations("sft")


def _estimate(make_plan: Any, trainer: dict[str, Any], hardware: Any = None, **sections: Any) -> Any:
    settings = {"type": "sft", "per_device_train_batch_size": 2, "max_length": 128, **trainer}
    return estimate(make_plan(LORA, settings, hardware or target_hardware("a100-80gb", None), **sections)).memory


def test_float32_weights_under_bf16_autocast(make_plan: Any) -> None:
    """bf16 autocast over float32 weights: the step runs in bf16 (as over bf16 weights, less than the float32
    step), and adds the bf16 copies of the frozen float32 layer weights autocast keeps for the backward pass."""
    from peftrun.plan.estimate import skeleton_for
    from peftrun.plan.memory import decoder_layers

    path = make_plan(LORA).recipe.model.name_or_path
    fp32, bf16 = ({"model": {"name_or_path": path, "dtype": dtype}} for dtype in ("float32", "bfloat16"))
    off, on = {"activation_checkpointing": False}, {"activation_checkpointing": True}
    autocast = _estimate(make_plan, {"bf16": True, **off}, **fp32)
    half = _estimate(make_plan, {"bf16": True, **off}, **bf16)
    plain = _estimate(make_plan, {"bf16": False, **off}, **fp32)
    layers = decoder_layers(skeleton_for(make_plan(LORA, **fp32)).model)
    per_layer = [sum(2 * p.numel() for p in layer.parameters() if p.dim() > 1 and not p.requires_grad) for layer in layers]
    assert autocast.activations - half.activations == sum(per_layer) > 0
    assert half.activations < plain.activations and autocast.weights == plain.weights
    checkpointed = _estimate(make_plan, {"bf16": True, **on}, **fp32)
    assert checkpointed.activations - _estimate(make_plan, {"bf16": True, **on}, **bf16).activations == max(per_layer)


def test_activation_offloading_is_measured(make_plan: Any) -> None:
    offloaded = _estimate(make_plan, {"activation_offloading": True, "activation_checkpointing": False})
    plain = _estimate(make_plan, {"activation_checkpointing": False})
    assert offloaded.activations < plain.activations
    assert any("offloading" in note for note in offloaded.notes)


@pytest.mark.parametrize("reentrant", [True, False])
def test_the_step_checkpoints_as_the_recipe_says(make_plan: Any, reentrant: bool) -> None:
    from peftrun.plan.activations import _prepare
    from peftrun.plan.estimate import skeleton_for
    from peftrun.plan.memory import decoder_layers
    from peftrun.plan.settings import read_settings

    plan = make_plan(LORA, {"type": "sft", "activation_checkpointing": True,
                            "activation_checkpointing_kwargs": {"use_reentrant": reentrant}})
    settings = read_settings(plan)
    skeleton = skeleton_for(plan)
    _prepare(skeleton, settings, "sdpa", None)
    checkpoint = decoder_layers(skeleton.base)[0]._gradient_checkpointing_func
    assert settings.reentrant is reentrant and checkpoint.keywords["use_reentrant"] is reentrant


def test_compile_widens_the_band_downwards_only(make_plan: Any) -> None:
    compiled, eager = _estimate(make_plan, {"torch_compile": True}), _estimate(make_plan, {})
    assert compiled.band["expected"] == eager.band["expected"] and compiled.band["low"] < eager.band["low"]


def test_offload_reports_cpu_ram_per_node(make_plan: Any) -> None:
    hardware = target_hardware("h100", None, nodes=2, gpus_per_node=8)
    launch = {"strategy": "deepspeed", "zero_stage": 3, "num_processes": 8, "num_machines": 2,
              "main_process_ip": "10.0.0.1"}
    kept = _estimate(make_plan, {}, hardware, launch=launch)
    offloaded = _estimate(make_plan, {}, hardware, launch={**launch, "offload_optimizer": True})
    assert kept.cpu_ram_per_node == 0 and offloaded.optimizer == 0
    assert offloaded.cpu_ram_per_node == 8 * (kept.optimizer + kept.gradients)



def test_adapters_kept_in_the_model_dtype(make_plan: Any) -> None:
    """Settings.adapter_dtype (litgpt's bf16-true, torchtune: loops without autocast): LoRA weights, their gradients
    and Adam states in bf16: half of PEFT's float32 adapters on a bf16 model."""
    import dataclasses

    from peftrun.plan.settings import read_settings

    path = make_plan(LORA).recipe.model.name_or_path
    plan = make_plan(LORA, {"per_device_train_batch_size": 2, "max_length": 128}, target_hardware("a100-80gb", None),
                     model={"name_or_path": path, "dtype": "bfloat16"})
    peft = estimate(plan, mixed_precision=False)
    kept = estimate(plan, dataclasses.replace(read_settings(plan), adapter_dtype="bfloat16"), mixed_precision=False)
    trainable = peft.counts.trainable
    assert (peft.memory.adapter, kept.memory.adapter) == (4 * trainable, 2 * trainable)
    assert (peft.memory.optimizer - kept.memory.optimizer) == 4 * trainable
    assert kept.memory.figures["live"] < peft.memory.figures["live"]
