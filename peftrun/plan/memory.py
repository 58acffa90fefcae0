"""Memory per GPU from a resolved plan: weights, adapter, gradients and optimizer states exactly from the
skeleton's parameters (their real dtypes and the optimizer's state layout), activations from one step on
the meta device (peftrun.plan.activations), and the framework's overhead as a stated assumption."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from peftrun.plan.settings import Settings
from peftrun.plan.skeleton import Skeleton

CUDA_CONTEXT = 600_000_000  # CUDA context, cuBLAS workspace and kernels: not counted by torch's allocator
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
    overhead: int
    band: dict[str, int]
    notes: list[str] = field(default_factory=list)


def _quantized_bytes(numel: int, out_features: int, quant: Any) -> int:
    """Bytes of one bitsandbytes-quantized weight with its quantization constants."""
    if quant.bits == 8:
        return numel + out_features * 4  # int8 weight + one fp32 scale per output row
    blocks = math.ceil(numel / 64)
    constants = blocks + math.ceil(blocks / 256) * 4 + 256 * 4 + 4 if quant.double_quant else blocks * 4
    return math.ceil(numel / 2) + constants + 16 * 4  # packed 4-bit + absmax (+ nested) + the 4-bit code


def quantized_weights(skeleton: Skeleton) -> dict[int, tuple[int, int]]:
    """The weights transformers quantizes: id -> (numel, out_features); every nn.Linear (and GPT-2's Conv1D)
    except the output embedding, tied weights and the last module (transformers' get_keys_to_not_convert)."""
    import torch
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import get_keys_to_not_convert

    base = skeleton.base
    keep = get_keys_to_not_convert(base)
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


def weight_bytes(skeleton: Skeleton, quant: Any) -> tuple[int, int]:
    """(frozen weights, trainable weights) in bytes, as loaded and cast for training. Full fine-tuning:
    everything is both the model's weights and trainable; it is reported as weights."""
    quantized = quantized_weights(skeleton) if quant is not None else {}
    frozen = trainable = 0
    for param in skeleton.model.parameters():
        size = param.numel() * param.element_size()
        if param.requires_grad:
            trainable += size
        elif id(param) in quantized:
            frozen += _quantized_bytes(*quantized[id(param)], quant)
        else:
            frozen += size
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


def shard(settings: Settings, weights: int, adapter: int, gradients: int, optimizer: int) -> tuple[int, ...]:
    """What FSDP and DeepSpeed ZeRO split across processes: ZeRO-1 optimizer states; ZeRO-2 also gradients;
    ZeRO-3 and FSDP also the weights."""
    n = max(settings.processes, 1)
    if settings.strategy == "ddp" or n == 1:
        return weights, adapter, gradients, 0 if settings.offload_optimizer else optimizer
    optimizer = 0 if settings.offload_optimizer else optimizer // n
    if settings.strategy == "zero1":
        return weights, adapter, gradients, optimizer
    gradients //= n
    if settings.strategy == "zero2":
        return weights, adapter, gradients, optimizer
    weights = 0 if settings.offload_params else weights // n
    return weights, adapter // n, gradients, optimizer


def band(allocated: int, cuda: bool) -> tuple[dict[str, int], int]:
    """Totals (low, expected, high) and the overhead in the expected total."""
    if not cuda:
        totals = {"low": allocated + CPU_PROCESS, "expected": allocated + CPU_PROCESS,
                  "high": int(allocated * RESERVED["high"]) + CPU_PROCESS}
        return totals, CPU_PROCESS
    totals = {key: int(allocated * factor) + CUDA_CONTEXT for key, factor in RESERVED.items()}
    return totals, totals["expected"] - allocated
