"""`peftrun init`: a new recipe from a shipped one or a shipped base, valid as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.recipe.shipped import shipped_recipes
from peftrun.recipe.starters import RECIPES_DIR
from tests.recipe_files import write  # noqa: F401 - fixture

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "recipe.schema.json"


def test_list_shows_every_shipped_recipe_and_base_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == [*shipped_recipes(), "peftrun:defaults", "peftrun:sft-lora"]
    assert "dora                   DoRA: weight-decomposed LoRA (use_dora), same SFT setup as sft-lora-qwen2." in lines
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # each has its description


def test_init_copies_a_shipped_recipe_with_the_header(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["init", "dora", "-o", "team/mine.yaml"]) == 0
    text = Path("team/mine.yaml").read_text()
    modeline, first, started, version, extends = text.splitlines()[:5]
    assert (Path("team") / modeline.removeprefix("# yaml-language-server: $schema=")).resolve() == SCHEMA
    assert first == "# DoRA: weight-decomposed LoRA (use_dora), same SFT setup as sft-lora-qwen2."
    assert started == "# Started with `peftrun init dora`; `peftrun explain mine.yaml` shows every value and its source."
    assert (version, extends) == ("schema_version: 1", "extends: peftrun:sft-lora")
    mine, shipped = (resolve(load_recipe(p), CPU) for p in ("team/mine.yaml", RECIPES_DIR / "dora.yaml"))
    assert (mine.recipe.model, mine.recipe.peft, mine.recipe.dataset) == (shipped.recipe.model, shipped.recipe.peft, shipped.recipe.dataset)
    assert {**mine.training_args, "output_dir": None} == {**shipped.training_args, "output_dir": None}
    assert main(["init", "dora", "-o", "team/mine.yaml"]) == 1
    assert "team/mine.yaml exists: choose another -o FILE, or pass --force to replace it" in capsys.readouterr().err


def test_init_on_a_shipped_base_extends_it(write) -> None:  # noqa: F811
    assert main(["init", "peftrun:sft-lora"]) == 0
    text = Path("sft-lora.yaml").read_text()
    assert text.endswith("\nschema_version: 1\nextends: peftrun:sft-lora\n")
    assert load_recipe("sft-lora.yaml").model.name_or_path == "Qwen/Qwen2-0.5B"


def test_unknown_names_get_a_suggestion(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["init", "dorra"]) == 1
    assert "no shipped recipe or base named 'dorra'; did you mean `dora`? (see `peftrun init --list`)" in capsys.readouterr().err
