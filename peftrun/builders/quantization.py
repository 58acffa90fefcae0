"""Plan -> transformers.BitsAndBytesConfig (equal to TRL's get_quantization_config)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftrun.plan import Plan

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig


def quantization_kwargs(plan: Plan) -> dict[str, Any] | None:
    """Keyword arguments for BitsAndBytesConfig; None without quantization."""
    quant = plan.recipe.quantization
    if quant is None:
        return None
    if quant.bits == 8:
        return {"load_in_8bit": True}
    return {
        "load_in_4bit": True,
        "bnb_4bit_compute_dtype": quant.compute_dtype,
        "bnb_4bit_quant_type": quant.quant_type,
        "bnb_4bit_use_double_quant": quant.double_quant,
        "bnb_4bit_quant_storage": quant.quant_storage,
    }


def build_quantization_config(plan: Plan) -> BitsAndBytesConfig | None:
    """The bitsandbytes config for a plan; None without quantization."""
    kwargs = quantization_kwargs(plan)
    if kwargs is None:
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(**kwargs)
