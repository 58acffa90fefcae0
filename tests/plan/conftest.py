"""Plans of the tiny model for the plan tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun.recipe.hardware import CPU, Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.validation import checked_plan


@pytest.fixture
def make_plan(tiny_model_dir: Path, data_dir: Path):  # noqa: ANN201
    def make(peft: dict[str, Any] | None = None, trainer: dict[str, Any] | None = None,
             hardware: Hardware = CPU, **sections: Any) -> Plan:
        data = data_dir / ("pref.jsonl" if (trainer or {}).get("type") in ("dpo", "reward") else "sft.jsonl")
        recipe: dict[str, Any] = {"model": {"name_or_path": str(tiny_model_dir)}, "trainer": {"type": "sft", **(trainer or {})},
                                  "dataset": {"path": str(data)}, **sections}
        if peft is not None:
            recipe["peft"] = peft
        return checked_plan(load_recipe(recipe), hardware)

    return make
