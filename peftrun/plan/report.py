"""An estimate as text (the table `peftrun plan` prints) and as the JSON object of `--json`. GB = 1e9 bytes."""

from __future__ import annotations

from typing import Any

from peftrun.plan.estimate import Estimate
from peftrun.plan.memory import CPU_PROCESS, CUDA_CONTEXT, NCCL, RESERVED
from peftrun.plan.settings import PROMPT_TOKENS, Settings
from peftrun.plan.suggest import Suggestion
from peftrun.recipe.trainer_types import TRAINERS

PARTS = ("weights", "adapter", "gradients", "optimizer", "activations", "gathered", "buffers", "overhead")
FIGURES = {"live": "live tensors (torch.cuda.max_memory_allocated)", "reserved": "allocator reserved "
           "(torch.cuda.max_memory_reserved)", "device": "what nvidia-smi shows (reserved + CUDA context + NCCL)"}


# `peftrun plan` reads the lengths of SFT data in local files (commands/plan.py); otherwise it assumes max_length
UNREAD = "the data's lengths are read for SFT data in local files only: `peftrun data RECIPE` shows them"


def length_source(settings: Settings) -> str:
    """Which figure the tokens per row are, and why not the data's longest example."""
    if TRAINERS[settings.trainer].generates:
        return f"{settings.trainer.upper()}: {PROMPT_TOKENS} prompt tokens assumed + max_completion_length"
    if settings.length_from_data:
        return ("the data's longest training example, below max_length; TRL's SFT preparation of the local data, "
                "and padded batches peak at the batch holding it")
    return f"max_length, every row assumed this long (the longest batch's peak); {UNREAD}"


def gb(size: int | None) -> float | None:
    return None if size is None else round(size / 1e9, 2)


def band_source(cuda: bool) -> str:
    if not cuda:
        return (f"CPU: live tensors plus {CPU_PROCESS / 1e9:.1f} GB for the Python process; high allows "
                f"{RESERVED['high'] - 1:.0%} for the allocator")
    return (f"live tensors at the step's peak (exact on the meta device) x{RESERVED['low']}/x{RESERVED['expected']}/"
            f"x{RESERVED['high']} (low/expected/high) for memory the caching allocator reserves beyond live tensors "
            f"(fitted on PEFT's published L40S runs), plus {CUDA_CONTEXT / 1e9:.1f} GB CUDA context and "
            f"{NCCL / 1e9:.1f} GB NCCL buffers with more than one process: the totals are what nvidia-smi shows")


def as_data(estimate: Estimate, suggestions: list[Suggestion] | None = None) -> dict[str, Any]:
    memory, hardware, settings = estimate.memory, estimate.plan.hardware, estimate.settings
    return {
        "parameters": {"total": estimate.counts.total, "trainable": estimate.counts.trainable,
                       "by_kind": estimate.counts.by_kind},
        "memory_gb": {**{part: gb(getattr(memory, part)) for part in PARTS},
                      "total": {key: gb(value) for key, value in memory.band.items()},
                      "figures": {key: gb(value) for key, value in memory.figures.items()},
                      "cpu_ram_per_node": gb(memory.cpu_ram_per_node)},
        "gpu": {"name": hardware.name if hardware.cuda else "cpu", "memory_gb": gb(hardware.memory_bytes),
                "count": max(hardware.device_count, 1), "nodes": hardware.nodes},
        "fits": estimate.fits,
        "margin_gb": gb(estimate.margin),
        "assumptions": {"batch": settings.batch, "rows": settings.rows, "length": settings.length,
                        "length_source": length_source(settings),
                        "padding_free_row": settings.flattened,
                        "checkpointing": settings.checkpointing, "optimizer": settings.optim,
                        "loss": "full logits" if settings.full_logits else "TRL fused LM head",
                        "strategy": settings.strategy, "processes": settings.processes,
                        "band": band_source(hardware.cuda), "notes": memory.notes},
        "suggestions": [{"change": list(s.change), "expected_gb": gb(s.expected), "fits": s.fits}
                        for s in suggestions or []],
    }


def as_text(estimate: Estimate, suggestions: list[Suggestion] | None = None) -> str:
    data = as_data(estimate, suggestions)
    params, memory, gpu, assumed = data["parameters"], data["memory_gb"], data["gpu"], data["assumptions"]
    share = params["trainable"] / params["total"] if params["total"] else 0.0
    lines = [
        f"parameters  {params['trainable']:,} trainable of {params['total']:,} ({share:.4%})",
        f"per device  {_device(gpu)}, {_parallelism(assumed)}; "
        f"batch {assumed['batch']} x {assumed['length']} tokens ({assumed['length_source'].split(';')[0]})"
        f"{' in one padding-free row' if assumed['padding_free_row'] else ''}, checkpointing {'on' if assumed['checkpointing'] else 'off'}, "
        f"{assumed['optimizer']}, loss via {assumed['loss']}",
        "",
        *(f"  {part:<12} {memory[part]:>8.2f} GB" for part in PARTS),
        f"  {'total':<12} {memory['total']['expected']:>8.2f} GB  (low {memory['total']['low']:.2f}, high {memory['total']['high']:.2f})",
        *(f"  {FIGURES[key]}: {value:.2f} GB" for key, value in memory["figures"].items()),
        *([f"  CPU RAM per node for offloaded states: {memory['cpu_ram_per_node']:.2f} GB"] if memory["cpu_ram_per_node"] else []),
        f"  band: {assumed['band']}",
        f"  tokens per row: {assumed['length_source']}",
        *(f"  note: {note}" for note in assumed["notes"]),
        "",
        _verdict(data),
    ]
    lines += [f"  {'fits' if s['fits'] else 'still too big'}: {' '.join(s['change'])} -> {s['expected_gb']:.2f} GB"
              for s in data["suggestions"]]
    return "\n".join(lines)


def _device(gpu: dict[str, Any]) -> str:
    """The memory a rank plans against: a GPU's, or this machine's RAM when it has no GPU."""
    if gpu["name"] == "cpu":
        return f"CPU RAM of this machine ({gpu['memory_gb']} GB)"
    machines = f"{gpu['nodes']} nodes x {gpu['count']}" if gpu["nodes"] > 1 else f"{gpu['count']} x"
    return f"{machines} {gpu['name']} ({gpu['memory_gb']} GB)"


def _parallelism(assumed: dict[str, Any]) -> str:
    processes = assumed["processes"]
    if processes == 1:
        return "one process (no data parallelism)"
    return f"{assumed['strategy']} over {processes} processes"


def _verdict(data: dict[str, Any]) -> str:
    if data["fits"] is None:
        return "fits: unknown (the device's memory is unknown)"
    margin = data["margin_gb"]
    if data["fits"]:
        return f"fits, with {margin:.2f} GB to spare"
    return f"does not fit: {-margin:.2f} GB over" + ("; changes, each re-estimated:" if data["suggestions"] else "")
