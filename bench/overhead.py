"""peftrun vs an equivalent hand-written TRL script: start-up, seconds per step, peak memory.

The same SFT LoRA job (a random Llama a few layers deep, a few hundred examples,
fixed seed) runs in fresh processes, alternating peftrun / TRL, `--rounds` times
each, and prints medians and ratios measured side by side in this one run:

    .venv/bin/python bench/overhead.py [--rounds 2] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVERY_TRAINER, JOB, alternate, build_fixture, measure, print_medians  # noqa: E402

SETTINGS = {"max_steps": 60, "per_device_train_batch_size": 8, "learning_rate": 2e-4, "logging_steps": 10,
            "save_strategy": "no", "report_to": "none", "activation_checkpointing": False, "max_length": 128,
            "seed": 42, "use_cpu": True, "bf16": False}

# Times each Trainer step with a callback added to every Trainer, runs the job (bench/_common.py), reports.
TIMING = r'''
import json, resource, sys, time
START = time.perf_counter()
import transformers

marks = {}
class CALLBACK(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        marks.setdefault("first_step", time.perf_counter())
        marks["last_step"] = time.perf_counter()
        marks["steps"] = state.global_step
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
DRIVER = TIMING + EVERY_TRAINER + JOB + REPORT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=SETTINGS["max_steps"])
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=512, help="hidden size of the 4-layer random Llama")
    options = parser.parse_args()
    settings = {**SETTINGS, "max_steps": options.steps}
    rows = [{"prompt": f"Add {i} and {i % 13}:", "completion": f" {i + i % 13}."} for i in range(options.examples)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir, data = build_fixture(folder, options.hidden, rows)
        results = alternate(options.rounds, partial(measure, folder=folder, model_dir=model_dir, data=data,
                                                    settings=settings, driver=DRIVER))
    print(f"SFT LoRA, random Llama 4 x {options.hidden}, {options.examples} examples, {options.steps} steps, "
          f"{options.rounds} rounds each (median), {os.cpu_count()} CPU cores")
    print_medians(results, (("startup_s", "start-up to step 1 (s)"), ("s_per_step", "seconds per step"),
                            ("peak_rss_mb", "peak RSS (MB)"), ("total_s", "total wall (s)")), "TRL script", 3)


if __name__ == "__main__":
    main()
