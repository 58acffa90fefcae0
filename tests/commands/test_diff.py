"""`peftrun diff`: resolved differences with both sources, through shared bases, revisions and `git diff`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftrun.cli import main
from tests.git_repos import Repo, git, git_cache  # noqa: F401 - fixture

BASE = "model: {name_or_path: team/model}\npeft:\n  method: lora\n  r: 8\ntrainer: {type: sft}\ndataset: {path: team/data}\n"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["diff", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_shared_base_at_two_tags(tmp_path: Path, git_cache: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                   capsys: pytest.CaptureFixture[str]) -> None:
    shared = Repo(tmp_path / "shared")
    v1 = shared.commit({"lora.yaml": BASE}, tag="v1")
    v2 = shared.commit({"lora.yaml": BASE.replace("r: 8", "r: 32")}, tag="v2")
    for tag in ("v1", "v2"):
        (tmp_path / tag).mkdir()
        (tmp_path / tag / "r.yaml").write_text(f"extends: git+{shared.url}@{tag}#lora.yaml\npeft: {{lora_dropout: 0.1}}\n")
    monkeypatch.chdir(tmp_path)
    code, data = run_json(capsys, "v1/r.yaml", "v2/r.yaml")
    assert code == 1 and data["same"] is False
    assert data["values"] == [{
        "key": "peft.r",
        "a": {"value": 8, "source": f"git+{shared.url}@v1#lora.yaml:4:3 (commit {v1[:12]})"},
        "b": {"value": 32, "source": f"git+{shared.url}@v2#lora.yaml:4:3 (commit {v2[:12]})"},
    }]
    assert data["objects"] == [{"object": "peft.LoraConfig", "field": "r", "a": 8, "b": 32}]
    assert main(["diff", "v1/r.yaml", "v1/r.yaml"]) == 0
    assert capsys.readouterr().out.endswith("the resolved runs are the same\n")
    assert main(["diff", "v1/r.yaml", "v2/r.yaml", "peft.r=4"]) == 0  # overrides apply to both sides


@pytest.fixture
def team(tmp_path: Path, git_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:  # noqa: F811
    """A repository whose recipe extends a local base; the second commit changes only the base."""
    repo = Repo(tmp_path / "team")
    repo.commit({"recipes/base/lora.yaml": BASE, "recipes/r.yaml": "extends: base/lora.yaml\npeft: {lora_alpha: 16}\n"})
    repo.commit({"recipes/base/lora.yaml": BASE.replace("r: 8", "r: 16\n  use_dora: true")})
    monkeypatch.chdir(repo.path)
    return repo


def test_a_change_made_only_in_a_base_between_two_revisions(team: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "HEAD~1:recipes/r.yaml", "HEAD:recipes/r.yaml")
    assert code == 1
    assert [(v["key"], v["a"], v["b"]) for v in data["values"]] == [
        ("peft.r", {"value": 8, "source": "HEAD~1:recipes/base/lora.yaml:4:3"},
         {"value": 16, "source": "HEAD:recipes/base/lora.yaml:4:3"}),
        ("peft.use_dora", {"value": False, "source": "default: PEFT's LoraConfig"}, {"value": True, "source": "HEAD:recipes/base/lora.yaml:5:3"}),
    ]
    assert main(["diff", "HEAD~1:recipes/r.yaml", "recipes/r.yaml"]) == 1  # the work tree as side b
    out = capsys.readouterr().out
    assert out.splitlines()[:8] == [
        "--- a: HEAD~1:recipes/r.yaml",
        "+++ b: recipes/r.yaml",
        "peft.r",
        "  - 8      HEAD~1:recipes/base/lora.yaml:4:3",
        "  + 16     recipes/base/lora.yaml:4:3",
        "peft.use_dora",
        "  - False  default: PEFT's LoraConfig",
        "  + True   recipes/base/lora.yaml:5:3",
    ]
    assert "peft.LoraConfig:\n  r: 8 -> 16\n  use_dora: (absent) -> True\n" in out


def test_recipe_errors_and_unknown_revisions_exit_2(team: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "nope~3:recipes/r.yaml", "recipes/r.yaml"]) == 2
    assert "nope~3:recipes/r.yaml: no revision 'nope~3' in the git repository" in capsys.readouterr().err
    assert main(["diff", "HEAD:recipes/other.yaml", "recipes/r.yaml"]) == 2
    assert "no file recipes/other.yaml at revision HEAD" in capsys.readouterr().err
    Path("bad.yaml").write_text("extends: recipes/r.yaml\npeft: {lora_alpah: 1}\n")
    assert main(["diff", "bad.yaml", "recipes/r.yaml"]) == 2
    assert "bad.yaml:2:8: peft.lora_alpah: unknown key `lora_alpah`; did you mean `lora_alpha`?" in capsys.readouterr().err


def test_git_diff_through_the_diff_driver(team: Repo) -> None:
    (team.path / ".gitattributes").write_text("*.yaml diff=peftrun\n")
    git(team.path, "config", "diff.peftrun.command", f"{sys.executable} -m peftrun diff --git-external")
    team.commit({"recipes/base/common.yaml": "trainer: {logging_steps: 5}\n"})
    (team.path / "recipes/r.yaml").write_text("extends: base/lora.yaml\npeft: {lora_alpha: 64}\n")
    (team.path / "recipes/base/lora.yaml").write_text(BASE.replace("r: 8", "r: 4"))
    (team.path / "recipes/base/common.yaml").write_text("trainer: {logging_steps: 1}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(["git", "diff"], cwd=team.path, env=env, capture_output=True, text=True, check=True).stdout
    assert "peftrun diff recipes/r.yaml\n--- a: recipes/r.yaml (old)\n+++ b: recipes/r.yaml\npeft.lora_alpha\n" in out
    assert "  - 16  recipes/r.yaml (old):2:8\n  + 64  recipes/r.yaml:2:8\n" in out
    assert "peftrun diff recipes/base/lora.yaml\n" in out  # a complete base is a recipe too
    # a partial base does not resolve alone: its lines are shown
    assert "-trainer: {logging_steps: 5}\n+trainer: {logging_steps: 1}\n" in out
    assert "(peftrun diff: recipes/base/common.yaml does not resolve alone, lines shown: " in out


def test_a_change_through_a_rule_names_the_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name, trainer in (("a", "sft"), ("b", "dpo")):
        Path(name).mkdir()
        Path(name, "r.yaml").write_text(BASE.replace("{type: sft}", f"{{type: {trainer}}}"))
    code, data = run_json(capsys, "a/r.yaml", "b/r.yaml")
    values = {v["key"]: (v["a"], v["b"]) for v in data["values"]}
    assert code == 1
    assert values["trainer.learning_rate"] == (
        {"value": 2e-4, "source": "rule learning-rate: LoRA = 10 x the full fine-tuning sft rate 2e-05"},
        {"value": 5e-6, "source": "rule learning-rate: LoRA = 10 x the full fine-tuning dpo rate 5e-07"},
    )
    assert {"object": "trl.SFTConfig", "field": "learning_rate", "a": 2e-4, "b": None} in data["objects"]
    assert {"object": "trl.DPOConfig", "field": "learning_rate", "a": None, "b": 5e-6} in data["objects"]


def test_explain_reads_a_revision_too(team: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "HEAD~1:recipes/r.yaml"]) == 0
    out = capsys.readouterr().out
    assert "peft.r " in out and "HEAD~1:recipes/base/lora.yaml:4:3" in out
    assert "base:     HEAD~1:recipes/base/lora.yaml sha256 " in out
