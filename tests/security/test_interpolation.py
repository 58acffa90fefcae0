"""Interpolation that cannot smuggle: only documented resolvers, bounded expansion, located errors."""

from __future__ import annotations

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.loader import load_recipe
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture

SECRET = "hf_interpolation_secret_42"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEFTRUN_TEST_TOKEN", SECRET)


def problems(write, text: str) -> list[str]:  # noqa: ANN001
    with pytest.raises(RecipeError) as info:
        load_recipe(write("r.yaml", text))
    found = [str(p) for p in info.value.problems]
    assert SECRET not in str(info.value)
    return found


@pytest.mark.parametrize(("value", "why"), [
    ("${oc.create:{a: 1}}", "the resolver 'oc.create' is not allowed"),
    ("${oc.decode:'1'}", "the resolver 'oc.decode' is not allowed"),
    ("${my_resolver:1}", "the resolver 'my_resolver' is not allowed"),
    ("${${oc.env:PEFTRUN_TEST_TOKEN}}", "a key name cannot be an interpolation"),
    ("${oc.env:${oc.env:PEFTRUN_TEST_TOKEN}}", "the name oc.env reads cannot be an interpolation"),
])
def test_undocumented_resolvers_are_refused_with_their_location(write, value: str, why: str) -> None:  # noqa: F811
    found = problems(write, MINIMAL + f"seed: \"{value}\"\n")
    assert found[0].startswith("r.yaml:4:1: seed: interpolation refused: ") and why in found[0], found


def test_documented_interpolations_still_work(write, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """What the refusals must not break (passes before and after: a guard, not an attack)."""
    monkeypatch.setenv("PEFTRUN_TEST_SEED", "7")
    recipe = load_recipe(write("r.yaml", MINIMAL + "seed: ${oc.env:PEFTRUN_TEST_SEED}\noutput: {dir: 'runs/${name}'}\n"
                               "launch: {num_processes: '${oc.select:missing.key,1}'}\n"))
    assert (recipe.seed, recipe.output.dir, recipe.launch.num_processes) == (7, "runs/r", 1)


def test_an_interpolation_bomb_is_refused_quickly(write) -> None:  # noqa: F811
    levels = ["a0: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]
    levels += [f"a{i}: '{''.join('${a%d}' % (i - 1) for _ in range(8))}'" for i in range(1, 9)]
    found = problems(write, MINIMAL + "\n".join(levels) + "\nseed: ${a8}\n")
    assert any("expand to more than 1,000,000 characters" in p for p in found), found


def test_the_value_behind_a_nested_key_is_never_printed(write) -> None:  # noqa: F811
    found = problems(write, MINIMAL + "seed: ${${oc.env:PEFTRUN_TEST_TOKEN}}\n")
    assert SECRET not in "\n".join(found)
