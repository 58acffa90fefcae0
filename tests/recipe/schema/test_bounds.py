"""Numeric trainer fields outside their range are refused, located, for every trainer type (schema/bounds.py)."""

from __future__ import annotations

import typing

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.schema import TRAINER_TYPES, Recipe, trl_table
from peftrun.recipe.trainer_types import TRAINERS
from peftrun.recipe.schema.bounds import BOUNDS
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)

TRAINERS = {kind: kind for kind in TRAINER_TYPES} | {kind: f"{kind}, reward_funcs: [think_format]" for kind in TRAINER_TYPES if TRAINERS[kind].rewards}
BOUNDED = [(kind, name) for kind in TRAINER_TYPES for name in BOUNDS
           if name in {row["name"] for row in trl_table()["fields"][kind]}]


def problems(write, trainer: str) -> list[str]:  # noqa: ANN001
    with pytest.raises(RecipeError) as caught:
        load_recipe(write("r.yaml", MINIMAL.replace("{type: sft}", "{" + trainer + "}")))
    assert caught.value.exit_code == 2
    return [str(p) for p in caught.value.problems]


def accepted(write, trainer: str) -> Recipe:  # noqa: ANN001
    return load_recipe(write("r.yaml", MINIMAL.replace("{type: sft}", "{" + trainer + "}")))


def test_every_bound_names_a_trl_field() -> None:
    fields = {row["name"] for rows in trl_table()["fields"].values() for row in rows}
    assert sorted(set(BOUNDS) - fields) == []


@pytest.mark.parametrize(("kind", "name"), BOUNDED, ids=[f"{k}.{n}" for k, n in BOUNDED])
def test_every_trainer_type_refuses_every_bounded_field_out_of_range(write, kind: str, name: str) -> None:
    """-5 is outside every range of the table; the error is located and gives the range."""
    found = problems(write, f"type: {TRAINERS[kind]}, {name}: -5")
    assert len(found) == 1
    assert found[0].startswith(f"r.yaml:2:{len(TRAINERS[kind]) + 19}: trainer.{name}: must be {BOUNDS[name].expected}; got -5")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("num_train_epochs: -1", "r.yaml:2:22: trainer.num_train_epochs: must be > 0, unless max_steps (which overrides it) is set; got -1.0"),
        ("num_train_epochs: 0", "r.yaml:2:22: trainer.num_train_epochs: must be > 0, unless max_steps (which overrides it) is set; got 0.0"),
        ("max_steps: 0", "r.yaml:2:22: trainer.max_steps: must be -1 (train for num_train_epochs) or a number of steps >= 1; got 0"),
        ("per_device_train_batch_size: 0", "r.yaml:2:22: trainer.per_device_train_batch_size: must be a whole number >= 1; got 0"),
        ("per_device_eval_batch_size: 0", "r.yaml:2:22: trainer.per_device_eval_batch_size: must be a whole number >= 1; got 0"),
        ("gradient_accumulation_steps: 0", "r.yaml:2:22: trainer.gradient_accumulation_steps: must be a whole number >= 1; got 0"),
        ("learning_rate: -2e-4", "r.yaml:2:22: trainer.learning_rate: must be >= 0; got -0.0002"),
        ("weight_decay: -0.01", "r.yaml:2:22: trainer.weight_decay: must be >= 0; got -0.01"),
        ("max_grad_norm: -1", "r.yaml:2:22: trainer.max_grad_norm: must be >= 0 (0 turns clipping off); got -1"),
        ("warmup_steps: 1.5", "r.yaml:2:22: trainer.warmup_steps: must be a whole number of steps >= 0, or a float in "
         "[0, 1): that share of the training steps (the warmup_ratio of transformers 4); got 1.5"),
        ("logging_steps: 0", "r.yaml:2:22: trainer.logging_steps: must be a whole number of steps >= 1, or a float in "
         "(0, 1): that share of the training steps; got 0"),
        ("save_steps: 2.5", "r.yaml:2:22: trainer.save_steps: must be a whole number of steps >= 1, or a float in "
         "(0, 1): that share of the training steps; got 2.5"),
        ("adam_beta2: 1", "r.yaml:2:22: trainer.adam_beta2: must be in [0, 1); got 1"),
    ],
)
def test_impossible_values_are_refused_with_their_range(write, fields: str, expected: str) -> None:
    assert problems(write, f"type: sft, {fields}") == [expected]


def test_every_out_of_range_field_is_reported_at_once(write) -> None:
    found = problems(write, "type: dpo, per_device_train_batch_size: 0, learning_rate: -1.0, beta: -0.1, label_smoothing: 0.5")
    assert [p.split(": ")[1] for p in found] == [
        "trainer.per_device_train_batch_size", "trainer.learning_rate", "trainer.label_smoothing", "trainer.beta"]


@pytest.mark.parametrize(
    "fields",
    [
        "num_train_epochs: 0, max_steps: 100",  # max_steps overrides the epochs
        "num_train_epochs: 0.5",
        "warmup_steps: 0.1",
        "warmup_steps: 20",
        "warmup_steps: 0",
        "logging_steps: 0.05, save_steps: 500, eval_steps: 0.25",
        "learning_rate: 0",
        "learning_rate: auto",
        "max_grad_norm: 0",
        "eval_steps: null",
        "max_length: null",
    ],
)
def test_values_at_the_edges_are_accepted(write, fields: str) -> None:
    accepted(write, f"type: sft, {fields}")


def test_grpo_needs_two_generations_per_group(write) -> None:
    assert problems(write, "type: grpo, reward_funcs: [think_format], num_generations: 1") == [
        "r.yaml:2:53: trainer.num_generations: must be a whole number >= 2 (advantages compare generations within "
        "a group); got 1"]


def test_the_bounds_key_on_field_names_so_new_trainer_types_get_them() -> None:
    """Every trainer model carries the bound of each of its fields in the table (no list of types anywhere)."""
    trainers = typing.get_args(typing.get_args(Recipe.model_fields["trainer"].annotation)[0])
    for model in trainers:
        bounded = [name for name in BOUNDS if name in model.model_fields and BOUNDS[name].unless is None]
        assert bounded and all(model.model_fields[name].metadata for name in bounded), model.__name__


def test_warmup_ratio_says_that_warmup_steps_takes_the_ratio(write) -> None:
    [problem] = problems(write, "type: sft, warmup_ratio: 0.1")
    assert problem.startswith("r.yaml:2:22: trainer.warmup_ratio: `warmup_ratio` is not a key here: ")
    assert "use trainer.warmup_steps (a value below 1 is a ratio of the total steps)" in problem
