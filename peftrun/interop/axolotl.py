"""Axolotl YAML configs (and model cards that embed one) -> peftrun recipes.

Keys and defaults read from Axolotl's own source: src/axolotl/utils/schemas/{config,training,peft,model,
datasets}.py (fields and defaults), src/axolotl/loaders/adapter.py (the LoraConfig it builds),
src/axolotl/loaders/model.py (the BitsAndBytesConfig), src/axolotl/core/builders/base.py (warmup, scheduler,
precision), src/axolotl/utils/config/__init__.py (evals/saves per epoch, batch size, dtype).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peftrun.interop.axolotl_data import datasets, test_datasets
from peftrun.interop.convert import deepspeed, dtype_of, number, partial_freezing, per_epoch, source_entry, \
    template_name, to, trainer_field, trainer_fields, when_true, write_sources
from peftrun.interop.keymap import Key, Table, Translation, translate
from peftrun.interop.sources import Source

CITED = (
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/utils/schemas/config.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/utils/schemas/training.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/utils/schemas/peft.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/utils/schemas/datasets.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/loaders/adapter.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/loaders/model.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/core/builders/base.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/utils/config/__init__.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/prompt_strategies/chat_template.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/prompt_strategies/dpo/chatml.py",
    "https://github.com/axolotl-ai-cloud/axolotl/blob/main/src/axolotl/prompt_strategies/kto/chatml.py",
    "https://docs.axolotl.ai/docs/config-reference.html",
)
RL_TYPES: dict[str, tuple[str, Any]] = {"dpo": ("dpo", None), "ipo": ("dpo", ["ipo"]), "kto": ("kto", None),
                                        "grpo": ("grpo", None), "orpo": ("orpo", None), "simpo": ("cpo", "simpo"),
                                        "gdpo": ("grpo", None)}
AUTO_CLASSES = ("AutoModelForCausalLM", "AutoTokenizer")


def _adapter(value: Any, tr: Translation) -> dict[str, Any]:
    if value not in ("lora", "qlora"):
        tr.skip("adapter", f"adapter {value!r}: peftrun's importer carries lora and qlora only")
        return {}
    if value == "qlora" and not tr.get("load_in_4bit"):
        tr.skip("adapter", "adapter: qlora without load_in_4bit: Axolotl loads no 4-bit base then")
    return {"peft.method": "lora"}


def _load_in_4bit(value: Any, tr: Translation) -> dict[str, Any]:
    if not value:
        return {}
    # Axolotl's BitsAndBytesConfig for qlora: nf4, double quant, compute in the model dtype, stored in bfloat16
    return {"quantization.bits": 4, "quantization.quant_type": "nf4", "quantization.double_quant": True,
            "quantization.quant_storage": "bfloat16"}


def _targets(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("lora_target_linear"):
        return {"peft.target_modules": "all-linear"}
    return {"peft.target_modules": [value] if isinstance(value, str) else list(value)} if value else {}


def _dtype(value: Any, tr: Translation) -> dict[str, Any]:
    return {"model.dtype": dtype_of(tr.get("bf16", "auto"), tr.get("fp16"))}


def _batch_size(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.has("gradient_accumulation_steps"):
        tr.noop("batch_size", "gradient_accumulation_steps is given (Axolotl derives batch_size from it)")
        return {}
    return {"trainer.gradient_accumulation_steps": int(value) // int(tr.get("micro_batch_size", 1))}


def _warmup_steps(value: Any, tr: Translation) -> dict[str, Any]:
    return {"trainer.warmup_steps": 2 if value == 1 else value}  # Axolotl turns 1 warmup step into 2


def _steps_per_epoch(kind: str) -> Any:
    def convert(value: Any, tr: Translation) -> dict[str, Any]:
        if kind == "eval" and not (tr.get("val_set_size") or tr.get("test_datasets")):
            tr.noop("evals_per_epoch", "no evaluation data (val_set_size 0, no test_datasets)")
            return {}
        fraction = per_epoch(value, number(tr.get("num_epochs", 1.0)))
        return _every(kind, fraction, tr) if fraction else {}
    return convert


def _every(kind: str, steps: Any, tr: Translation) -> dict[str, Any]:
    """Axolotl's eval / save every N steps (or a fraction of all steps); it also evaluates before training."""
    out = {f"trainer.{kind}_strategy": "steps", f"trainer.{kind}_steps": steps}
    return {**out, "trainer.eval_on_start": True} if kind == "eval" else out


