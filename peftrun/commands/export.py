"""`peftrun export trl RECIPE [key=value ...] [-o OUT]`: a recipe as a TRL CLI config (`trl <type> --config OUT`).

What TRL's CLI cannot express is listed on stderr and in the file's comment block, and the exit status is 9
(as `peftrun import`'s); `--gpu` / `--gpus` resolve for the machine the config will run on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.errors import NotCarried, Problem, RecipeError
from peftrun.interop.export_trl import export_trl
from peftrun.recipe.gpus import add_hardware_arguments, target_hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

HELP = "write a recipe as another tool's config: `peftrun export trl RECIPE` (a TRL CLI YAML)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=("trl",), help="the tool to export to")
    parser.add_argument("recipe", help="recipe file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides (win over the files)")
    parser.add_argument("-o", "--output", type=Path, help="write the config here (default: stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    add_hardware_arguments(parser)


def main(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.exists() and not args.force:
        raise RecipeError(Problem(str(args.output), "", "exists; pass --force to overwrite it"))
    plan = checked_plan(load_recipe(args.recipe, args.overrides), target_hardware(args.gpu, args.gpus))
    exported = export_trl(plan, args.output)
    text = exported.text(str(args.recipe))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        for path, content in exported.files.items():
            path.write_text(content)
            print(f"wrote {path}", file=sys.stderr)
        print(f"wrote {args.output}: run it with `trl {exported.command} --config {args.output}`", file=sys.stderr)
    for key, why in sorted(exported.not_expressible.items()):
        print(f"not expressible in TRL's CLI: {key}: {why}", file=sys.stderr)
    return NotCarried.exit_code if exported.not_expressible else 0
