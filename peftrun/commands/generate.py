"""`peftrun generate RUN_DIR --prompt TEXT`: a quick look at what the adapter does."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "generate from a run's model (chat template applied when the tokenizer has one)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a finished run directory")
    parser.add_argument("--prompt", required=True, help="the user message")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--base", action="store_true", help="generate with the base model, adapter disabled")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's code (never taken from the run directory)")


def main(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from peftrun.train.generation import as_chat, generate
    from peftrun.train.merge import load_tuned
    from peftrun.train.rundir import require_finished

    require_finished(args.run_dir)
    model, tokenizer, _ = load_tuned(args.run_dir, trust_remote_code=args.trust_remote_code)
    context = model.disable_adapter() if args.base and hasattr(model, "disable_adapter") else nullcontext()
    with context:
        print(generate(model, tokenizer, [as_chat(tokenizer, args.prompt)], args.max_new_tokens)[0])
    return 0
