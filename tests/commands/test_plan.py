"""`peftrun plan`: the JSON shape, exit codes, suggestions, located target errors; --gpu on explain/validate;
the plan in --dry-run; a run with a wrong module name fails before it creates anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from peftrun.cli import main
from tests.train.test_runner import LORA, recipe


@pytest.fixture
def recipe_path(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> Path:
    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft", "max_length": 64}, LORA)))
    return path


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["plan", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_shape_and_fits(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = plan_json(capsys, str(recipe_path), "--gpu", "a100-80gb")
    assert code == 0 and data["fits"] is True
    assert set(data["parameters"]) >= {"total", "trainable"} and 0 < data["parameters"]["trainable"] < data["parameters"]["total"]
    parts = {"weights", "adapter", "gradients", "optimizer", "activations", "gathered", "buffers", "overhead"}
    assert set(data["memory_gb"]) == parts | {"total", "figures", "cpu_ram_per_node"}
    total, figures = data["memory_gb"]["total"], data["memory_gb"]["figures"]
    assert total["low"] <= total["expected"] <= total["high"]
    assert figures["live"] <= figures["reserved"] < figures["device"] == total["expected"]
    assert data["gpu"] == {"name": "NVIDIA A100 80GB", "memory_gb": 85.9, "count": 1, "nodes": 1}


def test_flash_attention_needs_no_kernel_to_plan_or_explain(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    assert importlib.util.find_spec("flash_attn") is None  # the case: the kernel is not installed here
    code, data = plan_json(capsys, str(recipe_path), "model.attn_implementation=flash_attention_2", "--gpu", "a100-80gb")
    _, sdpa = plan_json(capsys, str(recipe_path), "model.attn_implementation=sdpa", "--gpu", "a100-80gb")
    assert code == 0 and data["memory_gb"] == sdpa["memory_gb"]  # the same fused-attention stand-in
    assert main(["explain", str(recipe_path), "model.attn_implementation=flash_attention_2", "--counts"]) == 0


def test_nodes_give_per_rank_figures_and_cpu_ram_per_node(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zero3 = ["launch.strategy=deepspeed", "launch.zero_stage=3", "launch.num_processes=auto"]
    _, one = plan_json(capsys, str(recipe_path), *zero3, "--gpu", "8x h100")
    _, two = plan_json(capsys, str(recipe_path), *zero3, "--gpu", "h100", "--nodes", "2", "--gpus-per-node", "8")
    assert (one["assumptions"]["processes"], two["assumptions"]["processes"]) == (8, 16)
    assert two["gpu"] == {"name": "NVIDIA H100 80GB", "memory_gb": 85.52, "count": 8, "nodes": 2}
    assert two["memory_gb"]["weights"] <= one["memory_gb"]["weights"]
    assert main(["plan", str(recipe_path), "--gpu", "8x h100", "--gpus-per-node", "4"]) == 2
    assert "GPU counts disagree (--gpu 8, --gpus-per-node 4)" in capsys.readouterr().err


def test_does_not_fit_exits_1_with_re_estimated_suggestions(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = plan_json(capsys, str(recipe_path), "trainer.per_device_train_batch_size=4", "--gpu", "0.6GB")
    assert code == 1 and data["fits"] is False and data["margin_gb"] < 0
    changes = {" ".join(s["change"]): s for s in data["suggestions"]}
    assert "quantization.bits=4" in changes
    smaller = changes["trainer.per_device_train_batch_size=2 trainer.gradient_accumulation_steps=2"]
    assert smaller["expected_gb"] < data["memory_gb"]["total"]["expected"]
    assert all(s["expected_gb"] > 0 for s in data["suggestions"])


def test_wrong_target_module_is_a_located_recipe_error(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(recipe_path), "peft.target_modules=[query,v_proj]"]) == 2
    err = capsys.readouterr().err
    assert "command line: peft.target_modules=[query,v_proj]: peft.target_modules: target_modules 'query' match no module" in err
    assert "q_proj, k_proj, v_proj, o_proj" in err


def test_uncached_hub_model_cannot_be_estimated(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(recipe_path), "model.name_or_path=nobody/not-cached"]) == 4
    err = capsys.readouterr().err
    assert "local directory with config.json" in err and "model.gguf_file" in err and "hf download nobody/not-cached config.json" in err


def test_run_with_a_wrong_target_fails_before_the_run_directory(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(recipe_path), "peft.target_modules=[query,value]"]) == 2
    assert "match no module of the model" in capsys.readouterr().err
    assert not (recipe_path.parent / "runs").exists()


def test_layers_out_of_range(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(recipe_path), "peft.target_modules=[q_proj]", "peft.layers_to_transform=[5]"]) == 2
    assert "layer 5 out of range: the model has 2 layers (0 to 1)" in capsys.readouterr().err


def test_dry_run_shows_the_plan_for_this_machine(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(recipe_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan for this machine:" in out and "trainable of" in out and "activations" in out
    assert "tokens (the data's longest training example, below max_length)" in out  # as `peftrun plan` sizes it


def test_explain_and_validate_resolve_for_the_named_gpu(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(recipe_path), "--gpu", "h100", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    flat = json.dumps(data)
    assert '"bfloat16"' in flat and "NVIDIA H100" in flat
    assert main(["explain", str(recipe_path), "--gpu", "t4", "--format", "json"]) == 0
    assert '"bfloat16"' not in capsys.readouterr().out  # a T4 has no bf16: float32
    assert main(["validate", str(recipe_path), "--gpu", "24GB", "--gpus", "2"]) == 0
    assert main(["validate", str(recipe_path), "--gpu", "a1000"]) == 2


def test_explain_counts_only_when_asked(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(recipe_path), "--counts", "--format", "json"]) == 0
    counts = json.loads(capsys.readouterr().out)["parameters"]
    assert main(["plan", str(recipe_path), "--json"]) in (0, 1)
    assert counts == {k: v for k, v in json.loads(capsys.readouterr().out)["parameters"].items() if k != "by_kind"}


def test_peft_refusing_a_module_type_is_a_located_recipe_error(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(recipe_path), "peft.target_modules=[input_layernorm]"]) == 2
    err = capsys.readouterr().err
    assert "peft.method: PEFT cannot apply lora to this model:" in err and "is not supported" in err
    assert "Traceback" not in err


def test_multi_process_run_checks_targets_before_launching(in_tmp: Path, tiny_model_dir: Path, data_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = in_tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, data_dir / "sft.jsonl", {"type": "sft"},
                                          {**LORA, "target_modules": ["query"]}, launch={"num_processes": 2})))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "r.yaml" in err and "peft.target_modules: target_modules 'query' match no module" in err
    assert "accelerate" not in err and not (in_tmp / "runs").exists()


def test_text_names_cpu_ram_and_the_length_figure(recipe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a machine without a GPU the plan is against its RAM, and one process is not data parallelism. The tokens
    per row are the data's longest example (SFT data in local files, as `peftrun data` measures it) when it is
    shorter than max_length, else max_length; the output says which figure it is."""
    assert main(["data", str(recipe_path), "--json"]) == 0
    longest = json.loads(capsys.readouterr().out)["lengths"]["max"]
    assert longest < 64  # the tiny data is shorter than the recipe's max_length
    assert main(["plan", str(recipe_path), "--no-suggest"]) in (0, 1)
    out = capsys.readouterr().out
    header = out.splitlines()[1]
    assert header.startswith("per device  CPU RAM of this machine (") and "one process (no data parallelism)" in header
    assert "ddp" not in header and f"x {longest} tokens (the data's longest training example, below max_length)" in header
    _, data = plan_json(capsys, str(recipe_path), "trainer.max_length=8", "--no-suggest")
    assert data["assumptions"]["length"] == 8 and data["assumptions"]["length_source"].startswith("max_length")
    _, data = plan_json(capsys, str(recipe_path), "launch.num_processes=2", "--gpu", "l4", "--gpus", "2")
    assert data["assumptions"]["length"] == longest and data["assumptions"]["strategy"] == "ddp"
    main(["plan", str(recipe_path), "launch.num_processes=2", "--gpu", "l4", "--gpus", "2", "--no-suggest"])
    assert "per device  2 x NVIDIA L4 (24.15 GB), ddp over 2 processes;" in capsys.readouterr().out
