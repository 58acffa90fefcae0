"""Multi-GPU runs through `peftrun RECIPE`: per-GPU peak memory and tokens per second, DDP vs FSDP-QLoRA.

    .venv/bin/python bench/multi_gpu.py [--steps 30] [--layers 16] [--hidden 1024] [--keep DIR]

Builds a random Llama (about 180M parameters with the defaults) and a synthetic
dataset offline (no hub), then runs each case with the real command,
`python -m peftrun RECIPE`, which re-launches itself under accelerate with one
process per visible GPU:

    ddp-lora     LoRA, bf16 base, a full copy per GPU (DDP)
    ddp-qlora    QLoRA (4-bit NF4), a full 4-bit copy per GPU (DDP)
    fsdp-qlora   QLoRA, 4-bit weights stored in bf16 and sharded across the GPUs (FSDP)

and prints, per case: each GPU's peak memory above its idle level (nvidia-smi,
sampled every 0.1 s, so it includes each process's CUDA context and can miss
spikes shorter than that), the tokens the trainer counted on all ranks divided
by its train runtime (the first steps' warm-up included), and the wall time.
Meant to finish in under 5 minutes on one GPU node.

Without a GPU it says so and exits 0: nothing is measured. `--smoke-on-cpu`
runs the ddp-lora case on two CPU processes to check this script's own
plumbing; its numbers are not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES: dict[str, dict[str, Any]] = {
    "ddp-lora": {"launch": {"strategy": "ddp"}},
    "ddp-qlora": {"launch": {"strategy": "ddp"}, "quantization": {"bits": 4}},
    "fsdp-qlora": {"launch": {"strategy": "fsdp"}, "quantization": {"bits": 4}},
}
BUDGET_S = 280  # all cases together: under 5 minutes with the model build


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def build_model(directory: Path, layers: int, hidden: int) -> int:
    """A random Llama with the tests' byte-level tokenizer; returns its parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests import tiny

    tiny.build_tokenizer(directory)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=259, hidden_size=hidden, intermediate_size=int(hidden * 2.75) // 64 * 64,
        num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=max(hidden // 256, 1),
        max_position_embeddings=2048, bos_token_id=None, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(directory))
    return sum(p.numel() for p in model.parameters())


