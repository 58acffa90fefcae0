"""The trainer-type registry is the one list: it matches the installed TRL, and the schema, explain, diff, the
data formats, the plan and the trust rules all read it."""

from __future__ import annotations

import inspect

import pytest

from peftrun.recipe.diff import compare
from peftrun.recipe.explain import rows
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.recipe.schema import TRAINER_TYPES, Recipe, trl_table
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.recipe.trust import BY_NAME, schema_fields
from tests.recipe_files import write  # noqa: F401 (write is a fixture)


def test_it_names_every_trainer_the_generated_trl_table_has_and_no_other() -> None:
    assert sorted(TRAINERS) == sorted(trl_table()["classes"]) == sorted(trl_table()["fields"])
    assert TRAINER_TYPES == tuple(TRAINERS)
    types = Recipe.model_json_schema()["$defs"]["SFTTrainer"]["properties"]["type"]
    assert types == {"const": "sft", "description": "Trainer: TRL SFTConfig.", "title": "Type", "type": "string"}


@pytest.mark.parametrize("kind", TRAINER_TYPES)
def test_its_trainer_classes_and_arguments_are_the_installed_trl_ones(kind: str) -> None:
    """The class the builder imports exists where the registry says, and takes the extra arguments it is given."""
    from peftrun.builders.trainers import trainer_class

    cls = trainer_class(kind)
    assert cls.__name__ == TRAINERS[kind].trainer_class
    assert cls.__module__.startswith(TRAINERS[kind].module)
    assert set(TRAINERS[kind].extra_arguments) <= set(inspect.signature(cls.__init__).parameters)
    fields = {row["name"] for row in trl_table()["fields"][kind]}
    assert TRAINERS[kind].generates == ("generation_batch_size" in fields)  # the plan sizes what it generates


@pytest.mark.parametrize("kind", TRAINER_TYPES)
def test_its_code_running_fields_are_exactly_what_the_trust_rules_gate(kind: str) -> None:
    """What the registry says runs code is what trust.py classifies as `execute` in that trainer's section."""
    owner = {"sft": "SFTTrainer", "reward": "RewardTrainer", "distillation": "DistillationTrainer"}.get(
        kind, f"{kind.upper()}Trainer")
    executing = {path.split(".")[-1] for path, owners in schema_fields().items()
                 if path.startswith("trainer.") and owner in owners
                 and BY_NAME.get(path.split(".")[-1]) is not None and BY_NAME[path.split(".")[-1]].kind == "execute"}
    assert executing == set(TRAINERS[kind].runs_code)


def test_explain_and_diff_show_the_reward_functions_of_every_rewarding_trainer(write) -> None:
    """RLOO scores with reward functions as GRPO does: both show them (the old `== "grpo"` check hid RLOO's)."""
    rewarding = [kind for kind in TRAINER_TYPES if TRAINERS[kind].rewards]
    assert rewarding == ["grpo", "rloo"]
    for kind in rewarding:
        def plan(fn: str, kind: str = kind):  # noqa: ANN202
            return resolve(load_recipe(write(f"{kind}-{fn}.yaml", (
                f"model: {{name_or_path: org/model}}\ntrainer: {{type: {kind}, reward_funcs: [{fn}]}}\n"
                "dataset: {path: org/data}\npeft: {method: lora}\n"))), CPU)

        shown = {key: value for key, value, _ in rows(plan("think_format"))}
        assert shown["trainer.reward_funcs"] == ["think_format"]
        changed = compare(plan("think_format"), plan("concise"), "a", "b").values
        assert [(c.key, c.a, c.b) for c in changed if c.key == "trainer.reward_funcs"] == [
            ("trainer.reward_funcs", ["think_format"], ["concise"])]
