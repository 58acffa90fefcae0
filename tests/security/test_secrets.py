"""Secrets never leave: values read from the environment are masked in everything peftrun prints or writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.train.rundir import resolved_recipe_text
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture

SECRET = "hf_leaky_token_value_9"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEFTRUN_TEST_LEAK", SECRET)


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("command", ["explain", "validate"])
def test_explain_and_validate_never_print_an_environment_value(write, capsys, command: str) -> None:  # noqa: F811
    """explain printed the value; validate never did (held, kept as a guard)."""
    path = write("r.yaml", MINIMAL.replace("org/model", "'${oc.env:PEFTRUN_TEST_LEAK}'"))
    code, text = cli([command, str(path)], capsys)
    assert code == 0 and SECRET not in text and (command == "validate" or "***" in text)


@pytest.mark.parametrize("reference", ["'${model.revision}'", "'${.revision}'", "'${oc.select:model.revision}'"])
def test_relative_and_selected_references_are_masked_in_the_resolved_recipe(write, reference: str) -> None:  # noqa: F811
    """A relative or selected reference wrote the value into recipe.resolved.yaml; a plain one was already masked
    (held, kept as a guard)."""
    text = MINIMAL.replace("{name_or_path: org/model}", "{name_or_path: org/model, revision: '${oc.env:PEFTRUN_TEST_LEAK}', "
                           f"tokenizer: {reference}}}")
    saved = resolved_recipe_text(resolve(load_recipe(write("r.yaml", text))))
    assert SECRET not in saved and f"tokenizer: {reference.strip(chr(39))}" in saved


def test_a_secret_in_a_name_or_a_training_argument_is_refused(write) -> None:  # noqa: F811
    text = MINIMAL.replace("{type: sft}", "{type: sft, run_name: '${oc.env:PEFTRUN_TEST_LEAK}'}")
    with pytest.raises(RecipeError) as info:
        load_recipe(write("r.yaml", text + "name: ${oc.env:PEFTRUN_TEST_LEAK}\n"))
    found = [str(p) for p in info.value.problems]
    assert [p.split(": ")[1] for p in found] == ["trainer.run_name", "name"]
    assert all("cannot be read from the environment" in p for p in found) and SECRET not in str(info.value)


LEAK = "'org/${oc.env:PEFTRUN_TEST_LEAK}'"


@pytest.mark.parametrize(("model", "data", "exit_code"), [
    ("{name_or_path: MODEL}", LEAK, 3),  # the data layer: a hub dataset not in the cache
    (f"{{name_or_path: {LEAK}}}", "DATA", 4),  # the model layer: a hub model not in the cache
    (f"{{name_or_path: MODEL, tokenizer: {LEAK}}}", "DATA", 4),
    ("{name_or_path: MODEL}", "'/nowhere/${oc.env:PEFTRUN_TEST_LEAK}.jsonl'", 2),  # held before: a recipe error
])
def test_errors_of_every_layer_mask_the_value(write, capsys, tiny_model_dir: Path, data_dir: Path,  # noqa: F811
                                              model: str, data: str, exit_code: int) -> None:
    """The hub ids were printed by the data and model layers' "not in the cache" errors; a missing local data
    file was already a recipe error that did not print the value."""
    text = f"model: {model}\ntrainer: {{type: sft}}\ndataset: {{path: {data}}}\n"
    path = write("r.yaml", text.replace("MODEL", str(tiny_model_dir)).replace("DATA", str(data_dir / "sft.jsonl")))
    code, text = cli(["data", str(path)], capsys)
    assert code == exit_code and SECRET not in text and (exit_code == 2 or "'***' is not a local path" in text), text


def test_a_dry_run_never_prints_the_value(write, capsys, tiny_model_dir: Path, data_dir: Path) -> None:  # noqa: F811
    text = MINIMAL.replace("org/model", str(tiny_model_dir)).replace("org/data", str(data_dir / "sft.jsonl"))
    path = write("r.yaml", text + "output: {dir: 'runs/${oc.env:PEFTRUN_TEST_LEAK}'}\n")
    code, printed = cli(["run", str(path), "--dry-run"], capsys)
    assert code == 0 and SECRET not in printed and "***" in printed, printed
