"""The `model:` section: what to load and how."""

from __future__ import annotations

from pydantic import Field, field_validator

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import DType, Section
from peftrun.recipe.suggest import did_you_mean


class SpecialTokens(Section):
    """Special tokens set on the tokenizer; tokens it lacks are added (the embeddings grow and train)."""

    pad_token: str | None = Field(None, description="Padding token (default: the tokenizer's, else its EOS).")
    eos_token: str | None = Field(None, description="End-of-sequence token.")
    bos_token: str | None = Field(None, description="Beginning-of-sequence token.")
    additional: list[str] = Field(default_factory=list, description="More special tokens to add, e.g. ['<tool>'].")

    def trained(self) -> list[str]:
        """The tokens whose embeddings must learn: added ones and the EOS / BOS the recipe sets."""
        named = [t for t in (self.eos_token, self.bos_token) if t is not None]
        return list(dict.fromkeys([*self.additional, *named]))


class ModelSection(Section):
    name_or_path: str = Field(description="Hub model id or local directory.", min_length=1)
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    gguf_file: str | None = Field(
        None, description="A GGUF file inside name_or_path to load (transformers dequantizes it)."
    )
    dtype: DType = Field(
        defaults.MODEL_DTYPE,
        description="Weights dtype; auto = bfloat16 where the GPU supports it, else float32.",
    )
    attn_implementation: str | None = Field(
        None, description="Attention kernel: eager, sdpa, flash_attention_2, ... (default: transformers' choice)."
    )
    trust_remote_code: bool = Field(False, description="Run model code from the hub repository (off unless set).")
    tokenizer: str | None = Field(None, description="Tokenizer id or directory (default: name_or_path).")
    chat_template: str | None = Field(
        None,
        description="A shipped template name (" + ", ".join(defaults.CHAT_TEMPLATES)
        + ") or a path to a .jinja file; replaces the tokenizer's own.",
    )
    special_tokens: SpecialTokens | None = Field(None, description="pad / eos / bos tokens and added tokens.")

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in defaults.CHAT_TEMPLATES and not value.endswith(".jinja"):
            raise ValueError(f"no shipped template named {value!r}{did_you_mean(value, list(defaults.CHAT_TEMPLATES))} "
                             f"(shipped: {', '.join(defaults.CHAT_TEMPLATES)}); or give a path to a .jinja file")
        return value
