"""`peftrun diff A B [key=value ...]`: the difference between two resolved runs; exit 0 same, 1 differ, 2 error."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from contextlib import ExitStack
from pathlib import Path

from peftrun.errors import RecipeError
from peftrun.recipe import diff
from peftrun.recipe.hardware import probe_light

HELP = "compare the resolved runs of two recipes or revisions (A, B: FILE or REV:path); exit 0 same, 1 differ"
GIT_ARGS = "PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE NEW-HEX NEW-MODE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="recipe file, or REV:path (the recipe as committed at a git revision)")
    parser.add_argument("b", help="recipe file, or REV:path")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, applied to both sides")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--git-external", action="store_true",
                        help=f"called by git as a diff driver with its 7 arguments ({GIT_ARGS}); always exits 0")


def _print(difference: diff.Difference, form: str) -> None:
    if form == "json":
        print(json.dumps(diff.as_data(difference), indent=2, default=str))
    else:
        print(diff.as_table(difference))


def _print_lines(path: str, old: str, new: str) -> None:
    before, after = (Path(f).read_text(encoding="utf-8").splitlines(keepends=True) for f in (old, new))
    sys.stdout.writelines(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))


def _git_external(args: argparse.Namespace) -> int:
    """git's external diff protocol: show the resolved difference, never stop git (exit 0)."""
    parts = [args.a, args.b, *args.overrides]
    if len(parts) != 7:
        print(f"error: --git-external takes git's 7 arguments: {GIT_ARGS}", file=sys.stderr)
        return 2
    path, old, new = parts[0], parts[1], parts[4]
    if "/dev/null" in (old, new):
        print(f"peftrun diff: {path} {'added' if old == '/dev/null' else 'deleted'}")
        return 0
    hardware = probe_light()
    try:
        before = diff.load_stand_in(path, old, f"{path} (old)", hardware)
        after = diff.load_stand_in(path, new, path, hardware)
    except RecipeError as error:  # e.g. a partial base: show the lines instead
        _print_lines(path, old, new)
        print(f"(peftrun diff: {path} does not resolve alone, lines shown: {error.problems[0]})")
        return 0
    print(f"peftrun diff {path}")
    _print(diff.compare(before, after, f"{path} (old)", path), args.format)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.git_external:
        return _git_external(args)
    hardware = probe_light()
    with ExitStack() as stack:
        plan_a = diff.load_plan(args.a, args.overrides, hardware, stack)
        plan_b = diff.load_plan(args.b, args.overrides, hardware, stack)
        difference = diff.compare(plan_a, plan_b, args.a, args.b)
    _print(difference, args.format)
    return 0 if difference.same else 1
