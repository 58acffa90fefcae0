"""Imports and run directories come from anyone: nothing in them switches on code without the user."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peftrun.cli import main
from peftrun.train.merge import plan_of_run
from peftrun.train.rundir import RESOLVED_RECIPE

ROOT = Path(__file__).resolve().parents[2]


def test_an_import_that_runs_code_is_flagged_and_exits_9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load((ROOT / "tests/interop/fixtures/trl/grpo.yaml").read_text())
    config["trust_remote_code"] = True
    source = tmp_path / "grpo.yaml"
    source.write_text(yaml.safe_dump(config))
    assert main(["import", str(source), "--from", "trl", "-o", str(tmp_path / "r.yaml")]) == 9
    err = capsys.readouterr().err
    assert "NOT CARRIED trust_remote_code: model.trust_remote_code: True runs code on this machine" in err
    assert "NOT CARRIED reward_funcs: trainer.reward_funcs: " in err and "review it before you run the recipe" in err


def test_a_run_directory_never_switches_on_remote_code(tmp_path: Path) -> None:
    run_dir = tmp_path / "downloaded"
    run_dir.mkdir()
    recipe = {"model": {"name_or_path": "org/model", "trust_remote_code": True}, "trainer": {"type": "sft"},
              "dataset": {"path": "org/data"}, "peft": {"method": "lora"}}
    (run_dir / RESOLVED_RECIPE).write_text(yaml.safe_dump(recipe))
    (run_dir / "adapter_config.json").write_text("{}")
    assert plan_of_run(run_dir).recipe.model.trust_remote_code is False
    assert plan_of_run(run_dir, trust_remote_code=True).recipe.model.trust_remote_code is True
