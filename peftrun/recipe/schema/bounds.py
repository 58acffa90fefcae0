"""The ranges of numeric trainer fields, keyed by TRL field name: one table for every trainer type.

A trainer type gets the bound of each of its fields named in BOUNDS (a new trainer type is covered by
its field names alone). Values outside a bound can never work; validation refuses them, located, with
the range. `None` (TRL computes the value) and non-numbers (`learning_rate: auto`) are not checked here; a number that
is not finite (.inf, .nan) is refused in every field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_core import InitErrorDetails, PydanticCustomError


@dataclass(frozen=True)
class Bound:
    expected: str  # the range, as the error shows it: "must be <expected>"
    accepts: Callable[[float], bool]
    json: dict[str, Any]  # the same range in JSON Schema keywords, for editors (recipe/schema/jsonschema.py)
    unless: str | None = None  # a field whose positive value makes this one unused (max_steps over epochs)


def _whole(value: float) -> bool:
    return float(value).is_integer()


COUNT = Bound("a whole number >= 1", lambda v: v >= 1 and _whole(v), {"minimum": 1, "multipleOf": 1})
NON_NEGATIVE = Bound(">= 0", lambda v: v >= 0, {"minimum": 0})
POSITIVE = Bound("> 0", lambda v: v > 0, {"exclusiveMinimum": 0})
RATIO = Bound("in [0, 1]", lambda v: 0 <= v <= 1, {"minimum": 0, "maximum": 1})
STEPS = Bound("a whole number of steps >= 1, or a float in (0, 1): that share of the training steps",
              lambda v: 0 < v < 1 or (v >= 1 and _whole(v)),
              {"exclusiveMinimum": 0, "anyOf": [{"exclusiveMaximum": 1}, {"multipleOf": 1}]})

BOUNDS: dict[str, Bound] = {
    # how long and how much per step
    "num_train_epochs": Bound("> 0, unless max_steps (which overrides it) is set", lambda v: v > 0,
                              {"exclusiveMinimum": 0}, unless="max_steps"),
    "max_steps": Bound("-1 (train for num_train_epochs) or a number of steps >= 1", lambda v: v == -1 or v >= 1,
                       {"anyOf": [{"minimum": 1}, {"const": -1}]}),
    "per_device_train_batch_size": COUNT,
    "per_device_eval_batch_size": COUNT,
    "gradient_accumulation_steps": COUNT,
    "eval_accumulation_steps": COUNT,
    # the optimizer and its schedule
    "learning_rate": NON_NEGATIVE,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": Bound(">= 0 (0 turns clipping off)", lambda v: v >= 0, {"minimum": 0}),
    "adam_beta1": Bound("in [0, 1)", lambda v: 0 <= v < 1, {"minimum": 0, "exclusiveMaximum": 1}),
    "adam_beta2": Bound("in [0, 1)", lambda v: 0 <= v < 1, {"minimum": 0, "exclusiveMaximum": 1}),
    "adam_epsilon": NON_NEGATIVE,
    "warmup_steps": Bound("a whole number of steps >= 0, or a float in [0, 1): that share of the training steps "
                          "(the warmup_ratio of transformers 4)", lambda v: 0 <= v < 1 or (v >= 1 and _whole(v)),
                          {"minimum": 0, "anyOf": [{"exclusiveMaximum": 1}, {"multipleOf": 1}]}),
    "label_smoothing_factor": RATIO,
    # logging, saving, evaluating
    "logging_steps": STEPS,
    "save_steps": STEPS,
    "eval_steps": STEPS,
    "eval_delay": NON_NEGATIVE,
    "torch_empty_cache_steps": COUNT,
    "dataloader_num_workers": NON_NEGATIVE,
    "dataset_num_proc": COUNT,
    # sequence lengths
    "max_length": COUNT,
    "max_completion_length": COUNT,
    # the methods' own parameters
    "beta": NON_NEGATIVE,
    "label_smoothing": Bound("in [0, 0.5) (the probability that a preference label is flipped)", lambda v: 0 <= v < 0.5,
                             {"minimum": 0, "exclusiveMaximum": 0.5}),
    "num_generations": Bound("a whole number >= 2 (advantages compare generations within a group)",
                             lambda v: v >= 2 and _whole(v), {"minimum": 2, "multipleOf": 1}),
    "num_iterations": COUNT,
    "generation_batch_size": COUNT,
    "steps_per_generation": COUNT,
    "temperature": POSITIVE,
    "top_p": Bound("in (0, 1]", lambda v: 0 < v <= 1, {"exclusiveMinimum": 0, "maximum": 1}),
    "top_k": NON_NEGATIVE,
    "min_p": RATIO,
    "repetition_penalty": POSITIVE,
    "epsilon": NON_NEGATIVE,
    "top_entropy_quantile": RATIO,
    "vllm_gpu_memory_utilization": Bound("in (0, 1]", lambda v: 0 < v <= 1, {"exclusiveMinimum": 0, "maximum": 1}),
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _error(bound: Bound) -> PydanticCustomError:
    return PydanticCustomError("out_of_range", "must be {expected}", {"expected": bound.expected})


FINITE = Bound("a finite number", math.isfinite, {})  # JSON has no inf or nan: nothing for editors to check


def field_check(name: str) -> Callable[[Any], Any]:
    """The after-validator of field `name`: a finite number (any field), within its bound (one that does not
    depend on another field)."""
    bound = BOUNDS.get(name)

    def check(value: Any) -> Any:
        if _number(value) and not math.isfinite(value):
            raise _error(FINITE)
        if bound is not None and bound.unless is None and _number(value) and not bound.accepts(value):
            raise _error(bound)
        return value

    return check


def conditional_errors(section: Any) -> list[InitErrorDetails]:
    """Errors of the bounds that another field can lift (checked once the whole section validated)."""
    errors: list[InitErrorDetails] = []
    for name, bound in BOUNDS.items():
        if bound.unless is None or name not in type(section).model_fields:
            continue
        value, other = getattr(section, name), getattr(section, bound.unless, None)
        if _number(value) and not bound.accepts(value) and not (_number(other) and other > 0):
            errors.append(InitErrorDetails(type=_error(bound), loc=(name,), input=value))
    return errors
