"""The run's memory plan reads the config the model loads from: for a GGUF checkpoint, the converted cache's
config.json (milliseconds) instead of the GGUF metadata (about 4.5 s for SmolLM2-135M), which a run never needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peftrun.plan.estimate import estimate
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.train import gguf_cache
from peftrun.train.modeling import planned_on_source


def test_a_gguf_plan_reads_the_converted_config(tmp_path: Path, tiny_model_dir: Path, data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    source = tmp_path / "models" / "m.gguf"
    source.write_bytes(b"not a gguf file: reading its metadata fails")
    entry = tmp_path / "cache" / "gguf" / gguf_cache.cache_key(source, "m.gguf")
    shutil.copytree(tiny_model_dir, entry)
    (entry / gguf_cache.MARKER).write_text("{}")
    monkeypatch.setenv("PEFTRUN_CACHE", str(tmp_path / "cache"))
    recipe = {"model": {"name_or_path": str(tmp_path / "models"), "gguf_file": "m.gguf"}, "peft": {"method": "lora"},
              "trainer": {"type": "sft"}, "dataset": {"path": str(data_dir / "sft.jsonl")}}
    plan = resolve(load_recipe(recipe))
    with pytest.raises(Exception, match="cannot read the config"):  # the GGUF metadata itself
        estimate(plan)
    planned = planned_on_source(plan)
    assert planned.recipe.model.name_or_path == str(entry) and planned.recipe.model.gguf_file is None
    plain = resolve(load_recipe({**recipe, "model": {"name_or_path": str(tiny_model_dir)}}))
    assert estimate(planned).counts == estimate(plain).counts
    assert planned_on_source(plain) is plain
