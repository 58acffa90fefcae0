"""A trial's failure classes and the check it passes before it starts."""

from __future__ import annotations

from pathlib import Path

import yaml

from peftrun.recipe.hardware import probe_light
from peftrun.sweep.trial import exit_class, plan_gate


def test_exit_statuses_name_their_failure_class() -> None:
    assert [exit_class(c) for c in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 130, 70, -9, 42)] == [
        "PeftrunError", "RecipeError", "DataError", "ModelLoadError", "RunDirError", "TrainingError", "LaunchError",
        "HubError", "NotCarried", "DivergedError", "Interrupted", "internal error", "killed by SIGKILL", "exit 42"]


def test_values_that_do_not_go_together_are_refused_before_the_trial(in_tmp: Path) -> None:
    """Each value was checked alone when the sweep loaded; a combination is checked when its trial comes."""
    recipe = {"model": {"name_or_path": "org/model"}, "peft": {"method": "lora"}, "trainer": {"type": "sft"},
              "dataset": {"path": "org/data"}}
    (in_tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    outcome = plan_gate(in_tmp / "recipe.yaml", ['peft.method="prompt_tuning"', "trainer.packing=true"], probe_light())
    assert outcome is not None and (outcome.state, outcome.status) == ("FAIL", "invalid")
    assert outcome.attrs["exit_class"] == "RecipeError"
    assert "trainer.packing: prompt tuning cannot be combined with packing" in outcome.attrs["note"]
