"""`peftrun run RECIPE [key=value ...]` (or just `peftrun RECIPE ...`): train."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.commands.validate import foreign_hint
from peftrun.launch import runmode

HELP = "train a recipe (the default command: `peftrun RECIPE ...`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    runmode.add_arguments(parser, overwrite_help="replace an existing run directory",
                          resume_help="continue from the run directory's last checkpoint")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the objects it builds, then stop")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' progress bars and messages too (the run's train.log has them anyway)")


def main(args: argparse.Namespace) -> int:
    from peftrun.errors import RecipeError
    from peftrun.train.runner import run_from_cli

    try:
        return run_from_cli(args.recipe, args.overrides, mode=args.mode,
                            dry_run=args.dry_run, verbose=args.verbose)
    except RecipeError as exc:
        hint = foreign_hint(Path(args.recipe))
        if hint is None:
            raise
        print(f"error: {exc}\n{hint}", file=sys.stderr)
        return exc.exit_code
