"""The generated field tables match the installed libraries: `scripts/gen_trl_fields.py --check` and
`scripts/gen_peft_fields.py --check`.

Runs the scripts in this process (they import trl and peft, which the parity tests import anyway).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
# script -> a field name in its table, and a stale name to put in its place
TABLES = {"gen_trl_fields.py": ("max_length", "max_seq_length"), "gen_peft_fields.py": ("oft_block_size", "block_size")}


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.ci_env
@pytest.mark.slow
@pytest.mark.parametrize("name", TABLES)
def test_field_table_is_up_to_date(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [name, "--check"])
    assert _script(name).main() == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", TABLES)
def test_check_fails_when_the_table_drifts(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    script = _script(name)
    field, stale_name = TABLES[name]
    stale = tmp_path / script.TABLE.name
    stale.write_text(script.TABLE.read_text().replace(f'"name": "{field}"', f'"name": "{stale_name}"', 1))
    monkeypatch.setattr(script, "TABLE", stale)
    monkeypatch.setattr(sys, "argv", [name, "--check"])
    assert script.main() == 1
    assert f"is out of date: run python scripts/{name}" in capsys.readouterr().err
