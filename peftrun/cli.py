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
            "import", "export", "submit", "sweep", "compare")
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


REPORTED_VERSIONS = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "pydantic")


def _versions() -> str:
    """peftrun's and the libraries' versions, read from their metadata (nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    def one(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} not installed"

    return ", ".join([f"peftrun {__version__}", f"python {sys.version.split()[0]}", *map(one, REPORTED_VERSIONS)])


def _bug_report(argv: Sequence[str]) -> Path | None:
    """Write the traceback, the command and the versions to a log a user can attach; None if it cannot be written."""
    from datetime import datetime, timezone

    folder = Path(os.environ.get("PEFTRUN_CACHE", Path.home() / ".cache" / "peftrun")) / "bug-reports"
    path = folder / f"internal-error-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"command: peftrun {' '.join(argv)}\nversions: {_versions()}\n\n{traceback.format_exc()}")
    except OSError:
        return None
    return path


def main(argv: Sequence[str] | None = None) -> int:
    with scrubbed_output():  # a value read from the environment is never printed (docs/trust.md)
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    _quiet_library_warnings()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(_with_default_command(argv))
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
        log = _bug_report(argv)
        attach = f"the log {log}" if log else "the traceback above"
        print(f"internal error in peftrun {__version__} (a bug, not your recipe): please report it with {attach}\n"
              f"versions: {_versions()}", file=sys.stderr)
        return INTERNAL_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
