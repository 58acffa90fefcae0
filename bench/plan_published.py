"""The plan against published, measured peaks (bench/plan_published.yaml: source, exact quote, what each figure
measures, settings, calibration or held-out).

Each case becomes a peftrun recipe of the published run's settings on its GPUs; the plan's figure of the same
kind is compared with the published one: live tensors with max_memory_allocated, allocator reserved with
max_memory_reserved, the device's use with what nvidia-smi shows. Printed: every case, then per group and in
total (held-out and calibration apart) the share within 15 % and the median absolute error.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/plan_published.py [--only ID_SUBSTRING]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from peftrun.plan.estimate import estimate
from peftrun.plan.settings import read_settings
from peftrun.recipe.gpus import target_hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

DATA = Path(__file__).with_name("plan_published.yaml")
UNITS = {"GB": 1e9, "GiB": 2**30}
WITHIN = 0.15
COMMON = {"architectures": None, "rms_norm_eps": 1e-5, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}


def write_config(directory: Path, fields: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    kind = fields["model_type"].capitalize()
    (directory / "config.json").write_text(json.dumps({**COMMON, **fields, "architectures": [f"{kind}ForCausalLM"]}))
    return directory


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def plan_case(case: dict[str, Any], model_dir: Path) -> Any:
    """The published run as a recipe: bf16 weights (unless said), AdamW (torch), no checkpointing, SDPA, on its GPUs."""
    recipe = merge({"model": {"name_or_path": str(model_dir), "dtype": "bfloat16"},
                    "trainer": {"type": "sft", "optim": "adamw_torch", "activation_checkpointing": False,
                                "learning_rate": 1.0e-4},
                    "dataset": {"path": str(model_dir / "config.json")}}, case["recipe"])
    gpus = case.get("gpus", 1)
    return checked_plan(load_recipe(recipe), target_hardware(case["gpu"], gpus if gpus > 1 else None))


def run_case(case: dict[str, Any], source: dict[str, Any], model_dir: Path) -> float:
    """The plan's figure of the kind the source measured, in bytes. The published runs compute the loss on the
    full logits (TRL's fused head is newer than all of them); autocast only where the run turned it on; the
    source's library differences (`settings`) as the data file states them."""
    plan = plan_case(case, model_dir)
    differences = {**source.get("settings", {}), **case.get("settings", {})}
    settings = dataclasses.replace(read_settings(plan), full_logits=True, **differences)
    result = estimate(plan, settings, mixed_precision=bool(case.get("mixed_precision", False)))
    return result.memory.figures[case["measures"]]


def summarize(label: str, rows: list[tuple[dict[str, Any], float]]) -> str:
    if not rows:
        return f"  {label:<24} -"
    errors = [abs(error) for _, error in rows]
    within = sum(error <= WITHIN for error in errors)
    return (f"  {label:<24} {within:>2}/{len(rows):<2} within 15 % ({within / len(rows):>6.1%}), "
            f"median |error| {statistics.median(errors):>5.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose id contains this")
    args = parser.parse_args()
    data = yaml.safe_load(DATA.read_text())
    cases = [c for c in data["cases"] if not args.only or args.only in c["id"]]
    results: list[tuple[dict[str, Any], float]] = []
    print(f"{'case':<40} {'group':<13} {'split':<11} {'figure':<8} {'published':>9} {'plan':>7} {'error':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            model_dir = write_config(Path(tmp) / case["model"], data["models"][case["model"]])
            unit = UNITS[case["unit"]]
            planned = run_case(case, data["sources"][case["source"]], model_dir) / unit
            error = (planned - case["published"]) / case["published"]
            if not case.get("inconsistent"):
                results.append((case, error))
            flag = "  (inconsistent: left out, see the data file)" if case.get("inconsistent") else ""
            print(f"{case['id']:<40} {case['group']:<13} {case['split']:<11} {case['measures']:<8} "
                  f"{case['published']:>6.2f}{case['unit']:<3} {planned:>7.2f} {error:>+7.1%}{flag}", flush=True)
    for split in ("held-out", "calibration"):
        chosen = [(c, e) for c, e in results if c["split"] == split]
        print(f"\n{split} ({len(chosen)} cases)")
        for group in sorted({c["group"] for c, _ in chosen}):
            print(summarize(group, [(c, e) for c, e in chosen if c["group"] == group]))
        print(summarize("total", chosen))
    print(summarize("\nall cases", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
