"""The base every recipe section derives from: unknown keys are errors, values are checked."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

DType = Literal["auto", "bfloat16", "float16", "float32"]


class Section(BaseModel):
    """A recipe section: `extra="forbid"`, validated on assignment, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False, defer_build=True)
