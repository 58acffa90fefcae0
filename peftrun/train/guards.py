"""Runs that go wrong stop cleanly: a non-finite loss or gradient, a disk too small, a write that fails.

- Divergence (DivergedError, exit 10, never "never changed"): the first NaN / infinite loss of a micro-batch
  or gradient norm of a step (unless float16 loss scaling or sharding own the gradients) stops the run before
  the optimizer applies it; a non-finite trainable weight after an optimizer step or when training ends, or
  a gradient norm that fell to exactly 0 and stayed there (the weights blew up and the model saturated), stops
  it before anything is saved as finished. The checkpoints saved so far stay; no final adapter is written.
  (transformers' own logging hides such losses: logging_nan_inf_filter; the logged loss is a mean of the
  micro-batch losses checked here, the logged gradient norm the step's norm checked here.)
- Free space: before training, what the run will write (checkpoints kept at once, adapter or model,
  merged model) against the free space of the run directory's file system: refused when it cannot fit,
  a warning when it leaves little.
- Failed writes: no space, a read-only file system or a quota while saving end the run with the run
  directory's exit code (5) and what to do; the manifest is never written, so the directory stays unfinished.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peftrun.errors import DivergedError, PeftrunError, RunDirError
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS

DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
               errno.EDQUOT: "the disk quota is exceeded"}
NEAR_FULL = 0.8  # warn when the run would fill more than this share of the free space
GIB = 1024**3


# --- divergence: non-finite loss, gradients or weights; a gradient that vanished for good ------------------

def _diverged(what: str, step: int, plan: Plan, stopped: str = "training stopped before applying it") -> DivergedError:
    label = str(plan.recipe.path or "RECIPE")
    return DivergedError(
        f"{what} at step {step}: {stopped}. Usual causes: a learning rate too high (trainer.learning_rate is "
        f"{plan.training_args.get('learning_rate')}), float16 overflow (train in bfloat16 or float32), or bad data (an "
        "example whose labels are all masked, an empty completion). The checkpoints saved before it are kept; fix "
        f"the cause and start over with `peftrun {label} --overwrite`"
    )


def watch_non_finite(plan: Plan, trainer: Any) -> None:
    """Check every micro-batch's loss; unsharded, also every step's gradient norm (unless float16 loss scaling
    skips such steps by design) and the trainable weights (sharded: the loss check alone)."""
    import torch

    training_step = trainer.training_step

    def checked_step(*args: Any, **kwargs: Any) -> Any:
        loss = training_step(*args, **kwargs)
        if not bool(torch.isfinite(loss).all()):
            raise _diverged(f"the training loss became {float(loss.float().mean())}", trainer.state.global_step + 1,
                            plan)
        return loss

    trainer.training_step = checked_step
    if not (getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False)):
        trainer.add_callback(_divergence_callback(plan, gradients=not trainer.args.fp16))


def _trained(model: Any) -> list[Any]:
    return [p.detach() for p in model.parameters() if p.requires_grad] if model is not None else []


def _check_weights(plan: Plan, model: Any, step: int) -> None:
    import torch

    bad = sum(int((~torch.isfinite(p)).sum()) for p in _trained(model))
    if bad:
        raise _diverged(f"{bad} trainable weights became non-finite (NaN or infinite)", step, plan,
                        "training stopped and nothing was saved as finished")


def _check_vanished(plan: Plan, model: Any, norms: list[tuple[int, float]]) -> None:
    """A gradient norm exactly 0 at every step to the end after a non-zero one: the weights blew up and the model
    saturated (short of that, a likelihood loss's gradient is not exactly 0). Reward trainers are not checked:
    equal rewards within a group give zero advantages by design."""
    if TRAINERS[plan.trainer_type].rewards or not norms or norms[-1][1] != 0.0:
        return
    moved = [i for i, (_, norm) in enumerate(norms) if norm != 0.0]
    if moved:
        step, norm = norms[moved[-1]]
        largest = max((float(p.abs().max()) for p in _trained(model) if p.numel()), default=0.0)
        raise _diverged(f"the gradient norm fell from {norm:.3g} at step {step} to exactly 0", norms[moved[-1] + 1][0],
                        plan, f"it stayed 0 to the last step ({norms[-1][0]}) with the largest trainable weight at "
                        f"{largest:.3g}: the weights blew up and the model saturated, so nothing was saved as finished")


def _divergence_callback(plan: Plan, gradients: bool) -> Any:
    """The gradient norm before every optimizer step (when `gradients`), the trainable weights after it and again
    when training ends (before anything is saved as finished), and a gradient that vanished for good."""
    from transformers import TrainerCallback

    norms: list[tuple[int, float]] = []  # (step, gradient norm) of every step this process ran

    class Divergence(TrainerCallback):
        def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
            import torch

            watched = gradients and model is not None
            grads = [p.grad for p in model.parameters() if p.grad is not None] if watched else []
            if grads:
                norm = float(torch.nn.utils.get_total_norm(grads))
                if not math.isfinite(norm):
                    raise _diverged(f"the gradient norm became {norm}", state.global_step + 1, plan)
                norms.append((state.global_step + 1, norm))
            return control

        def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
            _check_weights(plan, model, state.global_step + 1)
            return control

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
            _check_weights(plan, model, state.global_step)
            _check_vanished(plan, model, norms)
            return control

    return Divergence()


# --- free space --------------------------------------------------------------------------------------------

def _gib(size: float) -> str:
    if size >= GIB / 10:
        return f"{size / GIB:.2f} GiB"
    return f"{size / 1024**2:.1f} MiB" if size >= 1024**2 else f"{size / 1024:.0f} KiB"


def _optimizer_bytes_per_parameter(optim: str) -> int:
    """The optimizer state a checkpoint holds per trainable parameter (Adam: two float32 moments)."""
    if "8bit" in optim:
        return 2
    if "adafactor" in optim:
        return 0
    return 4 if "sgd" in optim else 8


def _planned_saves(trainer: Any) -> int | None:
    """How many checkpoints the run writes (None: unknown)."""
    args = trainer.args
    if str(args.save_strategy).split(".")[-1].lower() == "no":
        return 0
    steps = args.max_steps if args.max_steps > 0 else None
    if steps is None and hasattr(trainer.train_dataset, "__len__"):
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
        steps = math.ceil(len(trainer.train_dataset) / batch) * math.ceil(args.num_train_epochs)
    if steps is None:
        return None
    every = args.save_steps if args.save_steps >= 1 else max(1, math.ceil(steps * args.save_steps))
    return steps // int(every) + 1


def planned_bytes(plan: Plan, trainer: Any) -> dict[str, int]:
    """What the run writes, by part: checkpoints kept on disk at once, the final weights, the merged model."""
    model = trainer.model
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    width = 2 if plan.recipe.model.dtype in ("bfloat16", "float16") else 4
    weights = (trainable if plan.recipe.peft is not None else total) * width
    checkpoint = weights + trainable * _optimizer_bytes_per_parameter(str(trainer.args.optim))
    saves = _planned_saves(trainer)
    limit = trainer.args.save_total_limit
    kept = limit + 1 if limit and (saves is None or saves > limit) else (saves or 1)  # +1: saved before rotation
    parts = {"checkpoints": kept * checkpoint if saves != 0 else 0, "weights": weights}
    if plan.recipe.output.save in ("merged", "both") and plan.recipe.peft is not None:
        parts["merged model"] = total * width
    return parts


def _size_on_disk(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())


def check_free_space(plan: Plan, trainer: Any) -> None:
    """Refuse a run that cannot fit on its file system; warn when it leaves little."""
    run_dir = Path(plan.output_dir)
    parts = planned_bytes(plan, trainer)
    need = max(0, sum(parts.values()) - _size_on_disk(run_dir))  # a resumed run has written part of it
    free = shutil.disk_usage(run_dir).free
    detail = ", ".join(f"{name} {_gib(size)}" for name, size in parts.items())
    if need > free:
        raise RunDirError(
            f"{run_dir} is on a file system with {_gib(free)} free, but this run writes about {_gib(need)} ({detail}): "
            "free some space, lower trainer.save_total_limit, or choose another output.dir"
        )
    if need > NEAR_FULL * free:
        print(f"warning: this run writes about {_gib(need)} ({detail}) to {run_dir}, which has {_gib(free)} free",
              file=sys.stderr)


# --- failed writes -----------------------------------------------------------------------------------------

def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


WRITE_FAILURE_TEXT = ("file write failed", "unexpected pos", "failed writing")  # torch.save: a refused write


def _looks_like_a_write(exc: BaseException) -> bool:
    """An OS error, or a library's wrapper of one whose text says a write failed."""
    return any(isinstance(error, OSError) or any(text in str(error).lower() for text in WRITE_FAILURE_TEXT)
               for error in _chain(exc))


def disk_failure(exc: BaseException, run_dir: Path) -> str | None:
    """What the disk did, when `exc` comes from a write the file system refused (None otherwise).
    Libraries wrap the OS error in their own (safetensors names it; torch.save says "unexpected pos 576
    vs 534" or "file write failed"): for such a write failure the file system itself is asked whether it is
    full or read-only. Any other exception is not the disk's, however full the disk is."""
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            return DISK_ERRORS[error.errno] + (f" (writing {error.filename})" if error.filename else "")
        text = str(error)
        for code, why in DISK_ERRORS.items():
            if os.strerror(code) in text or f"os error {code})" in text:
                return why
    if not _looks_like_a_write(exc):
        return None
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), Path("."))
    stats = os.statvfs(existing)
    if stats.f_flag & os.ST_RDONLY:
        return DISK_ERRORS[errno.EROFS]
    if stats.f_bavail * stats.f_frsize < 1024**2:
        return DISK_ERRORS[errno.ENOSPC]
    return None


@contextmanager
def write_failures(plan: Plan) -> Iterator[None]:
    """Turn a write the disk refused into a RunDirError that says what is left and what to do."""
    run_dir = Path(plan.output_dir)
    try:
        yield
    except PeftrunError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised unless the disk refused a write
        why = disk_failure(exc, run_dir)
        if why is None:
            raise
        label = str(plan.recipe.path or "RECIPE")
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise RunDirError(
            f"the run could not write to {run_dir}: {why} ({error}). The run is unfinished (no manifest.json; an incomplete "
            f"checkpoint does not count): make room (or make it writable) and resume it with `peftrun {label} "
            "--resume`, or start over with --overwrite"
        ) from None
