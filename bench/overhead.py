"""peftrun vs an equivalent hand-written TRL script: start-up, seconds per step, peak memory.

The same SFT LoRA job (a random Llama a few layers deep, a few hundred examples,
fixed seed) runs in fresh processes, alternating peftrun / TRL, `--rounds` times
each, and prints medians and ratios measured side by side in this one run:

    .venv/bin/python bench/overhead.py [--rounds 2] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"max_steps": 60, "per_device_train_batch_size": 8, "learning_rate": 2e-4, "logging_steps": 10,
            "save_strategy": "no", "report_to": "none", "activation_checkpointing": False, "max_length": 128,
            "seed": 42, "use_cpu": True, "bf16": False}
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}

# A driver run in a fresh process: times each Trainer step with a callback added to every Trainer (TIMING),
# runs the job through peftrun or a hand-written TRL script (JOB, shared with bench/throughput.py), reports.
TIMING = r'''
import json, resource, sys, time
START = time.perf_counter()
import transformers

marks = {}
class Timing(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        marks.setdefault("first_step", time.perf_counter())
        marks["last_step"] = time.perf_counter()
        marks["steps"] = state.global_step

original = transformers.Trainer.__init__
def patched(self, *a, **k):
    original(self, *a, **k)
    self.add_callback(Timing())
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
REPORT = r'''
steps = marks["steps"]
print(json.dumps({
    "startup_s": marks["first_step"] - START,
    "s_per_step": (marks["last_step"] - marks["first_step"]) / max(steps - 1, 1),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "total_s": time.perf_counter() - START,
}))
'''
DRIVER = TIMING + JOB + REPORT


def build_fixture(folder: Path, examples: int, hidden: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from tests import tiny

    model_dir = folder / "model"
    tiny.build_tokenizer(model_dir)
    tiny.build_model(model_dir, layers=4, hidden=hidden)
    rows = [{"prompt": f"Add {i} and {i % 13}:", "completion": f" {i + i % 13}."} for i in range(examples)]
    return model_dir, tiny.write_jsonl(folder / "train.jsonl", rows)


def measure(mode: str, folder: Path, model_dir: Path, data: Path, settings: dict, driver: str = DRIVER) -> dict:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=SETTINGS["max_steps"])
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=512, help="hidden size of the 4-layer random Llama")
    options = parser.parse_args()
    settings = {**SETTINGS, "max_steps": options.steps}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir, data = build_fixture(folder, options.examples, options.hidden)
        results: dict[str, list[dict]] = {"trl": [], "peftrun": []}
        for _ in range(options.rounds):
            for mode in ("trl", "peftrun"):
                results[mode].append(measure(mode, folder, model_dir, data, settings))
    print(f"SFT LoRA, random Llama 4 x {options.hidden}, {options.examples} examples, {options.steps} steps, "
          f"{options.rounds} rounds each (median), {os.cpu_count()} CPU cores")
    print(f"{'':22}{'TRL script':>12}{'peftrun':>12}{'ratio':>8}")
    for key, label in (("startup_s", "start-up to step 1 (s)"), ("s_per_step", "seconds per step"),
                       ("peak_rss_mb", "peak RSS (MB)"), ("total_s", "total wall (s)")):
        trl = statistics.median(r[key] for r in results["trl"])
        ours = statistics.median(r[key] for r in results["peftrun"])
        print(f"{label:22}{trl:12.3f}{ours:12.3f}{ours / trl:8.3f}")


if __name__ == "__main__":
    main()
