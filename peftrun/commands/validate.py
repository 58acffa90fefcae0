"""`peftrun validate PATH...`: check recipes (files or directories), every problem at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.gpus import add_hardware_arguments, hardware_from_args
from peftrun.recipe.hardware import Hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

HELP = "check recipes (files or directories) without loading a model; exit 0 or 2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="recipe files or directories of recipes")
    add_hardware_arguments(parser)


def recipe_files(paths: list[Path]) -> list[Path]:
    """The recipe files named; a directory gives its *.yaml / *.yml files, recursively, except
    partial recipes under a `base/` folder (they are checked through the recipes that extend them)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            files += sorted(p for p in found if "base" not in p.relative_to(path).parts[:-1])
        elif path.is_file():
            files.append(path)
        else:
            raise RecipeError(Problem(str(path), "", "no such file or directory"))
    return files


def check(path: Path, hardware: Hardware) -> tuple[RecipeError | None, tuple[str, ...]]:
    """The problems of one recipe (None when it validates and resolves) and its warnings."""
    try:
        return None, checked_plan(load_recipe(path), hardware).warnings
    except RecipeError as exc:
        return exc, ()


def main(args: argparse.Namespace) -> int:
    files = recipe_files(args.paths)
    hardware = hardware_from_args(args)
    failed = 0
    for path in files:
        error, warnings = check(path, hardware)
        if error is None:
            print(f"ok    {path}")
            for warning in warnings:
                print(f"      warning: {warning}")
        else:
            failed += 1
            print(f"FAIL  {error.report()}", file=sys.stderr)
    print(f"{len(files) - failed} of {len(files)} recipes valid")
    return 2 if failed else 0
