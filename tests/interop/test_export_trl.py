"""`peftrun export trl`: TRL's own parser reads the exported YAML into TRL's dataclasses, and the LoraConfig,
BitsAndBytesConfig and trainer config TRL builds from them equal what peftrun builds for the recipe.
This module imports trl (seconds); the importer tests stay light."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig
from peft.tuners.tuners_utils import check_target_module_exists
from transformers import LlamaConfig, LlamaForCausalLM
from trl import get_peft_config, get_quantization_config

from peftrun import build_peft_config, build_quantization_config, build_training_args, load_recipe, resolve
from peftrun.errors import RecipeError
from peftrun.interop.export_trl import SHIPPED_TEMPLATES, export_trl
from peftrun.recipe.gpus import target_hardware
from peftrun.recipe.hardware import probe_light
from peftrun.recipe.shipped import shipped_recipes
from tests.interop.contract import takes

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = list(shipped_recipes())
MACHINES = {"h100": ("h100", None), "this machine": (None, None)}


def parsed(tmp_path: Path, plan):  # noqa: ANN001, ANN201
    """The exported YAML, parsed by the TRL script's own parser: (script args, trainer config, ModelConfig,
    DatasetMixtureConfig, the keys left for `accelerate launch`)."""
    path = tmp_path / "trl.yaml"
    exported = export_trl(plan, path)
    path.write_text(exported.text("test"))
    for extra, content in exported.files.items():
        extra.write_text(content)
    parser = importlib.import_module(f"trl.scripts.{exported.command}").make_parser()
    *dataclasses, config_rest, cli_rest = parser.parse_args_and_config(
        ["--config", str(path)], return_remaining_strings=True, separate_remaining_strings=True)
    return exported, (*dataclasses, config_rest + cli_rest)


def adapted(config: LoraConfig) -> set[str]:
    """The module names of a tiny Llama a LoraConfig adapts (how PEFT itself matches target_modules)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1))
    if config.target_modules is None:
        return {"<architecture default>"}
    if config.target_modules == "all-linear":
        return {"<all-linear>"}
    return {name for name, _ in model.named_modules() if name and check_target_module_exists(config, name)}


def same_lora(ours: LoraConfig, theirs: LoraConfig) -> None:
    mine, other = ours.to_dict(), theirs.to_dict()
    assert adapted(ours) == adapted(theirs)
    mine.pop("target_modules"), other.pop("target_modules")
    assert mine == other


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("name", SHIPPED)
def test_trl_builds_what_peftrun_builds(name: str, machine: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped recipe, resolved for an H100 and for this machine: TRL's parser, get_peft_config,
    get_quantization_config and the trainer config equal peftrun's (or the export refuses / lists the difference)."""
    monkeypatch.chdir(ROOT)
    hardware = target_hardware(*MACHINES[machine])
    if hardware.bf16 and not probe_light().bf16:  # TrainingArguments checks the machine it runs on, not the target
        monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)
    plan = resolve(load_recipe(f"recipes/{name}.yaml"), hardware)
    try:
        exported, (script, config, model_args, mixture, rest) = parsed(tmp_path, plan)
    except RecipeError as exc:  # a trainer or method TRL's CLI has no command / builder for
        assert "cannot be exported" in str(exc)
        return
    ours = build_peft_config(plan)
    if ours is None:
        assert get_peft_config(model_args) is None
    else:
        same_lora(ours, get_peft_config(model_args))
    quant = build_quantization_config(plan)
    theirs = get_quantization_config(model_args)
    assert (quant.to_dict() if quant else None) == (theirs.to_dict() if theirs else None) or \
        "quantization.compute_dtype" in exported.not_expressible
    theirs, ours = config.to_dict(), build_training_args(plan).to_dict()
    if "dataset.eval" in exported.not_expressible:  # evaluation off in the TRL config, and said so
        assert theirs.pop("eval_strategy") == "no" and not theirs.pop("do_eval")
        ours.pop("eval_strategy"), ours.pop("do_eval")
    template, mine = theirs.pop("chat_template_path", None), ours.pop("chat_template_path", None)
    if template != mine:  # peftrun's named template (applied by peftrun itself), written beside as a file
        shipped = SHIPPED_TEMPLATES / f"{plan.recipe.model.chat_template}.jinja"
        assert mine is None and Path(template).read_text() == shipped.read_text()
    assert theirs == ours
    assert model_args.model_name_or_path == plan.recipe.model.name_or_path
    assert model_args.dtype == plan.recipe.model.dtype
    dataset = plan.recipe.dataset
    if mixture.datasets:
        assert [d.split for d in mixture.datasets][0] == (dataset.sources[0] if dataset.sources else dataset).split
    else:
        assert (script.dataset_name, script.dataset_train_split) == (dataset.path, dataset.split)
    if plan.recipe.launch.strategy != "ddp" or plan.recipe.launch.num_processes != 1:
        assert "--accelerate_config" in rest


