"""RunMode: the one value that says how a run uses its directory, from the command line to the launched processes."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import peftrun
from peftrun.launch import runmode
from peftrun.launch.runmode import RunMode


def parse(*argv: str) -> RunMode:
    parser = argparse.ArgumentParser()
    runmode.add_arguments(parser, overwrite_help="o", resume_help="r")
    return parser.parse_args(list(argv)).mode


def test_the_flags_read_back_as_the_mode_they_name() -> None:
    assert [parse(), parse("--overwrite"), parse("--resume")] == [RunMode.FRESH, RunMode.OVERWRITE, RunMode.RESUME]
    assert [m.flags for m in RunMode] == [(), ("--resume",), ("--overwrite",)]
    assert all(parse(*m.flags) is m for m in RunMode)  # what a launched process is given means the same mode


def test_both_flags_at_once_are_refused_by_every_command_that_takes_them() -> None:
    for command in ("run", "submit"):
        done = subprocess.run([sys.executable, "-m", "peftrun", command, "r.yaml", "--overwrite", "--resume"],
                              capture_output=True, text=True)
        assert done.returncode == 2
        assert "argument --resume: not allowed with argument --overwrite" in done.stderr


def test_the_api_names_the_modes_when_given_another() -> None:
    with pytest.raises(ValueError, match=r"run mode 'restart' is not one of 'fresh', 'resume', 'overwrite'"):
        peftrun.run("never-read.yaml", mode="restart")
