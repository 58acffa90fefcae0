"""What a run shows while it trains: one line per logging step, library noise kept out of the terminal.

`quiet(verbose)` is a context manager: inside it the libraries' progress bars are off, their log
records and Python warnings go to the run's log file in full, and the terminal shows only what a user
can act on (every known-harmless line in `HARMLESS` is kept from it). Everything it changes is put
back on exit, so a Python caller of `peftrun.run` finds its process as it left it. `--verbose` shows
the libraries' own output as well.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

LOG_FILE = "train.log"
LIBRARIES = ("transformers", "datasets", "bitsandbytes", "peft", "trl", "accelerate", "huggingface_hub")
# Lines the libraries print on every run that no user can act on (kept in the log, not on the terminal).
HARMLESS = tuple(re.compile(p) for p in (
    r"Failed to load CPU gemm_4bit_forward from kernels-community",  # bitsandbytes without `kernels`
    r"MatMul8bitLt: inputs will be cast",
    r"gradient_checkpointing.* is deprecated",
    r"`use_cache=True` is incompatible with gradient checkpointing",
    r"Padding-free training is enabled, but the attention implementation is not set",
))


class RunLog:
    """The run's log: kept in memory until the run directory exists (`open`), then appended to its file, which
    is opened for each write and closed again (no handle is held on the run directory's file system)."""

    def __init__(self, verbose: bool = False) -> None:
        self._pending = io.StringIO()
        self.path: Path | None = None
        self.verbose = verbose

    def write(self, text: str) -> None:
        line = text if text.endswith("\n") else text + "\n"
        if self.path is None:
            self._pending.write(line)
            return
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(line)

    def open(self, run_dir: Path) -> Path:
        if self.path is None:
            self.path = run_dir / LOG_FILE
            self.write(self._pending.getvalue())
        return self.path


_ACTIVE: list[RunLog] = []  # the log of the `quiet` block in progress (innermost last)


def say(text: str) -> None:
    """Print one of peftrun's own lines and keep it in the run's log."""
    print(text, flush=True)
    if _ACTIVE:
        _ACTIVE[-1].write(text)


def open_log(run_dir: Path) -> Path | None:
    """From now on, the active run log is written to `run_dir`/train.log (None outside `quiet`)."""
    return _ACTIVE[-1].open(run_dir) if _ACTIVE else None


def log_path() -> Path | None:
    """The file the active run log is written to (None before the run directory exists, or outside `quiet`)."""
    return _ACTIVE[-1].path if _ACTIVE else None


def harmless(text: str) -> bool:
    return any(p.search(text) for p in HARMLESS)


class _ToLog(logging.Handler):
    """Every library log record into the run's log; on the terminal only warnings a user can act on."""

    def __init__(self, log: RunLog, verbose: bool) -> None:
        super().__init__(logging.DEBUG)
        self.log, self.verbose = log, verbose

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname.lower()} [{record.name}] {record.getMessage()}"
        self.log.write(text)
        if self.verbose or (record.levelno >= logging.WARNING and not harmless(text)):
            print(text, file=sys.stderr)


