"""Per-rank arithmetic of FSDP and DeepSpeed ZeRO against the libraries' own estimators, and the layout the
skeleton gives it (meta-device counts of a real model's modules)."""

from __future__ import annotations

from typing import Any

import pytest
from accelerate.commands.estimate import estimate_training_usage

from peftrun.plan.estimate import skeleton_for
from peftrun.plan.memory import decoder_layers, layout
from peftrun.plan.sharding import (FSDP_IN_FLIGHT, PREFETCH_BUCKET, REDUCE_BUCKET, Layout, States, fsdp, per_rank,
                                   replica, zero)

P = 7_000_000_000  # a full fine-tuning of a 7B model in 16 bits
LARGEST = 131_072_000  # its largest module (an embedding of 32000 x 4096)
FULL_16BIT = States(weights=2 * P, adapter=0, gradients=2 * P, optimizer=4 * P)
LAYOUT = Layout(unit=400_000_000, unit_grads=400_000_000, root=500_000_000, largest_module=LARGEST, persistent=0,
                trainable_numel=P)


def deepspeed_zero3_gpu(total: int, largest: int, gpus: int) -> int:
    """DeepSpeed 0.19.8, deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs, no offload:
    gpu_mem = 4 * largest_layer_params + 18 * total_params / total_gpus."""
    return 4 * largest + int(18 * total / gpus)


def deepspeed_zero2_gpu(total: int, gpus: int) -> int:
    """DeepSpeed 0.19.8, deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs, no
    offload: gpu_mem = 2 * total_params + 18 * total_params / total_gpus."""
    return 2 * total + int(18 * total / gpus)


def model_states(rank: Any) -> int:
    return rank.weights + rank.adapter + rank.gradients + rank.optimizer


@pytest.mark.parametrize("gpus", [2, 8, 64])
def test_zero3_model_states_equal_deepspeeds_estimator(gpus: int) -> None:
    rank = zero(FULL_16BIT, LAYOUT, 3, gpus, mixed=True)
    # DeepSpeed's 4 x largest layer is its 16-bit weights and gradients gathered; the plan gathers one module's
    # weights and a prefetch bucket, and holds the largest gradient in its reduction bucket (counted apart)
    expected = deepspeed_zero3_gpu(P, LARGEST, gpus) - 4 * LARGEST
    assert model_states(rank) == pytest.approx(expected, rel=1e-9)
    assert rank.gathered == 2 * (LARGEST + PREFETCH_BUCKET)
    assert rank.buffers == 2 * REDUCE_BUCKET


@pytest.mark.parametrize("gpus", [2, 8])
def test_zero2_model_states_equal_deepspeeds_estimator(gpus: int) -> None:
    rank = zero(FULL_16BIT, LAYOUT, 2, gpus, mixed=True)
    assert model_states(rank) == pytest.approx(deepspeed_zero2_gpu(P, gpus), rel=1e-9)


def test_zero_offload_leaves_the_16bit_weights_and_moves_the_rest_to_the_cpu() -> None:
    # DeepSpeed's estimators with cpu_offload: ZeRO-3 gpu_mem = largest layer + 2P/n (offload_params: largest
    # layer only); ZeRO-2 gpu_mem = 2P; what leaves the GPU is the 16 bytes per parameter of masters, fp32
    # gradients and Adam states
    three = zero(FULL_16BIT, LAYOUT, 3, 8, mixed=True, offload_optimizer=True)
    assert model_states(three) == 2 * P // 8
    assert three.cpu == (16 * P) // 8
    params_too = zero(FULL_16BIT, LAYOUT, 3, 8, mixed=True, offload_optimizer=True, offload_params=True)
    assert model_states(params_too) == 0 and params_too.cpu == three.cpu + 2 * P // 8
    assert model_states(zero(FULL_16BIT, LAYOUT, 2, 8, mixed=True, offload_optimizer=True)) == 2 * P


def test_one_process_holds_what_accelerates_estimator_says() -> None:
    fp32 = States(weights=4 * P, adapter=0, gradients=4 * P, optimizer=8 * P)
    accelerate = estimate_training_usage(4 * P, "float32")
    assert model_states(replica(fp32)) == accelerate["model"] + accelerate["gradients"] + accelerate["optimizer"]


