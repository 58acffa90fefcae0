"""The quickstart data rewritten as Alpaca records and as ShareGPT turns trains SmolLM2 as the original does.

    .venv/bin/python bench/data_formats.py [--formats original alpaca sharegpt] [--steps N]

Rewrites data/quickstart/{train,eval}.jsonl (conversational prompt / completion) as Alpaca
(system, instruction, output) and ShareGPT (system, conversations of human / gpt turns), runs
`peftrun recipes/quickstart.yaml` on each with the matching `dataset.format` (same seed, same steps),
then `peftrun eval` on each run's own eval split, and prints train loss, exact match and wall time per
format. ShareGPT trains with assistant_only_loss (the ChatML template marks the replies), as prompt /
completion data trains on the completion only. Needs the quickstart model (scripts/fetch_model.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "data" / "quickstart"


def as_alpaca(row: dict) -> dict:
    system, user = row["prompt"]
    return {"system": system["content"], "instruction": user["content"], "output": row["completion"][0]["content"]}


def as_sharegpt(row: dict) -> dict:
    system, user = row["prompt"]
    return {"system": system["content"], "conversations": [{"from": "human", "value": user["content"]},
                                                           {"from": "gpt", "value": row["completion"][0]["content"]}]}


REWRITES = {"alpaca": as_alpaca, "sharegpt": as_sharegpt}
EXTRA = {"original": [], "alpaca": ["dataset.format=alpaca"],
         "sharegpt": ["dataset.format=sharegpt", "trainer.assistant_only_loss=true", "model.chat_template=chatml"]}


def rewrite(kind: str, folder: Path) -> tuple[Path, Path]:
    paths = []
    for split in ("train", "eval"):
        rows = [json.loads(line) for line in (QUICKSTART / f"{split}.jsonl").read_text().splitlines() if line.strip()]
        path = folder / f"{kind}-{split}.jsonl"
        path.write_text("".join(json.dumps(REWRITES[kind](row)) + "\n" for row in rows))
        paths.append(path)
    return paths[0], paths[1]


def run(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--formats", nargs="+", default=["original", "alpaca", "sharegpt"], choices=list(EXTRA))
    parser.add_argument("--steps", type=int, default=None, help="cap the training steps (default: the recipe's)")
    args = parser.parse_args()
    print(f"{'format':10}{'train loss':>11}{'base EM':>9}{'tuned EM':>10}{'n':>5}{'wall s':>8}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.formats:
            overrides = list(EXTRA[kind])
            if kind != "original":
                train, held = rewrite(kind, Path(folder))
                overrides += [f"dataset.path={train}", f"dataset.eval.path={held}"]
            if args.steps:
                overrides.append(f"trainer.max_steps={args.steps}")
            run_dir = f"runs/bench-data-{kind}"
            wall, _ = run([sys.executable, "-m", "peftrun", "recipes/quickstart.yaml", f"output.dir={run_dir}",
                           *overrides, "--overwrite"])
            _, out = run([sys.executable, "-m", "peftrun", "eval", run_dir, "--json"])
            result = json.loads(out.strip().splitlines()[-1])
            loss = json.loads((ROOT / run_dir / "manifest.json").read_text())["training"]["final_train_loss"]
            base, tuned = result["base"]["exact_match"], result["tuned"]["exact_match"]
            print(f"{kind:10}{loss:>11.4f}{base:>9.2f}{tuned:>10.2f}{result['n']:>5}{wall:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
