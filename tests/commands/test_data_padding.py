"""`peftrun data` shows the padding share each batching would give on the recipe's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftrun.cli import main
from tests import tiny
from tests.builders.test_throughput import long_tailed_rows
from tests.commands.test_data import _cpu  # noqa: F401 (autouse fixture: resolve for the CPU)
from tests.train.test_runner import LORA, recipe


def test_padding_per_batching(tiny_model_dir: Path, tmp_path: Path, write_recipe, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    data = tiny.write_jsonl(tmp_path / "data.jsonl", long_tailed_rows())
    path = write_recipe(recipe(tiny_model_dir, data, {"type": "sft", "per_device_train_batch_size": 4}, LORA))
    assert main(["data", str(path), "--json"]) == 0
    padding = json.loads(capsys.readouterr().out)["padding"]
    assert padding["batch_size"] == 4 and padding["padding_free"] == 0.0 and 0.3 < padding["padded"] < 0.9
    assert main(["data", str(path), "--show", "0"]) == 0
    assert (f"padding (batches of 4): padded {padding['padded']:.1%}, padding-free 0.0% of the positions computed"
            in capsys.readouterr().out)
