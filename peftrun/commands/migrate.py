"""`peftrun migrate PATH... [--check]`: rename old keys in recipe files in place, comments and layout kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.migrations import Finding, migrate_text

HELP = "rewrite recipes to the current key names in place (comments and layout kept); --check: exit 1 if needed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="recipe files or directories (every *.yaml / *.yml below)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file needs migration (CI)")


def yaml_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise RecipeError(Problem(str(path), "", "no such file or directory"))
    return files


def _report(path: Path, findings: list[Finding], check: bool) -> None:
    for finding in findings:
        if finding.problem:
            print(f"  not migrated: {finding}", file=sys.stderr)
        else:
            print(f"  {'would rename' if check else 'renamed'} {finding}")


def main(args: argparse.Namespace) -> int:
    needed = left = 0
    for path in yaml_files(args.paths):
        text = path.read_bytes().decode("utf-8")  # bytes: line endings stay as they are
        new_text, findings = migrate_text(text, str(path))
        if not findings:
            continue
        needed += 1
        left += any(f.problem for f in findings)
        print(f"{path}: {'needs migration' if args.check else 'migrated' if new_text != text else 'left as is'}")
        _report(path, findings, args.check)
        if not args.check and new_text != text:
            path.write_bytes(new_text.encode("utf-8"))
    if args.check:
        print(f"{needed} file{'s' if needed != 1 else ''} to migrate" if needed else "every recipe is current")
        return 1 if needed else 0
    return 1 if left else 0
