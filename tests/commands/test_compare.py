"""`peftrun compare`: runs that differ in data, PEFT method and trainer fields, side by side with their results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import peftrun
from peftrun.cli import main


def recipe(model_dir: Path, data: Path, name: str, peft: dict[str, Any], **trainer: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"name_or_path": str(model_dir)},
        "peft": peft,
        "trainer": {"type": "sft", "max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1,
                    "eval_strategy": "steps", "eval_steps": 2, "report_to": "none", "activation_checkpointing": False,
                    **trainer},
        "dataset": {"path": str(data), "eval": {"fraction": 0.25}},
        "output": {"dir": f"runs/{name}"},
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, data_dir: Path) -> list[Path]:
    root = tmp_path_factory.mktemp("compare")
    lora = {"method": "lora", "r": 4, "lora_alpha": 8}
    recipes = [recipe(tiny_model_dir, data_dir / "sft.jsonl", "a", lora),
               recipe(tiny_model_dir, data_dir / "text.jsonl", "b", lora),  # other data
               recipe(tiny_model_dir, data_dir / "sft.jsonl", "c", {"method": "ia3"}, max_steps=3)]  # method, trainer
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return [root / peftrun.run(r) for r in recipes]


def manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


def test_compare_shows_the_resolved_differences_and_the_results(runs: list[Path], data_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *map(str, runs), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["runs"] == [str(r) for r in runs]
    differences = {d["key"]: d["values"] for d in found["differences"]}
    assert differences["dataset.path"] == [str(data_dir / f) for f in ("sft.jsonl", "text.jsonl", "sft.jsonl")]
    assert differences["peft.method"] == ["lora", "lora", "ia3"]
    assert differences["trainer.max_steps"] == [2, 2, 3]
    assert differences["peft.r"] == [4, 4, "(absent)"]
    assert "trainer.learning_rate" in differences  # the rule gives IA3 its own rate
    assert "model.name_or_path" not in differences and "trainer.per_device_train_batch_size" not in differences
    for run, result in zip(runs, found["results"]):
        training = manifest(run)["training"]
        assert result["run"] == str(run) and result["status"] == "finished"
        assert result["final_train_loss"] == training["final_train_loss"]
        assert result["final_eval_loss"] == training["final_eval_loss"]
        assert result["steps"] == training["steps"] and result["wall_time_s"] == training["wall_time_s"]
        assert result["peak_memory_gb"] == manifest(run)["memory"]["measured_gb"]["peak_rss"]
        assert 0.0 <= result["eval_mean_token_accuracy"] <= 1.0
        assert result["useful_tokens_per_s"] > 0  # the manifest records it (trainer.throughput)


def test_compare_table_and_throughput(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faster = tmp_path / "faster"
    faster.mkdir()
    for name in ("recipe.resolved.yaml", "manifest.json"):
        (faster / name).write_text((runs[0] / name).read_text())
    data = manifest(faster)
    data["training"]["useful_tokens_per_s"] = 1234.5
    (faster / "manifest.json").write_text(json.dumps(data))
    assert main(["compare", str(runs[0]), str(faster)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [str(runs[0]), str(faster)]
    assert lines[1] == "(same resolved recipe)"
    assert lines[2] == "results"
    assert lines[lines.index("results") + 1].split() == ["status", "finished", "finished"]
    (tokens,) = [line.split() for line in lines if line.startswith("useful_tokens_per_s")]
    recorded = manifest(runs[0])["training"]["useful_tokens_per_s"]  # trainer.throughput records it
    assert tokens[0] == "useful_tokens_per_s" and tokens[2] == "1234"
    assert float(tokens[1].replace(",", "")) == pytest.approx(recorded, abs=0.5)


def test_compare_refuses_a_directory_that_is_not_a_run(runs: list[Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs[0]), str(tmp_path)]) == 5
    assert capsys.readouterr().err == f"error: {tmp_path} is not a run directory (no recipe.resolved.yaml)\n"
