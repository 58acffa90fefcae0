"""One registry of trainer types. For each: the data it reads, its learning-rate baseline, whether it scores
generations with reward functions, what of its section can run code, what its TRL trainer takes beyond the
common arguments, and how the plan, batching and export see it. data/, builders/, explain, diff, plan,
export and the trust rules read it; TRL's config and trainer classes come from the generated field table
(`config_class`, `module`). Pure data: importing it imports nothing else of peftrun."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

TRL_PEFT_GUIDANCE: Final = "TRL's PEFT guidance"


@dataclass(frozen=True)
class DataFormat:
    """A shape of data a trainer reads: TRL's name for it and the columns it needs."""

    name: str
    columns: frozenset[str]

    def describe(self) -> str:
        return f"{self.name} ({', '.join(sorted(self.columns))})"


def _format(name: str, *columns: str) -> DataFormat:
    return DataFormat(name, frozenset(columns))


PREFERENCE = (_format("preference", "chosen", "rejected"),)
PROMPT_ONLY = (_format("prompt-only", "prompt"),)


@dataclass(frozen=True)
class TrainerType:
    name: str
    formats: tuple[DataFormat, ...]  # what it reads, as alternatives (data/loading.py checks the columns)
    full_ft_learning_rate: float  # the full fine-tuning baseline of the learning-rate rule (recipe/defaults.py)
    learning_rate_source: str
    rewards: bool = False  # scores its generations with `reward_funcs` (imported and called: runs code)
    extra_arguments: tuple[str, ...] = ()  # trainer keyword arguments beyond the common ones, from the runner
    paired: bool = False  # forwards chosen and rejected together: two rows per example (plan)
    generates: bool = False  # generates on-policy: prompt + max_completion_length tokens per row (plan)
    sequence_classification: bool = False  # trains a scalar head (AutoModelForSequenceClassification)
    padding_free_blocked: str | None = None  # why padded batches only (None: TRL has a padding-free collator)
    trl_command: bool = True  # `trl <name>` runs it (export trl)
    experimental: bool = False  # TRL ships it in trl.experimental
    also_reads: tuple[str, ...] = ()  # optional columns beyond its formats' (`dataset.columns` may map onto them)
    any_column: bool = False  # every column reaches it (reward functions read extra columns by name)

    @property
    def columns(self) -> frozenset[str]:
        """The column names `dataset.columns` may map a source's fields onto (empty: any name)."""
        if self.any_column:
            return frozenset()
        return frozenset(self.also_reads).union(*(shape.columns for shape in self.formats))

    @property
    def runs_code(self) -> tuple[str, ...]:
        """Its fields that can run code: the trust rules take them only from the user's own file."""
        return ("trust_remote_code", "reward_funcs") if self.rewards else ("trust_remote_code",)

    @property
    def config_class(self) -> str:
        """TRL's config class name (generated from the installed TRL)."""
        return _trl_table()["classes"][self.name]

    @property
    def module(self) -> str:
        """The module TRL ships the config and trainer classes in."""
        return _trl_table()["modules"][self.name]

    @property
    def trainer_class(self) -> str:
        return self.config_class.removesuffix("Config") + "Trainer"


def _trl_table() -> dict[str, Any]:
    from peftrun.recipe.schema.fields import load_table  # the schema package imports this module

    return load_table("trl_fields.json")


def _no_collator(name: str) -> str:
    return f"TRL's {name} trainer has no padding-free collator"


TRAINERS: Final[dict[str, TrainerType]] = {t.name: t for t in (
    TrainerType("sft", (_format("prompt-completion", "prompt", "completion"), _format("conversational", "messages"),
                        _format("conversational (ShareGPT)", "conversations"),  # TRL converts it to messages
                        _format("language modeling", "text")),
                2.0e-5, TRL_PEFT_GUIDANCE, also_reads=("tools",)),
    TrainerType("dpo", PREFERENCE, 5.0e-7, TRL_PEFT_GUIDANCE, paired=True, also_reads=("prompt",),
                padding_free_blocked="TRL 1.16's DPOTrainer turns padding_free off after a refactor"),
    TrainerType("grpo", PROMPT_ONLY, 1.0e-6, TRL_PEFT_GUIDANCE, rewards=True, extra_arguments=("reward_funcs",),
                generates=True, padding_free_blocked=_no_collator("grpo"), any_column=True),
    TrainerType("reward", PREFERENCE, 1.0e-5, TRL_PEFT_GUIDANCE, paired=True, sequence_classification=True,
                also_reads=("prompt",),
                padding_free_blocked=_no_collator("reward")),
    TrainerType("kto", (_format("unpaired preference", "prompt", "completion", "label"),), 1.0e-6,
                "TRL 1.16 KTOConfig default", padding_free_blocked=_no_collator("kto")),
    TrainerType("rloo", PROMPT_ONLY, 1.0e-6, "TRL 1.16 RLOOConfig default", rewards=True,
                extra_arguments=("reward_funcs",), generates=True, padding_free_blocked=_no_collator("rloo"),
                any_column=True),
    TrainerType("distillation", PROMPT_ONLY,  # TRL's DistillationTrainer generates on-policy
                1.0e-6, "TRL 1.16 DistillationConfig default", extra_arguments=("teacher_model",),
                padding_free_blocked=_no_collator("distillation")),
    TrainerType("orpo", PREFERENCE, 1.0e-6, "TRL 1.16 trl.experimental ORPOConfig default", paired=True,
                also_reads=("prompt",),
                padding_free_blocked=_no_collator("orpo"), trl_command=False, experimental=True),
    TrainerType("cpo", PREFERENCE, 1.0e-6, "TRL 1.16 trl.experimental CPOConfig default", paired=True,
                also_reads=("prompt",),
                padding_free_blocked=_no_collator("cpo"), trl_command=False, experimental=True),
)}
TRAINER_TYPES: Final = tuple(TRAINERS)
