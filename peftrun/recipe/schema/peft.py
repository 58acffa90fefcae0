"""The `peft:` section, discriminated on `method`. Field names are PEFT's own."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from peftrun.recipe import defaults
from peftrun.recipe.schema.base import Section

TARGET_PRESETS = ("all-linear", "attention", "qv")
# Initializations that need nothing but the model (eva, corda and loftq need extra configs peftrun does not take).
INIT_LORA_WEIGHTS = re.compile(r"^(gaussian|olora|pissa|pissa_niter_\d+|orthogonal)$")
TaskType = Literal["CAUSAL_LM", "SEQ_CLS"]


class LoraSection(Section):
    """LoRA and its variants (DoRA with use_dora, rsLoRA with use_rslora); QLoRA with `quantization`."""

    method: Literal["lora"] = Field(description="LoRA (and DoRA / rsLoRA / QLoRA).")
    r: int = Field(defaults.LORA_R, ge=1, description="LoRA rank.")
    lora_alpha: int | float = Field(defaults.LORA_ALPHA, gt=0, description="LoRA scaling numerator (alpha / r).")
    lora_dropout: float = Field(defaults.LORA_DROPOUT, ge=0, lt=1, description="Dropout on the LoRA input.")
    bias: Literal["none", "all", "lora_only"] = Field(defaults.LORA_BIAS, description="Which biases train.")
    target_modules: list[Annotated[str, Field(min_length=1)]] | Literal["all-linear", "attention", "qv"] = Field(
        defaults.LORA_TARGET_MODULES,
        description="Module names (or regex suffixes) to adapt, or a preset: all-linear | attention | qv.",
    )
    exclude_modules: list[str] | str | None = Field(None, description="Module names to leave out.")
    modules_to_save: list[str] | None = Field(None, description="Extra modules trained in full and saved.")
    trainable_tokens: list[str] | None = Field(
        None, description="Tokens whose embedding and output rows train and are saved (PEFT trainable_token_indices); "
        "default: the tokens model.special_tokens adds or sets as EOS / BOS.",
    )
    use_rslora: bool = Field(False, description="Rank-stabilized LoRA: scale by alpha / sqrt(r).")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    init_lora_weights: bool | str = Field(
        True, description="true, false, or gaussian | olora | pissa | pissa_niter_N | orthogonal."
    )
    layers_to_transform: list[int] | int | None = Field(None, description="Only adapt these layer indices.")
    layers_pattern: list[str] | str | None = Field(None, description="Name of the layers list (with layers_to_transform).")
    rank_pattern: dict[str, int] | None = Field(None, description="Per-module rank overrides (regex -> r).")
    alpha_pattern: dict[str, float] | None = Field(None, description="Per-module alpha overrides (regex -> alpha).")
    fan_in_fan_out: bool = Field(False, description="Set for Conv1D layers stored as (fan_in, fan_out), e.g. GPT-2.")
    task_type: TaskType | None = Field(None, description="Inferred: CAUSAL_LM, SEQ_CLS for the reward trainer.")

    @field_validator("init_lora_weights")
    @classmethod
    def _known_init(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not INIT_LORA_WEIGHTS.match(value):
            raise ValueError(
                "must be true, false, or one of gaussian, olora, pissa, pissa_niter_N, orthogonal "
                "(eva, corda and loftq need configs peftrun does not take)"
            )
        return value


class PromptTuningSection(Section):
    """Soft prompt tuning: trains virtual token embeddings, the model stays frozen."""

    method: Literal["prompt_tuning"] = Field(description="Prompt tuning.")
    num_virtual_tokens: int = Field(defaults.PROMPT_TUNING_VIRTUAL_TOKENS, ge=1, description="Virtual tokens.")
    prompt_tuning_init: Literal["RANDOM", "TEXT", "SAMPLE_VOCAB"] = Field(
        defaults.PROMPT_TUNING_INIT, description="How the virtual tokens start: RANDOM, TEXT or SAMPLE_VOCAB."
    )
    prompt_tuning_init_text: str | None = Field(None, description="Init text (prompt_tuning_init: TEXT).")
    tokenizer_name_or_path: str | None = Field(
        None, description="Tokenizer for the init text (default: the model's tokenizer)."
    )
    task_type: TaskType | None = Field(None, description="Inferred: CAUSAL_LM, SEQ_CLS for the reward trainer.")

    @model_validator(mode="after")
    def _text_init(self) -> "PromptTuningSection":
        text_init = self.prompt_tuning_init == "TEXT"
        if text_init and not self.prompt_tuning_init_text:
            raise ValueError("prompt_tuning_init: TEXT needs prompt_tuning_init_text")
        if self.prompt_tuning_init_text and not text_init:
            raise ValueError("prompt_tuning_init_text is used only with prompt_tuning_init: TEXT")
        return self


PeftSection = Annotated[Union[LoraSection, PromptTuningSection], Field(discriminator="method")]
