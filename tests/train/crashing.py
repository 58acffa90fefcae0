"""Runs that the chaos test kills: each one a child of a fork server that has imported the libraries once
(tests/train/test_crash.py), so a start costs what a run costs, not an interpreter and its imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import peftrun
from peftrun.train import runner  # noqa: F401 - imported once, in the fork server
from trl import SFTTrainer  # noqa: F401 - the slow import, done once


def run_or_resume(directory: str, recipe: dict[str, Any]) -> None:
    """The recipe in `directory`: a first start, or a resume when an earlier start got that far."""
    os.chdir(directory)
    log = open("child.log", "a")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = log
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    started = Path(recipe["output"]["dir"], "recipe.resolved.yaml").is_file()
    print(f"--- {'resume' if started else 'start'} (pid {os.getpid()})", flush=True)
    peftrun.run(recipe, mode="resume" if started else "fresh")
