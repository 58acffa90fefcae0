"""`peftrun validate PATH... [key=value ...]`: check recipes (files or directories), every problem at once;
overrides apply to every recipe named, as they would on `peftrun RECIPE key=value`."""

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
    parser.add_argument("paths", nargs="+", metavar="PATH_OR_OVERRIDE",
                        help="recipe files or directories of recipes, then key.path=value overrides (win over the files)")
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


def split_arguments(arguments: list[str]) -> tuple[list[Path], list[str]]:
    """Paths, then overrides: an argument with `=` that names no existing file is an override."""
    overrides = [a for a in arguments if "=" in a and not Path(a).exists()]
    return [Path(a) for a in arguments if a not in overrides], overrides


def foreign_hint(path: Path) -> str | None:
    """ "this looks like an Axolotl config (keys ...): `peftrun import PATH` ..." for another tool's config, by
    interop's own detection; None for anything else."""
    from peftrun.errors import PeftrunError
    from peftrun.interop.importer import TITLES
    from peftrun.interop.sources import detect, read_source

    try:
        tool, evidence = detect(read_source(path))
    except PeftrunError:
        return None
    title = TITLES[tool]
    article = "an" if title[0] in "AEIOU" else "a"
    return (f"hint: this looks like {article} {title} config ({', '.join(evidence[:4])}): "
            f"`peftrun import {path} -o recipe.yaml` turns it into a peftrun recipe")


def check(path: Path, hardware: Hardware, overrides: list[str] = ()) -> tuple[RecipeError | None, tuple[str, ...]]:
    """The problems of one recipe (None when it validates and resolves) and its warnings."""
    try:
        return None, checked_plan(load_recipe(path, overrides), hardware).warnings
    except RecipeError as exc:
        return exc, ()


def main(args: argparse.Namespace) -> int:
    paths, overrides = split_arguments(args.paths)
    if not paths:
        raise RecipeError(Problem("", "", "name at least one recipe file or directory before the key=value overrides"))
    files = recipe_files(paths)
    hardware = hardware_from_args(args)
    failed = 0
    for path in files:
        error, warnings = check(path, hardware, overrides)
        if error is None:
            print(f"ok    {path}")
            for warning in warnings:
                print(f"      warning: {warning}")
        else:
            failed += 1
            print(f"FAIL  {error.report()}", file=sys.stderr)
            if (hint := foreign_hint(path)) is not None:
                print(f"  {hint}", file=sys.stderr)
    print(f"{len(files) - failed} of {len(files)} recipes valid")
    return 2 if failed else 0
