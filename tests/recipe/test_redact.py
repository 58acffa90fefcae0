"""A value read through `${oc.env:...}` never appears in an error: the message names the expression instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.errors import RecipeError
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan
from tests.recipe_files import MINIMAL, write  # noqa: F401 (write is a fixture)

SECRET = "hf_Secret_token_123"
HIDDEN = "the value of ${oc.env:PEFTRUN_TEST_SECRET} (not shown: it comes from the environment)"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEFTRUN_TEST_SECRET", SECRET)


def refused(write, text: str) -> list[str]:  # noqa: ANN001
    """Every problem of the recipe (schema and resolution), as printed."""
    with pytest.raises(RecipeError) as caught:
        checked_plan(load_recipe(write("r.yaml", text)), CPU)
    found = [str(p) for p in caught.value.problems]
    assert not any(SECRET in line for line in found), found
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "seed: ${oc.env:PEFTRUN_TEST_SECRET}",
         f"r.yaml:4:1: seed: Input should be a valid integer, unable to parse string as an integer; got {HIDDEN}"),
        (MINIMAL.replace("{type: sft}", "{type: sft, num_train_epochs: '${oc.env:PEFTRUN_TEST_SECRET}'}"),
         f"r.yaml:2:22: trainer.num_train_epochs: Input should be a valid number, unable to parse string as a number; got {HIDDEN}"),
        (MINIMAL.replace("{type: sft}", "{type: '${oc.env:PEFTRUN_TEST_SECRET}'}"),
         f"r.yaml:2:11: trainer.type: unknown value {HIDDEN} (one of: sft, dpo, grpo, reward, "),
        (MINIMAL + "peft: {method: lora, target_modules: '${oc.env:PEFTRUN_TEST_SECRET}'}",
         f"r.yaml:4:22: peft.target_modules: Input should be a valid list, or 'all-linear', 'attention' or 'qv'; got {HIDDEN}"),
        (MINIMAL + "output: ${oc.env:PEFTRUN_TEST_SECRET}", f"r.yaml:4:1: output: must be a mapping of keys, got {HIDDEN}"),
        (MINIMAL.replace("org/data", "'./${oc.env:PEFTRUN_TEST_SECRET}.jsonl'"),
         "r.yaml:3:11: dataset.path: no such file or directory: the value of ./${oc.env:PEFTRUN_TEST_SECRET}.jsonl "
         "(not shown: it comes from the environment) (relative paths start at "),
        (MINIMAL.replace("{type: sft}", "{type: grpo, reward_funcs: ['${oc.env:PEFTRUN_TEST_SECRET}']}"),
         f"r.yaml:2:38: trainer.reward_funcs.0: no shipped reward named {HIDDEN} (shipped: "),
        (MINIMAL + "token: ${oc.env:PEFTRUN_TEST_SECRET}\nseed: ${token}",  # through another key
         f"r.yaml:5:1: seed: Input should be a valid integer, unable to parse string as an integer; got "
         "the value of ${token} (not shown: it comes from the environment)"),
    ],
    ids=["seed", "epochs", "discriminator", "union", "section", "missing-file", "reward", "reference"],
)
def test_a_secret_in_a_wrong_place_is_never_printed(write, text: str, expected: str) -> None:
    assert any(line.startswith(expected) for line in refused(write, text)), refused(write, text)


def test_the_cli_report_of_a_recipe_full_of_misplaced_secrets(write, capsys: pytest.CaptureFixture[str]) -> None:
    text = MINIMAL.replace("{type: sft}", "{type: sft, learning_rate: '${oc.env:PEFTRUN_TEST_SECRET}', "
                           "report_to: '${oc.env:PEFTRUN_TEST_SECRET}'}") + "seed: ${oc.env:PEFTRUN_TEST_SECRET}\n"
    assert main(["validate", str(write("r.yaml", text))]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err.count("${oc.env:PEFTRUN_TEST_SECRET}") == 2


def test_values_not_from_the_environment_are_still_shown(write) -> None:
    found = refused(write, MINIMAL + "seed: abc")
    assert found == ["r.yaml:4:1: seed: Input should be a valid integer, unable to parse string as an integer; got 'abc'"]
