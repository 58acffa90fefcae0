"""Where the shipped recipes and schemas are: in the package when peftrun is installed from a wheel
(peftrun/_shipped/, mapped in by setup.py), in the source tree's recipes/ and schemas/ otherwise."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """`recipes` or `schemas`: the installed copy if there is one, else the source tree's folder."""
    installed = PACKAGE_ROOT / "_shipped" / name
    return installed if installed.is_dir() else PACKAGE_ROOT.parent / name
