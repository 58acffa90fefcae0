"""Plan + model + data -> the TRL trainer for the recipe's trainer type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peftrun.builders.peft import build_peft_config
from peftrun.builders.trainers import extra_arguments, method_callbacks, trainer_class
from peftrun.data import TrainingData
from peftrun.data.templates import trainable_token_ids
from peftrun.recipe.plan import Plan


def build_trainer(
    plan: Plan,
    args: Any,
    model: Any,
    tokenizer: Any,
    data: TrainingData,
    extras: Mapping[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """The TRL trainer; it wraps the model with the plan's PEFT config itself (as TRL scripts do).
    `extras` holds what some types take besides (reward_funcs, teacher_model: builders/trainers.py)."""
    from peft import PeftModel

    wrapped = isinstance(model, PeftModel)  # a caller's own PEFT model: TRL refuses a second config
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": data.train,
        "eval_dataset": data.eval,
        "processing_class": tokenizer,
        "peft_config": None if wrapped else build_peft_config(plan, trainable_token_ids(plan, model, tokenizer)),
        "callbacks": [*(callbacks or []), *method_callbacks(plan)],
        **extra_arguments(plan, extras or {}),
    }
    return trainer_class(plan.trainer_type)(**kwargs)
