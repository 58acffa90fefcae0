"""The model card a hub reads (checked with huggingface_hub's own classes) and the loss plot."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from huggingface_hub import ModelCard

from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from peftrun.train.card import model_card
from peftrun.train.plot import loss_figure
from peftrun.train.rundir import resolved_recipe_text

SUMMARY = {"steps": 32, "final_train_loss": 0.012345678901234567, "final_eval_loss": 0.010312345678901234,
           "train_runtime_s": 138.2, "trainable_parameters": 4884480, "total_parameters": 139399488}
EVALUATION = {"n": 64, "data": None, "base": {"loss": 0.598712345678, "exact_match": 0.0625},
              "tuned": {"loss": 0.010298765432, "exact_match": 0.96875}, "wrong": 2, "failures_file": "eval_failures.jsonl"}


def _plan(model: str, data: list[str]):  # noqa: ANN202
    recipe = load_recipe({"name": "dates", "model": {"name_or_path": model}, "peft": {"method": "lora"},
                          "trainer": {"type": "sft"},
                          "dataset": {"sources": [{"path": p} for p in data], "eval": {"fraction": 0.1}},
                          "output": {"dir": "runs/dates"}})
    return resolve(recipe, CPU)


def test_card_front_matter_is_what_the_hub_reads(tmp_path: Path) -> None:
    local = tmp_path / "train.jsonl"
    local.write_text("{}\n")
    plan = _plan("HuggingFaceTB/SmolLM2-135M-Instruct", ["tatsu-lab/alpaca", str(local)])
    text = model_card(plan, SUMMARY, EVALUATION)
    card = ModelCard(text)
    data = card.data.to_dict()
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert data["base_model_relation"] == "adapter" and data["library_name"] == "peft"
    assert data["pipeline_tag"] == "text-generation" and data["tags"] == ["peftrun", "trl", "sft", "lora"]
    assert data["datasets"] == ["tatsu-lab/alpaca"]  # a local file is no hub dataset
    assert "license" not in data  # not known for a hub base offline
    results = {(r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results == {("loss", "eval loss at the end of training"): 0.0103,
                       ("loss", "completion loss (peftrun eval)"): 0.0103,
                       ("exact_match", "exact match (peftrun eval)"): 0.9688}
    assert card.data.model_name == "dates" and card.text.lstrip().startswith("# dates\n")
    assert "![training loss of dates](loss.png)" in card.text
    assert "- final_train_loss: 0.0123" in card.text and "| exact match | 0.06 | 0.97 |" in card.text
    assert not re.search(r"\d\.\d{6,}", text), "numbers are rounded"
    digest = hashlib.sha256(resolved_recipe_text(plan).encode()).hexdigest()
    assert f"(sha256 `{digest}`)" in card.text
    assert ("base = AutoModelForCausalLM.from_pretrained('HuggingFaceTB/SmolLM2-135M-Instruct')\n"
            "model = PeftModel.from_pretrained(base, 'runs/dates')") in card.text


def test_card_takes_the_license_of_a_local_base(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / "README.md").write_text("---\nlicense: apache-2.0\n---\n# a base\n")
    card = ModelCard(model_card(_plan(str(base), ["tatsu-lab/alpaca"]), SUMMARY))
    assert card.data.license == "apache-2.0"
    assert card.data.base_model is None  # a local path is no hub id


def test_loss_plot_marks_sparse_eval_points_and_names_the_run() -> None:
    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 9)] + [{"step": 0, "eval_loss": 0.9}, {"step": 8, "eval_loss": 0.1}]
    ax = loss_figure(history, "dates").axes[0]
    train, evaluation = ax.get_lines()
    assert train.get_linestyle() == "-" and evaluation.get_linestyle() == "None" and evaluation.get_marker() == "s"
    assert list(evaluation.get_xdata()) == [0, 8]
    assert ax.get_title() == "Training loss: dates"
