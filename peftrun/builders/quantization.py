"""Plan -> transformers.BitsAndBytesConfig (equal to TRL's get_quantization_config)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftrun.recipe.objects import quantization_kwargs
from peftrun.recipe.plan import Plan

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig


def build_quantization_config(plan: Plan) -> BitsAndBytesConfig | None:
    """The bitsandbytes config for a plan; None without quantization."""
    kwargs = quantization_kwargs(plan)
    if kwargs is None:
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(**kwargs)
