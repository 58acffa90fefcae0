"""`peftrun import SRC [-o OUT] [--from TOOL] [--force]`: another tool's config as a peftrun recipe.

Exit 0 when every setting was carried; 9 (errors.NotCarried) when the recipe was written but some settings
could not be (listed on stderr and in the recipe's comment block); a refusal writes nothing (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.errors import NotCarried, Problem, RecipeError
from peftrun.interop.importer import import_config
from peftrun.interop.sources import TOOLS
from peftrun.interop.writer import Imported

HELP = ("turn an Axolotl, LLaMA-Factory, TRL or torchtune config into a peftrun recipe; exit 0 all carried, "
        "9 written with settings not carried (listed), 2 refused")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="a config (YAML), an Axolotl model card (README.md), a "
                        "LLaMA-Factory training_args.yaml, a run or model directory holding one of those two, or a "
                        "file holding a `trl <command> ...` line")
    parser.add_argument("-o", "--output", type=Path, help="write the recipe here (default: stdout)")
    parser.add_argument("--from", dest="tool", choices=TOOLS, help="the source tool (default: detected from the keys)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")


def report(imported: Imported) -> list[str]:
    """The summary printed on stderr: counts, then every setting not carried with its reason."""
    tr = imported.translation
    lines = [f"carried {len(tr.mapped)} settings, wrote {len(tr.explicit)} {tr.tool} defaults that differ from "
             f"peftrun's, dropped {len(tr.dropped)} no-ops, could not carry {len(tr.not_carried)}"]
    lines += [f"  {note}" for note in tr.notes]
    lines += [f"  dropped {key}: {why}" for key, why in sorted(tr.dropped.items())]
    lines += [f"  NOT CARRIED {key}: {why}" for key, why in sorted(tr.not_carried.items())]
    return lines


def main(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.exists() and not args.force:
        raise RecipeError(Problem(str(args.output), "", "exists; pass --force to overwrite it"))
    imported, how = import_config(args.source, args.tool)
    print(how, file=sys.stderr)
    if args.output is None:
        sys.stdout.write(imported.text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(imported.text)
        print(f"wrote {args.output} (`peftrun explain {args.output}` shows every value and its source)",
              file=sys.stderr)
    print("\n".join(report(imported)), file=sys.stderr)
    return 0 if imported.complete else NotCarried.exit_code
