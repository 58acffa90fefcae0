"""A recipe and its resolved form (recipe.resolved.yaml: every field written, nulls included) build the same PEFT
config, so a resolved recipe re-runs the same training."""

from __future__ import annotations

from peftrun.builders import build_peft_config
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve

RECIPE = {"model": {"name_or_path": "org/model"}, "peft": {"method": "lora", "r": 8}, "trainer": {"type": "sft"},
          "dataset": {"path": "org/data"}}


def test_a_resolved_recipe_builds_the_same_lora_config() -> None:
    original = resolve(load_recipe(RECIPE), CPU)
    written = original.recipe.model_dump(mode="json", exclude={"extends"})  # as recipe.resolved.yaml holds it
    assert written["peft"]["runtime_config"] is None  # PEFT's own default is a LoraRuntimeConfig
    again = build_peft_config(resolve(load_recipe(written), CPU))
    assert again.runtime_config is not None
    assert again.to_dict() == build_peft_config(original).to_dict()
