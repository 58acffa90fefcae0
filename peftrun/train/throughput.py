"""Useful tokens per second, seen: every training log gets `useful_tokens_per_s` (non-padding tokens the
training forward passes read, per second since the previous log) and `padding_fraction` (the share of their
positions that were padding); the run's totals go into the manifest (training.useful_tokens_per_s,
training.padding_fraction).

Tokens are counted by a forward pre-hook on the trained model, for the passes that build a graph (training, not
evaluation, generation or a DPO reference pass): the attention mask's ones where the batch has one, every
position of a padding-free row otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from peftrun.builders.throughput import Batching, apply_throughput
from peftrun.recipe.plan import Plan

KEYS = ("useful_tokens_per_s", "padding_fraction")  # in the logs and the manifest's `training`


@dataclass
class Window:
    """Tokens read and positions computed since a point in time."""

    start: float = field(default_factory=time.perf_counter)
    useful: int = 0
    positions: int = 0

    def figures(self, now: float) -> dict[str, float]:
        elapsed = max(now - self.start, 1e-9)
        padding = 1.0 - self.useful / self.positions if self.positions else 0.0
        return dict(zip(KEYS, (round(self.useful / elapsed, 1), round(padding, 4)), strict=True))


def batch_tokens(kwargs: dict[str, Any]) -> tuple[int, int]:
    """(useful tokens, positions) of one forward call's inputs."""
    ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
    if mask is not None and getattr(mask, "dim", lambda: 0)() == 2:
        return int(mask.sum()), mask.numel()
    if ids is not None:
        return ids.numel(), ids.numel()
    return 0, 0


class ThroughputMeter:
    """Counts training tokens on a model and reports them per log window and for the whole run."""

    def __init__(self, batching: Batching) -> None:
        self.batching = batching
        self.run = Window()
        self.window = Window()
        self.train_seconds = 0.0

    def attach(self, model: Any) -> None:
        import torch

        def count(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if module.training and torch.is_grad_enabled():
                useful, positions = batch_tokens(kwargs)
                for window in (self.run, self.window):
                    window.useful += useful
                    window.positions += positions

        model.register_forward_pre_hook(count, with_kwargs=True)

    def summary(self) -> dict[str, float]:
        """The whole run's figures (training time only, from the first step to the end of training)."""
        figures = self.run.figures(self.run.start + self.train_seconds) if self.train_seconds else {}
        return figures if self.run.positions else {}

    def callback(self) -> Any:
        from transformers import TrainerCallback

        this = self

        class ThroughputCallback(TrainerCallback):
            meter = this

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                this.run, this.window = Window(), Window()

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                this.train_seconds = time.perf_counter() - this.run.start

            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
                if logs is None or "loss" not in logs or not this.window.positions:
                    return
                figures = this.window.figures(time.perf_counter())
                logs.update(figures)
                if state.log_history:
                    state.log_history[-1].update(figures)
                this.window = Window()

        return ThroughputCallback()


def install(plan: Plan, trainer: Any) -> Batching:
    """Apply the plan's batching to the trainer and count its training tokens (the callback runs first, so
    every other callback sees the figures in the logs)."""
    batching = apply_throughput(plan, trainer)
    meter = ThroughputMeter(batching)
    meter.attach(trainer.model)
    trainer.callback_handler.callbacks.insert(0, meter.callback())
    return batching


def record(trainer: Any) -> dict[str, Any]:
    """The manifest's training figures: batching, useful tokens per second and padding fraction of the run."""
    meter = next((c.meter for c in trainer.callback_handler.callbacks if hasattr(c, "meter")), None)
    if meter is None:
        return {}
    return {"batching": meter.batching.name, "batching_reason": meter.batching.reason, **meter.summary()}
