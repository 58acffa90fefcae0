"""The `peftrun` command: subcommands are small modules under peftrun/commands.

`peftrun RECIPE ...` is short for `peftrun run RECIPE ...`. User errors print
without a traceback and exit with their class's code (errors.py); anything else
is an internal error (exit 70) and says so.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

from peftrun import __version__
from peftrun.errors import INTERNAL_ERROR_EXIT, PeftrunError, scrubbed_output
from peftrun.hub import ensure_offline_mode

COMMANDS = ("run", "validate", "explain", "schema", "merge", "generate", "eval", "diff", "migrate", "init", "data", "plan",
            "import", "export")
MODULES = {"import": "import_"}  # subcommands whose module name differs (`import` is a Python keyword)
LOADING_COMMANDS = {"merge", "generate", "eval"}  # they load models: decide offline mode first (run does it itself)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peftrun",
        description="Declarative YAML recipes for parameter-efficient fine-tuning. "
        "`peftrun RECIPE [key=value ...]` runs a recipe (same as `peftrun run`).",
    )
    parser.add_argument("--version", action="version", version=f"peftrun {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = import_module(f"peftrun.commands.{MODULES.get(name, name)}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """`peftrun RECIPE ...` means `peftrun run RECIPE ...`; a mistyped command is not taken for a recipe."""
    if not argv or argv[0] in COMMANDS or argv[0].startswith("-"):
        return argv
    close = difflib.get_close_matches(argv[0], COMMANDS, n=1, cutoff=0.75)
    if close and not Path(argv[0]).exists():
        raise PeftrunError(f"unknown command {argv[0]!r}; did you mean `peftrun {close[0]}`? (see peftrun --help)")
    return ["run", *argv]


def _quiet_library_warnings() -> None:
    """Hide deprecation notices that TRL's and transformers' own defaults trigger (users cannot act on them)."""
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.* is deprecated", category=FutureWarning)


def main(argv: Sequence[str] | None = None) -> int:
    with scrubbed_output():  # a value read from the environment is never printed (docs/trust.md)
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    _quiet_library_warnings()
    parser = build_parser()
    try:
        args = parser.parse_args(_with_default_command(list(sys.argv[1:] if argv is None else argv)))
    except PeftrunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        if args.command in LOADING_COMMANDS:
            ensure_offline_mode()
        return int(args.handler(args))
    except PeftrunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `peftrun explain ... | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs advise
        return 0
    except Exception:  # noqa: BLE001 - the one place that turns a bug into a report
        traceback.print_exc()
        print(f"internal error in peftrun {__version__} (a bug, not your recipe): please report it with the traceback above", file=sys.stderr)
        return INTERNAL_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
