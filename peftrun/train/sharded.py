"""The steps every rank of a multi-process run takes: wait for rank 0's run directory, save a sharded adapter.

peftrun.launch starts the processes; this is what each of them does inside the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peftrun.errors import LaunchError
from peftrun.launch.ranks import distributed
from peftrun.launch.runmode import RunMode
from peftrun.recipe.launch_rules import is_sharded, strategy_name
from peftrun.recipe.plan import Plan

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def sync_run_dir(run_dir: Path, mode: RunMode, resume_from: Path | None) -> Path | None:
    """Every rank waits until rank 0 has prepared the run directory, then resumes from the same checkpoint."""
    if not distributed():
        return resume_from
    from accelerate import PartialState

    PartialState().wait_for_everyone()
    if mode is RunMode.RESUME and resume_from is None:
        from peftrun.train.checkpoints import resume_point

        return resume_point(run_dir).checkpoint  # rank 0 removed the incomplete ones
    return resume_from


def on_any_rank(flag: bool, device: Any) -> bool:
    """True on every rank when it is true on one (one all-reduce; the flag itself in a single process)."""
    if not distributed():
        return flag
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


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
