"""Parameter counts of a skeleton, equal to PEFT's own (`get_nb_trainable_parameters`, `print_trainable_parameters`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from peftrun.plan.skeleton import Skeleton

_PEFT_PREFIX = re.compile(r"^(base_model\.model\.)")
_WRAPPERS = ("base_layer", "original_module", "modules_to_save")  # PEFT's wrapping of an adapted module


@dataclass(frozen=True)
class Counts:
    total: int
    trainable: int
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # module kind -> {"total", "trainable"}

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def kind_of(parameter: str) -> str:
    """The module kind a parameter belongs to: its name with layer indices as `*`, adapter parts dropped
    (`model.layers.3.self_attn.q_proj.lora_A.default.weight` -> `model.layers.*.self_attn.q_proj`)."""
    name = _PEFT_PREFIX.sub("", parameter)
    parts = [p for p in re.sub(r"\.\d+(?=\.|$)", ".*", name).split(".") if p not in _WRAPPERS]
    if "default" in parts:  # PEFT's adapter name: drop it, the adapter's own part before it, and what follows
        parts = parts[: max(parts.index("default") - 1, 1)]
    else:
        parts = parts[:-1]
    return ".".join(parts) or name


def count(skeleton: Skeleton) -> Counts:
    """Total and trainable parameters (PEFT's count for a PEFT model), and both per module kind."""
    model = skeleton.model
    if skeleton.peft is not None:
        trainable, total = model.get_nb_trainable_parameters()
    else:
        total = sum(p.numel() for p in model.parameters())
        trainable = total
    return Counts(total, trainable, _by_kind(model, full=skeleton.peft is None))


def _by_kind(model: Any, full: bool) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for name, param in model.named_parameters():
        row = kinds.setdefault(kind_of(name), {"total": 0, "trainable": 0})
        row["total"] += param.numel()
        if full or param.requires_grad:
            row["trainable"] += param.numel()
    return kinds
