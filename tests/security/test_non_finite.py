"""Non-finite numbers: refused by the schema, and a run whose weights blow up stops with that message."""

from __future__ import annotations

from pathlib import Path

import pytest

import peftrun
from peftrun.errors import RecipeError, TrainingError
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
    with pytest.raises(TrainingError, match=r"trainable weights became non-finite \(NaN or infinite\) at step 1: "
                                            r"training stopped and nothing was saved as finished") as raised:
        peftrun.run(data)
    assert raised.value.exit_code == 6 and "never changed" not in str(raised.value)
    assert not (in_tmp / "runs/t/adapter_model.safetensors").exists() and not (in_tmp / "runs/t/manifest.json").exists()
