"""Plan -> the PEFT config of the recipe's method (equal to TRL's get_peft_config for LoRA)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.extras import EXTRAS
from peftrun.recipe.objects import peft_kwargs
from peftrun.recipe.plan import Plan

if TYPE_CHECKING:
    from peft import PeftConfig


def build_peft_config(plan: Plan, token_ids: dict[str, list[int]] | None = None) -> PeftConfig | None:
    """The PEFT config for a plan (its class by method name, as PEFT's own type -> config mapping has it);
    None for full fine-tuning. PEFT's construction checks become located recipe errors. `token_ids` (layer ->
    ids, from the tokenizer) are the rows of peft.trainable_tokens; without them none train (explain, dry runs)."""
    if plan.recipe.peft is None:
        return None
    from peft import PeftType
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    config_class = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(plan.recipe.peft.method.upper())]
    try:
        kwargs = peft_kwargs(plan)
        if getattr(plan.recipe.peft, "trainable_tokens", None):  # the new-tokens rule: ids from the tokenizer
            kwargs["trainable_token_indices"] = token_ids
        return config_class(**kwargs)
    except ImportError as exc:  # the setting is fine; this environment lacks a module PEFT needs for it
        raise RecipeError(Problem(plan.recipe.where("peft"), "peft", missing_module(config_class.__name__, exc))) from None
    except (ValueError, TypeError) as exc:  # PEFT's own checks, run at construction
        message = f"PEFT's {config_class.__name__} refuses these settings: {exc}"
        raise RecipeError(Problem(plan.recipe.where("peft"), "peft", message)) from None


def missing_module(what: str, exc: ImportError) -> str:
    """What is missing and how to install it: the peftrun extra that brings the module, else pip by its name."""
    module = (exc.name or "").split(".")[0]
    extra = next((e for e in EXTRAS.values() if e.module == module), None)
    fix = extra.install if extra else f"pip install {module}" if module else "install the module it names"
    return f"PEFT's {what} needs {module or 'a module'} for these settings, which is not installed ({exc}): {fix}"
