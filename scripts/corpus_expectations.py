"""Write tests/interop/corpus/expected/<tool>/<path>.yaml: for each corpus config, the values that decide its run
as the source tool resolves them, each with the key it comes from and where the value is decided (the file
itself, or the tool's default at file:line of its source at the corpus commit).

    python scripts/corpus_expectations.py

This reads each config by the tool's documented semantics only (the keys and defaults of
peftrun/interop/tool_keys/*.json, generated from the tools' source; transformers' TrainingArguments for
LLaMA-Factory; torchtune's builders); it shares no code with peftrun's importers, so the corpus test checks them.
`refuse` lists the source keys that ask for something peftrun does not run: an import must refuse them or list
them as not carried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "interop" / "corpus"
KEYS = {t: json.loads((ROOT / "peftrun" / "interop" / "tool_keys" / f"{t}.json").read_text())
        for t in ("axolotl", "llamafactory", "trl_script")}
TRANSFORMERS = "transformers 5.24.0 src/transformers/training_args.py"
HF_DEFAULTS = {"learning_rate": (5e-5, 787), "num_train_epochs": (3.0, 778), "per_device_train_batch_size": (8, 777),
               "gradient_accumulation_steps": (1, 849)}
TRL_TABLE = json.loads((ROOT / "peftrun" / "recipe" / "schema" / "trl_fields.json").read_text())


class Expect:
    """The expectations of one config."""

    def __init__(self, tool: str, config: dict[str, Any]) -> None:
        self.tool, self.config = tool, config
        self.values: dict[str, dict[str, Any]] = {}
        self.refuse: list[str] = []

    def stated(self, path: str, key: str, value: Any) -> None:
        self.values[path] = {"value": value, "from": key, "cite": "stated in the file"}

    def default(self, path: str, key: str, value: Any, cite: str) -> None:
        self.values[path] = {"value": value, "from": key, "cite": cite}

    def take(self, path: str, key: str, table: str | None = None, cast: Any = None, fallback: Any = None,
             cite: str = "") -> Any:
        """The stated value of `key`, else the tool's default (from its generated key table, or `fallback`)."""
        value = self.config.get(key)
        if value is not None:
            value = cast(value) if cast else value
            self.stated(path, key, value)
            return value
        if table is not None and key in KEYS[table]["keys"]:
            row = KEYS[table]["keys"][key]
            value = row["default"] if row["default"] is not None else fallback
            self.default(path, key, value, at(table, key))
        else:
            value = fallback
            self.default(path, key, value, cite)
        return value

    def unsupported(self, *keys: str) -> None:
        self.refuse += [k for k in keys if self.config.get(k) not in (None, False, [], {})]


def at(table: str, key: str) -> str:
    """Where a tool declares a key: repository@commit file:line, from its generated key table."""
    return f"{KEYS[table]['repository']}@{KEYS[table]['commit'][:10]} {KEYS[table]['keys'][key]['at']}"


def num(value: Any) -> float:
    return float(value)


def _zero(path: str, base: Path) -> tuple[str, int | None]:
    """A DeepSpeed JSON's ZeRO stage, read from the file the config names (None when absent)."""
    found = base / path
    if not found.is_file():
        return "deepspeed", None
    stage = json.loads(found.read_text()).get("zero_optimization", {}).get("stage")
    return "deepspeed", int(stage) if stage is not None else 0


def _launch(e: Expect, path: str, base: Path) -> None:
    """DeepSpeed from the JSON the config names; ZeRO stage 0 shards nothing: plain data parallelism (DDP)."""
    strategy, stage = _zero(path, base)
    if stage == 0:
        e.stated("launch.strategy", "deepspeed", "ddp")
        return
    e.stated("launch.strategy", "deepspeed", strategy)
    e.stated("launch.zero_stage", "deepspeed", stage)


