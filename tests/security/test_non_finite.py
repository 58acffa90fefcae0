"""Non-finite numbers: refused by the schema; a run that diverges stops with its own error (DivergedError, exit 10),
never "the trainable parameters never changed" and never exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest

import peftrun
from peftrun.errors import DivergedError, RecipeError
from peftrun.recipe.loader import load_recipe
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture
from tests.train.test_runner import LORA, recipe


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused_by_the_schema(write, value: str) -> None:  # noqa: F811
    with pytest.raises(RecipeError) as info:
        load_recipe(write("r.yaml", MINIMAL.replace("{type: sft}", f"{{type: sft, learning_rate: {value}, "
                                                    f"adam_epsilon: {value}, max_grad_norm: {value}}}")))
    found = [str(p) for p in info.value.problems]
    assert len(found) == 3 and all("must be a finite number; got" in p for p in found), found


def test_weights_that_become_non_finite_stop_the_run_at_that_step(in_tmp: Path, tiny_model_dir: Path,
                                                                  data_dir: Path) -> None:
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "max_steps": 5, "learning_rate": 1.0e39}, LORA)
    with pytest.raises(DivergedError, match=r"trainable weights became non-finite \(NaN or infinite\) at step 1: "
                                            r"training stopped and nothing was saved as finished") as raised:
        peftrun.run(data)
    assert raised.value.exit_code == 10 and "never changed" not in str(raised.value)
    assert not (in_tmp / "runs/t/adapter_model.safetensors").exists() and not (in_tmp / "runs/t/manifest.json").exists()


def test_a_learning_rate_of_1e12_that_saturates_the_model_is_divergence_not_never_changed(
        in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    """On the tiny model, 1e12 keeps every number finite: the first step throws the LoRA weights to ~1e12, the
    model saturates and every later gradient norm is exactly 0 (the loss stays put). The logged norms (every
    10 steps, TRL's default) were all 0, so the run ended with "never changed" (exit 6); with every step logged
    it ended with exit 0 and that adapter. (lr >= 1e18 makes the step-2 loss NaN: tests/train/test_guards.py.)"""
    data = recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "max_steps": 12, "logging_steps": 10,
                                                          "learning_rate": 1.0e12}, LORA)
    with pytest.raises(DivergedError, match=r"the gradient norm fell from [0-9.e+-]+ at step 1 to exactly 0 at step 2: "
                                            r"it stayed 0 to the last step \(12\) with the largest trainable weight "
                                            r"at [0-9.]+e\+12: the weights blew up and the model saturated, so "
                                            r"nothing was saved as finished. Usual causes: a learning rate too high "
                                            r"\(trainer.learning_rate is 1000000000000.0\)") as raised:
        peftrun.run(data)
    assert raised.value.exit_code == 10 and "never changed" not in str(raised.value)
    assert not (in_tmp / "runs/t/adapter_model.safetensors").exists() and not (in_tmp / "runs/t/manifest.json").exists()
