"""The JSON Schema as an editor sees it, checked with an independent validator (`jsonschema`, what the YAML
language server does): every shipped recipe and base is valid, every bad recipe gets an error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from peftrun.recipe.schema.jsonschema import recipe_json_schema
from peftrun.recipe.starters import starters

ROOT = Path(__file__).resolve().parents[3]
FILES = list(starters().values())  # the shipped recipes and the package's bases
VALIDATOR = Draft202012Validator(recipe_json_schema())

# (recipe text, the key the error must name, where it is)
BAD = [
    ("peft: {method: lora, lora_alpah: 16}", "'lora_alpah' was unexpected", "$.peft"),
    ("peft: {method: prompt_tuning, r: 8}", "'r' was unexpected", "$.peft"),
    ("peft: {method: lorra}", "'lorra' is not one of ['adalora', 'adamss'", "$.peft.method"),
    ("extends: base.yaml\npeft: {r: 8, lora_alpah: 16}", "'lora_alpah' was unexpected", "$.peft"),
    ("trainer: {type: sft, learning_rat: 1.0e-4}", "'learning_rat' was unexpected", "$.trainer"),
    ("trainer: {type: sft, beta: 0.1}", "'beta' was unexpected", "$.trainer"),
    ("trainer: {type: dpo, max_seq_length: 512}", "'max_seq_length' was unexpected", "$.trainer"),
    ("trainer: {num_train_epoch: 1}", "'num_train_epoch' was unexpected", "$.trainer"),
    ("trainer: {type: sft, max_length: long}", "'long' is not of type 'integer'", "$.trainer.max_length"),
    ("trainer: {type: sft, learning_rate: fast}", "'auto' was expected", "$.trainer.learning_rate"),  # a number, or auto
    ("trainer: {type: ppo}", "'ppo' is not one of", "$.trainer.type"),
    ("launch: {strategy: fsdp, zero_stage: 3}", "'zero_stage' was unexpected", "$.launch"),
    ("launch: {strategy: deepspeed, zero_stage: 4}", "4 is not one of [1, 2, 3]", "$.launch.zero_stage"),
    ("model: {name_or_path: m, trust_remote_code: yes please}", "'yes please' is not of type 'boolean'",
     "$.model.trust_remote_code"),
    ("model: {name_or_path: m, torch_dtype: bfloat16}", "'torch_dtype' was unexpected", "$.model"),
    ("quantization: {bits: 3}", "3 is not one of [4, 8]", "$.quantization.bits"),
    ("dataset: {path: x, eval: {fractoin: 0.1}}", "'fractoin' was unexpected", "$.dataset.eval"),
    ("traner: {type: sft}", "'traner' was unexpected", "$"),
    ("seed: forty-two", "'forty-two' is not of type 'integer'", "$.seed"),
    ("extends: {path: base.yaml}", "{'path': 'base.yaml'}", "$.extends"),
]


def errors(text: str) -> list:
    return list(VALIDATOR.iter_errors(yaml.safe_load(text)))


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(recipe_json_schema())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shipped_recipes_and_bases_are_valid(path: Path) -> None:
    assert [e.message for e in errors(path.read_text())] == []


@pytest.mark.ci_env
@pytest.mark.parametrize(("text", "message", "where"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_recipe_gets_an_error_naming_its_key(text: str, message: str, where: str) -> None:
    found = errors(text)
    best = best_match(found)
    assert best is not None and message in best.message and best.json_path == where
    assert len(found) == 1  # one problem, one error: no "not valid under any of the given schemas" besides it


def test_null_switches_a_section_off_and_interpolations_fill_numbers() -> None:
    assert errors("quantization: null\npeft: null\nlaunch: {num_processes: '${oc.env:N,1}', machine_rank: '${oc.env:R,0}'}") == []
