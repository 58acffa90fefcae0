#!/usr/bin/env python3
"""Write the quickstart data set: dates written in many ways -> ISO 8601.

    python scripts/make_quickstart_data.py [--out data/quickstart] [--train 320] [--eval 64] [--seed 0]

Each row is a conversational prompt/completion pair, the format TRL's
SFTTrainer trains on with the model's chat template and the loss on the
completion only:

    {"prompt": [{"role": "system", "content": "Rewrite the date as YYYY-MM-DD. ..."},
                {"role": "user", "content": "the 5th of March, 2021"}],
     "completion": [{"role": "assistant", "content": "2021-03-05"}]}

SmolLM2-135M-Instruct gets almost none of these right out of the box (it
echoes the date, reorders it wrongly or explains ISO 8601); a small LoRA
adapter learns the month table and the zero padding in a few dozen steps.
Exact match of the answer is the metric. The output is deterministic for a
given seed, and no eval date (nor any eval prompt) appears in the train split.
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
from pathlib import Path

SYSTEM = "Rewrite the date as YYYY-MM-DD. Answer with the date only."
MONTHS = list(calendar.month_name)[1:]


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Unambiguous ways people write a date (no 03/05/2021: month/day order is a guess).
STYLES = [
    lambda y, m, d: f"{MONTHS[m - 1]} {d}, {y}",
    lambda y, m, d: f"{d} {MONTHS[m - 1]} {y}",
    lambda y, m, d: f"the {ordinal(d)} of {MONTHS[m - 1]}, {y}",
    lambda y, m, d: f"{MONTHS[m - 1]} {ordinal(d)}, {y}",
    lambda y, m, d: f"{MONTHS[m - 1][:3]} {d} {y}",
    lambda y, m, d: f"{d} {MONTHS[m - 1][:3]}. {y}",
    lambda y, m, d: f"{y}, {MONTHS[m - 1]} {d}",
    lambda y, m, d: f"{calendar.day_name[calendar.weekday(y, m, d)]}, {MONTHS[m - 1]} {d}, {y}",
]


def example(rng: random.Random) -> tuple[tuple[int, int, int], dict]:
    year = rng.randint(1900, 2099)
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    text = rng.choice(STYLES)(year, month, day)
    row = {
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
        "completion": [{"role": "assistant", "content": f"{year:04d}-{month:02d}-{day:02d}"}],
    }
    return (year, month, day), row


def make(n_train: int, n_eval: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    seen: set[tuple[int, int, int]] = set()
    eval_rows: list[dict] = []
    while len(eval_rows) < n_eval:
        date, row = example(rng)
        if date not in seen:
            seen.add(date)
            eval_rows.append(row)
    train_rows: list[dict] = []
    while len(train_rows) < n_train:
        date, row = example(rng)
        if date not in seen:  # held-out dates stay unseen; train dates are distinct too
            seen.add(date)
            train_rows.append(row)
    return train_rows, eval_rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "quickstart")
    parser.add_argument("--train", type=int, default=256, help="train examples (default 256)")
    parser.add_argument("--eval", type=int, default=64, help="held-out examples (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_rows, eval_rows = make(args.train, args.eval, args.seed)
    write_jsonl(args.out / "train.jsonl", train_rows)
    write_jsonl(args.out / "eval.jsonl", eval_rows)
    print(f"wrote {len(train_rows)} train and {len(eval_rows)} eval examples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
