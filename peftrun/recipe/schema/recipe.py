"""The whole recipe: one field per section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr

from peftrun.recipe import defaults
from peftrun.recipe.redact import shown
from peftrun.recipe.schema.base import Section
from peftrun.recipe.schema.dataset import DatasetSection
from peftrun.recipe.schema.launch import DDPLaunch, LaunchSection
from peftrun.recipe.schema.model import ModelSection
from peftrun.recipe.schema.output import OutputSection
from peftrun.recipe.schema.peft import PeftSection
from peftrun.recipe.schema.quantization import QuantizationSection
from peftrun.recipe.schema.trainer import TrainerSection


class Recipe(Section):
    """A peftrun recipe: what to fine-tune, how, on which data, and where the run goes."""

    schema_version: Literal[1] = Field(1, description="Recipe format version.")
    name: str = Field(min_length=1, description="Run name (default: the file's stem).")
    extends: str | list[str] | None = Field(
        None,
        description="Base recipe(s), deep-merged in order, this file wins: a path relative to this file, "
        "peftrun:NAME (a base shipped in peftrun), or git+URL@REV#path (a file of a git repository at a tag or commit).",
    )
    allow_moving_bases: bool = Field(
        False, description="Accept git+ bases at a branch (a moving revision; the run is not reproducible)."
    )
    seed: int = Field(defaults.SEED, ge=0, le=2**32 - 1,  # numpy's range (transformers' set_seed seeds numpy too)
                      description="Random seed for training, data shuffles and eval splits.")
    model: ModelSection
    quantization: QuantizationSection | None = Field(None, description="Omit for a full-precision base.")
    peft: PeftSection | None = Field(None, description="Omit for full fine-tuning.")
    trainer: TrainerSection
    dataset: DatasetSection
    output: OutputSection = Field(default_factory=OutputSection)
    launch: LaunchSection = Field(default_factory=DDPLaunch, description="Omit for one process.")

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _path: Path | None = PrivateAttr(None)
    _env_expressions: dict[str, str] = PrivateAttr(default_factory=dict)
    _bases: list[dict[str, str]] = PrivateAttr(default_factory=list)

    @property
    def sources(self) -> dict[str, str]:
        """Where each key the user wrote came from: dotted path -> file:line:col or command line."""
        return self._sources

    @property
    def path(self) -> Path | None:
        """The recipe file, when loaded from one."""
        return self._path

    @property
    def env_expressions(self) -> dict[str, str]:
        """Dotted path -> the `${oc.env:...}` expression its value was read from (never written out resolved)."""
        return self._env_expressions

    @property
    def bases(self) -> list[dict[str, str]]:
        """Every base file read, in load order: its name and commit (git bases) or content hash."""
        return self._bases

    def shown(self, key_path: str, value: object) -> str:
        """`value` (at `key_path`) as an error message may show it: never a value read from the environment."""
        return shown(value, key_path, self._env_expressions, str)

    def where(self, key_path: str) -> str:
        """Where the value at `key_path` (or its nearest written parent) was written; else the recipe file."""
        return nearest_source(key_path, self._sources) or str(self._path or "")


def nearest_source(key_path: str, sources: Mapping[str, str]) -> str:
    """The source of `key_path` or of its nearest parent in a source map; "" when none was written."""
    parts = key_path.split(".") if key_path else []
    while parts:
        found = sources.get(".".join(parts))
        if found:
            return found
        parts.pop()
    return ""
