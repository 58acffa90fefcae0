"""How `peftrun import` does on real published configs (tests/interop/corpus, see SOURCES.tsv there).

    PYTHONPATH=. .venv/bin/python bench/import_corpus.py [-v] [TOOL...]

Each config is judged against its expectations (tests/interop/corpus/expected, derived from the source tool's
code and defaults by scripts/corpus_expectations.py): faithful, refused with a true reason (the import refuses,
or lists as not carried every setting in which the recipe differs), or lost / changed a deciding setting without
saying so. Prints the counts per tool and in total; -v also prints each config that is not faithful and why.
"""

from __future__ import annotations

import sys
from collections import Counter

from tests.interop.corpus_check import expectations, judge

VERDICTS = ("faithful", "refused", "lost")


def main(verbose: bool, tools: list[str]) -> None:
    counts: dict[str, Counter[str]] = {}
    for tool, path, doc in expectations():
        if tools and tool not in tools:
            continue
        outcome = judge(tool, path, doc)
        counts.setdefault(tool, Counter())[outcome.verdict] += 1
        if verbose and outcome.verdict != "faithful":
            print(f"{outcome.verdict:8s} {tool}/{path}")
            for why in outcome.why:
                print(f"           {why}")
    total: Counter[str] = sum(counts.values(), Counter())
    print(f"\n{'tool':13s} {'configs':>7s} {'faithful':>9s} {'refused (true reason)':>22s} {'lost/changed':>13s}")
    for tool, c in [*sorted(counts.items()), ("total", total)]:
        n = sum(c.values())
        print(f"{tool:13s} {n:7d} {c['faithful']:9d} {c['refused']:22d} {c['lost']:13d}"
              f"   faithful + true refusals {(c['faithful'] + c['refused']) / n:6.1%}")


if __name__ == "__main__":
    main("-v" in sys.argv, [a for a in sys.argv[1:] if not a.startswith("-")])
