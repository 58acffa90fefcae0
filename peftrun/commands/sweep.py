"""`peftrun sweep SWEEP.yaml [key=value ...] [--gpu NAME|SIZE] [--trials N] [--check]`: search a recipe's values.

Exit status: 0 the sweep ended with a best trial, 2 the sweep file does not validate, 5 its directory holds
another sweep, 6 no trial completed, 130 stopped (start it again to continue).
"""

from __future__ import annotations

import argparse

from peftrun.recipe.gpus import add_hardware_arguments, target_hardware
from peftrun.recipe.sweep import load_sweep, space_values

HELP = "run a sweep file's trials on Optuna (a killed sweep continues where it stopped); --check validates only"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", help="sweep file (a recipe with a `sweep:` section)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides for every trial")
    add_hardware_arguments(parser)
    parser.add_argument("--trials", type=int, metavar="N", help="run this many trials in all (instead of sweep.trials)")
    parser.add_argument("--check", action="store_true", help="validate the sweep file and every value it tries, then stop")


def main(args: argparse.Namespace) -> int:
    hardware = target_hardware(args.gpu, args.gpus)
    sweep = load_sweep(args.sweep, args.overrides, hardware)
    if args.check:
        section = sweep.section
        print(f"{args.sweep}: valid; {section.sampler} sampler, {section.trial_count} trials, "
              f"{section.metric.goal} {section.metric.name}, into {sweep.directory}")
        for key, space in section.params.items():
            print(f"  {key}: {space if isinstance(space, list) else space.model_dump(exclude_none=True)}"
                  f" (checked: {', '.join(map(str, space_values(space)))})")
        return 0
    from peftrun.hub import offline_scope
    from peftrun.sweep.engine import run_sweep

    with offline_scope():
        run_sweep(sweep, hardware, args.trials)
    return 0
