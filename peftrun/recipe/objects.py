"""The keyword arguments of the library objects a plan builds (pure: no library imported).

`explain` shows them; peftrun.builders passes them to peft / transformers / trl.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import method_info
from peftrun.recipe.schema.peft import method_defaults, takes_presets

# The `attention` preset: attention projections across common architectures, as a PEFT regex.
ATTENTION_REGEX = (
    r".*(self_attn|attention|attn)\.(q_proj|k_proj|v_proj|o_proj|qkv_proj|query|key|value|dense|c_attn|c_proj|out_proj|Wqkv)"
)


def target_modules(value: list[str] | str) -> list[str] | str | None:
    """PEFT's target_modules for a recipe value: presets become what PEFT understands."""
    if value == "qv":
        return None  # PEFT's per-architecture default: the query and value projections
    if value == "attention":
        return ATTENTION_REGEX
    return value


def peft_kwargs(plan: Plan) -> dict[str, Any]:
    """Keyword arguments for the PEFT config class of the plan's method: the task type, every field the
    recipe wrote, and peftrun's defaults (recipe/defaults.py); PEFT fills the rest with its own."""
    section = plan.recipe.peft
    assert section is not None
    method = section.method
    ours = method_defaults(method)
    kwargs: dict[str, Any] = {"task_type": plan.task_type}
    for key, field in type(section).model_fields.items():
        if key not in ("method", "task_type", "trainable_tokens") and (key in section.model_fields_set or key in ours):
            value = getattr(section, key)
            if value is None and field.default is None:  # null = PEFT's own default (a resolved recipe writes it)
                continue
            kwargs[key] = value.model_dump() if isinstance(value, BaseModel) else value  # nested PEFT configs
    if "target_modules" in kwargs and takes_presets(method):
        kwargs["target_modules"] = target_modules(kwargs["target_modules"])
    if getattr(section, "trainable_tokens", None):  # token strings here; builders/peft.py passes their ids
        kwargs["trainable_token_indices"] = list(section.trainable_tokens)
    if getattr(section, "prompt_tuning_init", None) == "TEXT":
        kwargs.update(_text_init_tokenizer(plan, section.tokenizer_name_or_path))
    return kwargs


def peft_class(plan: Plan) -> str:
    """The name of the PEFT config class the plan builds."""
    assert plan.recipe.peft is not None
    return str(method_info(plan.recipe.peft.method)["class"])


def _text_init_tokenizer(plan: Plan, given: str | None) -> dict[str, Any]:
    """Text-initialized prompt tuning reads its text with the model's tokenizer unless one is named."""
    model = plan.recipe.model
    out: dict[str, Any] = {"tokenizer_name_or_path": given or model.tokenizer or model.name_or_path}
    if not (given or model.tokenizer) and model.gguf_file:
        out["tokenizer_kwargs"] = {"gguf_file": model.gguf_file}
    return out


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
