"""Checks of the machine a run starts on, made before anything loads.

The resolver is pure and only refuses what cannot work anywhere, so that
`peftrun validate` on a laptop accepts a recipe written for a GPU node; what
this machine cannot run is refused here, when a run (or --dry-run) starts.
"""

from __future__ import annotations

from peftrun.errors import Problem, RecipeError
from peftrun.launch import machine_problems
from peftrun.plan import Plan


def precision_problems(plan: Plan) -> list[tuple[str, str]]:
    """float16 needs CUDA (TRL's fp16 mixed precision refuses the CPU)."""
    if plan.hardware.cuda:
        return []
    if plan.recipe.model.dtype == "float16":
        return [("model.dtype", "float16 training needs a CUDA GPU; use float32 or bfloat16 on the CPU")]
    if plan.training_args.get("fp16"):
        return [("trainer.fp16", "fp16 mixed precision needs a CUDA GPU; use bf16 or neither on the CPU")]
    return []


def preflight(plan: Plan) -> None:
    """Refuse what this machine cannot run (RecipeError, exit status 2), every problem at once."""
    problems = precision_problems(plan) + machine_problems(plan)
    if problems:
        raise RecipeError([Problem(plan.recipe.where(path), path, msg) for path, msg in problems],
                          source=str(plan.recipe.path or ""))