def write_data(path: Path, rows: int = 4000, chars: int = 1200) -> None:
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly vex an old king".split()
    with path.open("w") as out:
        for i in range(rows):
            text = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(chars // 5))[:chars]
            out.write(json.dumps({"text": text}) + "\n")


def recipe(case: str, model_dir: Path, data: Path, out_dir: Path, steps: int, processes: int | str) -> dict[str, Any]:
    return {
        "name": case,
        "model": {"name_or_path": str(model_dir)},
        "peft": {"method": "lora", "r": 16, "lora_alpha": 32},
        "trainer": {"type": "sft", "max_steps": steps, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                    "max_length": 1024, "logging_steps": 1, "save_steps": steps, "report_to": "none",
                    "gradient_checkpointing": True},
        "dataset": {"path": str(data)},
        "output": {"dir": str(out_dir / case)},
        **{k: v for k, v in CASES[case].items() if k != "launch"},
        "launch": {**CASES[case]["launch"], "num_processes": processes},
    }


class MemorySampler:
    """Peak memory.used per GPU (MiB) while a case runs, from nvidia-smi every 0.1 s, minus the idle level."""

    def __init__(self) -> None:
        self.idle = self._sample()
        self.peak = dict(self.idle)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _sample() -> dict[int, int]:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        found = {}
        for line in out.strip().splitlines():
            index, used = (part.strip() for part in line.split(","))
            found[int(index)] = int(used)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible and all(part.strip().isdigit() for part in visible.split(",")):
            found = {i: found[int(p)] for i, p in enumerate(visible.split(",")) if int(p) in found}
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for index, used in self._sample().items():
                self.peak[index] = max(self.peak.get(index, 0), used)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def above_idle(self) -> dict[int, int]:
        return {i: self.peak[i] - self.idle.get(i, 0) for i in sorted(self.peak)}


def run_case(case: str, path: Path, run_dir: Path, timeout: float, gpus: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    env["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    sampler = MemorySampler() if gpus else None
    try:
        if sampler:
            sampler.__enter__()
        done = subprocess.run([sys.executable, "-m", "peftrun", str(path), "--overwrite"], cwd=path.parent, env=env,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        if sampler:
            sampler.__exit__()
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"case": case, "error": f"exit {done.returncode}: " + done.stderr.strip()[-1500:], "wall_s": wall}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    tokens = None
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if states:
        history = json.loads(states[-1].read_text())["log_history"]
        counted = [e["num_tokens"] for e in history if "num_tokens" in e]
        tokens = float(counted[-1]) if counted else None
    runtime = manifest["training"]["train_runtime_s"]
    return {
        "case": case, "world_size": manifest["world_size"], "steps": manifest["training"]["steps"],
        "tokens": tokens, "train_runtime_s": runtime, "tokens_per_s": tokens / runtime if tokens and runtime else None,
        "peak_mib": sampler.above_idle() if sampler else None, "wall_s": wall,
        "final_loss": manifest["training"]["final_train_loss"],
    }


def report(results: list[dict[str, Any]], gpus: bool) -> None:
    print()
    for r in results:
        if "error" in r:
            print(f"{r['case']:<11} FAILED after {r['wall_s']:.0f} s\n    {r['error']}")
            continue
        rate = f"{r['tokens_per_s']:,.0f} tokens/s" if r["tokens_per_s"] else "tokens/s n/a"
        print(f"{r['case']:<11} {r['world_size']} processes  {rate} ({r['tokens']:,.0f} tokens in "
              f"{r['train_runtime_s']:.1f} s train, {r['wall_s']:.0f} s wall)  final loss {r['final_loss']:.3f}")
        if gpus:
            print("            peak MiB above idle per GPU: " +
                  "  ".join(f"gpu{i} {mib:,}" for i, mib in r["peak_mib"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--keep", type=Path, default=None, help="keep the model, data and runs in this directory")
    parser.add_argument("--smoke-on-cpu", action="store_true",
                        help="check this script's plumbing on two CPU processes (not a benchmark)")
    args = parser.parse_args()

    count = gpu_count()
    if count == 0 and not args.smoke_on_cpu:
        print("no GPU available: this benchmark measures multi-GPU runs (DDP, FSDP-QLoRA) on CUDA GPUs, so nothing "
              "was run or measured on this machine")
        return 0
    gpus = count > 0
    if not gpus:
        print("SMOKE TEST ON CPU: two gloo processes, a tiny model, a few steps; the numbers below are not a benchmark")
        args.cases, args.steps, args.layers, args.hidden = ["ddp-lora"], 3, 2, 128
    elif count == 1:
        print("one GPU visible: every case runs as a single process (FSDP with one shard)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="peftrun-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        params = build_model(work / "model", args.layers, args.hidden)
        write_data(work / "data.jsonl", rows=400 if not gpus else 4000, chars=300 if not gpus else 1200)
        print(f"model: random Llama, {params / 1e6:.1f}M parameters, {args.layers} layers, hidden {args.hidden}; "
              f"{args.steps} steps, batch 8 per process, up to 1024 tokens per example")
        results = []
        for case in args.cases:
            left = BUDGET_S - (time.perf_counter() - began)
            if left < 30:
                results.append({"case": case, "error": "skipped: the 5-minute budget is spent", "wall_s": 0.0})
                continue
            path = work / f"{case}.yaml"
            processes = "auto" if gpus else 2
            path.write_text(json.dumps(recipe(case, work / "model", work / "data.jsonl", work / "runs", args.steps,
                                              processes)))
            print(f"running {case} ...", flush=True)
            results.append(run_case(case, path, work / "runs" / case, left, gpus))
        report(results, gpus)
        print(f"\ntotal {time.perf_counter() - began:.0f} s" + (f"; files kept in {work}" if args.keep else ""))
        return 1 if any("error" in r for r in results) else 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
