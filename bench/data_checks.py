"""The data checks a run makes before the model loads take a small share of the quickstart run.

    .venv/bin/python bench/data_checks.py [--rounds N] [--run-dir RUN]

Loads the quickstart recipe, its data and tokenizer as a run does, then times `check_data` (every rule on the
whole training split): once with datasets' cache off (TRL's tokenization runs in full) and N times with it on
(what a second `peftrun data --check` or the run after it pays). The run's time is the `wall_time_s` of a
quickstart run directory's manifest (--run-dir), or of a quickstart run this script starts in a temporary
directory. Prints the figures and the share of the run. Needs the quickstart model (scripts/fetch_model.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "quickstart.yaml"


def time_checks(cache: bool, rounds: int) -> list[float]:
    from peftrun.builders import build_training_args
    from peftrun.data import load_training_data
    from peftrun.data.checks import check_data
    from peftrun.recipe.hardware import probe_light
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.validation import checked_plan
    from peftrun.train.modeling import load_tokenizer

    plan = checked_plan(load_recipe(RECIPE, [f"dataset.cache={str(cache).lower()}"]), probe_light())
    data, tokenizer, args = load_training_data(plan), load_tokenizer(plan), build_training_args(plan)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        report = check_data(plan, data, tokenizer, args)
        times.append(time.perf_counter() - start)
        assert not report.failed, [o.line() for o in report.failed]
    return times


def run_time(run_dir: Path | None) -> float:
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="peftrun-bench-")) / "quickstart"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        subprocess.run([sys.executable, "-m", "peftrun", str(RECIPE), f"output.dir={run_dir}"], cwd=ROOT, env=env,
                       check=True)
    return float(json.loads((run_dir / "manifest.json").read_text())["training"]["wall_time_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds with the cache on (default 5)")
    parser.add_argument("--run-dir", type=Path, help="a finished quickstart run (default: run one)")
    args = parser.parse_args()
    os.chdir(ROOT)
    cold = time_checks(cache=False, rounds=1)[0]
    warm = statistics.median(time_checks(cache=True, rounds=args.rounds + 1)[1:])  # the first fills the cache
    run = run_time(args.run_dir)
    print(f"checks, cache off (tokenized in full)  {cold:8.2f} s  {cold / run:6.2%} of the run")
    print(f"checks, cache on (median of {args.rounds})        {warm:8.2f} s  {warm / run:6.2%} of the run")
    print(f"quickstart run (manifest wall_time_s)  {run:8.2f} s")


if __name__ == "__main__":
    main()
