"""`peftrun plan RECIPE [key=value ...] [--gpu [Nx]NAME|SIZE] [--gpus N] [--nodes N --gpus-per-node G] [--json]`:
will it fit, per rank?

Exit status: 0 fits, 1 does not fit, 2 recipe error, 4 cannot estimate (the model's config cannot be read, or
its skeleton or training step cannot be built on the meta device).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from peftrun.recipe.gpus import add_hardware_arguments, hardware_from_args
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.validation import checked_plan

HELP = "parameter counts and memory per GPU of a recipe, and whether it fits (exit 0 fits, 1 does not)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    add_hardware_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-suggest", action="store_true", help="skip the re-estimated suggestions")


def main(args: argparse.Namespace) -> int:
    from peftrun.hub import offline_scope
    from peftrun.plan import report
    from peftrun.plan.estimate import estimate
    from peftrun.plan.suggest import suggest
    from peftrun.train.data_length import longest_example, sized_for

    def replan(extra: tuple[str, ...], gpus: int | None) -> Plan:
        return checked_plan(load_recipe(args.recipe, [*args.overrides, *extra]), hardware_from_args(args, gpus))

    plan = checked_plan(load_recipe(args.recipe, args.overrides), hardware_from_args(args))
    with offline_scope():
        longest = longest_example(plan)

        def planned(candidate: Plan) -> Any:  # the plan and each suggestion sized for the same data
            return estimate(candidate, sized_for(candidate, longest))

        result = planned(plan)
        suggestions = [] if result.fits is not False or args.no_suggest else suggest(result, replan, planned)
    print(json.dumps(report.as_data(result, suggestions), indent=2) if args.json else report.as_text(result, suggestions))
    return 1 if result.fits is False else 0
