"""LLaMA-Factory YAML configs (and the training_args.yaml each of its runs writes) -> peftrun recipes.

Keys and defaults read from LLaMA-Factory's own source: src/llamafactory/hparams/{finetuning_args,data_args,
model_args,parser}.py (fields, defaults, lora_alpha = 2 x lora_rank, compute dtype from bf16 / fp16, packing
on for stage pt), src/llamafactory/model/adapter.py (the LoraConfig: lora_target all = every linear layer),
src/llamafactory/model/model_utils/quantization.py (the BitsAndBytesConfig: quant storage = compute dtype),
data/README.md (dataset_info.json). Training arguments are transformers' own, with transformers' defaults.
"""

from __future__ import annotations

import json
from typing import Any

from peftrun.interop.convert import deepspeed, dtype_of, near, number, partial_freezing, source_entry, \
    template_name, to, trainer_field, write_sources
from peftrun.interop.keymap import Key, Table, Translation, known_keys, translate
from peftrun.interop.sources import Source

CITED = (
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/hparams/finetuning_args.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/hparams/data_args.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/hparams/model_args.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/hparams/parser.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/model/adapter.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/src/llamafactory/model/model_utils/quantization.py",
    "https://github.com/hiyouga/LLaMA-Factory/blob/main/data/README.md",
    "https://github.com/hiyouga/LLaMA-Factory/tree/main/examples",
)
STAGES = {"sft": "sft", "pt": "sft", "rm": "reward", "dpo": "dpo", "kto": "kto"}
ATTENTION = {"disabled": "eager", "sdpa": "sdpa", "fa2": "flash_attention_2", "fa3": "flash_attention_3"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
PREF_LOSSES = {"sigmoid": ["sigmoid"], "hinge": ["hinge"], "ipo": ["ipo"]}


def _stage(value: Any, tr: Translation) -> dict[str, Any]:
    if value not in STAGES:
        tr.skip("stage", f"stage {value}: peftrun runs sft, pt (as sft), rm, dpo and kto, not {value}")
        return {"trainer.type": value}  # refused by the recipe: the import is refused
    if value == "dpo" and tr.get("pref_loss") in ("orpo", "simpo"):  # LLaMA-Factory runs these in its DPO stage
        return {"trainer.type": "orpo" if tr.get("pref_loss") == "orpo" else "cpo"}
    return {"trainer.type": STAGES[value]}


def _finetuning_type(value: Any, tr: Translation) -> dict[str, Any]:
    if value == "lora":
        return {"peft.method": "lora"}
    if value == "full":
        tr.noop("finetuning_type", "full fine-tuning: no peft section")
        return {}
    if value == "freeze":
        return partial_freezing("finetuning_type", tr)
    return {"peft.method": value}  # oft: refused unless this peftrun takes it


def only(method: str, convert: Any = None, path: str = "") -> Any:
    """A setting of one fine-tuning type (lora / oft): a no-op under the others."""
    def wrapped(value: Any, tr: Translation) -> dict[str, Any]:
        if tr.get("finetuning_type", "lora") != method:
            return {}
        return convert(value, tr) if convert else {path: value}
    return wrapped


def _alpha(value: Any, tr: Translation) -> dict[str, Any]:
    return {"peft.lora_alpha": value or 2 * int(tr.get("lora_rank", 8))}  # LLaMA-Factory: lora_rank * 2


def _target(value: Any, tr: Translation) -> dict[str, Any]:
    names = [n.strip() for n in str(value).split(",")] if isinstance(value, str) else list(value)
    return {"peft.target_modules": "all-linear" if names == ["all"] else names}


def _csv(path: str) -> Any:
    return lambda value, tr: {path: [n.strip() for n in str(value).split(",")] if isinstance(value, str) else value}


def _pissa(value: Any, tr: Translation) -> dict[str, Any]:
    if not value:
        return {}
    niter = int(tr.get("pissa_iter", 16))
    return {"peft.init_lora_weights": "pissa" if niter == -1 else f"pissa_niter_{niter}"}


def _quantization(value: Any, tr: Translation) -> dict[str, Any]:
    if value is None:
        return {}
    if tr.get("quantization_method", "bnb") != "bnb":
        tr.skip("quantization_bit", f"quantization_method {tr.get('quantization_method')}: peftrun quantizes "
                                    "with bitsandbytes only")
        return {}
    if int(value) == 8:
        return {"quantization.bits": 8}
    compute = dtype_of(bool(tr.get("bf16") or tr.get("pure_bf16")), tr.get("fp16"))
    return {"quantization.bits": 4, "quantization.quant_type": tr.get("quantization_type", "nf4"),
            "quantization.double_quant": bool(tr.get("double_quantization", True)),
            "quantization.quant_storage": compute}  # LLaMA-Factory stores 4-bit weights in the compute dtype


def _dtype(value: Any, tr: Translation) -> dict[str, Any]:
    """bf16 / pure_bf16 -> bfloat16, fp16 -> float16. Neither: LLaMA-Factory loads the checkpoint's own dtype
    (model/loader.py torch_dtype="auto") and upcasts the trained parameters to float32, except under BAdam
    (model/adapter.py:337-349): a full fine-tuning trains in float32, an adapter or BAdam on the auto dtype."""
    if tr.get("bf16") or tr.get("pure_bf16") or tr.get("fp16"):
        return {"model.dtype": dtype_of(bool(tr.get("bf16") or tr.get("pure_bf16")), tr.get("fp16"))}
    full = tr.get("finetuning_type", "lora") == "full" and not tr.get("use_badam")
    return {"model.dtype": "float32" if full else "auto"}


def _attention(value: Any, tr: Translation) -> dict[str, Any]:
    return {"model.attn_implementation": ATTENTION[value]} if value in ATTENTION else {}


def _template(value: Any, tr: Translation) -> dict[str, Any]:
    return template_name(str(value), tr, "template")


def _info(tr: Translation) -> dict[str, Any] | None:
    found = near(f"{tr.get('dataset_dir', 'data')}/dataset_info.json", tr)
    return json.loads(found.read_text()) if found else None


def _alpaca_format(entry: dict[str, Any], name: str, tr: Translation, key: str) -> Any:
    """LLaMA-Factory's alpaca layout: the named format, or field templates for preferences / renamed columns."""
    columns = entry.get("columns") or {}
    prompt = columns.get("prompt", "instruction")
    if entry.get("ranking"):
        if "query" in columns:
            tr.skip(f"{key}: {name}", f"the query column {columns['query']!r} is not appended to the prompt")
        return {"prompt": f"{{{prompt}}}", "chosen": f"{{{columns.get('chosen', 'chosen')}}}",
                "rejected": f"{{{columns.get('rejected', 'rejected')}}}", "chat": True}
    if any(columns.get(k, v) != v for k, v in ALPACA_COLUMNS.items()):
        tr.skip(f"{key}: {name}", f"renamed alpaca columns {columns}: set the format mapping by hand")
    return "alpaca"


def _format(entry: dict[str, Any], name: str, tr: Translation, key: str) -> Any:
    """A dataset_info.json entry's formatting, columns and tags as the recipe's format (data/README.md)."""
    if entry.get("formatting", "alpaca") == "alpaca":
        return _alpaca_format(entry, name, tr, key)
    columns, merged = entry.get("columns") or {}, {**SHAREGPT_TAGS, **(entry.get("tags") or {})}
    messages, label = columns.get("messages", "conversations"), columns.get("kto_tag")
    standard = merged == SHAREGPT_TAGS and messages == "conversations"
    if entry.get("ranking"):
        if standard and (columns.get("chosen"), columns.get("rejected")) in ((None, None), ("chosen", "rejected")):
            return "sharegpt-preference"
        tr.skip(f"{key}: {name}", "a preference set with its own tags or columns: set the format mapping by hand")
        return None
    if standard and label in (None, "label", "kto_tag"):
        return "sharegpt-kto" if label else "sharegpt"
    roles = {merged["user_tag"]: "user", merged["assistant_tag"]: "assistant"}
    system = {merged["system_tag"]: "system"} if "system_tag" in merged else {}
    return {"messages": messages, "role": merged["role_tag"], "content": merged["content_tag"],
            "roles": {**roles, **system}, **({"label": label} if label else {})}


def _entries(value: Any, tr: Translation, key: str) -> list[dict[str, Any]]:
    names = [n.strip() for n in str(value).split(",")] if isinstance(value, str) else list(value)
    info = _info(tr)
    entries = []
    for name in names:
        entry = (info or {}).get(name)
        if entry is None:
            where = "no dataset_info.json found" if info is None else "not in dataset_info.json"
            tr.skip(f"{key}: {name}", f"a LLaMA-Factory dataset name ({where} under dataset_dir "
                                      f"{tr.get('dataset_dir', 'data')}); it cannot be resolved offline: written "
                                      "as the path, replace it with the file or hub id it names")
            entries.append(source_entry(name))
            continue
        path = entry.get("hf_hub_url") or entry.get("ms_hub_url") or \
            f"{tr.get('dataset_dir', 'data')}/{entry.get('file_name', name)}"
        if tr.get("stage") == "pt":  # pre-training reads one text column (columns.prompt, default text)
            column = (entry.get("columns") or {}).get("prompt", "text")
            entries.append(source_entry(path, split=entry.get("split"), name=entry.get("subset"),
                                        columns={"text": column} if column != "text" else None))
            continue
        entries.append(source_entry(path, split=entry.get("split"), name=entry.get("subset"),
                                    format=_format(entry, name, tr, key)))
    return entries


def _dataset(value: Any, tr: Translation) -> dict[str, Any]:
    cap = tr.get("max_samples")  # LLaMA-Factory caps each dataset (src/llamafactory/data/loader.py:157-159)
    entries = [{**e, "max_samples": int(cap)} if cap else e for e in _entries(value, tr, "dataset")]
    write_sources(tr, "dataset", entries)
    return {}


def _max_samples(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("dataset"):
        tr.mapped.setdefault("max_samples", []).append("dataset")
    return {}


def _galore(value: Any, tr: Translation) -> dict[str, Any]:
    """GaLore as transformers' optimizer (LLaMA-Factory builds the same GaLoreAdamW with these arguments:
    src/llamafactory/train/trainer_utils.py _create_galore_optimizer)."""
    if not value:
        return {}
    keys = known_keys("llamafactory")["keys"]
    arg = {name: tr.get(f"galore_{name}", keys[f"galore_{name}"]["default"])
           for name in ("rank", "update_interval", "scale", "proj_type")}
    target = tr.get("galore_target", "all")
    names = [n.strip() for n in str(target).split(",")] if isinstance(target, str) else list(target)
    return {"trainer.optim": "galore_adamw_layerwise" if tr.get("galore_layerwise") else "galore_adamw",
            "trainer.optim_target_modules": "all-linear" if names == ["all"] else names,
            "trainer.optim_args": f"rank={arg['rank']},update_proj_gap={arg['update_interval']},"
                                  f"scale={arg['scale']},proj_type={arg['proj_type']}"}


def _eval_dataset(value: Any, tr: Translation) -> dict[str, Any]:
    entries = _entries(value, tr, "eval_dataset")
    if len(entries) != 1 or set(entries[0]) - {"path"}:
        tr.skip("eval_dataset", "peftrun's dataset.eval takes one path (no format of its own)")
        return {}
    return {"dataset.eval": {"path": entries[0]["path"]}}


def _val_size(value: Any, tr: Translation) -> dict[str, Any]:
    value = number(value)
    if not value:
        return {}
    if value >= 1:
        tr.skip("val_size", f"{value} held-out examples: peftrun's dataset.eval takes a fraction")
        return {}
    return {"dataset.eval": {"fraction": float(value)}}


def _packing(value: Any, tr: Translation) -> dict[str, Any]:
    packed = value if value is not None else tr.get("stage", "sft") == "pt"
    return {"trainer.packing": bool(packed or tr.get("neat_packing"))}


def _pref_loss(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("stage") != "dpo" or value == "orpo":
        return {}
    if value == "simpo":
        return {"trainer.loss_type": "simpo", "trainer.simpo_gamma": tr.get("simpo_gamma", 0.5)}
    return {"trainer.loss_type": PREF_LOSSES.get(value, [value])}


def _beta(value: Any, tr: Translation) -> dict[str, Any]:
    return {"trainer.beta": value} if tr.get("stage") in ("dpo", "kto") else {}


def _hub(value: Any, tr: Translation) -> dict[str, Any]:
    return {"output.hub_model_id": value, "output.push_to_hub": bool(tr.get("push_to_hub", True))}


KEYS = (
    Key("model_name_or_path", "model.name_or_path"),
    Key("model_revision", "model.revision"),
    Key("trust_remote_code", "model.trust_remote_code"),
    Key("flash_attn", "model.attn_implementation", "auto -> unset, disabled -> eager, sdpa, fa2 -> "
        "flash_attention_2", _attention),
    Key("adapter_name_or_path", reason="training on from an existing adapter: peftrun starts a new one"),
    Key("stage", "trainer.type", "sft, pt -> sft (packing on), rm -> reward, dpo, kto; ppo is refused", _stage,
        default="sft"),
    Key("finetuning_type", "peft.method", "lora -> lora, full -> no peft; freeze is refused", _finetuning_type,
        default="lora"),
    Key("lora_rank", "peft.r", "LoRA only", only("lora", path="peft.r"), default=8),
    Key("lora_alpha", "peft.lora_alpha", "absent: 2 x lora_rank", only("lora", _alpha), default=None),
    Key("lora_dropout", "peft.lora_dropout", "LoRA only", only("lora", path="peft.lora_dropout"), default=0.0),
    Key("lora_target", "peft.target_modules", "all -> all-linear; a comma list -> a list (LoRA and OFT)", _target,
        default="all"),
    Key("additional_target", "peft.modules_to_save", "a comma list -> a list", _csv("peft.modules_to_save")),
    Key("use_rslora", "peft.use_rslora", "LoRA only", only("lora", path="peft.use_rslora")),
    Key("use_dora", "peft.use_dora", "LoRA only", only("lora", path="peft.use_dora")),
    Key("pissa_init", "peft.init_lora_weights", "true -> pissa_niter_<pissa_iter> (pissa_iter -1 -> pissa)",
        only("lora", _pissa)),
    Key("pissa_iter", "peft.init_lora_weights", "with pissa_init",
        only("lora", lambda v, tr: _pissa(tr.get("pissa_init"), tr))),
    Key("oft_rank", "peft.r", "OFT only (finetuning_type: oft)", only("oft", path="peft.r"), default=0),
    Key("oft_block_size", "peft.oft_block_size", "OFT only", only("oft", path="peft.oft_block_size"), default=32),
    Key("module_dropout", "peft.module_dropout", "OFT only", only("oft", path="peft.module_dropout")),
    Key("oft_target", reason="LLaMA-Factory's OFT adapts the lora_target modules (model/adapter.py)"),
    Key("pissa_convert", reason="peftrun saves the PiSSA adapter as trained (no conversion to LoRA)"),
    Key("loraplus_lr_ratio", reason="LoRA+ learning rates are not in peftrun"),
    Key("create_new_adapter", reason="training on from an existing adapter: peftrun starts a new one"),
    Key("quantization_bit", "quantization", "4 -> bits 4 with quantization_type, double_quantization, "
        "quant_storage = compute dtype; 8 -> bits 8", _quantization),
    Key("quantization_method", "quantization", "bnb: with quantization_bit; others are not carried",
        lambda v, tr: _quantization(tr.get("quantization_bit"), tr)),
    Key("quantization_type", "quantization.quant_type", "with quantization_bit",
        lambda v, tr: _quantization(tr.get("quantization_bit"), tr)),
    Key("double_quantization", "quantization.double_quant", "with quantization_bit",
        lambda v, tr: _quantization(tr.get("quantization_bit"), tr)),
    Key("bf16", "model.dtype", "bf16 -> bfloat16, fp16 -> float16; neither: float32 for a full fine-tuning (its "
        "trained parameters are upcast), auto for an adapter or BAdam", _dtype, default=False),
    Key("fp16", "model.dtype", "with bf16", _dtype),
    Key("pure_bf16", "model.dtype", "with bf16", _dtype),
    Key("template", "model.chat_template", "a named template (qwen3_nothink -> qwen3-no-thinking)", _template),
    Key("dataset", "dataset.path / dataset.sources", "names resolved through dataset_dir/dataset_info.json "
        "(file_name, hf_hub_url, formatting, columns, tags)", _dataset),
    Key("eval_dataset", "dataset.eval.path", convert=_eval_dataset),
    Key("dataset_dir", "dataset", "where dataset_info.json is read", lambda v, tr: {}),
    Key("cutoff_len", "trainer.max_length", default=2048),
    Key("max_samples", "dataset.sources[].max_samples", "on each dataset (LLaMA-Factory caps each one)",
        _max_samples),
    Key("use_dft_loss", "trainer.loss_type", "true -> dft (TRL's SFT loss of the same name)",
        lambda v, tr: {"trainer.loss_type": "dft"} if v else {}),
    Key("use_galore", "trainer.optim", "GaLore: transformers' galore_adamw(_layerwise), optim_target_modules, "
        "optim_args rank / update_proj_gap / scale / proj_type", _galore),
    *(Key(f"galore_{name}", "trainer.optim_args", "with use_galore", lambda v, tr: _galore(tr.get("use_galore"), tr))
      for name in ("rank", "update_interval", "scale", "proj_type", "target", "layerwise")),
    Key("val_size", "dataset.eval.fraction", "a fraction; a count is not carried", _val_size),
    Key("packing", "trainer.packing", "absent: on for stage pt", _packing, default=None),
    Key("neat_packing", "trainer.packing", "true -> packing (TRL's packing keeps sequences apart by position ids)",
        lambda v, tr: _packing(tr.get("packing"), tr)),
    Key("train_on_prompt", "trainer.completion_only_loss", "true -> false",
        lambda v, tr: {"trainer.completion_only_loss": False} if v else {}),
    Key("mask_history", reason="peftrun cannot train on the last turn only"),
    Key("streaming", reason="peftrun loads datasets in full"),
    Key("preprocessing_num_workers", "trainer.dataset_num_proc"),
    Key("pref_beta", "trainer.beta", "dpo / kto", _beta, default=0.1),
    Key("pref_loss", "trainer.loss_type", "sigmoid -> [sigmoid] (dpo); orpo / simpo -> their trainers", _pref_loss),
    Key("pref_ftx", reason="an SFT loss term in DPO (LLaMA-Factory's own)"),
    Key("dpo_label_smoothing", "trainer.label_smoothing"),
    Key("kto_chosen_weight", "trainer.desirable_weight"),
    Key("kto_rejected_weight", "trainer.undesirable_weight"),
    Key("ref_model", reason="peftrun's reference is the base model with the adapter off"),
    Key("learning_rate", "trainer.learning_rate", "transformers' default 5e-5", to("trainer.learning_rate", number),
        default=5.0e-5),
    Key("num_train_epochs", "trainer.num_train_epochs", default=3.0),
    Key("per_device_train_batch_size", "trainer.per_device_train_batch_size", default=8),
    Key("gradient_accumulation_steps", "trainer.gradient_accumulation_steps", default=1),
    Key("lr_scheduler_type", "trainer.lr_scheduler_type", default="linear"),
    Key("warmup_ratio", "trainer.warmup_steps", "a fraction below 1 (transformers 5 reads it as a ratio)"),
    Key("disable_gradient_checkpointing", "trainer.activation_checkpointing", "true -> false (LLaMA-Factory "
        "checkpoints by default)", lambda v, tr: {"trainer.activation_checkpointing": not v}, default=False),
    Key("deepspeed", "launch", "strategy deepspeed, zero_stage and offloads from the JSON file",
        lambda v, tr: deepspeed(v, tr, "deepspeed")),
    Key("output_dir", "output.dir"),
    Key("hub_model_id", "output.hub_model_id", "and output.push_to_hub", _hub),
    Key("push_to_hub", "output.push_to_hub", "with hub_model_id", lambda v, tr: {}),
    Key("seed", "seed"),
    Key("resume_from_checkpoint", reason="run `peftrun RECIPE --resume`"),
    Key("rope_scaling", reason="peftrun does not change the model's RoPE scaling"),
    Key("use_unsloth", reason="peftrun does not use Unsloth kernels"),
    Key("enable_liger_kernel", "trainer.use_liger_kernel"),
)
IGNORED = {
    "do_train": "always true for a run", "plot_loss": "logging", "overwrite_cache": "a cache",
    "overwrite_output_dir": "transformers 5 removed it", "logging_steps": "logging",
    "report_to": "logging", "tokenized_path": "a cache", "cache_dir": "a cache", "infer_dtype": "inference only",
    "print_param_status": "logging", "include_num_input_tokens_seen": "logging", "ddp_timeout": "a timeout",
    "dataloader_num_workers": "data loading speed only",
}

TABLE = Table("llamafactory", "LLaMA-Factory", KEYS, CITED, trainer_field,
              "any other key is a transformers training argument -> trainer.<same name>", IGNORED,
              known="llamafactory")


def translate_source(source: Source) -> Translation:
    return translate(source.config, TABLE, str(source.path.parent))
