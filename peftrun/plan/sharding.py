"""Memory per rank under FSDP and DeepSpeed ZeRO: what each process holds of the model's states, what it gathers
for compute while it runs, the communication buffers, and what offloading moves to the CPU.

FSDP (accelerate's FULL_SHARD, transformer-layer wrapping, BACKWARD_PRE prefetch, use_orig_params false, as
peftrun launches it): each rank keeps 1/n of every parameter, gradient and optimizer state; a decoder layer is
all-gathered to run, and with backward prefetch the next one is gathered while the current one computes (two in
flight); the root unit (embeddings, final norm, output layer: what the layer policy leaves unwrapped) stays
gathered from the forward to the end of the backward; the current layer's gradients are full-size until
reduce-scattered. Hybrid sharding shards within a node; no sharding is DDP.

DeepSpeed ZeRO (its defaults, deepspeed/runtime/zero/config.py 0.19.8): mixed precision keeps fp32 master
weights, fp32 gradient partitions and fp32 Adam states of the trainable parameters (DeepSpeed's own 2 + 4 + 4 + 8
bytes per parameter, estimate_zero2/3_model_states_mem_needs); ZeRO-1 partitions the optimizer side, ZeRO-2
also the 16-bit gradients, ZeRO-3 also the 16-bit weights, gathering one module at a time plus a prefetch bucket,
and keeping parameters under the persistence threshold gathered. The gradient reduction bucket is allocated whole
(reduce_bucket_size elements, contiguous_gradients). Offloading moves masters, gradients and optimizer states
(and with offload_params the 16-bit weights) to the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

REDUCE_BUCKET = 500_000_000  # DeepSpeed reduce_bucket_size default (elements)
PREFETCH_BUCKET = 50_000_000  # stage3_prefetch_bucket_size default (elements)
PERSISTENCE_THRESHOLD = 100_000  # stage3_param_persistence_threshold default (elements)
FSDP_IN_FLIGHT = 2  # the layer that computes and the one BACKWARD_PRE prefetches
HALF = 2  # bytes of a 16-bit value (the compute copy of a weight, a 16-bit gradient)
FP32 = 4


@dataclass(frozen=True)
class Layout:
    """What sharding depends on in the model, in bytes as gathered for compute (16-bit under mixed precision,
    quantized weights as stored) unless named numel."""

    unit: int  # the largest decoder layer
    unit_grads: int  # the trainable gradients of that layer
    root: int  # parameters outside the decoder layers
    largest_module: int  # numel of the largest single module's own parameters (ZeRO-3 gathers per module)
    persistent: int  # parameters ZeRO-3 keeps gathered (numel under the persistence threshold)
    trainable_numel: int
    frozen_half: int = 0  # the weights that do not train, in 16 bits (quantized ones as stored)
    replicated: int = 0  # part of the weights no strategy shards: bitsandbytes' quantization constants


@dataclass(frozen=True)
class States:
    """Bytes one process holds (a full replica: DDP or one GPU), as the parts of the breakdown."""

    weights: int
    adapter: int
    gradients: int
    optimizer: int


@dataclass(frozen=True)
class Rank:
    """Bytes per rank on the GPU, and on the CPU for what is offloaded."""

    weights: int
    adapter: int
    gradients: int
    optimizer: int
    gathered: int  # all-gathered parameters in flight (and the gradients of the unit in backward)
    buffers: int  # communication buckets
    cpu: int  # offloaded states, per rank


def replica(states: States, offload_optimizer: bool = False) -> Rank:
    optimizer = 0 if offload_optimizer else states.optimizer
    return Rank(states.weights, states.adapter, states.gradients, optimizer, 0, 0, states.optimizer - optimizer)


def sharded(weights: int, replicated: int, n: int) -> int:
    """One rank's part of the weights: 1/n of what is sharded, and all of what is not."""
    return (weights - replicated) // n + replicated


def fsdp(states: States, layout: Layout, n: int, offload_params: bool = False) -> Rank:
    """FULL_SHARD over `n` ranks (a node's GPUs for hybrid sharding)."""
    if n <= 1:
        return replica(states)
    shard = Rank(sharded(states.weights, layout.replicated, n), states.adapter // n, states.gradients // n,
                 states.optimizer // n, 0, 0, 0)
    in_flight = layout.root + FSDP_IN_FLIGHT * layout.unit
    if offload_params:  # the shards, their gradients and the optimizer live on the CPU; the GPU gathers whole units
        cpu = shard.weights - layout.replicated + shard.adapter + shard.gradients + shard.optimizer
        return Rank(layout.replicated, 0, layout.unit_grads, 0, in_flight, 0, cpu)
    gathered = in_flight - in_flight // n  # this rank's own shard is already counted in weights
    return Rank(shard.weights, shard.adapter, shard.gradients + layout.unit_grads, shard.optimizer, gathered, 0, 0)


def zero(states: States, layout: Layout, stage: int, n: int, mixed: bool, offload_optimizer: bool = False,
         offload_params: bool = False) -> Rank:
    """DeepSpeed ZeRO-`stage` over `n` ranks. `mixed`: bf16/fp16 with fp32 masters (DeepSpeed's layout);
    otherwise fp32 weights and the optimizer's own states."""
    trainable = layout.trainable_numel
    half_grads, adapter = states.gradients, states.adapter
    weights = states.weights
    if mixed:  # DeepSpeed runs the whole module in 16 bits (adapters included) and keeps fp32 copies apart
        masters, optimizer, fp32_grads = FP32 * trainable, 2 * FP32 * trainable, FP32 * trainable
        half_grads, adapter = HALF * trainable, HALF * trainable if states.adapter else 0
        weights = layout.frozen_half + (0 if states.adapter else HALF * trainable)
    else:
        masters, optimizer, fp32_grads = 0, states.optimizer, 0
    optimizer_side = (masters + optimizer + fp32_grads) // n
    # ZeRO-1 keeps the 16-bit gradients whole, ZeRO-2 its partition of them; ZeRO-3 reduces them through the
    # bucket straight into the fp32 partition (DeepSpeed's 2 + 18 / n and 18 / n bytes per parameter)
    grads = {1: half_grads, 2: half_grads // n}.get(stage, 0)
    gathered = 0
    if stage == 3:
        weights, adapter = sharded(weights, layout.replicated, n), adapter // n
        gathered = HALF * (layout.largest_module + PREFETCH_BUCKET) + layout.persistent
    cpu = 0
    if offload_optimizer or offload_params:
        cpu, optimizer_side, grads = optimizer_side + grads, 0, 0
    if offload_params and stage == 3:
        cpu, weights, adapter = cpu + weights - layout.replicated + adapter, layout.replicated, 0
    buffers = HALF * REDUCE_BUCKET if trainable else 0
    return Rank(weights, adapter, grads, optimizer_side, gathered, buffers, cpu)


def per_rank(strategy: str, states: States, layout: Layout, processes: int, per_node: int, mixed: bool,
             offload_optimizer: bool, offload_params: bool, hybrid: bool = False) -> Rank:
    """The rank's memory for a strategy (ddp | fsdp | zero1 | zero2 | zero3) over `processes` ranks."""
    if strategy == "fsdp":
        return fsdp(states, layout, per_node if hybrid else processes, offload_params)
    if strategy.startswith("zero"):
        return zero(states, layout, int(strategy[-1]), max(processes, 1), mixed, offload_optimizer, offload_params)
    return replica(states, offload_optimizer)
