"""`peftrun explain RECIPE [key=value ...]`: every resolved value and where it came from."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

import yaml

from peftrun.recipe import explain
from peftrun.recipe.diff import load_side
from peftrun.recipe.gpus import add_hardware_arguments, hardware_from_args
from peftrun.recipe.plan import Plan
from peftrun.recipe.validation import checked_plan

HELP = "show every resolved value of a recipe, where it came from, and the objects it builds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file, or REV:path (the recipe as committed at a git revision)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("--format", choices=("table", "yaml", "json"), default="table")
    add_hardware_arguments(parser)
    parser.add_argument("--counts", action="store_true", help="also count parameters on the model's skeleton "
                        "(reads config.json, builds no weights, but imports torch: a few seconds)")


def main(args: argparse.Namespace) -> int:
    with ExitStack() as stack:  # REV:path reads the recipe as committed (peftrun/recipe/diff.py)
        plan = checked_plan(load_side(args.recipe, args.overrides, stack), hardware_from_args(args))
        data = {**explain.as_data(plan), **({"parameters": _counts(plan)} if args.counts else {})}
    if args.format == "table":
        print(explain.as_table(plan))
        if args.counts:
            counts = data["parameters"]
            print(f"\nparameters: {counts['trainable']:,} trainable of {counts['total']:,}")
    elif args.format == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        print(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))
    return 0


def _counts(plan: Plan) -> dict[str, int]:
    """Parameter counts from the meta skeleton (heavy imports: only with --counts)."""
    from peftrun.hub import offline_scope
    from peftrun.plan.counts import count
    from peftrun.plan.estimate import skeleton_for

    with offline_scope():
        counts = count(skeleton_for(plan))
    return {"total": counts.total, "trainable": counts.trainable}
