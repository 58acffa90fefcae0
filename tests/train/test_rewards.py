"""Reward functions named by a recipe: a user's module that fails is reported as the user's, located, and
importing one leaves the caller's sys.path as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

import peftrun
from peftrun.errors import RecipeError, TrainingError
from peftrun.train.rewards import resolve_reward
from tests.train.test_runner import LORA, recipe

GRPO = {"type": "grpo", "num_generations": 2, "per_device_train_batch_size": 2, "max_completion_length": 4}


def test_a_module_that_fails_to_import_is_named_with_its_error(in_tmp: Path) -> None:
    (in_tmp / "broken_rewards.py").write_text("undefined_name\n")
    path_before = list(sys.path)
    with pytest.raises(ValueError) as caught:
        resolve_reward("broken_rewards:f")
    assert str(caught.value) == ("importing module 'broken_rewards' raised NameError: name 'undefined_name' "
                                 "is not defined")
    assert sys.path == path_before


def test_a_reward_imported_from_the_working_directory_leaves_sys_path_alone(in_tmp: Path) -> None:
    (in_tmp / "fine_rewards.py").write_text("def one(completions, **kw):\n    return [1.0] * len(completions)\n")
    path_before = list(sys.path)
    assert resolve_reward("fine_rewards:one")(completions=["a", "b"]) == [1.0, 1.0]
    assert sys.path == path_before


def test_an_exception_inside_a_reward_is_the_rewards_not_peftruns(in_tmp: Path, tiny_model_dir: Path,
                                                                  data_dir: Path) -> None:
    (in_tmp / "raising_rewards.py").write_text(
        "def score(completions, **kw):\n    return [1.0 / 0 for c in completions]\n")
    path = in_tmp / "g.yaml"
    trainer = {**GRPO, "reward_funcs": ["raising_rewards:score"]}
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "prompts.jsonl", trainer, LORA)))
    with pytest.raises(TrainingError) as caught:
        peftrun.run(path)
    message = str(caught.value)
    assert message.startswith("reward function raising_rewards:score raised ZeroDivisionError: float division by zero\n")
    assert 'raising_rewards.py", line 2, in score' in message and "peftrun/train/rewards.py" not in message


def test_a_module_that_fails_to_import_is_located_in_the_recipe(in_tmp: Path, tiny_model_dir: Path,
                                                                data_dir: Path) -> None:
    (in_tmp / "syntax_rewards.py").write_text("def f(:\n")
    path = in_tmp / "g.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "prompts.jsonl",
                                          {**GRPO, "reward_funcs": ["syntax_rewards:f"]}, LORA)))
    with pytest.raises(RecipeError) as caught:
        peftrun.run(path)
    [problem] = caught.value.problems
    assert str(problem).startswith("g.yaml:21:5: trainer.reward_funcs.0: syntax_rewards:f: importing module "
                                   "'syntax_rewards' raised")
    assert "SyntaxError" in str(problem)
