"""Every run checks the estimator: the manifest records the plan's estimate next to the measured peak."""

from __future__ import annotations

import json
from pathlib import Path

import peftrun
from tests.train.test_runner import LORA, recipe


def test_manifest_records_estimate_and_measured_peak(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    run_dir = peftrun.run(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA))
    memory = json.loads((run_dir / "manifest.json").read_text())["memory"]
    assert memory["estimate_gb"]["low"] <= memory["estimate_gb"]["expected"] <= memory["estimate_gb"]["high"]
    assert memory["measured_gb"]["peak_rss"] > 0.1  # this CPU: the process's peak resident memory
    assert memory["trainable_parameters"] == json.loads((run_dir / "manifest.json").read_text())["training"]["trainable_parameters"]
    assert isinstance(memory["error"], float)
