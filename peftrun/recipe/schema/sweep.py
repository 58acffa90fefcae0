"""The `sweep:` section of a sweep file (a recipe that also says which of its values to search)."""

from __future__ import annotations

import math
from typing import Literal, Union

from pydantic import Field, model_validator

from peftrun.recipe.schema.base import Section

Choice = Union[bool, int, float, str, None]


class Range(Section):
    """A numeric range: integers when `low` and `high` are both integers, floats otherwise."""

    low: Union[int, float] = Field(description="Smallest value.")
    high: Union[int, float] = Field(description="Largest value.")
    log: bool = Field(False, description="Sample on a log scale (low must be above 0).")
    step: Union[int, float, None] = Field(None, gt=0, description="Values low, low+step, ... (the grid sampler needs it).")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low above 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("`step` and `log: true` do not go together (Optuna refuses it)")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high, self.step or 1))

    def extremes(self) -> list[Union[int, float]]:
        return [self.low, self.high]

    def grid(self) -> list[Union[int, float]] | None:
        """Every value of a range with a step (None without one)."""
        if self.step is None:
            return None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return values if self.is_int else [round(v, 12) for v in values]


Space = Union[Range, list[Choice]]


class Metric(Section):
    """What the sweep optimizes: a value each trial records."""

    name: str = Field("eval_loss", min_length=1, description="A metric the run logs (eval_loss, train_loss, "
                      "eval_mean_token_accuracy, ...): the last value logged wins; or exact_match, measured by "
                      "`peftrun eval` after each trial.")
    goal: Literal["minimize", "maximize"] = Field("minimize", description="Whether lower or higher is better.")


class SweepSection(Section):
    """Which recipe values a sweep searches, how, for how long, and what it optimizes."""

    sampler: Literal["grid", "random", "tpe"] = Field("tpe", description="Optuna's sampler: grid (every "
                                                       "combination), random, or tpe (Bayesian).")
    trials: int | None = Field(None, ge=1, description="How many trials in all (default: the grid's size; "
                               "required for random and tpe).")
    metric: Metric = Field(default_factory=Metric)
    prune: bool = Field(False, description="Stop trials whose intermediate eval metric is worse than the median "
                        "of earlier trials at the same step (Optuna's MedianPruner); needs evals during training.")
    max_minutes: float | None = Field(None, gt=0, description="Budget: no new trial starts once the trials have "
                                      "run this many minutes in all (every start of the sweep counts).")
    params: dict[str, Space] = Field(min_length=1, description="Recipe key (dotted path) -> its space: a list of "
                                     "values, or a range {low, high, log, step}.")

    @model_validator(mode="after")
    def _trials_known(self) -> "SweepSection":
        if self.trials is None and self.sampler != "grid":
            raise ValueError(f"`trials` is required with the {self.sampler} sampler (how many trials to run)")
        if self.sampler == "grid":
            ranges = [key for key, space in self.params.items() if isinstance(space, Range) and space.step is None]
            if ranges:
                raise ValueError(f"the grid sampler needs a list of values or a range with `step` for: {', '.join(ranges)}")
        return self

    def grid_size(self) -> int:
        size = 1
        for space in self.params.values():
            size *= len(space) if isinstance(space, list) else len(space.grid() or [])
        return size

    @property
    def trial_count(self) -> int:
        return self.trials if self.trials is not None else self.grid_size()
