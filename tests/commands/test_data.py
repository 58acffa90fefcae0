"""`peftrun data`: the data exactly as the trainer will see it, as text or one JSON object, and the same
located errors as a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from peftrun.cli import main
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from tests import tiny
from tests.test_recipes import ROOT, SHIPPED
from tests.train.test_runner import LORA, recipe


@pytest.fixture(autouse=True)
def _cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("peftrun.recipe.hardware.probe_light", lambda: CPU)


@pytest.fixture
def alpaca_recipe(tiny_model_dir: Path, tmp_path: Path, write_recipe) -> Path:  # noqa: ANN001
    rows = [{"instruction": f"Say {i}", "output": f"{i} {i}"} for i in range(5)] + [
        {"instruction": "Say a lot " + "x" * 300, "output": "ok"}]
    data = tiny.write_jsonl(tmp_path / "alpaca.jsonl", rows)
    body = recipe(tiny_model_dir, data, {"type": "sft", "max_length": 200}, LORA,
                  model={"name_or_path": str(tiny_model_dir), "chat_template": "alpaca"},
                  dataset={"path": str(data), "format": "alpaca", "eval": {"fraction": 0.2}})
    return write_recipe(body)


def test_json_shows_rows_examples_trained_text_and_lengths(alpaca_recipe: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(alpaca_recipe), "--show", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == {"train": 4, "eval": 2}
    assert result["format"] == "prompt-completion"
    assert [(s["key"], s["format"], s["rows"]) for s in result["sources"]] == [("dataset", "alpaca", 6)]
    first = result["examples"][0]
    assert set(first) == {"text", "trained_text"}
    assert first["text"].startswith("Below is an instruction that describes a task.")
    number = first["text"].split("### Instruction:\nSay ")[1][0]
    assert first["trained_text"] == f"{number} {number}<|im_end|>\n\n"  # completion-only: the reply, EOS, separator
    lengths = result["lengths"]
    assert set(lengths) == {"p50", "p95", "max", "truncated", "max_length", "dropped"}
    assert lengths["max_length"] == 200 and lengths["p50"] <= lengths["p95"] <= lengths["max"]
    assert lengths["truncated"] == lengths["dropped"] == (lengths["max"] > 200)  # the long reply is cut off


def test_text_marks_the_trained_tokens(alpaca_recipe: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(alpaca_recipe), "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "--- example 1 (trained tokens marked [[ ]])" in out
    reply = out.split("### Response:\n")[1]
    assert reply.startswith("[[") and reply.rstrip().endswith("<|im_end|>\n\n]]".rstrip())
    assert main(["data", str(alpaca_recipe), "trainer.max_length=20", "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "  dataset                       6  alpaca" in out
    assert "4 example(s) longer than max_length 20 are truncated" in out
    assert "4 example(s) keep no trained token after truncation: the trainer drops them" in out


def test_bad_data_fails_as_a_run_does(tiny_model_dir: Path, tmp_path: Path, write_recipe,  # noqa: ANN001
                                      capsys: pytest.CaptureFixture) -> None:
    data = tiny.write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "Say 1"}])
    path = write_recipe(recipe(tiny_model_dir, data, {"type": "sft"}, LORA,
                               dataset={"path": str(data), "format": "alpaca"}))
    assert main(["data", str(path)]) == 3
    assert capsys.readouterr().err.endswith(f"error: dataset ({data}): format alpaca needs the field(s) output, but "
                                            "the data has ['instruction']\n")


def test_check_lists_every_rule_and_exits_0_on_warnings(alpaca_recipe: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(alpaca_recipe), "--check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "data checks:"
    assert out[1:11] == [f"  {rule:<26} {status}" for rule, status in (
        ("no-trained-tokens", "pass"), ("eos-never-trained", "pass"), ("assistant-mask-empty", "skip"),
        ("examples-without-loss", "pass"), ("eos-not-always-trained", "pass"), ("double-bos", "skip"),
        ("completion-truncated", "fail"), ("chosen-equals-rejected", "skip"), ("saved-template-differs", "pass"),
        ("sequences-see-each-other", "skip"))]
    assert out[11].startswith("warning: data check completion-truncated: 1 of 4 examples (25.0%) are longer than "
                              "max_length 200; in 1 of 4 example(s) (row ")
    assert "1 of them lose every trained token and the trainer drops them" in out[11]


def test_check_exits_3_when_a_run_would_stop(alpaca_recipe: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(alpaca_recipe), "trainer.max_length=20", "--check", "--json"]) == 3
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    stop = next(r for r in result["rules"] if r["rule"] == "no-trained-tokens")
    assert stop == {"rule": "no-trained-tokens", "severity": "error", "status": "fail", "allowed": False, "rows": [],
                    "message": stop["message"]}
    assert stop["message"].startswith("max_length 20 (keep_start) cuts every trained token from all 4 examples")


def test_plain_data_shows_the_failed_checks(alpaca_recipe: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(alpaca_recipe), "--show", "0"]) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith("warning: data check completion-truncated: ")
    assert main(["data", str(alpaca_recipe), "--show", "0", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [r["rule"] for r in checks["rules"] if r["status"] == "fail"] == ["completion-truncated"]


def _loads_offline(path: Path) -> bool:
    """The recipe's model and data are local files that exist (the quickstart once scripts/fetch_model.sh ran)."""
    recipe = load_recipe(path)
    local = [recipe.model.name_or_path]
    for _, source in recipe.dataset.all_sources():
        local += [source.path] if isinstance(source.path, str) else source.path
    return all(Path(p).exists() for p in local)


def test_shipped_recipes_that_load_offline_pass_the_checks(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(ROOT)
    offline = [path.relative_to(ROOT) for path in SHIPPED if _loads_offline(path)]
    if not offline:
        reason = "no shipped recipe loads offline here: the quickstart needs scripts/fetch_model.sh (`make test` runs it)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    for path in offline:
        assert main(["data", str(path), "--check", "--json"]) == 0, path
        result = json.loads(capsys.readouterr().out)
        assert [r["rule"] for r in result["rules"] if r["status"] == "fail"] == [], path
