"""The `trainer:` section, discriminated on `type`.

Each trainer type accepts exactly the fields of its TRL config class, by TRL's
own names and types, read from `trl_fields.json` (generated from the installed
TRL by scripts/gen_trl_fields.py) so that validation never imports trl.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, StrictBool, StrictInt, StrictStr, create_model

from peftrun.recipe.migrations import retired
from peftrun.recipe.schema.base import Section

TABLE_PATH = Path(__file__).with_name("trl_fields.json")
TRAINER_TYPES = ("sft", "dpo", "grpo", "reward")

# TRL fields that a recipe sets elsewhere: trainer.<key> is refused with this pointer.
OWNED_ELSEWHERE: dict[str, str] = {
    "output_dir": "use output.dir",
    "seed": "use the top-level `seed`",
    "push_to_hub": "use output.push_to_hub",
    "hub_model_id": "use output.hub_model_id",
    "hub_token": "set the HF_TOKEN environment variable; secrets never go in a recipe",
    "resume_from_checkpoint": "run `peftrun RECIPE --resume`",
    "model_init_kwargs": "use the `model` section",
    "parallelism_config": "use the `launch` section",
    "fsdp": "use launch.strategy: fsdp",
    "fsdp_config": "use launch.strategy: fsdp",
    "deepspeed": "use launch.strategy: deepspeed",
    "local_rank": "set by the launcher (`launch` section)",
}

# TRL fields whose names the migration registry retires (deprecated aliases such as gradient_checkpointing).
RETIRED = retired("trainer")

_KIND_TYPES: dict[str, Any] = {
    "bool": StrictBool,
    "int": StrictInt,
    "float": float,
    "str": StrictStr,
    "list[str]": list[StrictStr],
    "list[float]": list[float],
    "dict": dict[str, Any],
    "any": Any,
}


@cache
def trl_table() -> dict[str, Any]:
    """The generated field table of the installed TRL's config classes."""
    return json.loads(TABLE_PATH.read_text())


def _annotation(row: dict[str, Any]) -> Any:
    if "choices" in row:
        options: list[Any] = [Literal[tuple(row["choices"])]]  # type: ignore[misc]
        options += [_KIND_TYPES[k] for k in row["kinds"] if k != "str"]
    else:
        options = [_KIND_TYPES[k] for k in row["kinds"]]
    if row["nullable"]:
        options.append(type(None))
    return options[0] if len(options) == 1 else Union[tuple(options)]  # type: ignore[return-value]


def _field(row: dict[str, Any]) -> tuple[Any, Any]:
    default = row.get("default")
    annotation = _annotation(row)
    if default is None and not row["nullable"]:
        annotation = Union[annotation, None]  # TRL computes it when unset
    return annotation, Field(default, description=row["help"] or None)


def _trainer_model(kind: str) -> type[Section]:
    rows = [r for r in trl_table()["fields"][kind] if r["name"] not in OWNED_ELSEWHERE and r["name"] not in RETIRED]
    fields: dict[str, Any] = {r["name"]: _field(r) for r in rows}
    fields["type"] = (Literal[kind], Field(description=f"Trainer: TRL {trl_table()['classes'][kind]}."))
    fields["learning_rate"] = (
        Union[float, Literal["auto"]],
        Field("auto", description="Peak learning rate; auto = peftrun's learning-rate rule for the trainer and PEFT method."),
    )
    if kind == "grpo":
        fields["reward_funcs"] = (
            list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")]],
            Field(
                min_length=1,
                description="Reward functions: `module:function` references or names shipped in peftrun.train.rewards.",
            ),
        )
    name = f"{kind.upper() if kind != 'reward' else 'Reward'}Trainer"
    doc = f"Fields of TRL's {trl_table()['classes'][kind]} (TRL {trl_table()['trl_version']})."
    return create_model(name, __base__=Section, __doc__=doc, **fields)  # type: ignore[call-overload]


SFTTrainer = _trainer_model("sft")
DPOTrainer = _trainer_model("dpo")
GRPOTrainer = _trainer_model("grpo")
RewardTrainer = _trainer_model("reward")

TrainerSection = Annotated[Union[SFTTrainer, DPOTrainer, GRPOTrainer, RewardTrainer], Field(discriminator="type")]
