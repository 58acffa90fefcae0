"""`peftrun compare RUN_DIR... [--format table|json]`: how runs differ, and what each achieved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "the resolved values that differ between run directories, next to their results (loss, metrics, time, memory)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories (a sweep's trials or any)")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def main(args: argparse.Namespace) -> int:
    from peftrun.sweep import compare

    comparison = compare.compare(args.run_dirs)
    print(json.dumps(compare.as_data(comparison), indent=2, default=str) if args.format == "json"
          else compare.as_table(comparison))
    return 0
