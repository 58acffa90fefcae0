"""peftrun's defaults vs TRL's defaults on long-tailed data: useful (non-padding) tokens per second.

The same SFT LoRA job (a random Llama a few layers deep, one epoch, batch 8, prompt and completion lengths
drawn long-tailed like instruction data, fixed seed) runs in fresh processes, alternating TRL script /
peftrun, `--rounds` times each, through bench/_common.py's job (peftrun.run with the recipe's defaults, and
the equivalent hand-written TRL script with TRL's defaults). Both count the tokens their training forward
passes read the same way (a forward pre-hook); prints medians and ratios measured side by side in this run:

    .venv/bin/python bench/throughput.py [--rounds 2] [--examples 192] [--hidden 512]

On a machine with a GPU the same command adds a second table, the job on the GPU (bfloat16).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVERY_TRAINER, JOB, alternate, build_fixture, measure, print_medians  # noqa: E402

SETTINGS = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 2e-4, "logging_steps": 5,
            "save_strategy": "no", "report_to": "none", "activation_checkpointing": False, "seed": 42}
CPU = {"use_cpu": True, "bf16": False}
GPU = {"bf16": True}

# Counts the tokens every training forward pass reads (attention-mask ones, or every position of a
# padding-free row), times train() and keeps the losses; the same in both processes.
COUNTING = r'''
import json, sys, time
START = time.perf_counter()
import torch, transformers

marks = {"useful": 0, "positions": 0}
def count(module, args, kwargs):
    if module.training and torch.is_grad_enabled():
        ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        marks["useful"] += int(mask.sum()) if mask is not None else ids.numel()
        marks["positions"] += ids.numel()

class CALLBACK(transformers.TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kw):
        model.register_forward_pre_hook(count, with_kwargs=True)
        marks["begin"] = time.perf_counter()
    def on_train_end(self, args, state, control, **kw):
        marks["train_s"] = time.perf_counter() - marks["begin"]
        marks["losses"] = [e["loss"] for e in state.log_history if "loss" in e]
        marks["train_loss"] = next(e["train_loss"] for e in state.log_history if "train_loss" in e)
'''
REPORT = r'''
print(json.dumps({"useful_tokens_per_s": marks["useful"] / marks["train_s"], "useful": marks["useful"],
                  "padding_fraction": 1 - marks["useful"] / marks["positions"], "train_s": marks["train_s"],
                  "train_loss": marks["train_loss"], "final_loss": marks["losses"][-1]}))
'''
DRIVER = COUNTING + EVERY_TRAINER + JOB + REPORT


def lognormal_length(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, round(rng.lognormvariate(0.0, sigma) * median)))


def instruction_rows(examples: int, seed: int = 0) -> list[dict[str, str]]:
    """Prompt / completion pairs whose lengths are long-tailed like instruction data (most replies short, a few
    long: log-normal, median prompt 40 and reply 80 tokens of the byte-level tokenizer)."""
    rng = random.Random(seed)
    words = ["the", "model", "answer", "data", "train", "step", "loss", "token", "value", "list", "sum", "is"]

    def text(length: int) -> str:
        out = ""
        while len(out) < length:
            out += rng.choice(words) + " "
        return out[:length]

    return [{"prompt": text(lognormal_length(rng, 40, 0.7, 400)),
             "completion": " " + text(lognormal_length(rng, 80, 1.0, 900))} for _ in range(examples)]


def timed(mode: str, folder: Path, model_dir: Path, data: Path, settings: dict) -> dict:
    """One fresh process, with its whole wall time (interpreter start to exit)."""
    start = time.perf_counter()
    result = measure(mode, folder, model_dir, data, settings, DRIVER)
    return {**result, "wall_s": time.perf_counter() - start}


def table(results: dict[str, list[dict]], title: str) -> None:
    print(title)
    print_medians(results, (("useful_tokens_per_s", "useful tokens / s"), ("padding_fraction", "padding fraction"),
                            ("train_s", "training (s)"), ("wall_s", "whole process wall (s)"),
                            ("train_loss", "train loss (epoch mean)"), ("final_loss", "final logged loss")),
                  "TRL defaults", 4)


def run_table(folder: Path, model_dir: Path, data: Path, settings: dict, rounds: int) -> dict[str, list[dict]]:
    return alternate(rounds, lambda mode: timed(mode, folder, model_dir, data, settings))


def has_gpu() -> bool:
    probe = [sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"]
    return subprocess.run(probe, check=False).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=192)
    parser.add_argument("--hidden", type=int, default=512, help="hidden size of the 4-layer random Llama")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir, data = build_fixture(folder, options.hidden, instruction_rows(options.examples))
        head = (f"SFT LoRA, random Llama 4 x {options.hidden}, {options.examples} long-tailed examples, one epoch, "
                f"batch 8, {options.rounds} rounds each (median)")
        table(run_table(folder, model_dir, data, {**SETTINGS, **CPU}, options.rounds),
              f"{head}, CPU ({os.cpu_count()} cores)")
        if has_gpu():
            print()
            table(run_table(folder, model_dir, data, {**SETTINGS, **GPU}, options.rounds), f"{head}, GPU (bf16)")


if __name__ == "__main__":
    main()
