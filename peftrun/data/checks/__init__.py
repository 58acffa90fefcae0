"""Checks of the data exactly as the trainer will see it, before the model loads (docs/data.md, "Checks").

Each rule of `recipe.defaults.DATA_CHECKS` (name, severity) is one function here (`RULES`). The SFT rules read
the labels TRL's own preparation builds (`preview.sft_prepared`); an "error" that the recipe does not allow
(`dataset.checks.allow`) stops a run with exit 3, the rest are warnings (run output, `peftrun data`, manifest).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from peftrun.data.checks import pairs, tokens
from peftrun.data.checks.context import Context, Result, context
from peftrun.data.loading import TrainingData
from peftrun.errors import DataError
from peftrun.recipe import defaults
from peftrun.recipe.plan import Plan

RULES: dict[str, Callable[[Context], Result]] = {
    "no-trained-tokens": tokens.no_trained_tokens,
    "eos-never-trained": tokens.eos_never_trained,
    "assistant-mask-empty": tokens.assistant_mask_empty,
    "examples-without-loss": tokens.examples_without_loss,
    "eos-not-always-trained": tokens.eos_not_always_trained,
    "double-bos": tokens.double_bos,
    "completion-truncated": tokens.completion_truncated,
    "chosen-equals-rejected": pairs.chosen_equals_rejected,
    "saved-template-differs": pairs.saved_template_differs,
    "sequences-see-each-other": pairs.sequences_see_each_other,
}


class DataCheckError(DataError):
    """The data would make the run useless (a failed "error" check the recipe does not allow)."""


@dataclass(frozen=True)
class Outcome:
    """One rule's result on one dataset."""

    rule: str
    severity: str
    result: Result
    allowed: bool

    @property
    def stops(self) -> bool:
        return self.result.status == "fail" and self.severity == "error" and not self.allowed

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "status": self.result.status,
                "allowed": self.allowed, "message": self.result.message, "rows": list(self.result.rows)}

    def line(self) -> str:
        level = "error" if self.stops else "warning"
        note = " (allowed by dataset.checks.allow)" if self.allowed and self.severity == "error" else ""
        return f"{level}: data check {self.rule}{note}: {self.result.message}"


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result.status == "fail"]

    @property
    def stops(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.stops]

    def fails(self, rule: str) -> bool:
        return any(o.rule == rule for o in self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.stops, "rules": [o.as_dict() for o in self.outcomes]}

    def as_text(self) -> str:
        """Every rule with its status, then the message of each that failed."""
        lines = [f"  {o.rule:<26} {o.result.status}" + (" (allowed)" if o.allowed and o.result.status == "fail" else "")
                 for o in self.outcomes]
        return "\n".join(["data checks:", *lines, *(o.line() for o in self.failed)])

    def manifest(self) -> dict[str, Any]:
        """What a run's manifest records: the rules that failed (warnings, allowed errors)."""
        return {"failed": [o.as_dict() for o in self.failed]}


def check_data(plan: Plan, data: TrainingData, tokenizer: Any, args: Any) -> Report:
    """Run every rule on the training split as the trainer will see it."""
    allowed = set(plan.recipe.dataset.checks.allow)
    ctx = context(plan, data, tokenizer, args)
    return Report(tuple(Outcome(name, defaults.DATA_CHECKS[name][0], rule(ctx), name in allowed)
                        for name, rule in RULES.items()))


def check_before_training(plan: Plan, data: TrainingData, tokenizer: Any, args: Any) -> Report:
    """The run's checks: warnings go to stderr; a failed error check that is not allowed raises DataCheckError."""
    report = check_data(plan, data, tokenizer, args)
    for outcome in report.failed:
        if not outcome.stops:
            print(outcome.line(), file=sys.stderr)
    if report.stops:
        names = ", ".join(o.rule for o in report.stops)
        raise DataCheckError("\n".join([
            *(o.line().removeprefix("error: ") for o in report.stops),
            f"the run would train a useless model, so it stops before the model loads; if this is intended, "
            f"add to the recipe: dataset.checks.allow: [{names}]"]))
    return report
