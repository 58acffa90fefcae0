"""Writes that survive a crash: whole or absent (temporary file, fsync, rename), and flushed before a mark."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves either the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)


def fsync_tree(root: Path, skip: Callable[[Path], bool] = lambda path: False) -> None:
    """Flush every file under `root` (but those `skip` names, and what is under them) and the folders."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not skip(here / d)]
        for name in files:
            if not skip(here / name):
                _fsync(here / name)
        _fsync(here, os.O_RDONLY | os.O_DIRECTORY)
