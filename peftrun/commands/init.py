"""`peftrun init [NAME] [-o FILE]`: start a recipe from a shipped one; `--list` shows them."""

from __future__ import annotations

import argparse
from pathlib import Path

from peftrun.errors import PeftrunError
from peftrun.recipe import starters

HELP = "start a recipe from a shipped recipe or base (--list shows them)"
DEFAULT = "sft-lora-qwen2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=DEFAULT, help=f"shipped recipe or peftrun:BASE (default {DEFAULT})")
    parser.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: NAME.yaml here)")
    parser.add_argument("--list", action="store_true", help="show the shipped recipes and bases, one line each")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def main(args: argparse.Namespace) -> int:
    if args.list:
        found = starters.starters()
        width = max(len(name) for name in found)
        for name, path in found.items():
            print(f"{name:<{width}}  {starters.describe(path)}")
        return 0
    output = args.output or Path(f"{args.name.removeprefix('peftrun:').rsplit('/', 1)[-1]}.yaml")
    if output.exists() and not args.force:
        raise PeftrunError(f"{output} exists: choose another -o FILE, or pass --force to replace it")
    text = starters.recipe_text(args.name, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} (from {args.name}); check it with `peftrun explain {output}`")
    return 0