def test_fsdp_shards_and_gathers_the_root_and_two_layers() -> None:
    for n in (2, 8):
        rank = fsdp(FULL_16BIT, LAYOUT, n)
        assert model_states(rank) == (2 * P + 2 * P + 4 * P) // n + LAYOUT.unit_grads
        in_flight = LAYOUT.root + FSDP_IN_FLIGHT * LAYOUT.unit
        assert rank.gathered == in_flight - in_flight // n
    offloaded = fsdp(FULL_16BIT, LAYOUT, 8, offload_params=True)
    assert (offloaded.weights, offloaded.optimizer) == (0, 0)
    assert offloaded.gathered == LAYOUT.root + 2 * LAYOUT.unit and offloaded.cpu == (8 * P) // 8


def test_hybrid_shards_within_a_node() -> None:
    hybrid = per_rank("fsdp", FULL_16BIT, LAYOUT, processes=16, per_node=8, mixed=True, offload_optimizer=False,
                      offload_params=False, hybrid=True)
    assert hybrid == fsdp(FULL_16BIT, LAYOUT, 8)
    assert per_rank("ddp", FULL_16BIT, LAYOUT, 16, 8, True, False, False) == replica(FULL_16BIT)


def test_layout_of_the_skeleton(make_plan: Any) -> None:
    plan = make_plan({"method": "lora", "r": 4, "lora_alpha": 8})
    skeleton = skeleton_for(plan)
    shape = layout(skeleton, None, half=True)
    layers = decoder_layers(skeleton.model)
    assert len(layers) == skeleton.base.config.num_hidden_layers
    inside = sum(p.numel() for layer in layers for p in layer.parameters())
    assert shape.unit * len(layers) == 2 * inside  # identical layers, gathered in 16 bits
    assert shape.root == 2 * (sum(p.numel() for p in skeleton.model.parameters()) - inside)
    assert shape.trainable_numel == skeleton.model.get_nb_trainable_parameters()[0]
    assert shape.unit_grads == 2 * shape.trainable_numel // len(layers)


def test_zero_holds_frozen_float32_weights_in_16_bits() -> None:
    """DeepSpeed's bf16 engine casts the module to 16 bits: a LoRA run loaded in float32 keeps its frozen weights
    as 2 bytes per value (sharded under ZeRO-3), its adapter as a 16-bit copy with fp32 masters and Adam states."""
    frozen, lora = 1_000_000_000, 10_000_000
    states = States(weights=4 * frozen, adapter=4 * lora, gradients=4 * lora, optimizer=8 * lora)
    shape = Layout(unit=0, unit_grads=0, root=0, largest_module=0, persistent=0, trainable_numel=lora,
                   frozen_half=2 * frozen)
    rank = zero(states, shape, 3, 8, mixed=True)
    assert (rank.weights, rank.adapter, rank.gradients) == (2 * frozen // 8, 2 * lora // 8, 0)
    assert rank.optimizer == 16 * lora // 8
    assert zero(states, shape, 2, 8, mixed=True).weights == 2 * frozen


@pytest.mark.parametrize("strategy", ["fsdp", "zero3"])
def test_quantization_constants_stay_whole_on_every_rank(strategy: str) -> None:
    """A QLoRA base: FSDP and ZeRO-3 shard the packed 4-bit weights; bitsandbytes' quant_state (absmax, codes) is
    a module attribute that every rank keeps whole, on the GPU even when the parameters are offloaded."""
    weights, constants, n = 36_000_000_000, 1_100_000_000, 2
    states = States(weights=weights, adapter=400_000_000, gradients=400_000_000, optimizer=800_000_000)
    shape = Layout(unit=450_000_000, unit_grads=5_000_000, root=1_000_000_000, largest_module=LARGEST, persistent=0,
                   trainable_numel=100_000_000, frozen_half=weights, replicated=constants)
    kept = per_rank(strategy, states, shape, n, n, mixed=True, offload_optimizer=False, offload_params=False)
    assert kept.weights == (weights - constants) // n + constants
    offloaded = per_rank(strategy, states, shape, n, n, mixed=True, offload_optimizer=True, offload_params=True)
    assert offloaded.weights == constants and offloaded.cpu >= (weights - constants) // n
