"""`peftrun eval RUN_DIR`: base vs tuned on held-out data: completion loss and exact match, and the examples
the tuned model gets wrong; kept in the run directory (eval.json, eval_failures.jsonl, manifest, card)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "compare the base model and the tuned one on held-out data (loss and exact match)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a finished run directory")
    parser.add_argument("--data", default=None, help="evaluate on this data instead of the run's eval split")
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate at most this many examples")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's code (never taken from the run directory)")


def main(args: argparse.Namespace) -> int:
    from peftrun.train.eval_record import EVAL_FILE, FAILURES_FILE, keep
    from peftrun.train.evaluate import as_table, evaluate_run
    from peftrun.train.progress import quiet

    with quiet():
        result = evaluate_run(args.run_dir, args.data, args.max_samples, args.trust_remote_code)
    keep(args.run_dir, result)
    if args.json:
        print(json.dumps(result))
    else:
        print(as_table(result))
        print(f"\nkept in {args.run_dir}: {EVAL_FILE}, {FAILURES_FILE}, the manifest and the model card")
    return 0
