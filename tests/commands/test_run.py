"""`peftrun RECIPE`: fails fast on a bad recipe, dry-runs, trains, merges and generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from huggingface_hub import ModelCard

from peftrun.cli import main
from tests import tiny
from tests.train.test_runner import LORA, recipe


def test_bad_recipe_fails_fast_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: {name_or_path: x/y}\ntrainer: {type: sft, lerning_rate: 1}\ndataset: {path: a/b}\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "peftrun", str(path)], cwd=tmp_path, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert done.returncode == 2
    assert "bad.yaml:2:22: trainer.lerning_rate: unknown key `lerning_rate`; did you mean `learning_rate`" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
    assert elapsed < 5  # no torch / trl import on this path (it is about 1 s; the margin is for a busy machine)


def test_dry_run_prints_the_objects_and_writes_nothing(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA)))
    assert main([str(path), "peft.r=8", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "peft.r" in out and "command line: peft.r=8" in out
    assert "peft.tuners.lora.config.LoraConfig" in out and "trl.trainer.sft_config.SFTConfig" in out
    assert "dry run: nothing was loaded or written" in out
    assert not (in_tmp / "runs").exists()


def test_train_merge_generate(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"}, LORA)))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "done: t in" in out and "  run dir     runs/t\n" in out and "  loss plot   runs/t/loss.png\n" in out
    assert main(["merge", "runs/t", "-o", "merged"]) == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in Path("merged").iterdir()}["model.safetensors"] == 0o666 & ~umask
    assert len({p.stat().st_mode & 0o777 for p in Path("merged").iterdir()}) == 1
    card = ModelCard.load("merged/README.md")
    assert card.data.base_model_relation == "merge" and card.data.library_name == "transformers"

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8]])
    merged = AutoModelForCausalLM.from_pretrained("merged")
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), "runs/t")
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, rtol=1e-4, atol=1e-4)
    assert main(["merge", "runs/t", "-o", "merged"]) == 5  # refuses a non-empty target
    capsys.readouterr()
    assert main(["generate", "runs/t", "--prompt", "Say 3 twice:", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip() != ""
    assert main(["merge", "runs/t", "-o", "merged16", "--dtype", "bfloat16"]) == 0
    assert AutoModelForCausalLM.from_pretrained("merged16").dtype == torch.bfloat16
    assert Path("merged16/model.safetensors").stat().st_size < Path("merged/model.safetensors").stat().st_size * 0.6


def test_generate_uses_the_runs_system_prompt(in_tmp: Path, tiny_model_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from peftrun.train.generation import as_chat, generate
    from peftrun.train.merge import load_tuned

    rows = [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Say {i} twice:"}],
             "completion": [{"role": "assistant", "content": f"{i} {i}"}]} for i in range(16)]
    data = tiny.write_jsonl(in_tmp / "chat.jsonl", rows)
    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data, {"type": "sft"}, LORA)))
    assert main([str(path)]) == 0
    assert json.loads(Path("runs/t/manifest.json").read_text())["data"]["system_prompt"] == "Be brief."
    model, tokenizer, _ = load_tuned(Path("runs/t"))
    expected = {system: generate(model, tokenizer, [as_chat(tokenizer, "Say 3 twice:", system)], 6)[0]
                for system in ("Be brief.", None, "Answer at length.")}
    capsys.readouterr()
    for flags, system in (([], "Be brief."), (["--no-system"], None), (["--system", "Answer at length."], "Answer at length.")):
        assert main(["generate", "runs/t", "--prompt", "Say 3 twice:", "--max-new-tokens", "6", *flags]) == 0
        assert capsys.readouterr().out == expected[system] + "\n", flags


def test_merge_refuses_a_directory_that_is_not_a_run(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "empty").mkdir()
    assert main(["merge", "empty", "-o", "out"]) == 5
    assert "empty is not a peftrun run directory (no recipe.resolved.yaml)" in capsys.readouterr().err


def test_unknown_hub_model_without_offline_setting_fails_fast(in_tmp: Path, data_dir: Path) -> None:
    """Without HF_HUB_OFFLINE, peftrun decides offline mode itself: no 50-second retry loop, no traceback."""
    import os

    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(Path("nobody/no-such-model"), data_dir / "sft.jsonl", {"type": "sft"}, LORA)))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "peftrun", str(path)], cwd=in_tmp, capture_output=True, text=True, env=env)
    assert time.perf_counter() - start < 40
    assert done.returncode == 4, done.stderr
    assert "'nobody/no-such-model'" in done.stderr and "Traceback" not in done.stderr
