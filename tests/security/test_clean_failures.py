"""Files a recipe names that are broken end in a located error, never a traceback: a malformed accelerate
config, a chat template Jinja cannot compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.data.templates import checked_template
from peftrun.errors import RecipeError
from peftrun.launch.preflight import preflight
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from tests.recipe_files import MINIMAL, write  # noqa: F401 - fixture


@pytest.mark.parametrize("config", ["distributed_type: [oops\n", "distributed_type: DEEPSPEED\ndeepspeed_config: zero3\n"])
def test_a_malformed_accelerate_config_is_located(write, config: str) -> None:  # noqa: F811
    write("acc.yaml", config)
    path = write("r.yaml", MINIMAL + "launch: {strategy: ddp, accelerate_config: acc.yaml}\n")
    with pytest.raises(RecipeError) as caught:
        preflight(resolve(load_recipe(path), CPU))
    [problem] = [p for p in caught.value.problems if p.path == "launch.accelerate_config"]
    assert str(problem).startswith("r.yaml:") and ("cannot read acc.yaml" in str(problem) or "must be a mapping" in str(problem))


def test_a_template_jinja_cannot_compile_names_its_line() -> None:
    with pytest.raises(RecipeError) as caught:
        checked_template("{% for m in messages %}\n{{ m.content }\n", "bad.jinja", "r.yaml:1:26")
    assert str(caught.value.problems[0]) == (
        "r.yaml:1:26: model.chat_template: bad.jinja, line 2: not a valid Jinja template: unexpected '}'; fix the "
        "template (transformers renders it with Jinja)")


def test_a_dry_run_with_a_malformed_accelerate_config_exits_2(write, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    write("acc.yaml", "distributed_type: [oops\n")
    path = write("r.yaml", MINIMAL + "launch: {strategy: ddp, accelerate_config: acc.yaml}\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "launch.accelerate_config: cannot read acc.yaml" in err and "Traceback" not in err