@contextmanager
def _library_loggers(handler: logging.Handler, verbose: bool) -> Iterator[None]:
    """The libraries' loggers write through `handler` alone; their handlers, levels and propagation restored."""
    import datasets.utils.logging  # noqa: F401 - the libraries with their own handlers set them up first,
    import transformers.utils.logging  # noqa: F401 - so that they are saved here and put back below

    saved = []
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(logging.INFO if not verbose else min(logger.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:  # a handler a library added meanwhile stays
            logger.handlers = handlers + [h for h in logger.handlers if h is not handler and h not in handlers]
            logger.propagate = propagate
            logger.setLevel(level)


@contextmanager
def _warnings_to(log: RunLog, verbose: bool) -> Iterator[None]:
    """Python warnings into the run's log; on the terminal unless known to be harmless."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
            log.write(text)
            if verbose or not harmless(text):
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers', huggingface_hub's and datasets' progress bars off; each put back as it was."""
    from datasets import utils as datasets_tqdm
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    states = (hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled(),
              datasets_tqdm.are_progress_bars_disabled())
    hf_logging.disable_progress_bar()
    if not states[2]:
        datasets_tqdm.disable_progress_bars()
    try:
        yield
    finally:
        if states[0]:
            hf_logging.enable_progress_bar()
        (hub_utils.disable_progress_bars if states[1] else hub_utils.enable_progress_bars)()
        if not states[2]:
            datasets_tqdm.enable_progress_bars()


@contextmanager
def quiet(verbose: bool = False) -> Iterator[RunLog]:
    """Keep library noise off the terminal and in the run's log for the duration of a run (see the module)."""
    if _ACTIVE:  # a block inside another (eval inside a caller's run, say): one log
        yield _ACTIVE[-1]
        return
    log = RunLog(verbose)
    with ExitStack() as stack:
        stack.enter_context(_warnings_to(log, verbose))
        stack.enter_context(_library_loggers(_ToLog(log, verbose), verbose))
        if not verbose:
            stack.enter_context(_no_progress_bars())
        _ACTIVE.append(log)
        stack.callback(_ACTIVE.pop)
        yield log


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def progress_line(logs: dict[str, Any], step: int, total: int, elapsed: float, steps_done: int,
                  tokens_per_s: float | None) -> str:
    """One line for one logging step: `step 4/32  loss 0.4123  lr 4.69e-04  812 tok/s  2.31 s/step  ETA 1m09s`."""
    width = len(str(total))
    parts = [f"step {step:>{width}}/{total}"]
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4f}")
    if "eval_loss" in logs:
        parts.append(f"eval loss {float(logs['eval_loss']):.4f}")
    if "learning_rate" in logs:
        parts.append(f"lr {float(logs['learning_rate']):.2e}")
    if tokens_per_s is not None:
        parts.append(f"{tokens_per_s:,.0f} tok/s")
    if "padding_fraction" in logs:
        parts.append(f"padding {float(logs['padding_fraction']):.0%}")
    if steps_done > 0 and "eval_loss" not in logs:
        per_step = elapsed / steps_done
        parts.append(f"{per_step:.2f} s/step")
        parts.append(f"ETA {_duration(per_step * max(total - step, 0))}")
    return "  ".join(parts)


class Tokens:
    """Tokens per second: the trainer's own `useful_tokens_per_s` when it logs one, else from `num_tokens`."""

    def __init__(self) -> None:
        self.last: tuple[float, float] | None = None  # (num_tokens, time)
        self.rates: list[float] = []

    def rate(self, logs: dict[str, Any], now: float) -> float | None:
        if "useful_tokens_per_s" in logs:
            value: float | None = float(logs["useful_tokens_per_s"])
        elif "num_tokens" in logs and "loss" in logs:
            seen = float(logs["num_tokens"])
            value = (seen - self.last[0]) / (now - self.last[1]) if self.last and now > self.last[1] else None
            self.last = (seen, now)
        else:
            value = None
        if value is not None:
            self.rates.append(value)
        return value

    def mean(self) -> float | None:
        return sum(self.rates) / len(self.rates) if self.rates else None


def progress_callback(banner: Callable[[Any, Any, Any], str] | None = None) -> Any:
    """A TrainerCallback that prints the banner when training begins (`banner(args, state, model)`) and one line
    per log of the trainer (rank 0 only). Its `tokens` holds the tokens/s seen, for the end summary."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self) -> None:
            self.tokens, self.started, self.first_step = Tokens(), time.perf_counter(), 0

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self.started, self.first_step = time.perf_counter(), state.global_step
            self.tokens.last = None
            if banner is not None and state.is_world_process_zero:
                say(banner(args, state, model))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs or "train_runtime" in logs:
                return
            now = time.perf_counter()
            if self.tokens.last is None and "num_tokens" in logs:
                self.tokens.last = (0.0, self.started)
            say(progress_line(logs, state.global_step, state.max_steps, now - self.started,
                              state.global_step - self.first_step, self.tokens.rate(logs, now)))

    return Progress()


def attach(trainer: Any, banner: Callable[[Any, Any, Any], str] | None = None) -> None:
    """Add the progress lines (and the banner) to a trainer; inside `quiet`, unless verbose, the trainer's own
    progress bars (TRL's nested eval bars among them) and printed log dicts give way to them."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.add_callback(progress_callback(banner))
    if _ACTIVE and not _ACTIVE[-1].verbose:
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)


def tokens_per_s(trainer: Any) -> float | None:
    """The mean tokens/s the progress lines showed (None when the trainer logged no token counts)."""
    found = [c.tokens.mean() for c in trainer.callback_handler.callbacks if isinstance(getattr(c, "tokens", None), Tokens)]
    return round(found[0], 1) if found and found[0] is not None else None
