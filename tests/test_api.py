"""The Python API is a library: a call leaves its caller's process as it found it (environment, warning filters,
sys.path, torch); only the CLI decides for its whole process (offline mode, quieted warnings)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

# imported before the snapshot: what importing a library changes is not peftrun's doing
import datasets  # noqa: F401
import peft  # noqa: F401
import torch
import transformers  # noqa: F401
import trl  # noqa: F401

with contextlib.suppress(ImportError):  # datasets' streaming patch imports scipy.io, whose threadpoolctl sets
    import threadpoolctl  # noqa: F401 - KMP_DUPLICATE_LIB_OK on import

import peftrun


def _process_state() -> dict[str, Any]:
    return {"environ": dict(os.environ), "filters": list(warnings.filters), "path": list(sys.path),
            "autocast": torch.is_autocast_enabled}


def _changed(before: dict[str, Any]) -> dict[str, Any]:
    """What differs from `before` (for the environment: the variables whose values differ)."""
    now = _process_state()
    changed = {key: now[key] for key in before if key != "environ" and now[key] != before[key]}
    keys = set(before["environ"]) | set(now["environ"])
    variables = {k: now["environ"].get(k) for k in keys if now["environ"].get(k) != before["environ"].get(k)}
    return {**changed, **({"environ": variables} if variables else {})}


def test_the_api_leaves_the_callers_process_as_it_was(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                      unreachable_hub: None) -> None:
    recipe = {"name": "t", "model": {"name_or_path": str(tiny_model_dir)}, "peft": {"method": "lora", "r": 4},
              "trainer": {"type": "sft", "max_steps": 2, "per_device_train_batch_size": 4, "report_to": "none",
                          "activation_checkpointing": False},
              "dataset": {"path": str(data_dir / "sft.jsonl")}, "output": {"dir": "runs/t"}}
    before = _process_state()
    plan = peftrun.resolve(peftrun.load_recipe(recipe))
    for build in (peftrun.build_peft_config, peftrun.build_quantization_config, peftrun.build_training_args):
        build(plan)
    assert _changed(before) == {}
    run_dir = peftrun.run(recipe)
    assert (run_dir / "adapter_model.safetensors").is_file()
    assert _changed(before) == {}  # HF_HUB_OFFLINE was set for the run only

