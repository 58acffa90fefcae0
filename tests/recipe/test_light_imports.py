"""`validate`, `explain`, `schema`, `diff`, `migrate` and `init` import none of the heavy libraries (seconds each to import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")

PROGRAM = f"""
import contextlib, io, json, sys
from peftrun.cli import main
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes.append(main(["validate", "recipes"]))
    for recipe in ("recipes/qlora-llama.yaml", "recipes/prompt-tuning.yaml", "recipes/grpo-lora.yaml"):
        for fmt in ("table", "json", "yaml"):
            codes.append(main(["explain", recipe, "--format", fmt]))
    codes.append(main(["schema", "--check"]))
    codes.append(main(["diff", "recipes/dora.yaml", "recipes/rslora.yaml", "--format", "json"]))
    codes.append(main(["migrate", "--check", "recipes"]))
    codes.append(main(["init", "--list"]))
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""


@pytest.mark.ci_env
def test_the_recipe_commands_stay_light() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["codes"] == [0] * 11 + [1, 0, 0]  # the commands really ran (the two recipes differ)
    assert report["heavy"] == []


def test_the_probe_sees_a_heavy_module() -> None:
    """The same probe reports a heavy library once it is in sys.modules (a stand-in: importing one takes seconds)."""
    program = PROGRAM.replace("from peftrun.cli import main", "from peftrun.cli import main\nsys.modules['torch.cuda'] = type(sys)('torch.cuda')")
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["heavy"] == ["torch"]
