"""Plan -> trl.SFTConfig / DPOConfig / GRPOConfig / RewardConfig."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema import trl_table


def trl_module(trainer_type: str) -> ModuleType:
    """The TRL module of a trainer type's classes (trl, or trl.experimental for the experimental ones), imported
    without TRL's experimental notice (explain and the plan's warnings mark those) and with no filter left behind."""
    import importlib

    from trl.import_utils import suppress_experimental_warning

    with suppress_experimental_warning():
        return importlib.import_module(trl_table()["modules"][trainer_type])


def trainer_config_class(trainer_type: str) -> type:
    """The TRL config class for a trainer type."""
    return getattr(trl_module(trainer_type), trl_table()["classes"][trainer_type])


def build_training_args(plan: Plan) -> Any:
    """The TRL config for a plan. TRL's own checks (run at construction) become recipe errors."""
    config_class = trainer_config_class(plan.trainer_type)
    try:
        return config_class(**plan.training_args)
    except (ValueError, TypeError) as exc:
        message = f"TRL's {config_class.__name__} refuses these settings: {exc}"
        raise RecipeError(Problem(plan.recipe.where("trainer"), "trainer", message)) from None
