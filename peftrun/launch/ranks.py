"""The process we are in, under a launcher: its rank, its checks, and the steps every rank takes.

peftrun/launch/launcher.py starts the processes; this module is what each of them checks
(wait for rank 0's run directory, save a sharded adapter, keep replica logs quiet).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peftrun.errors import LaunchError
from peftrun.recipe.plan import Plan
from peftrun.recipe.launch_rules import is_sharded, strategy_name

WORKER_MARKERS = ("WORLD_SIZE", "LOCAL_RANK")  # torchrun (so accelerate and deepspeed) set both for every worker
EXPECTED_WORLD_SIZE = "PEFTRUN_EXPECTED_WORLD_SIZE"  # set by peftrun for the processes it launches

# --- the process we are in --------------------------------------------------------------------

def is_worker(env: Mapping[str, str] | None = None) -> bool:
    """True inside a process started by a launcher (torchrun, accelerate, deepspeed): never launch again."""
    env = os.environ if env is None else env
    return any(key in env for key in WORKER_MARKERS)


def world_size(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1"))


def rank(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    return int(env.get("RANK", "0"))


def distributed(env: Mapping[str, str] | None = None) -> bool:
    """More than one process takes part in this run."""
    return world_size(env) > 1


# --- inside a launched process -----------------------------------------------------------------------

def check_worker(plan: Plan, env: Mapping[str, str] | None = None) -> None:
    """In a launched process: the launcher started what was asked for, with the recipe's strategy."""
    env = os.environ if env is None else env
    expected = env.get(EXPECTED_WORLD_SIZE)
    if not is_worker(env):
        raise LaunchError(
            f"peftrun launched this process for a {expected}-process run, but the launcher started it without "
            "torch.distributed (no WORLD_SIZE / LOCAL_RANK): it would train alone. (`accelerate launch --cpu` "
            "does this: it runs one process whatever --num_processes says.)"
        )
    if expected and expected.isdigit() and int(expected) != world_size(env):
        raise LaunchError(
            f"peftrun asked the launcher for {expected} processes but this process is one of "
            f"{world_size(env)}: check launch.num_processes / num_machines and the accelerate config"
        )
    launch = plan.recipe.launch
    running = "fsdp" if env.get("ACCELERATE_USE_FSDP", "").lower() == "true" else (
        "deepspeed" if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" else "ddp")
    if running != launch.strategy:
        raise LaunchError(
            f"the recipe says launch.strategy {launch.strategy} but the launcher runs {running}: set "
            f"launch.strategy: {running} (peftrun places quantized weights by the strategy) or launch it with peftrun"
        )
    stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    if running == "deepspeed" and stage and stage.isdigit() and int(stage) != launch.zero_stage:
        raise LaunchError(f"the recipe says launch.zero_stage {launch.zero_stage} but the launcher runs ZeRO-{stage}")


def quiet_this_rank(env: Mapping[str, str] | None = None) -> None:
    """Ranks other than 0 keep errors but drop progress bars, info and warnings (rank 0 shows the same)."""
    if rank(env) == 0:
        return
    import logging
    import warnings

    for key, value in (("TQDM_DISABLE", "1"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
                       ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                       ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
        os.environ.setdefault(key, value)
    logging.getLogger("peftrun").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    # libraries imported already read those variables at import: tell them directly
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity_error()
        sys.modules["transformers"].logging.disable_progress_bar()
