"""Plan -> peft.LoraConfig / peft.PromptTuningConfig (equal to TRL's get_peft_config for LoRA)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.objects import lora_kwargs, prompt_tuning_kwargs
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import LoraSection

if TYPE_CHECKING:
    from peft import PeftConfig

def build_peft_config(plan: Plan, token_ids: dict[str, list[int]] | None = None) -> PeftConfig | None:
    """The PEFT config for a plan; None for full fine-tuning. `token_ids` (layer -> ids, from the tokenizer)
    replace the plan's trainable token strings; without them no token rows train (explain, dry runs)."""
    section = plan.recipe.peft
    if section is None:
        return None
    from peft import LoraConfig, PromptTuningConfig

    lora = isinstance(section, LoraSection)
    config_class = LoraConfig if lora else PromptTuningConfig
    try:
        kwargs = lora_kwargs(section, plan.task_type) if lora else prompt_tuning_kwargs(plan, section)
        if lora:
            kwargs["trainable_token_indices"] = token_ids
        return config_class(**kwargs)
    except (ValueError, TypeError) as exc:  # PEFT's own checks, run at construction
        message = f"PEFT's {config_class.__name__} refuses these settings: {exc}"
        raise RecipeError(Problem(plan.recipe.where("peft"), "peft", message)) from None
