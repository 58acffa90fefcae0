"""A SkyPilot task for a job (`peftrun submit RECIPE --to skypilot`), and its launch with `sky launch`.

The task asks for `num_nodes` machines with `accelerators: NAME:G` (SkyPilot's names for the GPU `--gpu` planned
for), installs in `setup` the peftrun and library versions a run's manifest records here, and in `run` writes
the resolved recipe and starts `peftrun run` on every node: SkyPilot runs `run` once per node and sets
SKYPILOT_NODE_RANK, SKYPILOT_NODE_IPS (one address per line, the head node first) and
SKYPILOT_NUM_GPUS_PER_NODE there, which the recipe reads as machine rank, rendezvous address and processes.
SkyPilot's own parser (`sky.Task.from_yaml`) checks the file in the tests.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from peftrun import __version__
from peftrun.errors import LaunchError, Problem, RecipeError
from peftrun.launch.cluster import DEFAULT_PORT, MAIN_ADDR, MAIN_PORT, Job, RankVariables, fixed_port
from peftrun.launch.runmode import RunMode
from peftrun.recipe.extras import needed_extras

RANKS = RankVariables(node_rank="SKYPILOT_NODE_RANK", processes="SKYPILOT_NUM_GPUS_PER_NODE")
# peftrun's GPU table (recipe/gpus.py) -> SkyPilot's accelerator names (its `sky.catalog.get_common_gpus()`)
ACCELERATORS = {
    "NVIDIA B200": "B200", "NVIDIA H200": "H200", "NVIDIA H100 80GB": "H100", "NVIDIA A100 80GB": "A100-80GB",
    "NVIDIA A100 40GB": "A100", "NVIDIA L40S": "L40S", "NVIDIA A10G": "A10G", "NVIDIA A10": "A10", "NVIDIA L4": "L4",
    "NVIDIA GeForce RTX 5090": "RTX5090", "NVIDIA V100 32GB": "V100-32GB", "NVIDIA V100 16GB": "V100",
    "NVIDIA T4": "T4",
}


class _Literal(yaml.SafeDumper):
    """Multi-line strings as literal blocks (`|`), so setup and run read as the shell they are."""


_Literal.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def accelerator(job: Job) -> str | None:
    """`NAME:G` for SkyPilot's resources, None for a CPU job."""
    if job.gpu is None:
        return None
    name = ACCELERATORS.get(job.gpu)
    if name is None:
        known = ", ".join(sorted(set(ACCELERATORS.values())))
        raise RecipeError(Problem("--gpu", "", f"peftrun knows no SkyPilot name for {job.gpu}; SkyPilot's common GPUs: "
                                  f"{known} (`sky show-gpus` lists every one)"))
    return f"{name}:{job.gpus_per_node}"


def setup_script(job: Job) -> str:
    """Install the versions this machine's run would record in its manifest (without a local build tag such as
    torch's +cpu: the nodes take their own build of that version), with the extras the recipe needs and
    DeepSpeed for its strategy: the nodes' environment is this one, not what this machine has installed."""
    pins = [f"{name}=={version.split('+')[0]}" for name, version in job.versions.items() if version and name != "peftrun"]
    extras = sorted({name for _, name in needed_extras(job.plan.recipe)})
    package = f"peftrun[{','.join(extras)}]=={__version__}" if extras else f"peftrun=={__version__}"
    if job.plan.recipe.launch.strategy == "deepspeed":
        pins.append("deepspeed")
    return "\n".join(["set -e", f"pip install {' '.join(shlex.quote(p) for p in (package, *pins))}"]) + "\n"


def run_script(job: Job) -> str:
    """On every node: the rendezvous address, the recipe, and `peftrun run` (resuming a run that was stopped)."""
    resolved = Path(job.plan.output_dir) / "recipe.resolved.yaml"
    lines = [
        "set -e",
        f'export {MAIN_ADDR}="$(echo "$SKYPILOT_NODE_IPS" | head -n 1)"',
        f"mkdir -p {shlex.quote(job.JOBS)}",
        f"cat > {shlex.quote(job.recipe_file)} <<'PEFTRUN_RECIPE_END'",
        job.recipe_text.rstrip("\n"),
        "PEFTRUN_RECIPE_END",
        f"MODE=({' '.join(job.mode.flags)})",
        f"if [ -f {shlex.quote(str(resolved))} ]; then MODE=({RunMode.RESUME.flags[0]}); fi  # a relaunched task continues",
        f'python -m peftrun run {shlex.quote(job.recipe_file)} "${{MODE[@]}}"',
    ]
    return "\n".join(lines) + "\n"


def task(job: Job) -> dict[str, Any]:
    """The task as a mapping (SkyPilot's task YAML fields)."""
    resources: dict[str, Any] = {}
    if (acc := accelerator(job)) is not None:
        resources["accelerators"] = acc
    envs = {} if fixed_port(job.plan) else {MAIN_PORT: str(DEFAULT_PORT)}
    return {
        "name": f"peftrun-{job.name}",
        "num_nodes": job.nodes,
        "resources": resources,
        "workdir": str(job.workdir),
        **({"envs": envs} if envs else {}),
        "setup": setup_script(job),
        "run": run_script(job),
    }


def task_yaml(job: Job) -> str:
    header = (f"# peftrun {__version__}: `peftrun submit --to skypilot` wrote this task for recipe {job.name}\n"
              f"# it runs {job.describe()}, the recipe as `peftrun explain` resolved it; launch: sky launch THIS_FILE\n")
    return header + yaml.dump(task(job), Dumper=_Literal, sort_keys=False, width=120)


def sky_launch(path: Path) -> str:
    """`sky launch` the task (detached); the job id SkyPilot prints."""
    name = yaml.safe_load(path.read_text())["name"]
    argv = ["sky", "launch", "--yes", "--detach-run", "--cluster", name, str(path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        raise LaunchError("SkyPilot is not installed here: `pip install skypilot` (and `sky check` a cloud), "
                          f"then `sky launch {path}`") from None
    if done.returncode != 0:
        raise LaunchError(f"sky launch failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    found = re.search(r"Job ID: (\d+)", done.stdout + done.stderr)
    return f"{name} {found.group(1)}" if found else name
