"""The `dataset:` section: the sources of the data, their formats, how they mix, and how the columns map to TRL's."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import Section

# Named record formats (peftrun/data/formats.py converts each to TRL's columns).
FormatName = Literal["alpaca", "sharegpt", "sharegpt-preference", "sharegpt-kto", "conversation-pair", "unpaired"]
ROLES = ("system", "user", "assistant", "tool")
DataCheckName = Literal[tuple(defaults.DATA_CHECKS)]  # type: ignore[valid-type]
TEMPLATE_FIELDS = ("prompt", "completion", "chosen", "rejected", "text")


def template_fields(template: str) -> list[str]:
    """The field names a field template uses; ValueError for anything but plain `{name}` fields."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{template!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError(f"{template!r}: name the field inside braces, e.g. {{question}}")
        if any(c in name for c in ".[]") or spec or conversion:
            raise ValueError(f"{template!r}: `{{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}` is not a plain field name; a field template "
                             "holds field names only (no attribute access, indexing, conversion or format spec)")
        names.append(name)
    return names


class FormatMapping(Section):
    """A record format given by its fields: turns (messages, role, content, roles) or field templates."""

    messages: str | None = Field(None, description="Field holding the list of turns (conversational data).")
    role: str = Field("role", description="Key of a turn's role (with `messages`).")
    content: str = Field("content", description="Key of a turn's text (with `messages`).")
    roles: dict[str, Literal["system", "user", "assistant", "tool"]] = Field(
        default_factory=dict, description="Role names in the data -> system | user | assistant | tool."
    )
    system: str | None = Field(None, description="Field holding a system prompt placed before the turns.")
    prompt: str | None = Field(None, description="Field template for the prompt, e.g. 'Question: {question}'.")
    completion: str | None = Field(None, description="Field template for the completion, e.g. '{answer}'.")
    chosen: str | None = Field(None, description="Field template for the preferred completion.")
    rejected: str | None = Field(None, description="Field template for the dispreferred completion.")
    text: str | None = Field(None, description="Field template for plain language-modeling text.")
    label: str | None = Field(None, description="Field holding a true/false label (unpaired preference, KTO).")
    chat: bool = Field(
        False, description="Field templates become turns: the prompt a user turn, completions assistant turns."
    )

    @field_validator(*TEMPLATE_FIELDS)
    @classmethod
    def _plain_fields(cls, value: str | None) -> str | None:
        if value is not None:
            template_fields(value)
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> "FormatMapping":
        templates = [k for k in TEMPLATE_FIELDS if getattr(self, k) is not None]
        if self.messages is not None and templates:
            raise ValueError(f"give either `messages` (turns) or field templates, not both (got {', '.join(templates)})")
        if self.messages is None and not templates:
            raise ValueError("give `messages` (the field holding turns) or field templates (prompt, completion, ...)")
        if self.chat and ("text" in templates or "prompt" not in templates):
            raise ValueError("`chat: true` needs a `prompt` template (and no `text`)")
        return self


class _SourceFields(Section):
    name: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field(defaults.DATASET_SPLIT, description="Split to train on.")
    data_files: str | list[str] | None = Field(None, description="Files inside a hub dataset or directory to read.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Rename columns to TRL's names: {standard_name: column_in_data}."
    )
    max_samples: int | None = Field(None, ge=1, description="Use at most this many examples of this source.")
    format: FormatName | FormatMapping | None = Field(
        None, description="Record format: alpaca | sharegpt | ... or a mapping; omit for data in TRL's columns."
    )


class SourceSection(_SourceFields):
    """One source of a mixture."""

    path: str | list[str] = Field(
        description="Hub dataset id, local file(s) (.jsonl .json .csv .parquet) or a local directory."
    )


class EvalSection(Section):
    """Exactly one of: a fraction held out of the training data, a split, separate files, or own sources."""

    fraction: float | None = Field(None, gt=0, lt=1, description="Hold out this share of the train split.")
    split: str | None = Field(None, description="Use this split of the same dataset.")
    path: str | list[str] | None = Field(None, description="Separate eval file(s), directory or hub id.")
    sources: list[SourceSection] | None = Field(None, min_length=1, description="Eval data from its own sources.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "EvalSection":
        given = [k for k in ("fraction", "split", "path", "sources") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fraction, split, path, sources (got {', '.join(given) or 'none'})")
        return self


class ChecksSection(Section):
    """The data checks a run makes before the model loads (docs/data.md)."""

    allow: list[DataCheckName] = Field(
        default_factory=list, description="Checks whose failure is intended: a run that would stop on one warns instead."
    )


class DatasetSection(_SourceFields):
    """One source (`path` and its settings at this level) or a mixture (`sources`)."""

    path: str | list[str] | None = Field(
        None, description="Hub dataset id, local file(s) (.jsonl .json .csv .parquet) or a local directory."
    )
    sources: list[SourceSection] | None = Field(None, min_length=1, description="Several sources, mixed.")
    interleave: list[float] | None = Field(
        None, description="Interleave the sources with these probabilities (seeded); default: concatenate them."
    )
    eval: EvalSection | None = Field(None, description="Evaluation data: {fraction}, {split}, {path} or {sources}.")
    cache: bool = Field(True, description="Keep converted and tokenized data in the datasets cache.")
    cache_dir: str | None = Field(None, description="Where the datasets cache goes (default: datasets' own).")
    checks: ChecksSection = Field(default_factory=ChecksSection, description="Data checks: {allow: [rule, ...]}.")

    def unshared_dump(self) -> dict[str, object]:
        """The section as plain data for recipe.resolved.yaml: with `sources`, the per-source fields stay on the sources."""
        data = self.model_dump(mode="json")
        if self.sources is not None:
            for key in _SourceFields.model_fields:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _one_form(self) -> "DatasetSection":
        if (self.path is None) == (self.sources is None):
            raise ValueError("give either `path` (one source) or `sources` (a list), not both or neither")
        if self.sources is not None:
            shared = [k for k in _SourceFields.model_fields if k in self.model_fields_set]
            if shared:
                raise ValueError(f"with `sources`, set {', '.join(shared)} on each source")
        if self.interleave is not None:
            count = len(self.sources or [None])
            if len(self.interleave) != count or any(p <= 0 for p in self.interleave):
                raise ValueError(f"interleave needs one positive probability per source ({count})")
        return self

    def all_sources(self) -> list[tuple[str, SourceSection]]:
        """(key path prefix, source) for each source; the one-source form is `dataset`."""
        if self.sources is not None:
            return [(f"dataset.sources.{i}", source) for i, source in enumerate(self.sources)]
        fields = {k: getattr(self, k) for k in SourceSection.model_fields}
        return [("dataset", SourceSection(**fields))]
