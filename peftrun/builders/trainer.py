"""Plan + model + data -> the TRL trainer for the recipe's trainer type."""

from __future__ import annotations

from typing import Any

from peftrun.builders.peft import build_peft_config
from peftrun.data import TrainingData
from peftrun.data.templates import trainable_token_ids
from peftrun.recipe.plan import Plan

TRAINER_CLASSES = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "grpo": "GRPOTrainer", "reward": "RewardTrainer"}


def build_trainer(
    plan: Plan,
    args: Any,
    model: Any,
    tokenizer: Any,
    data: TrainingData,
    reward_funcs: list[Any] | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """The TRL trainer; it wraps the model with the plan's PEFT config itself (as TRL scripts do)."""
    import trl
    from peft import PeftModel

    trainer_class = getattr(trl, TRAINER_CLASSES[plan.trainer_type])
    wrapped = isinstance(model, PeftModel)  # a caller's own PEFT model: TRL refuses a second config
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": data.train,
        "eval_dataset": data.eval,
        "processing_class": tokenizer,
        "peft_config": None if wrapped else build_peft_config(plan, trainable_token_ids(plan, model, tokenizer)),
        "callbacks": callbacks,
    }
    if plan.trainer_type == "grpo":
        kwargs["reward_funcs"] = reward_funcs
    return trainer_class(**kwargs)
