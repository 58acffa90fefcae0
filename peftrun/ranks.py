"""The process we are in, under a launcher: its rank, its checks, and the steps every rank takes.

peftrun/launch.py starts the processes; this module is what each of them runs
(wait for rank 0's run directory, save a sharded adapter, keep replica logs quiet).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peftrun.errors import LaunchError
from peftrun.plan import Plan
from peftrun.resolver_launch import is_sharded, strategy_name

WORKER_MARKERS = ("WORLD_SIZE", "LOCAL_RANK")  # torchrun (so accelerate and deepspeed) set both for every worker
EXPECTED_WORLD_SIZE = "PEFTRUN_EXPECTED_WORLD_SIZE"  # set by peftrun for the processes it launches
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


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


def sync_run_dir(run_dir: Path, resume: bool, resume_from: Path | None) -> Path | None:
    """Every rank waits until rank 0 has prepared the run directory, then resumes from the same checkpoint."""
    if not distributed():
        return resume_from
    from accelerate import PartialState

    PartialState().wait_for_everyone()
    if resume and resume_from is None:
        from peftrun.rundir import checkpoints

        found = checkpoints(run_dir)
        return found[-1] if found else None
    return resume_from


def saves_on_every_rank() -> bool:
    """With several processes the final save is a step every rank takes (FSDP / ZeRO-3 gather the weights)."""
    return distributed()


def save_on_every_rank(plan: Plan, trainer: Any, run_dir: Path, before: Mapping[str, Any]) -> None:
    """Save the adapter with every rank taking part; rank 0 writes it whole and checks that it learned."""
    if not saves_on_every_rank():
        return
    if getattr(trainer, "is_fsdp_enabled", False):
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(run_dir))
    if not trainer.is_world_process_zero():
        return
    names = ADAPTER_FILES if plan.recipe.peft is not None else MODEL_FILES
    if not any((run_dir / name).is_file() for name in names):
        raise LaunchError(
            f"the {strategy_name(plan.recipe.launch)} run trained but saved no {'adapter' if plan.recipe.peft else 'model'} "
            f"in {run_dir}" + (" (ZeRO-3 needs zero3_save_16bit_model: true in the accelerate config)"
                               if plan.recipe.launch.strategy == "deepspeed" else "")
        )
    if is_sharded(plan.recipe.launch) and plan.recipe.peft is not None:
        check_saved_adapter_learned(run_dir, before, trainer.state.log_history)


def check_saved_adapter_learned(run_dir: Path, before: Mapping[str, Any], log_history: list[dict[str, Any]]) -> None:
    """Sharded runs (the live parameters are shards): compare the saved adapter with its initial values."""
    import torch

    from peftrun.errors import TrainingError

    saved = _load_adapter(run_dir)
    initial = {name.replace(".default.", "."): tensor for name, tensor in before.items() if tensor.numel()}
    pairs = [(initial[k], saved[k]) for k in saved if k in initial and initial[k].shape == saved[k].shape]
    norms = [float(e["grad_norm"]) for e in log_history if "grad_norm" in e]
    unchanged = bool(pairs) and all(torch.equal(a, b.to(a.dtype)) for a, b in pairs)
    if unchanged or (norms and all(n == 0.0 for n in norms)):
        raise TrainingError(
            "training finished but the saved adapter equals its initialization (zero gradients or a zero "
            "learning rate); check trainer.learning_rate and the data"
        )


def _load_adapter(run_dir: Path) -> dict[str, Any]:
    if (run_dir / "adapter_model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(run_dir / "adapter_model.safetensors"))
    import torch

    return torch.load(str(run_dir / "adapter_model.bin"), map_location="cpu", weights_only=True)
