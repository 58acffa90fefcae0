"""`peftrun explain RECIPE [key=value ...]`: every resolved value and where it came from."""

from __future__ import annotations

import argparse
import json

import yaml

from peftrun.recipe import explain
from peftrun.recipe.gpus import add_hardware_arguments, target_hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

HELP = "show every resolved value of a recipe, where it came from, and the objects it builds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("--format", choices=("table", "yaml", "json"), default="table")
    add_hardware_arguments(parser)


def main(args: argparse.Namespace) -> int:
    plan = checked_plan(load_recipe(args.recipe, args.overrides), target_hardware(args.gpu, args.gpus))
    if args.format == "table":
        print(explain.as_table(plan))
    elif args.format == "json":
        print(json.dumps(explain.as_data(plan), indent=2, default=str))
    else:
        print(yaml.safe_dump(json.loads(json.dumps(explain.as_data(plan), default=str)), sort_keys=False))
    return 0
