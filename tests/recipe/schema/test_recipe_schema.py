"""peftrun.recipe.schema: the pydantic models (no I/O) and the JSON Schema generated from them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from peftrun.recipe import defaults
from peftrun.recipe.schema import (
    OWNED_ELSEWHERE, PEFT_METHODS, TRAINER_TYPES, LoraSection, QuantizationSection, Recipe, method_info,
    trl_table,
)
from peftrun.recipe.schema.peft import OWN_FIELDS, peft_table
from peftrun.recipe.resolver import TRAINER_OWNED
from peftrun.recipe.schema.trainer import RETIRED
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.recipe.schema.jsonschema import default_schema_path, recipe_json_schema

MINIMAL = {"name": "x", "model": {"name_or_path": "m"}, "trainer": {"type": "sft"}, "dataset": {"path": "d"}}


def test_section_defaults_come_from_the_defaults_module() -> None:
    lora = LoraSection(method="lora")
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.bias, lora.target_modules) == (
        defaults.LORA_R, defaults.LORA_ALPHA, defaults.LORA_DROPOUT, defaults.LORA_BIAS, defaults.LORA_TARGET_MODULES,
    )
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules) == (16, 32, 0.05, "all-linear")
    recipe = Recipe.model_validate(MINIMAL)
    assert (recipe.seed, recipe.model.dtype, recipe.dataset.split, recipe.output.save) == (42, "auto", "train", "adapter")


def test_4bit_options_stay_unset_until_resolved() -> None:
    quant = QuantizationSection(bits=4)
    assert (quant.quant_type, quant.double_quant, quant.compute_dtype) == (None, None, None)


def test_sections_are_frozen() -> None:
    recipe = Recipe.model_validate(MINIMAL)
    with pytest.raises(ValidationError):
        recipe.model.name_or_path = "other"  # type: ignore[misc]


@pytest.mark.parametrize("kind", TRAINER_TYPES)
def test_trainer_sections_hold_exactly_trls_fields(kind: str) -> None:
    extra = {"reward_funcs": ["a:b"]} if TRAINERS[kind].rewards else {}
    model = type(Recipe.model_validate({**MINIMAL, "trainer": {"type": kind, **extra}}).trainer)
    trl_names = {row["name"] for row in trl_table()["fields"][kind]}
    ours = set(model.model_fields) - set(TRAINER_OWNED)  # peftrun's own trainer keys
    assert ours == trl_names - set(OWNED_ELSEWHERE) - RETIRED  # retired: renamed in the migration registry
    assert "learning_rate" in ours and "output_dir" not in ours
    assert ("reward_funcs" in model.model_fields) == TRAINERS[kind].rewards


def test_trainer_defaults_are_trls_own() -> None:
    sft = Recipe.model_validate(MINIMAL).trainer
    assert (sft.max_length, sft.packing, sft.per_device_train_batch_size) == (1024, False, 8)
    assert sft.learning_rate == "auto"  # peftrun's rule, not TRL's 2e-5


def test_table_names_the_trl_config_classes() -> None:
    table = trl_table()
    assert table["classes"] == {
        "sft": "SFTConfig", "dpo": "DPOConfig", "grpo": "GRPOConfig", "reward": "RewardConfig", "kto": "KTOConfig",
        "rloo": "RLOOConfig", "distillation": "DistillationConfig", "orpo": "ORPOConfig", "cpo": "CPOConfig",
    }
    assert table["modules"]["orpo"] == "trl.experimental.orpo" and table["modules"]["kto"] == "trl"
    assert table["trl_version"].startswith("1.16")


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_peft_sections_hold_exactly_pefts_fields(method: str) -> None:
    section = type(Recipe.model_validate({**MINIMAL, "peft": {"method": method}}).peft)
    own = set(OWN_FIELDS.get(method, {}))  # peftrun's own fields (lora: trainable_tokens)
    assert set(section.model_fields) - {"method"} - own == {row["name"] for row in method_info(method)["fields"]}
    assert section.model_json_schema()["properties"]["method"]["const"] == method


def test_peft_table_lists_every_peft_type() -> None:
    table = peft_table()
    assert table["peft_version"] == "0.21.2" and len(table["methods"]) == 45
    assert table["methods"]["ia3"]["class"] == "IA3Config" and not table["methods"]["ia3"]["prompt_learning"]
    assert table["methods"]["prefix_tuning"]["prompt_learning"]
    rows = {row["name"]: row for row in table["methods"]["oft"]["fields"]}
    assert rows["oft_block_size"]["kinds"] == ["int"] and rows["oft_block_size"]["help"]


@pytest.mark.ci_env
def test_committed_json_schema_is_the_generated_one() -> None:
    committed = json.loads(default_schema_path().read_text())
    assert committed == recipe_json_schema()


def test_json_schema_is_strict_and_discriminated() -> None:
    schema = recipe_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    # files are checked one at a time: any of them may be partial, so no section or key is required
    assert "required" not in schema and not any("required" in d for d in schema["$defs"].values())
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if d.get("type") == "object")
    peft = schema["properties"]["peft"]["then"]
    assert peft["properties"]["method"]["enum"] == list(PEFT_METHODS)
    arms = [arm["then"] for arm in peft["allOf"]]
    assert arms[PEFT_METHODS.index("lora")] == {"$ref": "#/$defs/LoraSection"}
    assert arms[PEFT_METHODS.index("ia3")] == {"$ref": "#/$defs/IA3Section"} and arms[-1] == {"$ref": "#/$defs/AnyPeft"}
    r_field = schema["$defs"]["LoraSection"]["properties"]["r"]
    assert r_field["default"] == 16 and r_field["description"] == "Lora attention dimension"
    trainer = schema["properties"]["trainer"]
    assert sorted(trainer["properties"]["type"]["enum"]) == sorted(TRAINER_TYPES)
    learning_rate = schema["$defs"]["SFTTrainer"]["properties"]["learning_rate"]
    assert learning_rate["default"] == "auto"
