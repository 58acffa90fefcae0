"""Input that must end in a located error, quickly, with bounded memory: never a traceback."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def problem(path: Path) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value.problems[0])


def test_a_yaml_alias_bomb_is_a_located_error_in_bounded_memory(write) -> None:  # noqa: F811
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = problem(write("bomb.yaml", ALIAS_BOMB))
    assert found.startswith("bomb.yaml:") and "once its YAML aliases are expanded" in found
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_deep_nesting_is_a_located_error(write) -> None:  # noqa: F811
    assert "nested more than 64 levels deep" in problem(write("deep.yaml", "a: " + "[" * 20000 + "]" * 20000 + "\n"))
    assert "nested more than 64 levels deep" in problem(write("deep2.yaml", "a: " + "[" * 100 + "]" * 100 + "\n"))


def test_a_huge_recipe_is_refused_before_parsing(write) -> None:  # noqa: F811
    path = write("huge.yaml", MINIMAL + "# " + "x" * 2_000_000 + "\n")
    assert "a recipe is at most 1,000,000" in problem(path)


def test_a_recipe_that_is_not_utf8_is_located(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    path = write("latin.yaml", MINIMAL)
    path.write_bytes(MINIMAL.encode() + b"name: caf\xe9\n")
    assert main(["validate", str(path)]) == 2
    assert "latin.yaml:5:10: not UTF-8 text" in capsys.readouterr().err
