"""The `peft:` section, discriminated on `method`: PEFT's method names (lowercase PEFT types).

Each method accepts exactly the fields of its PEFT config class, by PEFT's own names,
types, defaults and help, read from `peft_fields.json` (generated from the installed
PEFT by scripts/gen_peft_fields.py) so that validation never imports peft. peftrun's
own defaults (recipe/defaults.py) and checks are layered on top.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model, field_validator, model_validator

from peftrun.recipe import defaults
from peftrun.recipe.methods import NOT_LINEAR
from peftrun.recipe.schema.base import Section
from peftrun.recipe.schema.fields import field, load_table

TABLE_NAME = "peft_fields.json"
TARGET_PRESETS = ("all-linear", "attention", "qv")
# LoRA initializations peftrun runs: from the model alone, or with their sub-config (loftq, eva, corda: the
# last two with a data pass over the recipe's data, train/init_data_pass.py).
INIT_LORA_WEIGHTS = re.compile(r"^(gaussian|olora|pissa|pissa_niter_\d+|orthogonal|loftq|eva|corda)$")
INIT_CONFIGS = {"loftq": "loftq_config", "eva": "eva_config", "corda": "corda_config"}
TaskType = Literal["CAUSAL_LM", "SEQ_CLS"]

# Field types peftrun states more precisely than PEFT's annotations (by field name, for every method).
FIELD_TYPES: dict[str, Any] = {
    "lora_alpha": int | float,
    "rank_pattern": dict[str, int] | None,
    "alpha_pattern": dict[str, float] | None,
    "init_lora_weights": bool | str,
}
# Value constraints by field name (PEFT checks only some of them, later, at construction).
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "r": {"ge": 1},
    "num_virtual_tokens": {"ge": 1},
    "lora_alpha": {"gt": 0},
}
DROPOUT = {"ge": 0, "lt": 1}  # every field named *dropout


def peft_table() -> dict[str, Any]:
    """The generated field table of the installed PEFT's config classes."""
    return load_table(TABLE_NAME)


def method_info(method: str) -> dict[str, Any]:
    """The table entry of a method: class, prompt_learning, fields."""
    return peft_table()["methods"][method]


def takes_presets(method: str) -> bool:
    """True when the method adapts the (linear) modules that target_modules names: presets apply."""
    rows = [r for r in method_info(method)["fields"] if r["name"] == "target_modules"]
    return bool(rows) and "list[str]" in rows[0]["kinds"] and method not in NOT_LINEAR


def method_defaults(method: str) -> dict[str, tuple[object, str]]:
    """peftrun's defaults for the method's fields: field -> (value, rule)."""
    return defaults.peft_defaults(method, takes_presets(method), method_info(method)["prompt_learning"])


def _field(row: dict[str, Any], ours: dict[str, tuple[object, str]], presets: bool) -> tuple[Any, Any]:
    """(annotation, Field) of a method's field: PEFT's, with peftrun's default (`ours`) and checks."""
    name = row["name"]
    constraints = DROPOUT if name.endswith("dropout") else CONSTRAINTS.get(name, {})
    if name == "r" and row.get("default") == 0:  # OFT: r 0 means "size the blocks by oft_block_size"
        constraints = {"ge": 0}
    if name in ours:
        row = {**row, "default": ours[name][0]}
    if name == "target_modules" and presets:
        kind: Any = list[Annotated[str, Field(min_length=1)]] | Literal["all-linear", "attention", "qv"]
        help_text = "Module names (or regex suffixes) to adapt, or a preset: all-linear | attention | qv. " + row["help"]
        return kind, Field(row["default"], description=help_text)
    if "config" in row:  # a nested PEFT config (LoftQConfig, EvaConfig, ...): its own fields, checked alike
        return NESTED[row["config"]] | None, Field(None, description=row["help"] or None)
    if name == "task_type":
        return TaskType | None, Field(None, description="Inferred: CAUSAL_LM, SEQ_CLS for the reward trainer.")
    annotation, info = field(row, **constraints)
    if name in FIELD_TYPES:  # keep the table's None default valid (the resolved recipe writes it back)
        annotation = FIELD_TYPES[name] if row.get("default") is not None else Union[FIELD_TYPES[name], None]
    return annotation, info


