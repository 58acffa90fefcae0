"""One exception tree; each class carries the process exit code the CLI uses."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

MASK = "***"
MIN_SECRET = 6  # shorter values (a rank, a flag, "true") are masked where they are shown, by key (recipe/redact.py)
_SECRETS: set[str] = set()


def keep_secret(value: object) -> None:
    """Remember a value read from the environment (or a credential): every message and file masks it."""
    text = str(value)
    if len(text) >= MIN_SECRET:
        _SECRETS.add(text)


def scrub(text: str) -> str:
    """`text` with every remembered secret replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class Scrubbed:
    """A text stream that writes through `scrub` (the CLI's stdout and stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(scrub(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def scrubbed_output() -> Iterator[None]:
    """Everything printed in the block goes through `scrub`."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Scrubbed(sys.stdout), Scrubbed(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


@dataclass(frozen=True)
class Problem:
    """One located problem in a recipe: where it is, which key, what is wrong."""

    where: str  # "file:line:col", "command line", or "" when unknown
    path: str  # dotted key path, "" for the whole recipe
    message: str
    unknown_key: bool = False  # the key is not a field of its section (whatever the message says)

    def __str__(self) -> str:
        head = ": ".join(part for part in (self.where, self.path) if part)
        return scrub(f"{head}: {self.message}" if head else self.message)


class PeftrunError(Exception):
    """A user-facing failure: printed without a traceback, never with a secret in it."""

    exit_code = 1

    def __str__(self) -> str:
        return scrub(super().__str__())


class RecipeError(PeftrunError):
    """A recipe that does not validate; holds every problem found at once."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem, source: str = "") -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.source = source
        super().__init__(self.problems)

    def __str__(self) -> str:
        return self.report()

    def report(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        head = f"{self.source}: {count} {noun}" if self.source else f"{count} {noun}"
        return scrub("\n".join([head, *(f"  {p}" for p in self.problems)]))


class DataError(PeftrunError):
    """A dataset that cannot be read or does not fit the trainer."""

    exit_code = 3


class ModelLoadError(PeftrunError):
    """A model or tokenizer that cannot be loaded (offline hub id, bad path...)."""

    exit_code = 4


class RunDirError(PeftrunError):
    """The run directory would be overwritten, or cannot be resumed."""

    exit_code = 5


class TrainingError(PeftrunError):
    """Training ran but its outcome is not a success (e.g. parameters never changed)."""

    exit_code = 6


class DivergedError(TrainingError):
    """Training diverged: a loss, gradient norm or trainable weight became NaN or infinite, or the gradient
    vanished to exactly zero once the weights had blown up. Never reported as "never changed"."""

    exit_code = 10


class LaunchError(PeftrunError):
    """Multi-process launch could not start or a worker failed."""

    exit_code = 7


class Interrupted(PeftrunError):
    """The user stopped the run (Ctrl-C); a checkpoint was saved to resume from."""

    exit_code = 130


class HubError(PeftrunError):
    """The hub cannot be reached, or no token allows pushing to it."""

    exit_code = 8


class NotCarried(PeftrunError):
    """`peftrun import` wrote its recipe, but some settings of the source could not be carried (each is listed
    with its reason in the recipe's comment block and on stderr). Not raised: the command exits with the code."""

    exit_code = 9


INTERNAL_ERROR_EXIT = 70  # an unexpected exception: a bug in peftrun, reported with its traceback
