"""The recipe's module names checked against the real architecture (the meta skeleton) before any weight loads.

PEFT adapts silently what matches and ignores the rest of a list; a name that matches nothing is almost
always a typo or a name from another architecture (`query` is BERT's, Llama's is `q_proj`), so it is a
located recipe error here, listing the names the model has.
"""

from __future__ import annotations

import re
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.objects import ATTENTION_REGEX
from peftrun.recipe.plan import Plan

NAME_KEYS = ("target_modules", "modules_to_save", "exclude_modules")


def module_names(base: Any) -> list[str]:
    return [name for name, _ in base.named_modules() if name]


def _matches(pattern: str, names: list[str], regex: bool) -> bool:
    if regex:
        return any(re.fullmatch(pattern, name) for name in names)
    return any(name == pattern or name.endswith("." + pattern) for name in names)


def kinds(names: list[str]) -> list[str]:
    """The distinct last parts of module names (what a recipe writes in target_modules), in model order."""
    return list(dict.fromkeys(name.rsplit(".", 1)[-1] for name in names if not name.rsplit(".", 1)[-1].isdigit()))


def _layer_count(names: list[str]) -> int:
    indices = [int(m.group(1)) for name in names if (m := re.search(r"\.(\d+)(\.|$)", name))]
    return max(indices) + 1 if indices else 0


def _problem(plan: Plan, key: str, message: str, names: list[str]) -> Problem:
    listing = ", ".join(kinds(names))
    return Problem(plan.recipe.where(f"peft.{key}"), f"peft.{key}",
                   f"{message}; the model ({_model_label(plan)}) has these modules: {listing}")


def _model_label(plan: Plan) -> str:
    return plan.recipe.model.gguf_file or plan.recipe.model.name_or_path


def _name_problems(plan: Plan, section: Any, names: list[str]) -> list[Problem]:
    problems = []
    for key in NAME_KEYS:
        value = getattr(section, key, None)
        if value is None or value in ("all-linear", "qv"):
            continue
        if value == "attention":
            value = ATTENTION_REGEX
        if isinstance(value, str):  # one string is a regular expression over the full module names
            if not _matches(value, names, regex=True):
                problems.append(_problem(plan, key, f"{key} {value!r} matches no module of the model", names))
            continue
        missing = [item for item in value if not _matches(item, names, regex=False)]
        if missing:
            problems.append(_problem(plan, key, f"{key} {', '.join(map(repr, missing))} match no module of the model", names))
    return problems


def _layer_problems(plan: Plan, section: Any, names: list[str]) -> list[Problem]:
    layers = getattr(section, "layers_to_transform", None)
    if layers is None:
        return []
    count = _layer_count(names)
    wanted = [layers] if isinstance(layers, int) else list(layers)
    outside = [i for i in wanted if not 0 <= i < count]
    if not outside:
        return []
    return [Problem(plan.recipe.where("peft.layers_to_transform"), "peft.layers_to_transform",
                    f"layer {', '.join(map(str, outside))} out of range: the model has {count} layers (0 to {count - 1})")]


def check_targets(plan: Plan, base: Any) -> None:
    """Every module name the recipe's PEFT section gives must exist in `base`; all problems at once."""
    section = plan.recipe.peft
    if section is None:
        return
    names = module_names(base)
    problems = _name_problems(plan, section, names) + _layer_problems(plan, section, names)
    if problems:
        raise RecipeError(problems, source=str(plan.recipe.path or ""))


def peft_refusal(plan: Plan, base: Any, exc: Exception) -> RecipeError:
    """PEFT refusing to wrap the model because of what the recipe asks (no module found, a layer type it cannot
    adapt, ...): a located recipe error with PEFT's reason and the model's module names."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    problem = _problem(plan, "method", f"PEFT cannot apply {plan.peft_method} to this model: {reason}", module_names(base))
    return RecipeError(problem, source=str(plan.recipe.path or ""))