AX_RL = {"dpo": "dpo", "ipo": "dpo", "kto": "kto", "orpo": "orpo", "grpo": "grpo", "gdpo": "grpo", "simpo": "cpo"}


def axolotl(e: Expect, base: Path) -> None:
    c = e.config
    e.stated("model.name_or_path", "base_model", c["base_model"])
    rl = c.get("rl")
    kind = AX_RL.get(str(rl)) if rl else ("reward" if c.get("reward_model") else "sft")
    e.default("trainer.type", "rl", kind, "src/axolotl/utils/schemas/config.py:262 (rl), :282 (reward_model)")
    if rl and kind is None:
        e.refuse.append("rl")
    lora = c.get("adapter") in ("lora", "qlora")
    e.default("peft.method", "adapter", "lora" if lora else None, "src/axolotl/utils/schemas/peft.py:41")
    if c.get("adapter") and not lora:
        e.refuse.append("adapter")
    if lora:
        e.take("peft.r", "lora_r", "axolotl")
        e.take("peft.lora_alpha", "lora_alpha", "axolotl")
        e.take("peft.lora_dropout", "lora_dropout", "axolotl", num)
    bits = 4 if c.get("load_in_4bit") and lora else 8 if c.get("load_in_8bit") and lora else None
    e.default("quantization.bits", "load_in_4bit", bits, "src/axolotl/utils/schemas/peft.py:31-37")
    e.take("trainer.learning_rate", "learning_rate", "axolotl", num)
    if c.get("max_steps"):
        e.stated("trainer.max_steps", "max_steps", c["max_steps"])
    else:
        e.take("trainer.num_train_epochs", "num_epochs", "axolotl", num)
    e.take("trainer.per_device_train_batch_size", "micro_batch_size", "axolotl")
    if c.get("gradient_accumulation_steps") is None and c.get("batch_size"):
        e.stated("trainer.gradient_accumulation_steps", "batch_size",
                 int(c["batch_size"]) // int(c.get("micro_batch_size") or 1))
    else:
        e.take("trainer.gradient_accumulation_steps", "gradient_accumulation_steps", "axolotl")
    e.take("trainer.max_length", "sequence_len", "axolotl")
    e.default("trainer.packing", "sample_packing", bool(c.get("sample_packing")),
              at("axolotl", "sample_packing") + " (unset: off)")
    if c.get("val_set_size"):
        e.stated("dataset.eval.fraction", "val_set_size", float(c["val_set_size"]))
    fsdp = c.get("fsdp_config") or {}
    if fsdp.get("activation_checkpointing") or fsdp.get("fsdp_activation_checkpointing"):
        e.stated("trainer.activation_checkpointing", "fsdp_config", True)  # src/axolotl/utils/schemas/fsdp.py:20
    elif isinstance(c.get("gradient_checkpointing"), bool):
        e.stated("trainer.activation_checkpointing", "gradient_checkpointing", c["gradient_checkpointing"])
    if c.get("deepspeed"):
        _launch(e, str(c["deepspeed"]), base)
    elif c.get("fsdp") or c.get("fsdp_config"):
        e.stated("launch.strategy", "fsdp_config", "fsdp")
    e.unsupported("process_reward_model", "relora", "lisa_n_layers", "unfrozen_parameters", "gptq", "streaming",
                  "processor_type", "model_quantization_config", "orpo_alpha", "lora_model_dir")


LF_STAGE = {"sft": "sft", "pt": "sft", "rm": "reward", "dpo": "dpo", "kto": "kto"}


def llamafactory(e: Expect, base: Path) -> None:
    c = e.config
    if "model" in c and "train_dataset" in c:  # the v1 format (src/llamafactory/v1/config)
        e.stated("model.name_or_path", "model", c["model"])
        e.refuse.append("train_dataset")
        return
    e.stated("model.name_or_path", "model_name_or_path", c["model_name_or_path"])
    stage = e.config.get("stage", "sft")
    kind = LF_STAGE.get(stage)
    if stage == "dpo" and c.get("pref_loss") == "orpo":
        kind = "orpo"
    e.default("trainer.type", "stage", kind, at("llamafactory", "stage"))
    if kind is None:
        e.refuse.append("stage")
    ft = c.get("finetuning_type", "lora")
    e.default("peft.method", "finetuning_type", {"lora": "lora", "full": None}.get(ft, ft),
              at("llamafactory", "finetuning_type"))
    if ft == "freeze":
        e.refuse.append("finetuning_type")
    if ft == "lora":
        r = e.take("peft.r", "lora_rank", "llamafactory")
        e.take("peft.lora_alpha", "lora_alpha", "llamafactory", fallback=2 * r,
               cite="src/llamafactory/hparams/finetuning_args.py: lora_alpha defaults to lora_rank * 2")
        e.take("peft.lora_dropout", "lora_dropout", "llamafactory", num)
    bit = c.get("quantization_bit")
    bnb = bit and c.get("quantization_method", "bnb") == "bnb"
    e.default("quantization.bits", "quantization_bit", int(bit) if bnb else None,
              at("llamafactory", "quantization_bit"))
    if bit and not bnb:
        e.refuse.append("quantization_method")
    for path, key in (("trainer.learning_rate", "learning_rate"), ("trainer.num_train_epochs", "num_train_epochs"),
                      ("trainer.per_device_train_batch_size", "per_device_train_batch_size"),
                      ("trainer.gradient_accumulation_steps", "gradient_accumulation_steps")):
        value, line = HF_DEFAULTS[key]
        e.take(path, key, cast=num if isinstance(value, float) else int, fallback=value,
               cite=f"{TRANSFORMERS}:{line} (LLaMA-Factory's training arguments are transformers')")
    if c.get("max_steps"):
        e.stated("trainer.max_steps", "max_steps", c["max_steps"])
    e.take("trainer.max_length", "cutoff_len", "llamafactory")
    e.default("trainer.packing", "packing", bool(c.get("packing", stage == "pt") or c.get("neat_packing")),
              at("llamafactory", "packing") + " (unset: on for stage pt, src/llamafactory/hparams/parser.py)")
    names = [n.strip() for n in str(c.get("dataset", "")).split(",") if n.strip()]
    e.stated("dataset.count", "dataset", len(names))
    if c.get("deepspeed"):
        _launch(e, str(c["deepspeed"]), base)
    for key in ("use_badam", "use_apollo", "use_adam_mini", "use_muon", "use_asft_loss", "use_eaft_loss",
                "mixture_of_depths", "loraplus_lr_ratio", "fp8"):
        e.unsupported(key)
    if c.get("use_galore"):  # src/llamafactory/train/trainer_utils.py _create_galore_optimizer: GaLoreAdamW
        e.stated("trainer.optim", "use_galore", "galore_adamw_layerwise" if c.get("galore_layerwise")
                 else "galore_adamw")
    if c.get("use_dft_loss"):  # src/llamafactory/train/sft/trainer.py:108 dft_loss_func
        e.stated("trainer.loss_type", "use_dft_loss", "dft")
    if any(k in c for k in ("image_max_pixels", "video_max_pixels")):
        e.refuse.append("template")


def _trl_default(kind: str, name: str) -> Any:
    return next(r["default"] for r in TRL_TABLE["fields"][kind] if r["name"] == name)


def handbook(e: Expect, base: Path, path: Path) -> None:
    """alignment-handbook recipes: recipes/<model>/<sft|dpo|orpo>/*.yaml run by scripts/<that>.py (its README)."""
    folder = path.parent.name if path.parent.name in ("sft", "dpo", "orpo") else "sft"
    e.default("trainer.type", "recipes/<model>/<trainer>/", folder,
              "alignment-handbook README.md / scripts/README.md: recipes/<model>/<sft|dpo|orpo>/ run by "
              "scripts/<same>.py")
    trl(e, base, folder)


def trl(e: Expect, base: Path, kind: str = "sft") -> None:
    c = e.config
    e.stated("model.name_or_path", "model_name_or_path", c["model_name_or_path"])
    if "trainer.type" not in e.values:
        e.default("trainer.type", "command", kind, "trl/scripts/<command>.py (the command line names it)")
    use_peft = bool(c.get("use_peft"))
    e.default("peft.method", "use_peft", "lora" if use_peft else None, at("trl_script", "use_peft"))
    if use_peft:
        e.take("peft.r", "lora_r", "trl_script")
        e.take("peft.lora_alpha", "lora_alpha", "trl_script")
        e.take("peft.lora_dropout", "lora_dropout", "trl_script", num)
    bits = 4 if c.get("load_in_4bit") else 8 if c.get("load_in_8bit") else None
    e.default("quantization.bits", "load_in_4bit", bits, at("trl_script", "load_in_4bit"))
    dtype = c.get("dtype", c.get("torch_dtype"))
    if dtype:
        e.stated("model.dtype", "dtype" if "dtype" in c else "torch_dtype", dtype)
    if "max_seq_length" in c and "max_length" not in c:  # SFTConfig's name until TRL 0.20 (renamed max_length)
        c = e.config = {**c, "max_length": c["max_seq_length"]}
    cite = f"peftrun/recipe/schema/trl_fields.json (TRL {TRL_TABLE.get('trl_version', '')}) {kind} defaults"
    for path, key in (("trainer.learning_rate", "learning_rate"), ("trainer.num_train_epochs", "num_train_epochs"),
                      ("trainer.per_device_train_batch_size", "per_device_train_batch_size"),
                      ("trainer.gradient_accumulation_steps", "gradient_accumulation_steps"),
                      ("trainer.max_length", "max_length")):
        e.take(path, key, cast=num if key in ("learning_rate", "num_train_epochs") else None,
               fallback=_trl_default(kind, key), cite=cite)
    if c.get("max_steps", -1) > 0:
        e.stated("trainer.max_steps", "max_steps", c["max_steps"])
    mixture = c.get("dataset_mixture") or {}
    mixer = c.get("dataset_mixer") or {}
    count = len(mixture.get("datasets", [])) or len(mixer) or (1 if c.get("dataset_name") else 0)
    e.stated("dataset.count", "dataset_mixture" if mixture else "dataset_mixer" if mixer else "dataset_name", count)
    if any(float(d.get("weight") or 1.0) != 1.0 for d in mixture.get("datasets", [])):
        e.refuse.append("dataset_mixture")  # src/alignment/data.py: weight keeps a shuffled share of the rows
    if any(float(share) != 1.0 for share in mixer.values()):
        e.refuse.append("dataset_mixer")
    if c.get("chat_template"):
        e.refuse.append("chat_template")  # an inline jinja template (src/alignment/configs.py SFTConfig)
    if kind == "sft" and "packing" in c:
        e.stated("trainer.packing", "packing", bool(c["packing"]))


def torchtune(e: Expect, base: Path) -> None:
    c = e.config
    if "model" not in c:  # PPO: policy_model, reward_and_value_model (recipes/ppo_full_finetune_single_device.py)
        e.refuse.append("policy_model")
        return
    model = str(c["model"]["_component_"]).rsplit(".", 1)[-1]
    e.stated("model.name_or_path", "checkpointer.checkpoint_dir", c["checkpointer"]["checkpoint_dir"])
    loss = str((c.get("loss") or {}).get("_component_", ""))
    kind = "dpo" if "DPO" in loss else "distillation" if "kd_loss" in c else "sft"
    e.default("trainer.type", "loss._component_", kind, "recipes/configs: the loss (DPOLoss: DPO) and kd_loss "
              "(knowledge distillation recipes) name the objective")
    lora = model.startswith(("lora_", "qlora_"))
    e.default("peft.method", "model._component_", "lora" if lora else None,
              "torchtune/models/*/_model_builders.py: lora_* / qlora_* builders")
    if lora:
        m = c["model"]
        for path, key, dflt in (("peft.r", "lora_rank", 8), ("peft.lora_alpha", "lora_alpha", 16),
                                ("peft.lora_dropout", "lora_dropout", 0.0)):
            if key in m:
                e.stated(path, f"model.{key}", m[key])
            else:
                e.default(path, f"model.{key}", dflt, "torchtune/models/llama3_2/_model_builders.py:80-82")
    quant = model.startswith("qlora_") or (c["model"].get("quantize_base") is True)
    e.default("quantization.bits", "model._component_", 4 if quant else None, "qlora_* builders: quantize_base=True")
    opt = c.get("optimizer") or {}
    if "lr" in opt:
        e.stated("trainer.learning_rate", "optimizer.lr", num(opt["lr"]))
    e.stated("trainer.per_device_train_batch_size", "batch_size", c.get("batch_size"))
    e.default("trainer.gradient_accumulation_steps", "gradient_accumulation_steps",
              c.get("gradient_accumulation_steps", 1), "recipes/lora_finetune_single_device.py:173")
    if c.get("max_steps_per_epoch"):
        e.stated("trainer.max_steps", "max_steps_per_epoch", int(c["max_steps_per_epoch"]) * int(c.get("epochs", 1)))
    else:
        e.stated("trainer.num_train_epochs", "epochs", c.get("epochs"))
    if "PPO" in str(c.get("loss", {}).get("_component_", "")) or "policy_model" in c:
        e.refuse.append("policy_model")
    if "quantizer" in c:
        e.refuse.append("quantizer")
    if "kd_loss" in c:
        e.refuse.append("kd_ratio")
    if "vision" in str(c["model"]["_component_"]) or "grpo" in str(e.config.get("output_dir", "")).lower():
        e.refuse.append("dataset")
    if "Phi" in str(c.get("checkpointer", {}).get("model_type", "")).title() or "phi3" in model:
        if lora:
            mods = [{"output_proj": "o_proj"}.get(x, x) for x in c["model"].get("lora_attn_modules", [])]
            fused = sorted({"qkv_proj" if x in ("q_proj", "k_proj", "v_proj") else x for x in mods}
                           | ({"gate_up_proj", "down_proj"} if c["model"].get("apply_lora_to_mlp") else set()))
            e.default("peft.target_modules", "model.lora_attn_modules", fused,
                      "transformers models/phi3/modeling_phi3.py: Phi3Attention.qkv_proj, Phi3MLP.gate_up_proj")


def main() -> None:
    rows = [line.split("\t") for line in (CORPUS / "SOURCES.tsv").read_text().splitlines()[1:]]
    written = 0
    for tool, repo, path, commit, _, license_ in rows:
        if not path.endswith((".yaml", ".yml")) or path.startswith(("data/", "examples/accelerate/")):
            continue
        config = yaml.safe_load((CORPUS / tool / path).read_text())
        if tool == "torchtune":  # torchtune reads its configs with OmegaConf: interpolations resolved
            config = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
        e = Expect(tool, config)
        base = CORPUS / tool
        if tool == "handbook":
            handbook(e, base, Path(path))
        elif tool == "trl":
            trl(e, base)
        else:
            {"axolotl": axolotl, "llamafactory": llamafactory, "torchtune": torchtune}[tool](e, base)
        out = CORPUS / "expected" / tool / (path + ".expect.yaml")
        out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"source": {"repository": repo, "path": path, "commit": commit, "license": license_},
               "refuse": sorted(set(e.refuse)), "expect": e.values}
        out.write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
        written += 1
    print(f"{written} expectation files")


if __name__ == "__main__":
    main()
