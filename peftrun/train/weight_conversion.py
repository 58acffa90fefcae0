"""Adapters whose initialization changes the base weights (PiSSA, OLoRA, CorDA) are saved converted to plain
LoRA, so that they load with PeftModel.from_pretrained on the original base (PEFT's
path_initial_model_for_weight_conversion: the initial adapter, saved before the first step, is subtracted)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from peftrun.recipe.plan import Plan

RESIDUAL_INITS = ("pissa", "olora", "corda")  # pissa_niter_N too
INITIAL = "initial-adapter"  # in the run directory until the converted adapter is saved (a resumed run needs it)


def converts(plan: Plan) -> bool:
    """True when the plan's LoRA initialization moves part of the base weights into the adapter."""
    return str(getattr(plan.recipe.peft, "init_lora_weights", "")).startswith(RESIDUAL_INITS)


def save_initial(plan: Plan, model: Any) -> None:
    """Keep the adapter as initialized, before any step, for the conversion at the end."""
    if converts(plan):
        model.save_pretrained(str(Path(plan.output_dir) / INITIAL))


def save_adapter(plan: Plan, trainer: Any, run_dir: Path) -> None:
    """The trainer's own save; for PiSSA / OLoRA / CorDA the adapter is then rewritten as plain LoRA (rank 2r)."""
    trainer.save_model(str(run_dir))
    initial = run_dir / INITIAL
    if converts(plan) and initial.is_dir():
        trainer.model.save_pretrained(str(run_dir), path_initial_model_for_weight_conversion=str(initial))
        shutil.rmtree(initial)
