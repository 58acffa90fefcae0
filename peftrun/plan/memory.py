"""Memory per GPU from a resolved plan: weights, adapter, gradients and optimizer states exactly from the
skeleton's parameters (their real dtypes and the optimizer's state layout), activations from one step on
the meta device (peftrun.plan.activations), and the framework's overhead as a stated assumption."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from peftrun.plan.sharding import PERSISTENCE_THRESHOLD, Layout
from peftrun.plan.skeleton import Skeleton

CUDA_CONTEXT = 600_000_000  # CUDA context, cuBLAS workspace and kernels: not counted by torch's allocator
# NCCL's own buffers (cudaMalloc'd outside torch's allocator: NCCL_BUFFSIZE 4 MiB per channel and peer, for the
# protocols it sets up); only a process that talks to others has them
NCCL = 500_000_000
CPU_PROCESS = 1_000_000_000  # Python with torch, transformers, peft and trl imported (measured RSS)
# PyTorch's caching allocator reserves more than the live tensors (blocks split and cached between steps);
# the factors are fitted on PEFT's published Llama-3.2-3B runs (docs/plan.md): reserved / allocated peak.
RESERVED = {"low": 1.0, "expected": 1.1, "high": 1.25}
ADAM_LIKE = ("adamw", "adam_", "adam", "adamax", "nadam", "radam", "ademamix")
BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes keeps 32-bit states for smaller tensors
BNB_BLOCK = 256  # bitsandbytes 8-bit optimizer block size


@dataclass
class Breakdown:
    """Bytes per device; `band` holds the low / expected / high totals."""

    weights: int
    adapter: int
    gradients: int
    optimizer: int
    activations: int
    gathered: int  # parameters all-gathered by FSDP / ZeRO-3 while they compute
    buffers: int  # communication buckets (DeepSpeed)
    overhead: int
    band: dict[str, int]
    figures: dict[str, int]  # live tensors, allocator reserved, what nvidia-smi shows (expected)
    cpu_ram_per_node: int = 0  # offloaded states of the node's ranks
    notes: list[str] = field(default_factory=list)


def _quantized_bytes(numel: int, out_features: int, quant: Any) -> int:
    """Bytes of one bitsandbytes-quantized weight with its quantization constants."""
    return (numel if quant.bits == 8 else math.ceil(numel / 2)) + _constants_bytes(numel, out_features, quant)


def _constants_bytes(numel: int, out_features: int, quant: Any) -> int:
    """The quantization constants of one weight: int8, one fp32 scale per output row; 4-bit, the absmax per 64
    values (fp32, or uint8 with a second level of fp32 per 256 and its 256-value code under double quantization)
    and the 16-value code."""
    if quant.bits == 8:
        return out_features * 4
    blocks = math.ceil(numel / 64)
    absmax = blocks + math.ceil(blocks / 256) * 4 + 256 * 4 + 4 if quant.double_quant else blocks * 4
    return absmax + 16 * 4


def quantization_constants(skeleton: Skeleton, quant: Any, every_linear: bool = False) -> int:
    """Bytes of every quantized weight's constants. bitsandbytes keeps them in the layer's `quant_state` (a module
    attribute, not a parameter: bitsandbytes/nn/modules.py fix_4bit_weight_quant_state_from_module, "the quant
    state got lost when the parameter got converted. This happens for example for fsdp"), so FSDP and ZeRO-3
    shard only the packed weights and every rank holds all the constants."""
    if quant is None:
        return 0
    quantized = quantized_weights(skeleton, every_linear)
    return sum(_constants_bytes(numel, out, quant) for numel, out in quantized.values())


def quantized_weights(skeleton: Skeleton, every_linear: bool = False) -> dict[int, tuple[int, int]]:
    """The weights transformers quantizes: id -> (numel, out_features); every nn.Linear (and GPT-2's Conv1D)
    except the output embedding, tied weights and the last module (transformers' get_keys_to_not_convert).
    `every_linear`: the output layer too, as Lightning's BitsandbytesPrecision does without `ignore_modules`
    (Lightning-AI/pytorch-lightning, src/lightning/fabric/plugins/precision/bitsandbytes.py @b19eba3a,
    `_convert_layers`: every `torch.nn.Linear` child; litgpt's finetune/lora.py @00af8b0d passes none)."""
    import torch
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import get_keys_to_not_convert

    base = skeleton.base
    keep = [] if every_linear else get_keys_to_not_convert(base)
    found: dict[int, tuple[int, int]] = {}
    for name, module in base.named_modules():
        if not (type(module) is torch.nn.Linear or isinstance(module, Conv1D)) or module.weight.requires_grad:
            continue
        plain = name.replace(".base_layer", "").replace(".original_module", "")
        if any(plain == k or plain.endswith("." + k) or plain.startswith(k + ".") for k in keep):
            continue
        out_features = module.weight.shape[1] if isinstance(module, Conv1D) else module.weight.shape[0]
        found[id(module.weight)] = (module.weight.numel(), out_features)
    return found


def stored_bytes(skeleton: Skeleton, quant: Any, half: bool = False, every_linear: bool = False) -> dict[int, int]:
    """id(parameter) -> its bytes as stored (bitsandbytes' layout for a quantized weight); `half`: float
    weights as a 16-bit compute copy (what FSDP / ZeRO-3 gather under mixed precision)."""
    quantized = quantized_weights(skeleton, every_linear) if quant is not None else {}
    sizes = {}
    for param in skeleton.model.parameters():
        if id(param) in quantized and not param.requires_grad:
            sizes[id(param)] = _quantized_bytes(*quantized[id(param)], quant)
        else:
            size = min(param.element_size(), 2) if half and param.is_floating_point() else param.element_size()
            sizes[id(param)] = param.numel() * size
    return sizes


def weight_bytes(skeleton: Skeleton, quant: Any, every_linear: bool = False) -> tuple[int, int]:
    """(frozen weights, trainable weights) in bytes, as loaded and cast for training. Full fine-tuning:
    everything is both the model's weights and trainable; it is reported as weights."""
    sizes = stored_bytes(skeleton, quant, every_linear=every_linear)
    frozen = trainable = 0
    for param in skeleton.model.parameters():
        if param.requires_grad:
            trainable += sizes[id(param)]
        else:
            frozen += sizes[id(param)]
    if skeleton.peft is None:
        return frozen + trainable, 0
    return frozen, trainable


def gradient_bytes(skeleton: Skeleton) -> int:
    return sum(p.numel() * p.element_size() for p in skeleton.model.parameters() if p.requires_grad)


def _bnb_state(numel: int, states: int) -> int:
    if numel < BNB_MIN_8BIT_SIZE:
        return states * numel * 4
    return states * (numel + math.ceil(numel / BNB_BLOCK) * 4)


def optimizer_bytes(skeleton: Skeleton, optim: str) -> tuple[int, str | None]:
    """Bytes of the optimizer's state after its first step, and a note when the layout is assumed."""
    params = [p for p in skeleton.model.parameters() if p.requires_grad]
    name = optim.lower()
    states = 1 if "lion" in name else 2
    if "8bit" in name:
        return sum(_bnb_state(p.numel(), states) for p in params) + states * 256 * 4, None
    if "32bit" in name:
        return sum(states * p.numel() * 4 for p in params), None
    if name.startswith("sgd"):
        return 0, None  # no momentum by default: SGD keeps no state
    if name.startswith("adafactor"):
        return sum(_adafactor(p) for p in params), None
    if name.startswith(("adagrad", "rmsprop")):
        return sum(p.numel() * p.element_size() + 4 for p in params), None
    size = sum(2 * p.numel() * p.element_size() + 4 for p in params)  # exp_avg, exp_avg_sq, step
    known = name.startswith(ADAM_LIKE)
    return size, None if known else f"optimizer {optim}: its state is assumed to be AdamW's (two per parameter)"


def _adafactor(param: Any) -> int:
    """transformers' Adafactor: factored second moments (row and column) for matrices, a full one for vectors,
    and its RMS as a 0-d fp32 tensor."""
    if param.dim() < 2:
        return param.numel() * param.element_size() + 4
    rows = param.numel() // param.shape[-1]
    cols = param.numel() // param.shape[-2]
    return (rows + cols) * param.element_size() + 4


def kv_cache_bytes(config: Any, rows: int, length: int, dtype_bytes: int) -> int:
    """The generation cache of `rows` sequences of `length` tokens (GRPO's generations)."""
    text = config.get_text_config()
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return 2 * text.num_hidden_layers * heads * head_dim * rows * length * dtype_bytes


def decoder_layers(model: Any) -> list[Any]:
    """The model's repeated blocks: the module list holding the most parameters (what FSDP's transformer-layer
    policy wraps one by one)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters()), default=[]))


def layout(skeleton: Skeleton, quant: Any, half: bool, every_linear: bool = False) -> Layout:
    """The model's shape as sharding sees it (peftrun.plan.sharding.Layout)."""
    model = skeleton.model
    sizes = stored_bytes(skeleton, quant, half, every_linear)
    halves = sizes if half else stored_bytes(skeleton, quant, True, every_linear)
    layers = decoder_layers(model)
    inside = {id(p) for layer in layers for p in layer.parameters()}
    grad_size = 2 if half else None

    def grads(params: Any) -> int:
        return sum(p.numel() * (grad_size or p.element_size()) for p in params if p.requires_grad)

    return Layout(
        unit=max((sum(sizes[id(p)] for p in layer.parameters()) for layer in layers), default=0),
        unit_grads=max((grads(layer.parameters()) for layer in layers), default=0),
        root=sum(sizes[id(p)] for p in model.parameters() if id(p) not in inside),
        largest_module=max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0),
        persistent=sum(sizes[id(p)] for p in model.parameters() if p.numel() <= PERSISTENCE_THRESHOLD),
        trainable_numel=sum(p.numel() for p in model.parameters() if p.requires_grad),
        frozen_half=sum(halves[id(p)] for p in model.parameters() if not p.requires_grad),
        replicated=quantization_constants(skeleton, quant, every_linear),
    )


def band(live: int, cuda: bool, processes: int = 1) -> tuple[dict[str, int], dict[str, int]]:
    """Totals (low, expected, high) of what the device shows, and the three figures a run can measure:
    live tensors (max_memory_allocated), allocator reserved (max_memory_reserved) and the device's use
    (nvidia-smi: reserved plus the CUDA context, and NCCL's buffers when processes talk)."""
    if not cuda:
        totals = {"low": live + CPU_PROCESS, "expected": live + CPU_PROCESS, "high": int(live * RESERVED["high"]) + CPU_PROCESS}
        return totals, {"live": live, "reserved": live, "device": totals["expected"]}
    outside = CUDA_CONTEXT + (NCCL if processes > 1 else 0)
    totals = {key: int(live * factor) + outside for key, factor in RESERVED.items()}
    return totals, {"live": live, "reserved": int(live * RESERVED["expected"]), "device": totals["expected"]}
