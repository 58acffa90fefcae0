"""Per trainer type: the TRL trainer class (stable from `trl`, experimental from `trl.experimental`),
the keyword arguments only some types take, and the callbacks some PEFT methods need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peftrun.builders.training_args import trl_module
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS

def trainer_class(trainer_type: str) -> type:
    """The TRL trainer class for a trainer type (its config class's name with Trainer for Config)."""
    return getattr(trl_module(trainer_type), TRAINERS[trainer_type].trainer_class)


def extra_arguments(plan: Plan, given: Mapping[str, Any]) -> dict[str, Any]:
    """The type-specific keyword arguments the trainer takes (beyond model, args, datasets, processing_class,
    peft_config and callbacks), from what the runner prepared."""
    return {name: given[name] for name in TRAINERS[plan.trainer_type].extra_arguments}


def method_callbacks(plan: Plan) -> list[Any]:
    """Callbacks a PEFT method needs that TRL does not install: AdaLoRA reallocates its ranks after each
    optimizer step (PEFT's update_and_allocate), which neither TRL nor transformers calls."""
    if plan.peft_method != "adalora":
        return []
    from transformers import TrainerCallback

    class AdaLoraAllocation(TrainerCallback):
        def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if model is not None and hasattr(model, "base_model"):
                model.base_model.update_and_allocate(state.global_step)

    return [AdaLoraAllocation()]
