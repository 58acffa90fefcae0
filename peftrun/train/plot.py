"""loss.png: train loss per step, and eval loss when there was evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftrun.recipe.extras import EXTRAS


def _series(log_history: list[dict], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for entry in log_history:
        if key in entry and "step" in entry:
            steps.append(entry["step"])
            values.append(float(entry[key]))
    return steps, values


def loss_figure(log_history: list[dict], title: str) -> Any:
    """A matplotlib Figure of the training loss per logged step, with the eval loss when present.

    ``log_history`` is ``trainer.state.log_history`` (a list of dicts with ``step`` and ``loss`` /
    ``eval_loss``; the final summary entry has ``train_loss`` and is left out). Eval points are markers
    alone: with sparse evaluation, a line joining them would draw a trend nobody measured.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    train_steps, train_loss = _series(log_history, "loss")
    eval_steps, eval_loss = _series(log_history, "eval_loss")
    fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if train_steps:
        ax.plot(train_steps, train_loss, marker="o", markersize=3, label="train loss")
    if eval_steps:
        ax.plot(eval_steps, eval_loss, linestyle="none", marker="s", markersize=6, label="eval loss")
    if not (train_steps or eval_steps):
        ax.text(0.5, 0.5, "no loss was logged", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Training loss: {title}" if title else "Training loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    if train_steps or eval_steps:
        ax.legend()
    return fig


def plot_losses(log_history: list[dict], path: Path, title: str | None = None) -> Path | None:
    """Write loss_figure() as a PNG to ``path`` (a file, or a directory to write ``loss.png`` into);
    ``title`` names the run as its model card does (default: the directory's name). Returns the file, or
    None when the `plot` extra (matplotlib) is not installed."""
    if EXTRAS["plot"].missing():
        return None
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / "loss.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    loss_figure(log_history, title or path.parent.name).savefig(path)
    return path
