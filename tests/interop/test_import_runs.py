"""An imported config runs: a torchtune LoRA config pointing at a tiny Llama trains a few steps under peftrun and
saves the adapter torchtune's builder would have made (its defaults: rank 8, alpha 16, dropout 0; HF names)."""

from __future__ import annotations

import json
from pathlib import Path

import peftrun
from peftrun.interop.importer import import_config

CONFIG = """
output_dir: {out}
model:
  _component_: torchtune.models.llama3_2.lora_llama3_2_1b
  lora_attn_modules: ['q_proj', 'v_proj', 'output_proj']
  apply_lora_to_mlp: True
tokenizer:
  _component_: torchtune.models.llama3.llama3_tokenizer
  path: {model}/tokenizer.model
  max_seq_len: 64
checkpointer:
  _component_: torchtune.training.FullModelHFCheckpointer
  checkpoint_dir: {model}
  checkpoint_files: [model.safetensors]
  output_dir: ${{output_dir}}
  model_type: LLAMA3_2
dataset:
  _component_: torchtune.datasets.instruct_dataset
  source: json
  data_files: {data}
  column_map: {{input: prompt, output: completion}}
batch_size: 4
optimizer:
  _component_: torch.optim.AdamW
  lr: 1e-3
loss:
  _component_: torchtune.modules.loss.LinearCrossEntropyLoss
epochs: 1
max_steps_per_epoch: 2
gradient_accumulation_steps: 1
dtype: fp32
enable_activation_checkpointing: False
"""


def test_an_imported_torchtune_config_trains(in_tmp: Path, tiny_model_dir: Path, data_dir: Path) -> None:
    config = in_tmp / "lora.yaml"
    config.write_text(CONFIG.format(out=in_tmp / "out", model=tiny_model_dir, data=data_dir / "sft.jsonl"))
    result, _ = import_config(config)
    recipe = in_tmp / "recipe.yaml"
    recipe.write_text(result.text)
    run_dir = peftrun.run(recipe)
    adapter = json.loads((Path(run_dir) / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (8, 16, 0.0)
    assert sorted(adapter["target_modules"]) == ["down_proj", "gate_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert json.loads((Path(run_dir) / "manifest.json").read_text())["training"]["steps"] == 2


AXOLOTL = """
base_model: {model}
adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_modules: [q_proj, v_proj]
datasets:
  - path: {data}
    type: alpaca
micro_batch_size: 2
max_steps: 2
sequence_len: 400
learning_rate: 0.001
output_dir: {out}
"""


def test_an_imported_axolotl_alpaca_config_trains(in_tmp: Path, tiny_model_dir: Path) -> None:
    """Axolotl's alpaca data arrive as the recipe's alpaca format with peftrun's alpaca template, and train."""
    from tests.tiny import write_jsonl

    rows = [{"instruction": f"Say {i % 5} twice.", "input": "", "output": f"{i % 5} {i % 5}"} for i in range(8)]
    data = write_jsonl(in_tmp / "alpaca.jsonl", rows)
    config = in_tmp / "axolotl.yml"
    config.write_text(AXOLOTL.format(model=tiny_model_dir, data=data, out=in_tmp / "out"))
    result, _ = import_config(config)
    assert result.complete, result.translation.not_carried
    assert (result.recipe["dataset"]["format"], result.recipe["model"]["chat_template"]) == ("alpaca", "alpaca")
    recipe = in_tmp / "recipe.yaml"
    recipe.write_text(result.text)
    run_dir = Path(peftrun.run(recipe))
    adapter = json.loads((run_dir / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (4, 8, 0.0)
    assert json.loads((run_dir / "manifest.json").read_text())["training"]["steps"] == 2
