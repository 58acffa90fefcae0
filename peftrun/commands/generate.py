"""`peftrun generate RUN_DIR --prompt TEXT`: a quick look at what the adapter does.

The prompt is put as the run was trained: through the run's chat template, after the system prompt every
training example started with (recorded in the manifest), unless `--system` or `--no-system` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "generate from a run's model (the run's chat template and system prompt applied)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a finished run directory")
    parser.add_argument("--prompt", required=True, help="the user message")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--base", action="store_true", help="generate with the base model, adapter disabled")
    system = parser.add_mutually_exclusive_group()
    system.add_argument("--system", default=None, help="this system prompt instead of the run's")
    system.add_argument("--no-system", action="store_true", help="no system prompt, even if the run had one")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's code (never taken from the run directory)")


def chosen_system(run_dir: Path, system: str | None, no_system: bool) -> str | None:
    """The system prompt to use: --system, none with --no-system, else the run's (from its manifest)."""
    from peftrun.train.rundir import MANIFEST

    if no_system or system is not None:
        return system
    return json.loads((run_dir / MANIFEST).read_text()).get("data", {}).get("system_prompt")


def main(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from peftrun.train.generation import as_chat, generate
    from peftrun.train.merge import load_tuned
    from peftrun.train.progress import quiet
    from peftrun.train.rundir import require_finished

    require_finished(args.run_dir)
    system = chosen_system(args.run_dir, args.system, args.no_system)
    if system is not None and args.system is None:
        print(f"(the run's system prompt: {system!r}; --no-system leaves it out)", file=sys.stderr)
    with quiet():
        model, tokenizer, _ = load_tuned(args.run_dir, trust_remote_code=args.trust_remote_code)
        context = model.disable_adapter() if args.base and hasattr(model, "disable_adapter") else nullcontext()
        with context:
            print(generate(model, tokenizer, [as_chat(tokenizer, args.prompt, system)], args.max_new_tokens)[0])
    return 0
