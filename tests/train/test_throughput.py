"""Useful tokens per second and the padding fraction, seen: in every training log (the keys the progress line
shows) and in the manifest, for the batching trainer.throughput chose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import peftrun
from tests import tiny
from tests.builders.test_throughput import long_tailed_rows

TRAINER = {"type": "sft", "max_steps": 2, "per_device_train_batch_size": 8, "logging_steps": 1, "save_steps": 2,
           "report_to": "none", "activation_checkpointing": False}


@pytest.mark.parametrize(("throughput", "batching"), [("auto", "padding_free"), ("off", "padded")])
def test_the_run_records_tokens_per_second_and_padding(in_tmp: Path, tiny_model_dir: Path, throughput: str,
                                                        batching: str, capsys: pytest.CaptureFixture) -> None:
    data = tiny.write_jsonl(in_tmp / "data.jsonl", long_tailed_rows())
    run = peftrun.run({"name": "t", "model": {"name_or_path": str(tiny_model_dir)}, "peft": {"method": "lora", "r": 4},
                       "trainer": {**TRAINER, "throughput": throughput}, "dataset": {"path": str(data)},
                       "output": {"dir": "runs/t"}})
    shown = "padding-free batches (throughput auto [" if batching == "padding_free" else "padded batches (throughput off"
    assert f"  batching   {shown}" in capsys.readouterr().out
    training = json.loads((run / "manifest.json").read_text())["training"]
    assert training["batching"] == batching and training["useful_tokens_per_s"] > 0
    logs = [e for e in json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
            if "loss" in e]
    assert len(logs) == 2 and all(e["useful_tokens_per_s"] > 0 for e in logs)
    if batching == "padded":
        assert 0.3 < training["padding_fraction"] < 0.9 and all(e["padding_fraction"] > 0.3 for e in logs)
    else:
        assert training["padding_fraction"] == 0.0 and all(e["padding_fraction"] == 0.0 for e in logs)
