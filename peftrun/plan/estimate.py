"""A plan's estimate: exact parameter counts and the memory breakdown per device, with the verdict."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from peftrun.errors import ModelLoadError, RecipeError
from peftrun.plan.activations import four_bit_stand_ins, measure_step
from peftrun.plan.counts import Counts, count
from peftrun.plan.memory import (Breakdown, band, decoder_layers, gradient_bytes, kv_cache_bytes, layout,
                                 optimizer_bytes, quantized_weights, weight_bytes)
from peftrun.plan.sharding import HALF, Rank, States, per_rank
from peftrun.plan.settings import PROMPT_TOKENS, Settings, read_settings
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
    cache when they are larger. A 4-bit base runs bitsandbytes' matmul stand-in (one dequantized weight at a
    time); an 8-bit base adds one dequantized weight."""
    import torch

    attn = plan.recipe.model.attn_implementation or "sdpa"
    quant = plan.recipe.quantization
    quantized = quantized_weights(skeleton, settings.quantize_head) if quant else {}
    if quant and quant.bits == 4:
        four_bit_stand_ins(skeleton.model, set(quantized), settings.bnb_saves_input)
    dequantized = max((n for n, _ in quantized.values()), default=0) if quant and quant.bits == 8 else 0
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
        notes.append(f"{settings.trainer.upper()}: {settings.generation_rows} generations per device of up to {settings.length} tokens "
                     f"(prompt assumed {PROMPT_TOKENS}): KV cache {cache / 1e9:.2f} GB")
        activations = max(activations, cache)
    return activations + dequantized * 2


def _autocast_copies(skeleton: Skeleton, settings: Settings, autocast: str | None) -> int:
    """Under 16-bit autocast, a float32 weight that does not train is cast anew at each use and its 16-bit copy
    is kept for the backward pass (autocast caches only leaves that require gradients): every layer's copies at
    the peak, one layer's under activation checkpointing."""
    if autocast is None:
        return 0
    per_layer = [sum(p.numel() * HALF for p in layer.parameters() if p.dim() > 1 and p.element_size() == 4
                     and not p.requires_grad) for layer in decoder_layers(skeleton.model)]
    return (max(per_layer, default=0) if settings.checkpointing else sum(per_layer))


def _cast_trainable(skeleton: Skeleton, dtype: str | None) -> None:
    """Trainable floating-point weights in `dtype` (Settings.adapter_dtype: another loop's layout)."""
    if dtype is None:
        return
    import torch

    for param in skeleton.model.parameters():
        if param.requires_grad and param.is_floating_point():
            param.data = param.data.to(getattr(torch, dtype))


def _rank(plan: Plan, skeleton: Skeleton, settings: Settings, autocast: str | None) -> Rank:
    weights, adapter = weight_bytes(skeleton, plan.recipe.quantization, settings.quantize_head)
    optimizer, _ = optimizer_bytes(skeleton, settings.optim)
    states = States(weights, adapter, gradient_bytes(skeleton), optimizer)
    shape = layout(skeleton, plan.recipe.quantization, autocast is not None, settings.quantize_head)
    return per_rank(settings.strategy, states, shape, settings.processes, settings.per_node, autocast is not None,
                    settings.offload_optimizer, settings.offload_params)


def _setting_notes(settings: Settings, rank: Rank) -> list[str]:
    notes = []
    if settings.compile:
        notes.append("torch_compile: activations as the eager step (compiled kernels fuse some of them away: "
                     "the low total allows 25 % less)")
    if settings.offload_activations:
        notes.append("activation offloading: saved activations counted on the CPU, brought back one at a time in backward")
    if rank.cpu:
        notes.append(f"offloaded to the CPU: {rank.cpu / 1e9:.2f} GB per rank (cpu_ram_per_node for the node's ranks)")
    return notes


def estimate(plan: Plan, settings: Settings | None = None, mixed_precision: bool = True) -> Estimate:
    """Counts and memory per rank for a plan on its hardware (plan.hardware: this machine, or --gpu / --gpus /
    --nodes). `settings` and `mixed_precision=False` describe training loops other than TRL's (bench/)."""
    skeleton = skeleton_for(plan)
    counts = count(skeleton)
    settings = settings or read_settings(plan)
    autocast = _autocast(plan, mixed_precision)
    _cast_trainable(skeleton, settings.adapter_dtype)
    notes: list[str] = []
    _, note = optimizer_bytes(skeleton, settings.optim)
    notes += [note] if note else []
    rank = _rank(plan, skeleton, settings, autocast)
    copies = _autocast_copies(skeleton, settings, autocast)
    activations = _activations(plan, skeleton, settings, notes, mixed_precision) + copies  # last: the step changes the skeleton
    notes += _setting_notes(settings, rank)
    live = rank.weights + rank.adapter + rank.gradients + rank.optimizer + rank.gathered + rank.buffers + activations
    totals, figures = band(live, plan.hardware.cuda, settings.processes)
    if settings.compile:
        totals["low"] = max(totals["low"] - activations // 4, 0)
    memory = Breakdown(rank.weights, rank.adapter, rank.gradients, rank.optimizer, activations, rank.gathered,
                       rank.buffers, totals["expected"] - live, totals, figures, rank.cpu * settings.per_node, notes)
    return Estimate(plan, counts, memory, settings)


def summary(estimate: Estimate) -> dict[str, Any]:
    """The estimate next to what a run measures (the manifest's `memory` entry)."""
    return {"estimate_gb": {k: round(v / 1e9, 3) for k, v in estimate.memory.band.items()},
            "figures_gb": {k: round(v / 1e9, 3) for k, v in estimate.memory.figures.items()},
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


def estimate_or_warn(plan: Plan, settings: Settings | None = None) -> Estimate | None:
    """The memory plan of a run; building it checks target_modules & co. on the skeleton."""
    return _recipe_errors_only(lambda p: estimate(p, settings), plan, "no memory plan for this run")


def check_targets(plan: Plan) -> None:
    """The recipe's module names against the model's skeleton, once, before the launcher starts processes
    that would each fail on them; what else the skeleton cannot show, the launched processes report."""
    _recipe_errors_only(skeleton_for, plan, None)
