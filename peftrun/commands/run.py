"""`peftrun run RECIPE [key=value ...]` (or just `peftrun RECIPE ...`): train."""

from __future__ import annotations

import argparse

HELP = "train a recipe (the default command: `peftrun RECIPE ...`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    mode.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the objects it builds, then stop")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' progress bars and messages too (the run's train.log has them anyway)")


def main(args: argparse.Namespace) -> int:
    from peftrun.train.progress import quiet
    from peftrun.train.runner import run_from_cli

    with quiet(args.verbose):
        return run_from_cli(args.recipe, args.overrides, overwrite=args.overwrite, resume=args.resume,
                            dry_run=args.dry_run, verbose=args.verbose)
