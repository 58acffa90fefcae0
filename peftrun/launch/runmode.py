"""How a run uses its directory: one value from the command line to the run directory, never two booleans."""

from __future__ import annotations

import argparse
from enum import Enum


class RunMode(str, Enum):
    """fresh: the directory must hold no run; resume: continue its newest complete checkpoint with the same
    recipe; overwrite: delete the run it holds and start over."""

    FRESH = "fresh"
    RESUME = "resume"
    OVERWRITE = "overwrite"

    @property
    def flags(self) -> tuple[str, ...]:
        """The command-line flag that asks for this mode (what a launched or requeued process is given)."""
        return () if self is RunMode.FRESH else (f"--{self.value}",)

    @classmethod
    def of(cls, mode: RunMode | str) -> RunMode:
        """A mode from the API's value, with the allowed ones named when it is none of them."""
        try:
            return cls(mode)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"run mode {mode!r} is not one of {allowed}") from None


def add_arguments(parser: argparse.ArgumentParser, overwrite_help: str, resume_help: str) -> None:
    """--overwrite | --resume (one at most), read back by `from_args`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", dest="mode", action="store_const", const=RunMode.OVERWRITE, help=overwrite_help)
    group.add_argument("--resume", dest="mode", action="store_const", const=RunMode.RESUME, help=resume_help)
    parser.set_defaults(mode=RunMode.FRESH)
