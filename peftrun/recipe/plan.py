"""The Plan: a recipe with every default resolved, and where each value came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from peftrun.recipe.hardware import Hardware
from peftrun.recipe.schema import Recipe


@dataclass(frozen=True)
class Plan:
    """What a run will do. Built by `peftrun.resolve`; read by the builders and the runner."""

    recipe: Recipe  # no `auto` left where peftrun decides
    hardware: Hardware
    provenance: Mapping[str, str]  # dotted key path -> file:line:col, command line, or the rule applied
    training_args: Mapping[str, Any]  # keyword arguments for the TRL config class
    task_type: str | None  # PEFT task type; None for full fine-tuning
    warnings: tuple[str, ...] = field(default=())

    @property
    def trainer_type(self) -> str:
        return str(self.recipe.trainer.type)

    @property
    def peft_method(self) -> str | None:
        return self.recipe.peft.method if self.recipe.peft else None

    @property
    def output_dir(self) -> str:
        assert self.recipe.output.dir is not None  # the resolver always fills it
        return self.recipe.output.dir

    def with_sections(self, **sections: Any) -> "Plan":
        """The same plan with some recipe sections replaced (e.g. no quantization to merge in full precision)."""
        return replace(self, recipe=self.recipe.model_copy(update=sections))

    def source(self, path: str) -> str:
        """Where the value at `path` came from."""
        return self.provenance.get(path, "default")
