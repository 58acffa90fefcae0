"""What a run shows: the banner, one line per logging step with numbers as numbers, an end summary;
library noise in the run's log, not on the terminal; nothing changed in the caller's process after."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

import peftrun
from peftrun.train.progress import progress_line, quiet

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^step +\d+/\d+  loss \d+\.\d{4}  lr \d\.\d\de-\d\d  [\d,]+ tok/s(  padding \d+%)?  \d+\.\d\d s/step  "
                  r"ETA \d+m\d\ds$")
EVAL_LINE = re.compile(r"^step +\d+/\d+  eval loss \d+\.\d{4}$")


def _recipe(tmp_path: Path, model_dir: Path, data: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "extends": "peftrun:defaults", "name": "p", "model": {"name_or_path": str(model_dir)},
        "peft": {"method": "lora", "r": 4, "lora_alpha": 8},
        "trainer": {"type": "sft", "max_steps": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                    "logging_steps": 1, "eval_strategy": "steps", "eval_steps": 2, "activation_checkpointing": False},
        "dataset": {"path": str(data), "eval": {"fraction": 0.25}}, "output": {"dir": str(tmp_path / "run")}}))
    return path


def test_progress_line_format() -> None:
    logs = {"loss": 0.41234, "learning_rate": 0.000469, "grad_norm": 0.5, "padding_fraction": 0.125}
    assert progress_line(logs, 4, 32, 9.24, 4, 812.4) == (
        "step  4/32  loss 0.4123  lr 4.69e-04  812 tok/s  padding 12%  2.31 s/step  ETA 1m05s")
    assert progress_line({"eval_loss": 0.0412}, 16, 32, 40.0, 16, None) == "step 16/32  eval loss 0.0412"


def test_a_real_run_tells_its_story_in_one_screen(tmp_path: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    recipe = _recipe(tmp_path, tiny_model_dir, data_dir / "sft.jsonl")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "peftrun", str(recipe)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    first = next(i for i, line in enumerate(out) if LINE.match(line))
    assert first + 1 <= 40, f"the first screen has {first + 1} lines"
    assert out[0].startswith(f"peftrun {peftrun.__version__}: p (")
    assert [line for line in out if line.startswith("step ")] == [line for line in out if LINE.match(line) or EVAL_LINE.match(line)]
    assert sum(bool(LINE.match(line)) for line in out) == 4 and sum(bool(EVAL_LINE.match(line)) for line in out) == 2
    assert "{'loss'" not in done.stdout and "'0." not in done.stdout  # no dicts of quoted numbers
    assert "done: p in" in done.stdout and f"log         {tmp_path / 'run' / 'train.log'}" in done.stdout
    for noise in ("it/s]", "examples/s]", "Failed to load CPU gemm_4bit_forward", "Tokenizing train dataset"):
        assert noise not in done.stderr, noise
    assert len({p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir() if p.is_file()}) == 1  # no 0600 weights
    log = (tmp_path / "run" / "train.log").read_text()
    assert out[0] in log and [line for line in out if LINE.match(line)][-1] in log and "done: p in" in log


def test_the_python_api_leaves_the_process_as_it_found_it(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    from datasets.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    def state() -> tuple:
        loggers = [logging.getLogger(n) for n in ("transformers", "datasets", "bitsandbytes", "trl")]
        return (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled(), warnings.showwarning,
                list(warnings.filters), [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers])

    before = state()
    run_dir = peftrun.run(_recipe(in_tmp, tiny_model_dir, data_dir / "sft.jsonl"))
    assert state() == before
    assert (run_dir / "train.log").read_text().count("\nstep ") >= 4
    with quiet():
        assert not hf_logging.is_progress_bar_enabled()
        logging.getLogger("transformers.modeling_utils").warning("kept in the log")
    assert state() == before
