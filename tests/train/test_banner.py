"""The start banner shows the plan's values, as `explain` does, and marks those a recipe did not write."""

from __future__ import annotations

from pathlib import Path

import yaml

from peftrun.builders import build_training_args
from peftrun.recipe import explain
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.train.banner import RunFacts, render


def test_banner_values_are_explains_with_their_origin(tmp_path: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "extends": "peftrun:defaults", "name": "b", "model": {"name_or_path": str(tiny_model_dir)},
        "peft": {"method": "lora", "r": 4, "lora_alpha": 8},
        "trainer": {"type": "sft", "per_device_train_batch_size": 4, "eval_strategy": "steps", "eval_steps": 5},
        "dataset": {"path": str(data_dir / "sft.jsonl"), "eval": {"fraction": 0.25}}, "output": {"dir": str(tmp_path / "run")}}))
    plan = resolve(load_recipe(path), CPU)
    facts = RunFacts(train_rows=32, eval_rows=8, trainable=4096, total=39264, max_steps=1, epochs=1.0, world_size=1,
                     loaded_from=str(tiny_model_dir), memory_gb=1.6, device_gb=25.3, log=tmp_path / "run" / "train.log")
    banner = render(plan, build_training_args(plan), facts)
    values = {key: (value, source) for key, value, source in explain.rows(plan)}

    assert values["trainer.gradient_accumulation_steps"][0] == 8
    assert values["trainer.gradient_accumulation_steps"][1].startswith("peftrun:defaults:")
    assert values["trainer.learning_rate"][1].startswith("rule learning-rate")
    assert values["model.dtype"][1].startswith("rule dtype-auto")
    lines = {line.split()[0]: line for line in banner.splitlines()[1:] if line.strip()}
    assert lines["batch"] == ("  batch      4 per device x 8 [base peftrun:defaults] accumulation x 1 process "
                              "= 32 rows per step")
    assert lines["steps"] == "  steps      1 (1 epoch [base peftrun:defaults] of 32 rows); learning rate 0.0002 [rule learning-rate]"
    assert lines["model"] == f"  model      {tiny_model_dir}; float32 [rule dtype-auto]"
    assert lines["schedule"] == ("  schedule   eval every 5 steps; checkpoint every 500 steps [default]; "
                                 "log every 10 steps [base peftrun:defaults]")
    assert lines["method"] == "  method     lora r=4 alpha=8 on all-linear: 4,096 trainable of 39,264 parameters (10.43%)"
    assert lines["memory"] == "  memory     planned peak 1.60 GB per device of 25.3 GB"
    assert lines["output"] == f"  output     {tmp_path / 'run'} (log: {tmp_path / 'run' / 'train.log'})"
    assert banner.splitlines()[0] == f"peftrun {__import__('peftrun').__version__}: b ({path}, extends peftrun:defaults), sft"
    assert len(banner.splitlines()) <= 15
