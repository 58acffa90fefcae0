"""`peftrun explain RECIPE [key=value ...]`: every resolved value and where it came from."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

import yaml

from peftrun.recipe import explain
from peftrun.recipe.diff import load_side
from peftrun.recipe.hardware import probe_light
from peftrun.recipe.validation import checked_plan

HELP = "show every resolved value of a recipe, where it came from, and the objects it builds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file, or REV:path (the recipe as committed at a git revision)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("--format", choices=("table", "yaml", "json"), default="table")


def main(args: argparse.Namespace) -> int:
    with ExitStack() as stack:  # REV:path reads the recipe as committed (peftrun/recipe/diff.py)
        plan = checked_plan(load_side(args.recipe, args.overrides, stack), probe_light())
    if args.format == "table":
        print(explain.as_table(plan))
    elif args.format == "json":
        print(json.dumps(explain.as_data(plan), indent=2, default=str))
    else:
        print(yaml.safe_dump(json.loads(json.dumps(explain.as_data(plan), default=str)), sort_keys=False))
    return 0
