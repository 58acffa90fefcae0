"""Suggestions for a mistyped name or path: "did you mean `x`?" and the nearest existing file."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

MAX_FILES = 2000  # files looked at for a nearest path (a huge tree is not walked whole)


def did_you_mean(word: str, choices: list[str]) -> str:
    """ "; did you mean `x`?" naming the closest choices (those about as close as the best one), or ""."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices), reverse=True)
    close = [c for ratio, c in scored if ratio >= 0.6 and ratio >= scored[0][0] - 0.1][:3]
    return f"; did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


def _files_under(folder: Path) -> list[Path]:
    """Files under `folder`, two levels deep at most, hidden ones left out."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        dirs[:] = [] if depth >= 1 else sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
        if len(found) >= MAX_FILES:
            break
    return found


def nearest_file(missing: str) -> str | None:
    """The existing file whose path is closest to `missing` (written the way `missing` is: relative stays
    relative), looked for under the deepest folder of `missing` that exists."""
    given = Path(missing).expanduser()
    folder = given.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return None
    names = {str(p): p for p in _files_under(folder)}
    close = difflib.get_close_matches(str(given), list(names), n=1, cutoff=0.6)
    return close[0] if close else None


def path_hint(missing: str) -> str:
    """ "; did you mean data/train.jsonl?" for a path that does not exist, or ""."""
    found = nearest_file(missing)
    return f"; did you mean `{found}`?" if found else ""
