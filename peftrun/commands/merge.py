"""`peftrun merge RUN_DIR -o DIR`: the base model with the run's LoRA adapter merged in."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "merge a run's LoRA adapter into its base model (loadable with plain transformers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a finished run directory")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the merged model")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                        help="the merged weights' dtype (default auto: the run's model dtype)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's code (never taken from the run directory)")


def main(args: argparse.Namespace) -> int:
    from peftrun.errors import RunDirError
    from peftrun.train.merge import merge_run
    from peftrun.train.progress import quiet
    from peftrun.train.rundir import require_finished

    require_finished(args.run_dir)
    if args.output.exists() and any(args.output.iterdir()):
        raise RunDirError(f"{args.output} is not empty: choose an empty or new directory")
    with quiet():
        print(f"merged model written to {merge_run(args.run_dir, args.output, args.dtype, args.trust_remote_code)}")
    return 0
