"""The generated PEFT field table matches the installed PEFT: `scripts/gen_peft_fields.py --check`.

Runs the script in this process (it imports peft, which the parity tests import anyway).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gen_peft_fields.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_peft_fields", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peft_field_table_is_up_to_date(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--check"])
    assert _script().main() == 0, capsys.readouterr().err


def test_check_fails_when_the_table_drifts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    stale = tmp_path / "peft_fields.json"
    stale.write_text(script.TABLE.read_text().replace('"name": "oft_block_size"', '"name": "block_size"', 1))
    monkeypatch.setattr(script, "TABLE", stale)
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--check"])
    assert script.main() == 1
    assert "is out of date: run python scripts/gen_peft_fields.py" in capsys.readouterr().err
