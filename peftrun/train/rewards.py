"""Reward functions for GRPO, and how a recipe's `reward_funcs` entries become callables.

An entry is either the name of a reward shipped here (`answer_match`) or a
`module:function` reference importable from the installed packages or the
directory peftrun runs from. TRL calls each as f(prompts, completions, **columns).
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peftrun.errors import Problem, RecipeError, TrainingError
from peftrun.recipe.defaults import SHIPPED_REWARDS
from peftrun.recipe.schema import Recipe

RewardFunc = Callable[..., list[float]]


def message_text(completion: Any) -> str:
    """A completion as text, for standard (str) and conversational (list of messages) data."""
    if isinstance(completion, list):
        return "".join(str(message.get("content", "")) for message in completion)
    return str(completion)


def answer_match(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
    """1.0 when the completion, stripped, equals the `answer` column, else 0.0."""
    return [float(message_text(c).strip() == str(a).strip()) for c, a in zip(completions, answer, strict=True)]


def answer_contains(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
    """1.0 when the `answer` column appears in the completion, else 0.0."""
    return [float(str(a).strip() in message_text(c)) for c, a in zip(completions, answer, strict=True)]


THINK_FORMAT = re.compile(r"^<think>.*?</think>\s*\S", re.DOTALL)


def think_format(completions: list[Any], **_: Any) -> list[float]:
    """1.0 when the completion starts with a <think>...</think> block followed by an answer."""
    return [float(bool(THINK_FORMAT.match(message_text(c).strip()))) for c in completions]


def concise(completions: list[Any], **_: Any) -> list[float]:
    """Shorter is better: 1 / (1 + words / 50)."""
    return [1.0 / (1.0 + len(message_text(c).split()) / 50.0) for c in completions]


SHIPPED: dict[str, RewardFunc] = {
    f.__name__: f for f in (answer_match, answer_contains, think_format, concise)
}
assert tuple(SHIPPED) == SHIPPED_REWARDS, "peftrun.recipe.defaults.SHIPPED_REWARDS lists the shipped rewards"


@contextmanager
def _importable_from_cwd() -> Iterator[None]:
    """The working directory on sys.path while a reward module imports, and not after."""
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _import_module(module_name: str) -> Any:
    try:
        with _importable_from_cwd():
            return importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing: its error, located
        where = "".join(traceback.format_exception_only(exc)).strip()
        raise ValueError(f"importing module {module_name!r} raised {where}") from None


def _attributed(reference: str, func: RewardFunc) -> RewardFunc:
    """`func`, whose exceptions are reported as the reward's (with its own traceback), not as peftrun's."""
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> list[float]:
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's code raised: say so, with its traceback
            trace = "".join(traceback.format_tb(exc.__traceback__.tb_next)).rstrip()  # from the user's frame on
            raise TrainingError(f"reward function {reference} raised {type(exc).__name__}: {exc}\n"
                                f"{trace}\nfix the function (trainer.reward_funcs names it)") from None
    return call


def resolve_reward(reference: str) -> RewardFunc:
    """The callable for one `reward_funcs` entry; ValueError says what is wrong."""
    if ":" not in reference:
        if reference in SHIPPED:
            return SHIPPED[reference]
        raise ValueError(f"no shipped reward named {reference!r} (shipped: {', '.join(SHIPPED)})")
    module_name, func_name = reference.split(":", 1)
    func = getattr(_import_module(module_name), func_name, None)
    if not callable(func):
        raise ValueError(f"module {module_name!r} has no function {func_name!r}")
    return _attributed(reference, func)


def resolve_rewards(recipe: Recipe) -> list[RewardFunc]:
    """The recipe's GRPO reward functions; every entry that cannot be used is reported, located."""
    funcs, problems = [], []
    for i, reference in enumerate(recipe.trainer.reward_funcs):
        try:
            funcs.append(resolve_reward(reference))
        except ValueError as exc:
            key = f"trainer.reward_funcs.{i}"
            problems.append(Problem(recipe.where(key), key, f"{reference}: {exc}"))
    if problems:
        raise RecipeError(problems, source=str(recipe.path or ""))
    return funcs
