"""`peftrun schema [--check]`: write or check schemas/recipe.schema.json and schemas/sweep.schema.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.recipe.schema.jsonschema import default_schema_path, recipe_json_schema_text, sweep_json_schema_text

HELP = "write (or --check) the recipe and sweep JSON Schemas used by editors"
SCHEMAS = {"recipe": recipe_json_schema_text, "sweep": sweep_json_schema_text}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="where (default: schemas/recipe.schema.json and schemas/sweep.schema.json); "
                        "with -o, one schema: the recipe's, or the sweep file's with --sweep")
    parser.add_argument("--sweep", action="store_true", help="with -o: the sweep file's schema")


def _targets(args: argparse.Namespace) -> list[tuple[Path, str]]:
    if args.output is not None:
        kind = "sweep" if args.sweep else "recipe"
        return [(args.output, SCHEMAS[kind]())]
    return [(default_schema_path(kind), text()) for kind, text in SCHEMAS.items()]


def main(args: argparse.Namespace) -> int:
    status = 0
    for path, text in _targets(args):
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
        elif not path.is_file() or path.read_text() != text:
            print(f"{path} is out of date: run `peftrun schema`", file=sys.stderr)
            status = 1
        else:
            print(f"{path} is up to date")
    return status
