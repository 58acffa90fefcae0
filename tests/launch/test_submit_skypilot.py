"""`peftrun submit --to skypilot`: the task file, read back by SkyPilot's own parser (`sky.Task.from_yaml`).

SkyPilot lives in a venv of its own (`make sky-venv`: it pins click<=8.1); PEFTRUN_SKY_PYTHON names its python.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from peftrun.cli import main
from peftrun.launch.submit_skypilot import ACCELERATORS

ROOT = Path(__file__).resolve().parents[2]
MULTI_GPU = sorted((ROOT / "recipes" / "multi-gpu").glob("*.yaml"))
READ_TASK = """
import json, sys
import sky
from sky.catalog import get_common_gpus
task = sky.Task.from_yaml(sys.argv[1])
(resources,) = task.resources
print(json.dumps({"name": task.name, "num_nodes": task.num_nodes, "accelerators": resources.accelerators,
                  "envs": task.envs, "workdir": task.workdir, "setup": task.setup, "run": task.run,
                  "common_gpus": get_common_gpus()}))
"""


@pytest.fixture(scope="session")
def sky_python() -> str:
    python = os.environ.get("PEFTRUN_SKY_PYTHON") or str(ROOT / ".sky-venv" / "bin" / "python")
    if not Path(python).is_file():
        reason = f"SkyPilot's venv is missing ({python}): `make sky-venv` creates it"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return python


def sky_reads(python: str, path: Path) -> dict[str, Any]:
    done = subprocess.run([python, "-c", READ_TASK, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("path", MULTI_GPU, ids=lambda p: p.stem)
def test_skypilot_reads_the_task_of_every_multi_gpu_recipe(path: Path, sky_python: str, in_tmp: Path) -> None:
    """Every one is submitted, DeepSpeed's too: the nodes install what the recipe needs, whatever this machine has."""
    assert main(["submit", str(path), "--to", "skypilot", "--gpu", "h100", "--gpus-per-node", "8", "-o", "t.yaml"]) == 0
    recipe = yaml.safe_load(path.read_text())
    task = sky_reads(sky_python, in_tmp / "t.yaml")
    machines = recipe["launch"].get("num_machines", 1)
    assert task["name"] == f"peftrun-{path.stem}" and task["num_nodes"] == machines
    assert task["accelerators"] == {"H100": 8} and task["workdir"] == str(in_tmp)
    extras = "[quant]" if "quantization" in recipe else ""
    assert re.search(rf"pip install '?peftrun{re.escape(extras)}==", task["setup"]) and " transformers==" in task["setup"]
    assert (" deepspeed" in task["setup"]) == (recipe["launch"].get("strategy") == "deepspeed")
    assert "+cpu" not in task["setup"]  # the nodes install their own build of torch's version
    carried = task["run"].split("<<'PEFTRUN_RECIPE_END'\n")[1].split("\nPEFTRUN_RECIPE_END\n")[0]
    assert "  machine_rank: ${oc.env:SKYPILOT_NODE_RANK,0}\n" in carried
    assert "  num_processes: ${oc.env:SKYPILOT_NUM_GPUS_PER_NODE,8}\n" in carried
    assert 'PEFTRUN_MAIN_ADDR="$(echo "$SKYPILOT_NODE_IPS" | head -n 1)"' in task["run"]


def test_every_accelerator_name_is_one_skypilot_knows(sky_python: str, in_tmp: Path) -> None:
    main(["submit", str(MULTI_GPU[0]), "--to", "skypilot", "--gpu", "l4", "--gpus-per-node", "1", "-o", "t.yaml"])
    task = sky_reads(sky_python, in_tmp / "t.yaml")
    assert task["accelerators"] == {"L4": 1}
    assert set(ACCELERATORS.values()) <= set(task["common_gpus"])


def test_a_gpu_without_a_skypilot_name_is_refused(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", str(MULTI_GPU[0]), "--to", "skypilot", "--gpu", "l40", "--gpus-per-node", "2"]) == 2
    assert "peftrun knows no SkyPilot name for NVIDIA L40; SkyPilot's common GPUs: " in capsys.readouterr().err
    assert not list(in_tmp.glob("*.yaml"))
