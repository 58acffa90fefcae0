"""The quickstart's wall time, split into set-up, model load, training and evaluation.

    .venv/bin/python bench/quickstart_timing.py

Runs each stage of `make quickstart` in a fresh process with a fresh GGUF cache
(so the one-time dequantization is counted) and prints a table. Set-up is the
venv and the model fetch (near zero when they are already done).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
RUN_DIR = "runs/quickstart-bench"
LOAD = (
    "import time, sys; from peftrun.train.gguf_cache import cached_gguf_model_dir; from pathlib import Path\n"
    "t = time.perf_counter(); d = cached_gguf_model_dir('models/smollm2', 'SmolLM2-135M-Instruct.Q4_1.gguf', "
    "Path(sys.argv[1])); convert = time.perf_counter() - t\n"
    "from transformers import AutoModelForCausalLM; t = time.perf_counter(); AutoModelForCausalLM.from_pretrained(d)\n"
    "print(convert, time.perf_counter() - t)"
)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PEFTRUN_CACHE": cache}
        setup, _ = timed(["make", "setup", "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"], env)
        load_wall, out = timed([PY, "-c", LOAD, str(Path(cache) / "gguf")], env)
        convert, cached_load = map(float, out.split())
        train, _ = timed([PY, "-m", "peftrun", "recipes/quickstart.yaml", f"output.dir={RUN_DIR}", "--overwrite"], env)
        evaluate, out = timed([PY, "-m", "peftrun", "eval", RUN_DIR, "--json"], env)
    manifest = json.loads((ROOT / RUN_DIR / "manifest.json").read_text())["training"]
    result = json.loads(out.strip().splitlines()[-1])
    rows = [
        ("set-up (venv, install, model fetch)", setup),
        ("model load: GGUF -> safetensors, once", convert),
        ("model load: from the cache, later runs", cached_load),
        ("training run (peftrun RECIPE)", train),
        ("  of which trainer.train()", manifest["train_runtime_s"]),
        ("evaluation (peftrun eval, base + tuned)", evaluate),
    ]
    for label, seconds in rows:
        print(f"{label:42} {seconds:7.1f} s")
    total = setup + load_wall + train + evaluate
    print(f"{'total (load measured apart, as on a first run)':42} {total:7.1f} s")
    print(f"evaluation / training run: {evaluate / train:.2f} (target <= 0.2; both measured in this run)")
    print(f"exact match: base {result['base']['exact_match']:.2f}, tuned {result['tuned']['exact_match']:.2f}; "
          f"eval loss: base {result['base']['loss']:.4f}, tuned {result['tuned']['loss']:.4f} "
          f"({result['n']} examples); {os.cpu_count()} CPU cores")


if __name__ == "__main__":
    main()