def _eval_strategy(value: Any, tr: Translation) -> dict[str, Any]:
    if value:
        return {"trainer.eval_strategy": value, "trainer.eval_on_start": True}
    has_eval = tr.get("val_set_size") or tr.get("test_datasets")
    if has_eval and not (tr.get("eval_steps") or tr.get("evals_per_epoch")):
        return {"trainer.eval_strategy": "no"}  # Axolotl evaluates only when told when
    return {}


def _cosine_min(value: Any, tr: Translation) -> dict[str, Any]:
    return {"trainer.lr_scheduler_type": "cosine_with_min_lr", "trainer.lr_scheduler_kwargs": {"min_lr_rate": value}}


def _scheduler(value: Any, tr: Translation) -> dict[str, Any]:
    if value in ("one_cycle", "rex"):
        tr.skip("lr_scheduler", f"Axolotl's own {value} scheduler has no transformers counterpart")
        return {}
    return {} if tr.has("cosine_min_lr_ratio") else {"trainer.lr_scheduler_type": value}


def _rl(value: Any, tr: Translation) -> dict[str, Any]:
    if not value:
        return {"trainer.type": "reward" if tr.get("reward_model") else "sft"}
    kind, loss = RL_TYPES.get(str(value), (str(value), None))
    out = {"trainer.type": kind, **({"trainer.loss_type": loss} if loss else {})}
    if value == "gdpo" and not tr.get("trl.multi_objective_aggregation"):
        # GRPO with each reward normalized before the sum (src/axolotl/core/builders/rl.py: setdefault for GDPO)
        out["trainer.multi_objective_aggregation"] = "normalize_then_sum"
    return out


def _special_tokens(value: Mapping[str, Any], tr: Translation) -> dict[str, Any]:
    tokens = {k: v for k, v in value.items() if k in ("pad_token", "eos_token", "bos_token") and v}
    extra = list(value.get("additional_special_tokens") or []) + list(tr.get("tokens") or [])
    if value.get("unk_token"):
        tr.skip("special_tokens.unk_token", "peftrun's model.special_tokens takes pad, eos, bos and additional tokens")
    return {"model.special_tokens": {**tokens, **({"additional": extra} if extra else {})}}


def _tokens(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("special_tokens"):
        return _special_tokens(tr.get("special_tokens"), tr)  # merged with them
    return {"model.special_tokens": {"additional": list(value)}} if value else {}


def _chat_template(value: Any, tr: Translation) -> dict[str, Any]:
    if value in ("tokenizer_default", None):
        return {}
    if value == "jinja":
        tr.skip("chat_template", "an inline jinja template (chat_template_jinja): save it as a .jinja file and "
                                 "set model.chat_template to its path")
        return {}
    if str(value).startswith("tokenizer_default_fallback_"):
        tr.skip("chat_template", f"{value}: peftrun uses the tokenizer's own template unless one is named; left "
                                 "unset (name the fallback in model.chat_template if the tokenizer has none)")
        return {}
    return template_name(str(value), tr, "chat_template")


def _fsdp(value: Any, tr: Translation) -> dict[str, Any]:
    if not value:
        return {}
    config = tr.get("fsdp_config") or {}
    options = value if isinstance(value, list) else []
    offload = "offload" in options or bool(config.get("fsdp_offload_params") or config.get("offload_params"))
    checkpointing = {"activation_checkpointing", "fsdp_activation_checkpointing"}
    for key in config:
        if key not in ("fsdp_offload_params", "offload_params", "fsdp_auto_wrap_policy", "auto_wrap_policy",
                       "fsdp_transformer_layer_cls_to_wrap", "transformer_layer_cls_to_wrap", *checkpointing):
            tr.skip(f"fsdp_config.{key}", "peftrun's FSDP launch sets this itself (FSDP1, full shard, "
                                           "transformer-layer wrapping, sharded checkpoints): see docs/launch.md")
    out = {"launch.strategy": "fsdp", "launch.offload_params": offload}
    if any(config.get(key) for key in checkpointing):  # FSDP's own activation checkpointing (schemas/fsdp.py)
        out["trainer.activation_checkpointing"] = True
    return out


def _deepspeed(value: Any, tr: Translation) -> dict[str, Any]:
    return deepspeed(value, tr, "deepspeed")


def _hub(value: Any, tr: Translation) -> dict[str, Any]:
    return {"output.hub_model_id": value, "output.push_to_hub": True}


def _checkpointing(value: Any, tr: Translation) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"trainer.activation_checkpointing": value}
    tr.skip("gradient_checkpointing", f"{value}: activation offloading is not in peftrun")
    return {}


