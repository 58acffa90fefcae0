"""When a recipe does not fit: the smallest changes that would, each one re-estimated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peftrun.errors import RecipeError
from peftrun.plan.estimate import Estimate
from peftrun.plan.settings import setting
from peftrun.recipe.plan import Plan
from peftrun.recipe.trainer_types import TRAINERS


@dataclass(frozen=True)
class Suggestion:
    change: tuple[str, ...]  # key=value overrides (and --gpus N)
    expected: int  # bytes per device
    fits: bool


def candidates(estimate: Estimate) -> list[tuple[str, ...]]:
    """Single changes, cheapest first: 4-bit weights, checkpointing, a smaller batch with more accumulation,
    a shorter length, twice the GPUs with FSDP."""
    plan, settings = estimate.plan, estimate.settings
    out: list[tuple[str, ...]] = []
    if plan.recipe.quantization is None and plan.recipe.peft is not None:
        out.append(("quantization.bits=4",))
    if not settings.checkpointing:
        out.append(("trainer.activation_checkpointing=true",))
    if settings.batch > 1:
        accumulation = int(setting(plan, "gradient_accumulation_steps") or 1)
        out.append((f"trainer.per_device_train_batch_size={settings.batch // 2}",
                    f"trainer.gradient_accumulation_steps={accumulation * 2}"))
    if not TRAINERS[settings.trainer].generates and settings.length > 256:
        out.append((f"trainer.max_length={settings.length // 2}",))
    if plan.hardware.cuda:
        gpus = max(plan.hardware.device_count, 1) * 2
        out.append(("launch.strategy=fsdp", f"launch.num_processes={gpus}", f"--gpus {gpus}"))
    return out


def suggest(estimate: Estimate, replan: Callable[[tuple[str, ...], int | None], Plan],
            run: Callable[[Plan], Estimate]) -> list[Suggestion]:
    """Each candidate re-estimated; when none fits alone, all of them together. A candidate the recipe
    cannot take (the resolver refuses the combination) is left out."""
    found: list[Suggestion] = []
    for change in candidates(estimate):
        found += _try(change, replan, run)
    if found and not any(s.fits for s in found) and len(found) > 1:
        found += _try(tuple(c for s in found for c in s.change), replan, run)
    return sorted(found, key=lambda s: (not s.fits, len(s.change), s.expected))  # what fits, smallest change first


def _try(change: tuple[str, ...], replan: Callable[[tuple[str, ...], int | None], Plan],
         run: Callable[[Plan], Estimate]) -> list[Suggestion]:
    gpus = next((int(c.split()[1]) for c in change if c.startswith("--gpus")), None)
    overrides = tuple(c for c in change if not c.startswith("--gpus"))
    try:
        result = run(replan(overrides, gpus))
    except RecipeError:
        return []
    return [Suggestion(change, result.memory.band["expected"], bool(result.fits))]
