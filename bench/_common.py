"""What bench/overhead.py and bench/throughput.py share: the SFT LoRA job run through peftrun or a hand-written
TRL script in a fresh process, the random model it trains, the rounds that alternate the two and the table of
medians they print."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}
MODES = ("trl", "peftrun")

# Source for the drivers run in fresh processes. EVERY_TRAINER adds the driver's CALLBACK to every Trainer;
# JOB runs the job through peftrun or the hand-written TRL script.
EVERY_TRAINER = r'''
original = transformers.Trainer.__init__
def patched(self, *a, **k):
    original(self, *a, **k)
    self.add_callback(CALLBACK())
transformers.Trainer.__init__ = patched
'''
JOB = r'''
mode, workdir, model_dir, data, settings, lora = sys.argv[1:7]
settings, lora = json.loads(settings), json.loads(lora)
import os; os.chdir(workdir)
if mode == "peftrun":
    import peftrun
    trainer = {"type": "sft", **{k: v for k, v in settings.items() if k not in ("seed", "use_cpu", "bf16")}}
    peftrun.run({"name": "bench", "seed": settings["seed"], "model": {"name_or_path": model_dir},
                 "peft": {"method": "lora", **{k: v for k, v in lora.items() if k != "task_type"}},
                 "trainer": trainer, "dataset": {"path": data}, "output": {"dir": "out"}})
else:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dataset = load_dataset("json", data_files=data, split="train")
    args = SFTConfig(output_dir="out", **settings)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=LoraConfig(**lora))
    trainer.train()
    trainer.save_model("out")
'''


def build_fixture(folder: Path, hidden: int, rows: list[dict[str, str]]) -> tuple[Path, Path]:
    """A random 4-layer Llama of `hidden` size and its tokenizer, and `rows` as JSONL."""
    sys.path.insert(0, str(ROOT))
    from tests import tiny

    model_dir = folder / "model"
    tiny.build_tokenizer(model_dir)
    tiny.build_model(model_dir, layers=4, hidden=hidden)
    return model_dir, tiny.write_jsonl(folder / "train.jsonl", rows)


def measure(mode: str, folder: Path, model_dir: Path, data: Path, settings: dict, driver: str) -> dict:
    """One fresh process of `driver` (peftrun or TRL); its last stdout line, a JSON object."""
    work = Path(tempfile.mkdtemp(dir=folder, prefix=mode))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", driver, mode, str(work), str(model_dir), str(data), json.dumps(settings), json.dumps(LORA)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(rounds: int, one: Callable[[str], dict]) -> dict[str, list[dict]]:
    """`rounds` results of each mode, TRL and peftrun alternating."""
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            results[mode].append(one(mode))
    return results


def print_medians(results: dict[str, list[dict]], rows: tuple[tuple[str, str], ...], trl_header: str,
                  digits: int) -> None:
    """One line per (key, label): the medians of TRL and peftrun and their ratio."""
    width = max(len(label) for _, label in rows) + 2
    print(f"{'':{width}}{trl_header:>14}{'peftrun':>12}{'ratio':>8}")
    for key, label in rows:
        trl = statistics.median(r[key] for r in results["trl"])
        ours = statistics.median(r[key] for r in results["peftrun"])
        ratio = f"{ours / trl:8.3f}" if trl else f"{'':8}"
        print(f"{label:{width}}{trl:14.{digits}f}{ours:12.{digits}f}{ratio}")
