"""`peftrun validate recipes/` against one `import torch`, each in fresh processes, side by side.

    .venv/bin/python bench/validate_speed.py [--repeat 5]

Prints the median wall time of each and their ratio (the goal: validating every
shipped recipe costs a fraction of one torch import).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "peftrun validate recipes/": [sys.executable, "-m", "peftrun", "validate", "recipes"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c 'pass' (interpreter start)": [sys.executable, "-c", "pass"],
}


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):  # interleaved, so machine noise hits every command alike
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    recipes = sum(1 for p in (ROOT / "recipes").rglob("*.yaml") if "base" not in p.parts)
    for name, value in medians.items():
        print(f"{name:40} {value:6.3f} s (median of {repeat})")
    ratio = medians["peftrun validate recipes/"] / medians["python -c 'import torch'"]
    print(f"validate ({recipes} recipes) / import torch: {ratio:.2f}")


if __name__ == "__main__":
    main()
