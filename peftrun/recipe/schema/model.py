"""The `model:` section: what to load and how."""

from __future__ import annotations

from pydantic import Field

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import DType, Section


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
        None, description="Path to a .jinja chat template replacing the tokenizer's own."
    )
