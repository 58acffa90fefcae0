"""The `output:` section: where a run goes and what it saves."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import Section


class OutputSection(Section):
    dir: str | None = Field(None, description="Run directory (default runs/<name>).")
    save: Literal["adapter", "merged", "both"] = Field(
        defaults.OUTPUT_SAVE, description="Save the adapter, the merged model, or both."
    )
    push_to_hub: bool = Field(False, description="Push the adapter and its card to the hub at the end.")
    hub_model_id: str | None = Field(None, description="Hub repository for push_to_hub (owner/name).")
    private: bool = Field(True, description="push_to_hub creates a private repository unless this is false.")

    @model_validator(mode="after")
    def _hub_id(self) -> "OutputSection":
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub: true needs hub_model_id")
        return self
