"""The `trainer:` section, discriminated on `type`.

Each trainer type accepts exactly the fields of its TRL config class, by TRL's
own names and types, read from `trl_fields.json` (generated from the installed
TRL by scripts/gen_trl_fields.py) so that validation never imports trl.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, ValidationError, create_model, model_validator

from peftrun.recipe.migrations import retired
from peftrun.recipe.trainer_types import TRAINERS, TRAINER_TYPES
from peftrun.recipe.schema.base import Section
from peftrun.recipe.schema.bounds import conditional_errors, field_check
from peftrun.recipe.schema.fields import field, load_table

TABLE_NAME = "trl_fields.json"

# TRL fields that a recipe sets elsewhere: trainer.<key> is refused with this pointer.
OWNED_ELSEWHERE: dict[str, str] = {
    "output_dir": "use output.dir",
    "seed": "use the top-level `seed`",
    "push_to_hub": "use output.push_to_hub",
    "hub_model_id": "use output.hub_model_id",
    "hub_private_repo": "use output.private (peftrun's push creates the repository; private unless it says false)",
    "hub_token": "set the HF_TOKEN environment variable; secrets never go in a recipe",
    "resume_from_checkpoint": "run `peftrun RECIPE --resume`",
    "model_init_kwargs": "use the `model` section",
    "parallelism_config": "use the `launch` section",
    "fsdp": "use launch.strategy: fsdp",
    "fsdp_config": "use launch.strategy: fsdp",
    "deepspeed": "use launch.strategy: deepspeed",
    "local_rank": "set by the launcher (`launch` section)",
    "teacher_model_init_kwargs": "the teacher loads with the student's `model` and `quantization` settings",
}
MODEL_NAMES = {"reward": "RewardTrainer", "distillation": "DistillationTrainer"}

POSSIBLE_VALUES = re.compile(r"Possible values are: ((?:`'\w+'`(?:, )?)+)")

# TRL fields whose names the migration registry retires (deprecated aliases such as gradient_checkpointing).
RETIRED = retired("trainer")


def trl_table() -> dict[str, Any]:
    """The generated field table of the installed TRL's config classes."""
    return load_table(TABLE_NAME)


class TrainerBase(Section):
    """What every trainer section shares: the numeric bounds of its fields (bounds.py)."""

    @model_validator(mode="after")
    def _conditional_bounds(self) -> "TrainerBase":
        errors = conditional_errors(self)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def _listed_choices(row: dict[str, Any]) -> tuple[Any, Any] | None:
    """A list-of-strings field whose help lists its values (DPO's loss_type, which TRL checks only at the first
    step): one of them or a list of them (TRL's __post_init__ takes a single string as a list of one)."""
    listed = POSSIBLE_VALUES.search(row.get("help") or "") if row["kinds"] == ["list[str]"] else None
    if listed is None:
        return None
    value = Literal[tuple(re.findall(r"'(\w+)'", listed.group(1)))]  # type: ignore[misc]
    return Union[value, list[value]], Field(row.get("default"), description=row["help"])  # type: ignore[valid-type]


def _bounded(name: str, spec: tuple[Any, Any]) -> tuple[Any, Any]:
    """A field's (annotation, Field) with the after-validator of its bound, if it has one."""
    return (Annotated[spec[0], AfterValidator(field_check(name))], spec[1])


def _trainer_model(kind: str) -> type[Section]:
    rows = [r for r in trl_table()["fields"][kind] if r["name"] not in OWNED_ELSEWHERE and r["name"] not in RETIRED]
    fields: dict[str, Any] = {r["name"]: _listed_choices(r) or field(r) for r in rows}
    fields["type"] = (Literal[kind], Field(description=f"Trainer: TRL {trl_table()['classes'][kind]}."))
    fields["learning_rate"] = (
        Union[float, Literal["auto"]],
        Field("auto", description="Peak learning rate; auto = peftrun's learning-rate rule for the trainer and PEFT method."),
    )
    fields["throughput"] = (
        Literal["auto", "off"],
        Field("auto", description="Batching: auto = the fastest batching that keeps every example's loss exact "
                                  "(padding-free batches where they are correct and cheaper; `explain` names the "
                                  "rule, docs/throughput.md); off = TRL's plain defaults (every batch padded to its "
                                  "longest example)."),
    )
    if TRAINERS[kind].rewards:
        fields["reward_funcs"] = (
            list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")]],
            Field(
                min_length=1,
                description="Reward functions: `module:function` references or names shipped in peftrun.train.rewards.",
            ),
        )
    name = MODEL_NAMES.get(kind, f"{kind.upper()}Trainer")
    doc = f"Fields of TRL's {trl_table()['classes'][kind]} (TRL {trl_table()['trl_version']})."
    if TRAINERS[kind].experimental:
        doc += " Experimental: TRL ships it in trl.experimental."
    bounded = {key: _bounded(key, spec) for key, spec in fields.items()}
    return create_model(name, __base__=TrainerBase, __doc__=doc, **bounded)  # type: ignore[call-overload]


SFTTrainer = _trainer_model("sft")
DPOTrainer = _trainer_model("dpo")
GRPOTrainer = _trainer_model("grpo")
RewardTrainer = _trainer_model("reward")
KTOTrainer = _trainer_model("kto")
RLOOTrainer = _trainer_model("rloo")
DistillationTrainer = _trainer_model("distillation")
ORPOTrainer = _trainer_model("orpo")
CPOTrainer = _trainer_model("cpo")

TrainerSection = Annotated[
    Union[SFTTrainer, DPOTrainer, GRPOTrainer, RewardTrainer, KTOTrainer, RLOOTrainer, DistillationTrainer,
          ORPOTrainer, CPOTrainer],
    Field(discriminator="type"),
]
