"""`peftrun schema [--check]`: the committed JSON Schema is the one the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.schema.jsonschema import default_schema_path, recipe_json_schema_text


def test_committed_schemas_pass_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--check"]) == 0
    assert capsys.readouterr().out == f"{default_schema_path()} is up to date\n{default_schema_path('sweep')} is up to date\n"
    assert default_schema_path() == Path(__file__).resolve().parents[2] / "schemas" / "recipe.schema.json"


def test_schema_writes_and_checks_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "recipe.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert target.read_text() == recipe_json_schema_text()
    assert json.loads(target.read_text())["title"] == "peftrun recipe"
    assert main(["schema", "--check", "-o", str(target)]) == 0


@pytest.mark.parametrize("content", [None, "{}\n"])
def test_check_fails_for_a_stale_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None) -> None:
    target = tmp_path / "recipe.schema.json"
    if content is not None:
        target.write_text(content)
    assert main(["schema", "--check", "-o", str(target)]) == 1
    assert capsys.readouterr().err == f"{target} is out of date: run `peftrun schema`\n"
