"""The `dataset:` section: where the data is and how its columns map to TRL's."""

from __future__ import annotations

from pydantic import Field, model_validator

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import Section

# TRL's standard column names per trainer type (GRPO passes extra columns to reward functions).
STANDARD_COLUMNS: dict[str, frozenset[str]] = {
    "sft": frozenset({"text", "messages", "conversations", "prompt", "completion", "tools"}),
    "dpo": frozenset({"prompt", "chosen", "rejected"}),
    "reward": frozenset({"prompt", "chosen", "rejected"}),
    "grpo": frozenset(),  # any column name: extra columns reach the reward functions
    "rloo": frozenset(),  # as GRPO
    "kto": frozenset({"prompt", "completion", "label"}),
    "distillation": frozenset({"prompt"}),  # on-policy: the student generates, the teacher scores
    "orpo": frozenset({"prompt", "chosen", "rejected"}),
    "cpo": frozenset({"prompt", "chosen", "rejected"}),
}


class EvalSection(Section):
    """Exactly one of: a fraction held out of the training data, a split, or separate files."""

    fraction: float | None = Field(None, gt=0, lt=1, description="Hold out this share of the train split.")
    split: str | None = Field(None, description="Use this split of the same dataset.")
    path: str | list[str] | None = Field(None, description="Separate eval file(s), directory or hub id.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "EvalSection":
        given = [k for k in ("fraction", "split", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fraction, split, path (got {', '.join(given) or 'none'})")
        return self


class DatasetSection(Section):
    path: str | list[str] = Field(
        description="Hub dataset id, local file(s) (.jsonl .json .csv .parquet) or a local directory."
    )
    name: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field(defaults.DATASET_SPLIT, description="Split to train on.")
    eval: EvalSection | None = Field(None, description="Evaluation data: {fraction}, {split} or {path}.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Rename columns to TRL's names: {standard_name: column_in_data}."
    )
    max_samples: int | None = Field(None, ge=1, description="Use at most this many training examples.")