def _trl_section(value: Mapping[str, Any], tr: Translation) -> dict[str, Any]:
    """Axolotl's `trl:` section: fields of TRL's config by their own names (reward functions a.b.f -> a.b:f)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "reward_funcs":
            out["trainer.reward_funcs"] = [".".join(f.split(".")[:-1]) + ":" + f.split(".")[-1] if "." in f else f
                                           for f in item]
        elif key in trainer_fields():
            out[f"trainer.{key}"] = item
        elif item not in (None, False, [], {}):
            tr.skip(f"trl.{key}", "not a field of TRL's config classes this peftrun takes")
    return out


def _model_class(source: str) -> Any:
    def convert(value: Any, tr: Translation) -> dict[str, Any]:
        if value not in AUTO_CLASSES and not str(value).endswith("ForCausalLM"):
            tr.skip(source, f"{value}: peftrun loads the model and tokenizer with the Auto classes")
        else:
            tr.noop(source, "peftrun loads with the Auto classes too")
        return {}
    return convert


def _base_model(value: Any, tr: Translation) -> dict[str, Any]:
    """A hub id or directory; a `.gguf` file is the file inside its folder (transformers' gguf_file)."""
    text = str(value)
    if text.lower().endswith(".gguf") and "/" in text:
        folder, name = text.rsplit("/", 1)
        return {"model.name_or_path": folder, "model.gguf_file": name}
    return {"model.name_or_path": text}


def _pretraining(value: Any, tr: Translation) -> dict[str, Any]:
    """pretraining_dataset: text streamed from the hub and packed (src/axolotl/utils/schemas/config.py: streaming
    follows pretraining_dataset); peftrun loads the data in full."""
    items = value if isinstance(value, list) else [value]
    entries = [source_entry(i["path"], split=i.get("split"), name=i.get("name"),
                            columns={"text": i["text_column"]} if i.get("text_column", "text") != "text" else None)
               for i in items if isinstance(i, Mapping) and i.get("path")]
    write_sources(tr, "pretraining_dataset", entries)
    tr.skip("pretraining_dataset", "Axolotl streams a pretraining dataset (its order and the rows a max_steps run "
                                   "sees); peftrun loads it in full and shuffles it")
    return {"trainer.packing": True}


KEYS = (
    Key("base_model", "model.name_or_path", "a .gguf file -> its folder + model.gguf_file", _base_model),
    Key("pretraining_dataset", "dataset.path / dataset.sources", "streamed by Axolotl: listed", _pretraining),
    Key("unfrozen_parameters", "-", "partial freezing: refused", lambda v, tr: partial_freezing("unfrozen_parameters",
                                                                                                tr) if v else {}),
    Key("lisa_n_layers", "-", "LISA (layers unfrozen in turn): refused",
        lambda v, tr: partial_freezing("lisa_n_layers", tr) if v else {}),
    Key("base_model_config", reason="peftrun reads the model config from model.name_or_path"),
    Key("tokenizer_config", "model.tokenizer"),
    Key("revision_of_model", "model.revision"),
    Key("model_type", "-", "Auto class: nothing to carry", _model_class("model_type")),
    Key("tokenizer_type", "-", "Auto class: nothing to carry", _model_class("tokenizer_type")),
    Key("trust_remote_code", "model.trust_remote_code"),
    Key("bf16", "model.dtype", "auto -> auto, true -> bfloat16, false -> float16 with fp16 else float32 "
        "(Axolotl's auto falls back to float16 on GPUs without bf16; peftrun's to float32)", _dtype, default="auto"),
    Key("fp16", "model.dtype", "with bf16 (above)", _dtype),
    Key("tf32", "trainer.tf32", "true -> true; auto / false -> not set", when_true({"trainer.tf32": True})),
    Key("attn_implementation", "model.attn_implementation"),
    Key("flash_attention", "model.attn_implementation", "true -> flash_attention_2",
        when_true({"model.attn_implementation": "flash_attention_2"})),
    Key("sdp_attention", "model.attn_implementation", "true -> sdpa", when_true({"model.attn_implementation": "sdpa"})),
    Key("adapter", "peft.method", "lora / qlora -> lora (no adapter: full fine-tuning)", _adapter),
    Key("load_in_4bit", "quantization", "true -> bits 4, nf4, double quant, quant_storage bfloat16 "
        "(Axolotl's BitsAndBytesConfig)", _load_in_4bit),
    Key("load_in_8bit", "quantization.bits", "true -> 8", when_true({"quantization.bits": 8})),
    Key("lora_r", "peft.r"),
    Key("lora_alpha", "peft.lora_alpha"),
    Key("lora_dropout", "peft.lora_dropout", default=0.0),
    Key("lora_target_modules", "peft.target_modules", "a name -> [name]; a list as is", _targets),
    Key("lora_target_linear", "peft.target_modules", "true -> all-linear (the lm_head left out, as Axolotl)",
        lambda v, tr: {"peft.target_modules": "all-linear"} if v else {}),
    Key("lora_target_parameters", "peft.target_parameters"),
    Key("lora_modules_to_save", "peft.modules_to_save"),
    Key("lora_exclude_modules", "peft.exclude_modules"),
    Key("lora_fan_in_fan_out", "peft.fan_in_fan_out"),
    Key("lora_rank_pattern", "peft.rank_pattern"),
    Key("lora_alpha_pattern", "peft.alpha_pattern"),
    Key("peft_use_dora", "peft.use_dora"),
    Key("peft_use_rslora", "peft.use_rslora"),
    Key("peft_init_lora_weights", "peft.init_lora_weights"),
    Key("peft_layers_to_transform", "peft.layers_to_transform"),
    Key("peft_layers_pattern", "peft.layers_pattern"),
    Key("peft_layer_replication", "peft.layer_replication"),
    Key("peft_trainable_token_indices", "peft.trainable_token_indices"),
    Key("peft_ensure_weight_tying", "peft.ensure_weight_tying"),
    Key("lora_model_dir", reason="training on from an existing adapter: peftrun starts a new one"),
    Key("micro_batch_size", "trainer.per_device_train_batch_size", default=1),
    Key("gradient_accumulation_steps", "trainer.gradient_accumulation_steps", default=1),
    Key("batch_size", "trainer.gradient_accumulation_steps", "batch_size / micro_batch_size", _batch_size),
    Key("eval_batch_size", "trainer.per_device_eval_batch_size", "default: micro_batch_size",
        lambda v, tr: {"trainer.per_device_eval_batch_size": v or tr.get("micro_batch_size", 1)}, default=None),
    Key("num_epochs", "trainer.num_train_epochs", default=1.0),
    Key("max_steps", "trainer.max_steps"),
    Key("learning_rate", "trainer.learning_rate", "a number (YAML 1.1 reads 2e-4 as text)",
        to("trainer.learning_rate", number)),
    Key("optimizer", "trainer.optim", default="adamw_torch_fused"),
    Key("lr_scheduler", "trainer.lr_scheduler_type", "one_cycle / rex: not carried", _scheduler, default="cosine"),
    Key("lr_scheduler_kwargs", "trainer.lr_scheduler_kwargs"),
    Key("cosine_min_lr_ratio", "trainer.lr_scheduler_type", "cosine_with_min_lr with min_lr_rate", _cosine_min),
    Key("weight_decay", "trainer.weight_decay", default=0.0),
    Key("warmup_steps", "trainer.warmup_steps", "1 -> 2 (as Axolotl); absent with no warmup_ratio: 0.03 of all steps "
        "(Axolotl: min(3%, 100 steps), the same up to 3,333 steps)", _warmup_steps, default=0.03),
    Key("warmup_ratio", "trainer.warmup_steps", "a fraction below 1 (transformers 5 reads it as a ratio)"),
    Key("val_set_size", "dataset.eval.fraction", "0 -> no eval data",
        lambda v, tr: {"dataset.eval": {"fraction": float(v)}} if v else {}),
    Key("evals_per_epoch", "trainer.eval_steps", "1 / (evals_per_epoch x num_epochs), eval_strategy steps",
        _steps_per_epoch("eval")),
    Key("saves_per_epoch", "trainer.save_steps", "1 / (saves_per_epoch x num_epochs), save_strategy steps",
        _steps_per_epoch("save")),
    Key("eval_steps", "trainer.eval_steps", "and eval_strategy steps, eval_on_start",
        lambda v, tr: _every("eval", v, tr)),
    Key("save_steps", "trainer.save_steps", "and save_strategy steps", lambda v, tr: _every("save", v, tr)),
    Key("eval_strategy", "trainer.eval_strategy", "and eval_on_start; absent with eval data and no eval steps: no",
        _eval_strategy, default=None),
    Key("save_strategy", "trainer.save_strategy", default="epoch"),
    Key("save_total_limit", "trainer.save_total_limit", default=4),
    Key("dataset_processes", "trainer.dataset_num_proc"),
    Key("sequence_len", "trainer.max_length", default=512),
    Key("sample_packing", "trainer.packing"),
    Key("train_on_inputs", "trainer.completion_only_loss", "true -> false (loss on the prompt too)",
        lambda v, tr: {"trainer.completion_only_loss": False} if v else {}),
    Key("gradient_checkpointing", "trainer.activation_checkpointing", "transformers 5's name; offload modes: not "
        "carried", _checkpointing, default=False),
    Key("seed", "seed"),
    Key("output_dir", "output.dir"),
    Key("hub_model_id", "output.hub_model_id", "and output.push_to_hub: true", _hub),
    Key("special_tokens", "model.special_tokens", "pad/eos/bos as is; additional_special_tokens -> additional",
        _special_tokens),
    Key("tokens", "model.special_tokens.additional", "added to the tokenizer", _tokens),
    Key("chat_template", "model.chat_template", "a named template; tokenizer_default -> unset", _chat_template),
    Key("chat_template_jinja", reason="an inline template: save it as a .jinja file, set model.chat_template"),
    Key("datasets", "dataset.path / dataset.sources", "type alpaca / sharegpt -> format; chat_template -> format "
        "mapping (field_messages, role/content keys, roles)", datasets),
    Key("test_datasets", "dataset.eval.path", convert=test_datasets),
    Key("rl", "trainer.type", "dpo, kto, grpo, orpo; ipo -> dpo with loss_type [ipo]; absent: sft", _rl, default=None),
    Key("rl_beta", "trainer.beta"),
    Key("trl", "trainer.*", "beta, num_generations, max_completion_length, ...; reward_funcs a.b.f -> a.b:f",
        _trl_section),
    Key("reward_model", "trainer.type", "true -> reward", when_true({"trainer.type": "reward"})),
    Key("deepspeed", "launch", "strategy deepspeed, zero_stage and offloads from the JSON file", _deepspeed),
    Key("fsdp", "launch", "strategy fsdp; offload -> offload_params", _fsdp),
    Key("fsdp_config", "launch.offload_params", "with fsdp (above)", lambda v, tr: _fsdp(tr.get("fsdp") or True, tr)),
    Key("fsdp_version", reason="peftrun's FSDP launch is FSDP1"),
    Key("resume_from_checkpoint", reason="run `peftrun RECIPE --resume`"),
    Key("auto_resume_from_checkpoints", reason="run `peftrun RECIPE --resume`"),
    Key("group_by_length", reason="transformers 5 removed group_by_length"),
    Key("eval_sample_packing", reason="peftrun packs training data only"),
    Key("max_prompt_len", reason="TRL 1.16 has no max_prompt_length"),
    Key("early_stopping_patience", reason="peftrun has no early stopping"),
)
IGNORED = {
    "strict": "Axolotl's own config check",
    "pad_to_sequence_len": "pads every batch to sequence_len: memory layout only, the loss is the same",
    "dataset_prepared_path": "a cache directory",
    "wandb_project": "logging (W&B reads WANDB_PROJECT from the environment)",
    "wandb_entity": "logging", "wandb_watch": "logging", "wandb_name": "logging", "wandb_log_model": "logging",
    "logging_steps": "logging",
    "xformers_attention": "an attention kernel choice (same loss)",
    "debug": "logging",
    "special_tokens_fix": "Axolotl's own",
}

TABLE = Table("axolotl", "Axolotl", KEYS, CITED, trainer_field,
              "any other key that is a TRL / transformers training argument -> trainer.<same name>", IGNORED,
              known="axolotl")


def translate_source(source: Source) -> Translation:
    return translate(source.config, TABLE, str(source.path.parent))
