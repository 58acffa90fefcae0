"""`peftrun schema [--check]`: write or check schemas/recipe.schema.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.recipe.schema.jsonschema import default_schema_path, recipe_json_schema_text

HELP = "write (or --check) the recipe JSON Schema used by editors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    parser.add_argument("--output", "-o", type=Path, default=None, help="where (default: schemas/recipe.schema.json)")


def main(args: argparse.Namespace) -> int:
    path = args.output or default_schema_path()
    text = recipe_json_schema_text()
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print(f"{path} is out of date: run `peftrun schema`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0
