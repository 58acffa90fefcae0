"""`peftrun plan RECIPE [key=value ...] [--gpu [Nx]NAME|SIZE] [--gpus N] [--nodes N --gpus-per-node G] [--json]`:
will it fit, per rank?

Exit status: 0 fits, 1 does not fit, 2 recipe error, 4 cannot estimate (the model's config cannot be read, or
its skeleton or training step cannot be built on the meta device).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from peftrun.plan.settings import Settings
from peftrun.recipe.gpus import add_hardware_arguments, hardware_from_args
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.plan import Plan
from peftrun.recipe.validation import checked_plan

HELP = "parameter counts and memory per GPU of a recipe, and whether it fits (exit 0 fits, 1 does not)"
MAX_ROWS_READ = 20_000  # larger data keeps the max_length assumption (tokenizing it all would make plan slow)


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


def sized_for(plan: Plan, longest: int | None) -> Settings:
    """The plan's settings, with the tokens per row of the data's longest example when it is known and shorter
    than max_length (padded batches peak at the batch holding it)."""
    from dataclasses import replace

    from peftrun.plan.settings import read_settings

    settings = read_settings(plan)
    if longest is None or longest >= settings.length:
        return settings
    return replace(settings, length=longest, length_from_data=True)


def longest_example(plan: Plan) -> int | None:
    """Tokens of the longest training example as TRL's SFT preparation makes it, for SFT data in local files (at
    most MAX_ROWS_READ rows) that this machine reads; None otherwise (the plan then assumes max_length)."""
    from peftrun.builders import build_training_args
    from peftrun.data import load_training_data
    from peftrun.data.preview import sft_prepared
    from peftrun.errors import PeftrunError
    from peftrun.hub import is_local
    from peftrun.recipe.hardware import CPU
    from peftrun.recipe.resolver import resolve
    from peftrun.train.modeling import load_tokenizer
    from peftrun.train.progress import quiet

    sources = [source for _, source in plan.recipe.dataset.all_sources()]
    if plan.trainer_type != "sft" or not all(is_local(str(source.path)) for source in sources):
        return None
    try:
        with quiet():  # the libraries' progress bars and notices stay off the plan's output
            data = load_training_data(plan)
            if not 0 < len(data.train) <= MAX_ROWS_READ:
                return None
            here = resolve(plan.recipe, CPU)  # the data is prepared alike everywhere; TRL refuses GPU precision on a CPU
            prepared = sft_prepared(data.train, load_tokenizer(here), build_training_args(here))
    except PeftrunError:  # the run reports it; the plan keeps the max_length assumption and says so
        return None
    return max(len(ids) for ids in prepared["input_ids"])
