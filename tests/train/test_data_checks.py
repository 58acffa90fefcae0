"""The data checks in a run: a useless dataset stops it with exit 3 before the model loads; warnings reach the
run's output and its manifest; the saved tokenizer carries the chat template the run trained with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.data.templates import template_text
from tests import tiny
from tests.data.test_checks import MARKERS_WITHOUT_END, chat
from tests.train.test_runner import LORA, recipe


def test_a_useless_dataset_stops_the_run_before_the_model_loads(in_tmp: Path, tiny_model_dir: Path, write_recipe,  # noqa: ANN001
                                                                capsys: pytest.CaptureFixture) -> None:
    (in_tmp / "t.jinja").write_text(MARKERS_WITHOUT_END)
    data = tiny.write_jsonl(in_tmp / "chat.jsonl", chat())
    path = write_recipe(recipe(tiny_model_dir, data, {"type": "sft", "assistant_only_loss": True}, LORA,
                               model={"name_or_path": str(tiny_model_dir), "chat_template": str(in_tmp / "t.jinja")}))
    assert main([str(path)]) == 3
    err = capsys.readouterr().err
    assert "error: data check eos-never-trained: the stop token '<|im_end|>' (id 2) carries loss in none" in err
    assert ("the run would train a useless model, so it stops before the model loads; if this is intended, add to "
            "the recipe: dataset.checks.allow: [eos-never-trained]") in err
    assert "Loading weights" not in err
    assert not (in_tmp / "runs" / "t").exists()


def test_warnings_reach_the_output_and_the_manifest_and_the_template_is_saved(
        in_tmp: Path, tiny_model_dir: Path, write_recipe, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    rows = chat(7) + [{"messages": [{"role": "user", "content": "Long?"},
                                    {"role": "assistant", "content": "yes " * 40}]}]
    data = tiny.write_jsonl(in_tmp / "chat.jsonl", rows)
    path = write_recipe(recipe(tiny_model_dir, data, {"type": "sft", "assistant_only_loss": True, "max_length": 80},
                               LORA, model={"name_or_path": str(tiny_model_dir), "chat_template": "chatml"}))
    assert main([str(path)]) == 0
    assert "warning: data check completion-truncated: 1 of 8 examples (12.5%) are longer than max_length 80" in \
        capsys.readouterr().err
    run_dir = in_tmp / "runs" / "t"
    failed = json.loads((run_dir / "manifest.json").read_text())["data_checks"]["failed"]
    assert [(f["rule"], f["severity"], f["rows"]) for f in failed] == [
        ("eos-not-always-trained", "warning", [7]), ("completion-truncated", "warning", [7])]

    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(str(run_dir))
    conversation = rows[0]["messages"]
    assert saved.chat_template == template_text("chatml")
    assert saved.apply_chat_template(conversation, tokenize=False) == (
        "<|im_start|>user\nHow are you 0?<|im_end|>\n<|im_start|>assistant\nfine 0<|im_end|>\n")
    assert "- chat template: chatml (saved with the tokenizer)" in (run_dir / "README.md").read_text()
