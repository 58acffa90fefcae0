"""Checkpoints that count only when complete, so a run killed at any moment resumes.

transformers' Trainer writes `checkpoint-N/` in place: the weights, the optimizer and scheduler, the RNG
states, and `trainer_state.json` last (Trainer._save_checkpoint), then deletes checkpoints beyond
save_total_limit, then calls the callbacks' on_save. A kill can leave any prefix of that on disk.

peftrun's on_save callback (`CompletionMarker`) waits for every rank, flushes the checkpoint's files to
disk and writes MARKER last (atomically): the list of the checkpoint's files with their sizes. A checkpoint
is complete when
- it has MARKER and every file it lists is there with its size; or
- (no MARKER: killed between the trainer's last write and the marker, or written without peftrun) one
  process wrote it, its trainer_state.json parses and names its step, and its weights are there: the
  trainer writes the state last, so everything before it was written.
A multi-process checkpoint needs MARKER: other ranks' files may still be in flight when rank 0 writes the state.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.train.durable import fsync_tree, write_atomic

MARKER = "peftrun-checkpoint.json"
TRAINER_STATE = "trainer_state.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
           "pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model_fsdp_0")


def step_of(path: Path) -> int:
    return int(path.name.split("-")[-1])


def all_checkpoints(run_dir: Path) -> list[Path]:
    """Every `checkpoint-N` directory, complete or not, oldest first."""
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=step_of)


def problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` is not complete (None: it is)."""
    marker = checkpoint / MARKER
    if marker.is_file():
        return _against_marker(checkpoint, marker)
    if any(checkpoint.glob("rng_state_*.pth")):
        return f"no {MARKER} (a multi-process checkpoint counts only with it)"
    state = checkpoint / TRAINER_STATE
    try:
        step = json.loads(state.read_text()).get("global_step")
    except FileNotFoundError:
        return f"no {TRAINER_STATE}"
    except (OSError, ValueError, AttributeError):
        return f"{TRAINER_STATE} is cut short"
    if step != step_of(checkpoint):
        return f"{TRAINER_STATE} names step {step}"
    if not any((checkpoint / name).exists() for name in WEIGHTS):
        return "no weights"
    return None


def _against_marker(checkpoint: Path, marker: Path) -> str | None:
    try:
        files: dict[str, int] = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{MARKER} is unreadable"
    for name, size in files.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: Path | None  # the newest complete checkpoint; None: start again from step 0
    skipped: tuple[tuple[Path, str], ...]  # newer checkpoints that are incomplete, and why

    def describe(self) -> str:
        lines = [f"skipping {path.name}: incomplete ({why})" for path, why in self.skipped]
        lines.append(f"resuming from {self.checkpoint.name}" if self.checkpoint else
                     "no complete checkpoint yet: the run starts again from step 0")
        return "\n".join(lines)


def resume_point(run_dir: Path) -> ResumePoint:
    skipped: list[tuple[Path, str]] = []
    for checkpoint in reversed(all_checkpoints(run_dir)):
        why = problem(checkpoint)
        if why is None:
            return ResumePoint(checkpoint, tuple(skipped))
        skipped.append((checkpoint, why))
    return ResumePoint(None, tuple(skipped))


def complete_checkpoints(run_dir: Path) -> list[Path]:
    return [p for p in all_checkpoints(run_dir) if problem(p) is None]


def remove_incomplete(run_dir: Path) -> None:
    """Delete incomplete checkpoints (nothing in them can be resumed; the trainer writes them again)."""
    for checkpoint in all_checkpoints(run_dir):
        if problem(checkpoint) is not None:
            shutil.rmtree(checkpoint)


def mark_complete(checkpoint: Path) -> None:
    """Flush the checkpoint's files to disk, then write MARKER listing them."""
    fsync_tree(checkpoint)
    files = {str(p.relative_to(checkpoint)): p.stat().st_size
             for p in sorted(checkpoint.rglob("*")) if p.is_file() and p.name != MARKER}
    write_atomic(checkpoint / MARKER, json.dumps({"step": step_of(checkpoint), "files": files}, indent=1) + "\n")


def completion_callback() -> Any:
    """The on_save callback that marks each checkpoint complete once every rank has written its part."""
    from transformers import TrainerCallback

    class CompletionMarker(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            from peftrun.launch.ranks import distributed

            if distributed():
                from accelerate import PartialState

                PartialState().wait_for_everyone()
            if state.is_world_process_zero:
                mark_complete(Path(args.output_dir) / f"checkpoint-{state.global_step}")
            return control

    return CompletionMarker()


def train_or_reload(trainer: Any, resume_from: Path | None) -> Any:
    """trainer.train(), resumed from `resume_from`; a checkpoint that ends the training the recipe asks for
    (a run killed while writing its outputs) is loaded instead: resumed, the Trainer would take one step more."""
    if resume_from is None or not _ends_training(trainer, resume_from) or \
            getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        return trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(str(resume_from))  # what Trainer.train does first when it resumes
    trainer.state = TrainerState.load_from_json(str(resume_from / TRAINER_STATE))
    return TrainOutput(trainer.state.global_step, 0.0, {"train_runtime": 0.0})


def _ends_training(trainer: Any, checkpoint: Path) -> bool:
    state = json.loads((checkpoint / TRAINER_STATE).read_text())
    args = trainer.args
    same_length = state.get("max_steps") == args.max_steps if args.max_steps > 0 else \
        state.get("num_train_epochs") == args.num_train_epochs
    return bool(same_length and state.get("global_step", 0) >= state.get("max_steps", 1))