def test_one_item_target_list_keeps_its_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TRL turns a one-item lora_target_modules list into a string (a full-match regex for PEFT): the export
    writes the regex that adapts the same modules, and says so."""
    monkeypatch.chdir(tmp_path)
    Path("train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    plan = resolve(load_recipe({"name": "one", "model": {"name_or_path": "org/m"}, "trainer": {"type": "sft"},
                                "peft": {"method": "lora", "target_modules": ["q_proj"]},
                                "dataset": {"path": "train.jsonl", "eval": {"fraction": 0.25}}}))
    exported, (script, config, model_args, mixture, _rest) = parsed(tmp_path, plan)
    assert isinstance(model_args.lora_target_modules, str)  # what TRL does to a one-item list
    assert adapted(get_peft_config(model_args)) == adapted(build_peft_config(plan)) == \
        {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"}
    assert any("one-item" in note for note in exported.notes)
    assert [(d.path, d.data_files) for d in mixture.datasets] == [("json", "train.jsonl")]
    assert mixture.test_split_size == 0.25 and config.eval_strategy == "epoch"


def test_what_trl_cannot_express_is_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = resolve(load_recipe({"name": "x", "model": {"name_or_path": "org/m", "tokenizer": "org/tok"},
                                "trainer": {"type": "sft"}, "output": {"save": "merged"},
                                "peft": {"method": "lora", "init_lora_weights": "gaussian"},
                                "dataset": {"path": "org/d", "columns": {"prompt": "q"}, "max_samples": 5,
                                            "eval": {"path": "org/e"}}}))
    listed = export_trl(plan).not_expressible
    assert sorted(listed) == ["dataset.columns", "dataset.eval", "dataset.max_samples", "model.tokenizer",
                              "output.save", "peft.init_lora_weights"]


def test_prompt_tuning_is_refused_by_the_command(tmp_path: Path) -> None:
    out = tmp_path / "trl.yaml"
    result = subprocess.run([sys.executable, "-m", "peftrun", "export", "trl", "recipes/prompt-tuning.yaml", "-o",
                             str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and not out.exists()
    assert "peft.method: cannot be exported: TRL's CLI builds LoRA adapters only" in result.stderr


def test_trl_sft_trains_from_the_exported_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TRL's own `sft` script, run on the exported config (in this process, as `trl sft --config` would after
    parsing), trains a tiny Llama and saves an adapter on exactly the modules the recipe names."""
    from peft import PeftConfig, PeftModel

    from tests.tiny import build_model, build_tokenizer, sft_rows, write_jsonl

    monkeypatch.chdir(tmp_path)
    build_model(tmp_path / "tiny")
    build_tokenizer(tmp_path / "tiny")
    write_jsonl(tmp_path / "train.jsonl", sft_rows(8))
    plan = resolve(load_recipe({
        "name": "e2e", "model": {"name_or_path": "tiny", "dtype": "float32"}, "output": {"dir": "out"},
        "peft": {"method": "lora", "r": 4, "target_modules": ["q_proj"]},
        "trainer": {"type": "sft", "max_steps": 2, "per_device_train_batch_size": 2, "logging_steps": 1,
                    "save_strategy": "no", "report_to": "none", "max_length": 64},
        "dataset": {"path": "train.jsonl"}}))
    _, (*dataclasses, _rest) = parsed(tmp_path, plan)
    importlib.import_module("trl.scripts.sft").main(*dataclasses)
    saved = PeftConfig.from_pretrained("out")
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained("tiny"), "out")
    adapted_names = {n.removeprefix("base_model.model.").removesuffix(".lora_A.default")
                     for n, _ in model.named_modules() if n.endswith("lora_A.default")}
    assert adapted_names == {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"}
    assert saved.r == 4 and saved.lora_alpha == 32


def test_kto_exports_to_trl_kto_once_peftrun_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not takes("trainer.type", "kto"):
        pytest.skip("this peftrun has no KTO trainer yet (trainer.type: kto is on the recipe's contract)")
    monkeypatch.chdir(tmp_path)
    plan = resolve(load_recipe({"name": "k", "model": {"name_or_path": "org/m"}, "peft": {"method": "lora"},
                                "trainer": {"type": "kto", "undesirable_weight": 1.5}, "dataset": {"path": "org/d"}}))
    exported, (_script, config, model_args, _mixture, _rest) = parsed(tmp_path, plan)
    assert exported.command == "kto" and config.undesirable_weight == 1.5
    assert config.to_dict() == build_training_args(plan).to_dict()
    same_lora(build_peft_config(plan), get_peft_config(model_args))


def test_named_templates_and_special_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pad / eos go to the SFT config's own fields; a named template is written beside the export and named by
    chat_template_path; added tokens are listed."""
    tokens = {"pad_token": "<pad>", "additional": ["<tool>"]}
    if not (takes("model.chat_template", "chatml") and takes("model.special_tokens", tokens)):
        pytest.skip("this peftrun has no named templates / special tokens yet (on the recipe's contract)")
    monkeypatch.chdir(tmp_path)
    plan = resolve(load_recipe({"name": "t", "model": {"name_or_path": "org/m", "chat_template": "chatml",
                                                        "special_tokens": tokens},
                                "trainer": {"type": "sft"}, "peft": {"method": "lora"}, "dataset": {"path": "org/d"}}))
    exported, (_script, config, _model_args, _mixture, _rest) = parsed(tmp_path, plan)
    assert config.pad_token == "<pad>"
    assert Path(config.chat_template_path).read_text() == (SHIPPED_TEMPLATES / "chatml.jinja").read_text()
    assert "model.special_tokens.additional" in exported.not_expressible
    assert "model.chat_template" not in exported.not_expressible


def test_a_split_expression_becomes_a_datasets_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TRL reads dataset_train_split as a key of the loaded DatasetDict; a slice goes to load_dataset through a
    `datasets:` entry."""
    monkeypatch.chdir(tmp_path)
    plan = resolve(load_recipe({"name": "s", "model": {"name_or_path": "org/m"}, "trainer": {"type": "sft"},
                                "peft": {"method": "lora"}, "dataset": {"path": "org/d", "split": "train[:90%]"}}))
    _, (script, _config, _model_args, mixture, _rest) = parsed(tmp_path, plan)
    assert [(d.path, d.split) for d in mixture.datasets] == [("org/d", "train[:90%]")]
    assert script.dataset_train_split == "train"  # TRL's default key: not the slice
