"""The keyword arguments of the library objects a plan builds (pure: no library imported).

`explain` shows them; peftrun.builders passes them to peft / transformers / trl.
"""

from __future__ import annotations

from typing import Any

from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import LoraSection, PromptTuningSection

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


def lora_kwargs(lora: LoraSection, task_type: str | None) -> dict[str, Any]:
    """Keyword arguments for peft.LoraConfig."""
    return {
        "task_type": task_type,
        "r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "lora_dropout": lora.lora_dropout,
        "bias": lora.bias,
        "target_modules": target_modules(lora.target_modules),
        "exclude_modules": lora.exclude_modules,
        "modules_to_save": lora.modules_to_save,
        "trainable_token_indices": lora.trainable_tokens,  # token strings: the builder maps them to ids
        "use_rslora": lora.use_rslora,
        "use_dora": lora.use_dora,
        "init_lora_weights": lora.init_lora_weights,
        "layers_to_transform": lora.layers_to_transform,
        "layers_pattern": lora.layers_pattern,
        "rank_pattern": lora.rank_pattern or {},
        "alpha_pattern": lora.alpha_pattern or {},
        "fan_in_fan_out": lora.fan_in_fan_out,
    }


def prompt_tuning_kwargs(plan: Plan, prompt: PromptTuningSection) -> dict[str, Any]:
    """Keyword arguments for peft.PromptTuningConfig; text init uses the model's tokenizer by default."""
    kwargs: dict[str, Any] = {
        "task_type": plan.task_type,
        "num_virtual_tokens": prompt.num_virtual_tokens,
        "prompt_tuning_init": prompt.prompt_tuning_init,
        "prompt_tuning_init_text": prompt.prompt_tuning_init_text,
    }
    if prompt.prompt_tuning_init == "TEXT":
        model = plan.recipe.model
        kwargs["tokenizer_name_or_path"] = prompt.tokenizer_name_or_path or model.tokenizer or model.name_or_path
        if not (prompt.tokenizer_name_or_path or model.tokenizer) and model.gguf_file:
            kwargs["tokenizer_kwargs"] = {"gguf_file": model.gguf_file}
    return kwargs


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
