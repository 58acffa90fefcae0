"""The share of source settings `peftrun import` carries over the test fixtures (tests/interop/fixtures).

    PYTHONPATH=. .venv/bin/python bench/import_coverage.py

A setting counts as carried when it is written to the recipe or dropped as a no-op (the run is the same
without it); as not carried when it is listed. A refused config (an objective peftrun does not run) counts
all its settings as not carried. Prints one line per fixture, a total per tool and overall, and the time an
import takes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from peftrun.errors import RecipeError
from peftrun.interop.importer import import_config
from peftrun.interop.keymap import source_key
from peftrun.interop.sources import read_source
from tests.interop.corpus_check import inside

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "interop" / "fixtures"
SOURCES = ("*.yml", "*.yaml", "*.sh", "*.md", "run/training_args.yaml")


def fixtures() -> list[Path]:
    found = {p for tool in sorted(FIXTURES.iterdir()) for pattern in SOURCES for p in tool.glob(pattern)}
    return sorted(found)


def count(path: Path) -> tuple[int, int, float]:
    """(settings carried, settings in the source, seconds) for one fixture."""
    with inside(path.parent):
        start = time.perf_counter()
        try:
            result, _ = import_config(Path(path.name))
        except RecipeError:
            return 0, len(read_source(Path(path.name)).config), time.perf_counter() - start
        seconds = time.perf_counter() - start
    tr = result.translation
    listed = {source_key(key).removesuffix(" (default)") for key in tr.not_carried}
    total = len(set(tr.mapped) | set(tr.dropped) | listed)
    return total - len(listed), total, seconds


def main() -> None:
    per_tool: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    times = []
    for path in fixtures():
        carried, total, seconds = count(path)
        times.append(seconds)
        tool = path.relative_to(FIXTURES).parts[0]
        per_tool[tool][0] += carried
        per_tool[tool][1] += total
        print(f"{str(path.relative_to(FIXTURES)):40s} {carried:3d} / {total:3d} carried")
    print()
    for tool, (carried, total) in sorted(per_tool.items()):
        print(f"{tool:14s} {carried:4d} / {total:4d} = {carried / total:6.1%}")
    carried, total = (sum(v[i] for v in per_tool.values()) for i in (0, 1))
    print(f"{'all':14s} {carried:4d} / {total:4d} = {carried / total:6.1%} of the settings in {len(times)} fixtures")
    print(f"import time: median {sorted(times)[len(times) // 2] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
