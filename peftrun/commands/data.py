"""`peftrun data RECIPE [key=value ...] [--show N] [--json] [--check]`: the data exactly as the trainer will see
it, and the data checks a run makes before the model loads (docs/data.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "load a recipe's data and tokenizer (no model) and show what the trainer will see"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("--show", type=int, default=3, metavar="N", help="examples to show (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true",
                        help="run every data check on the whole dataset; exit 3 if one would stop a run")


def main(args: argparse.Namespace) -> int:
    from peftrun.builders import build_training_args
    from peftrun.data import load_training_data
    from peftrun.data.checks import check_data
    from peftrun.data.preview import as_text, report
    from peftrun.data.templates import require_template
    from peftrun.hub import offline_scope
    from peftrun.recipe.hardware import probe_light
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.validation import checked_plan
    from peftrun.train.modeling import load_tokenizer

    plan = checked_plan(load_recipe(args.recipe, args.overrides), probe_light())
    with offline_scope():
        data = load_training_data(plan)
        tokenizer = load_tokenizer(plan)
    require_template(tokenizer, plan, data.conversational)
    training_args = build_training_args(plan)
    checks = check_data(plan, data, tokenizer, training_args)
    if args.check or checks.fails("assistant-mask-empty"):  # TRL refuses such data: no example to show
        return _print_checks(checks, args.json)
    result = report(data, tokenizer, training_args, plan.trainer_type, args.show)
    result["checks"] = checks.as_dict()
    if args.json:
        for item in result["examples"]:
            item.pop("marked", None)
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(as_text(result))
    for outcome in checks.failed:
        print(outcome.line(), file=sys.stderr)
    return 0


def _print_checks(checks: Any, as_json: bool) -> int:
    from peftrun.errors import DataError

    print(json.dumps(checks.as_dict(), ensure_ascii=False) if as_json else checks.as_text())
    return DataError.exit_code if checks.stops else 0