def _known_init(cls: type, value: bool | str) -> bool | str:
    if isinstance(value, str) and not INIT_LORA_WEIGHTS.match(value):
        raise ValueError(
            "must be true, false, or one of gaussian, olora, pissa, pissa_niter_N, orthogonal, loftq, eva, corda"
        )
    return value


def _init_configs(self: Any) -> Any:
    """A LoRA init sub-config goes with its init (PEFT would ignore it with a warning); LoftQ needs its own."""
    for init, key in INIT_CONFIGS.items():
        if getattr(self, key) is not None and self.init_lora_weights != init:
            raise ValueError(f"{key} is used only with init_lora_weights: {init}")
    if self.init_lora_weights == "loftq" and self.loftq_config is None:
        raise ValueError("init_lora_weights: loftq needs loftq_config (loftq_bits, loftq_iter)")
    return self


def _text_init(self: Any) -> Any:
    text_init = self.prompt_tuning_init == "TEXT"
    if text_init and not self.prompt_tuning_init_text:
        raise ValueError("prompt_tuning_init: TEXT needs prompt_tuning_init_text")
    if self.prompt_tuning_init_text and not text_init:
        raise ValueError("prompt_tuning_init_text is used only with prompt_tuning_init: TEXT")
    return self


# peftrun's checks on some methods' fields, run by pydantic with the field checks.
VALIDATORS: dict[str, dict[str, Any]] = {
    "lora": {
        "_known_init": field_validator("init_lora_weights")(classmethod(_known_init)),
        "_init_configs": model_validator(mode="after")(_init_configs),
    },
    "prompt_tuning": {"_text_init": model_validator(mode="after")(_text_init)},
}
# peftrun's own fields of some methods (not PEFT config fields: peft_kwargs leaves them out).
OWN_FIELDS: dict[str, dict[str, Any]] = {
    "lora": {"trainable_tokens": (list[str] | None, Field(
        None, description="Tokens whose embedding and output rows train and are saved (PEFT "
        "trainable_token_indices, ids from the tokenizer); default: the tokens model.special_tokens adds or "
        "sets as EOS / BOS."))},
}
SECTION_NAMES = {"lora": "LoraSection", "prompt_tuning": "PromptTuningSection"}
DOCS = {
    "lora": "LoRA and its variants (DoRA with use_dora, rsLoRA with use_rslora); QLoRA with `quantization`.",
    "prompt_tuning": "Soft prompt tuning: trains virtual token embeddings, the model stays frozen.",
}


def _method_model(method: str) -> type[Section]:
    info = method_info(method)
    ours, presets = method_defaults(method), takes_presets(method)
    fields: dict[str, Any] = {row["name"]: _field(row, ours, presets) for row in info["fields"]}
    fields = {"method": (Literal[method], Field(description=f"PEFT method: {info['class']}.")), **fields,
              **OWN_FIELDS.get(method, {})}
    name = SECTION_NAMES.get(method, f"{info['class'].removesuffix('Config')}Section")
    doc = DOCS.get(method, f"Fields of PEFT's {info['class']}") + f" (PEFT {peft_table()['peft_version']})."
    return create_model(  # type: ignore[call-overload]
        name, __base__=Section, __doc__=doc, __validators__=VALIDATORS.get(method, {}), **fields
    )


def _nested_model(name: str) -> type[Section]:
    fields = {row["name"]: field(row) for row in peft_table()["nested"][name]}
    doc = f"Fields of PEFT's {name}."
    return create_model(f"{name.removesuffix('Config')}Settings", __base__=Section, __doc__=doc, **fields)  # type: ignore[call-overload]


NESTED: dict[str, type[Section]] = {name: _nested_model(name) for name in peft_table()["nested"]}
PEFT_METHODS: tuple[str, ...] = tuple(peft_table()["methods"])
SECTIONS: dict[str, type[Section]] = {method: _method_model(method) for method in PEFT_METHODS}
LoraSection = SECTIONS["lora"]
PromptTuningSection = SECTIONS["prompt_tuning"]

PeftSection = Annotated[Union[tuple(SECTIONS.values())], Field(discriminator="method")]  # type: ignore[valid-type]
