"""A plan's estimate: exact parameter counts and the memory breakdown per device, with the verdict."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from peftrun.errors import ModelLoadError, RecipeError
from peftrun.plan.activations import measure_step
from peftrun.plan.counts import Counts, count
from peftrun.plan.memory import (Breakdown, band, gradient_bytes, kv_cache_bytes, optimizer_bytes,
                                 quantized_weights, shard, weight_bytes)
from peftrun.plan.settings import GRPO_PROMPT_TOKENS, Settings, read_settings
from peftrun.plan.skeleton import Skeleton, apply_peft, build_base, model_config
from peftrun.recipe.hardware import ram_bytes
from peftrun.recipe.plan import Plan

T = TypeVar("T")


@dataclass
class Estimate:
    plan: Plan
    counts: Counts
    memory: Breakdown
    settings: Settings

    @property
    def device_memory(self) -> int | None:
        hardware = self.plan.hardware
        return hardware.memory_bytes if hardware.memory_bytes or hardware.cuda else ram_bytes()

    @property
    def fits(self) -> bool | None:
        if self.device_memory is None:
            return None
        return self.memory.band["expected"] <= self.device_memory

    @property
    def margin(self) -> int | None:
        return None if self.device_memory is None else self.device_memory - self.memory.band["expected"]


def skeleton_for(plan: Plan) -> Skeleton:
    base = build_base(plan, model_config(plan))
    return Skeleton(base, apply_peft(plan, base))


def _autocast(plan: Plan, mixed_precision: bool) -> str | None:
    if not plan.hardware.cuda or not mixed_precision:
        return None
    args = plan.training_args
    return "bfloat16" if args.get("bf16") else "float16" if args.get("fp16") else None


def _activations(plan: Plan, skeleton: Skeleton, settings: Settings, notes: list[str], mixed_precision: bool) -> int:
    """The step's peak less its gradients (counted apart); DPO's reference pass and GRPO's generation
    cache when they are larger; one dequantized 4-bit weight at a time."""
    import torch

    attn = plan.recipe.model.attn_implementation or "sdpa"
    dequantized = max((n for n, _ in quantized_weights(skeleton).values()), default=0) if plan.recipe.quantization else 0
    try:
        step = measure_step(skeleton, settings, attn, plan.hardware.cuda, _autocast(plan, mixed_precision))
    except (RuntimeError, NotImplementedError) as exc:  # an op the meta device cannot run (data-dependent)
        raise ModelLoadError(f"cannot run a training step of this model on the meta device "
                             f"({str(exc).splitlines()[0]}); no activation estimate") from None
    activations = max(step.peak - step.gradients, step.no_grad_forward)
    if settings.trainer == "dpo":
        notes.append("DPO: the reference pass (adapter off, no gradients) runs before the policy pass; the larger peak counts")
    if settings.generation_rows:
        dtype_bytes = torch.finfo(getattr(torch, plan.recipe.model.dtype)).bits // 8
        cache = kv_cache_bytes(skeleton.base.config, settings.generation_rows, settings.length, dtype_bytes)
        notes.append(f"GRPO: {settings.generation_rows} generations per device of up to {settings.length} tokens "
                     f"(prompt assumed {GRPO_PROMPT_TOKENS}): KV cache {cache / 1e9:.2f} GB")
        activations = max(activations, cache)
    return activations + dequantized * 2


def estimate(plan: Plan, settings: Settings | None = None, mixed_precision: bool = True) -> Estimate:
    """Counts and memory for a plan on its hardware (plan.hardware: this machine, or --gpu / --gpus).
    `settings` and `mixed_precision=False` describe training loops other than TRL's (bench/plan_gpu.py)."""
    skeleton = skeleton_for(plan)
    counts = count(skeleton)
    settings = settings or read_settings(plan)
    notes: list[str] = []
    weights, adapter = weight_bytes(skeleton, plan.recipe.quantization)
    optimizer, note = optimizer_bytes(skeleton, settings.optim)
    notes += [note] if note else []
    weights, adapter, gradients, optimizer = shard(settings, weights, adapter, gradient_bytes(skeleton), optimizer)
    activations = _activations(plan, skeleton, settings, notes, mixed_precision)  # last: the step changes the skeleton
    allocated = weights + adapter + gradients + optimizer + activations
    totals, overhead = band(allocated, plan.hardware.cuda)
    memory = Breakdown(weights, adapter, gradients, optimizer, activations, overhead, totals, notes)
    return Estimate(plan, counts, memory, settings)


def summary(estimate: Estimate) -> dict[str, Any]:
    """The estimate next to what a run measures (the manifest's `memory` entry)."""
    return {"estimate_gb": {k: round(v / 1e9, 3) for k, v in estimate.memory.band.items()},
            "trainable_parameters": estimate.counts.trainable, "total_parameters": estimate.counts.total}


def _recipe_errors_only(step: Callable[[Plan], T], plan: Plan, warning: str | None) -> T | None:
    """Run a planning step for a run: a recipe error is the run's error; any other failure (a config the
    meta device cannot build, say) prints `warning` (if any) and gives None, since a run never fails for
    its estimate."""
    try:
        return step(plan)
    except RecipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plan is a by-product of the run
        if warning is not None:
            print(f"warning: {warning} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def estimate_or_warn(plan: Plan) -> Estimate | None:
    """The memory plan of a run; building it checks target_modules & co. on the skeleton."""
    return _recipe_errors_only(estimate, plan, "no memory plan for this run")


def check_targets(plan: Plan) -> None:
    """The recipe's module names against the model's skeleton, once, before the launcher starts processes
    that would each fail on them; what else the skeleton cannot show, the launched processes report."""
    _recipe_errors_only(skeleton_for, plan, None)
