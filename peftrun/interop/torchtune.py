"""torchtune recipe configs (`tune run <recipe> --config FILE`) -> peftrun recipes.

A torchtune config names components by `_component_` path with their arguments beside them. Read from
torchtune's own source: torchtune/models/llama3/_model_builders.py (lora_* builders: lora_rank 8,
lora_alpha 16, lora_dropout 0.0, apply_lora_to_mlp / apply_lora_to_output off; qlora_* = quantize_base),
torchtune/datasets/_{alpaca,chat,instruct,slimorca,stack_exchange_paired,text_completion}.py (sources, column
maps, train_on_input), torchtune/rlhf/loss/dpo.py (DPOLoss beta 0.1), recipes/lora_finetune_single_device.py
and recipes/configs/ (the keys a recipe reads). torch.optim.AdamW's weight_decay default is 0.01.
"""

from __future__ import annotations

import json
from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.interop.convert import near, not_carried_when_on, source_entry, to, write_sources
from peftrun.interop.keymap import Key, Table, Translation, translate
from peftrun.interop.sources import Source

CITED = (
    "https://github.com/pytorch/torchtune/blob/main/torchtune/models/llama3/_model_builders.py",
    "https://github.com/pytorch/torchtune/blob/main/torchtune/datasets/_alpaca.py",
    "https://github.com/pytorch/torchtune/blob/main/torchtune/datasets/_chat.py",
    "https://github.com/pytorch/torchtune/blob/main/torchtune/datasets/_instruct.py",
    "https://github.com/pytorch/torchtune/blob/main/torchtune/datasets/_stack_exchange_paired.py",
    "https://github.com/pytorch/torchtune/blob/main/torchtune/rlhf/loss/dpo.py",
    "https://github.com/pytorch/torchtune/blob/main/recipes/lora_finetune_single_device.py",
    "https://github.com/pytorch/torchtune/tree/main/recipes/configs",
    "https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html",
)
# torchtune's module names -> the Hugging Face checkpoint's (what PEFT targets in the model peftrun loads)
ATTENTION = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
MLP = ["gate_proj", "up_proj", "down_proj"]  # torchtune's w1, w3, w2
# Hugging Face architectures whose projections are fused (transformers models/phi3/modeling_phi3.py)
FUSED = {"Phi3ForCausalLM": {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}}
FAMILIES = {"phi3": "Phi3ForCausalLM", "phi4": "Phi3ForCausalLM"}  # torchtune family -> checkpoint architecture
ALPACA_NOTE = ("torchtune puts the Alpaca prompt inside the tokenizer's chat format (e.g. Llama-3 headers) and gives "
               "rows with an input their own '### Input:' section (torchtune/data/_messages.py AlpacaToMessages); "
               "written as format alpaca with the alpaca chat template, which renders the prompt alone with the "
               "input after the instruction")
# dataset builders -> (hub source, format or columns, train_on_input default)
DATASETS: dict[str, tuple[str | None, dict[str, Any], bool]] = {
    "alpaca_dataset": ("tatsu-lab/alpaca", {"format": "alpaca"}, True),
    "alpaca_cleaned_dataset": ("yahma/alpaca-cleaned", {"format": "alpaca"}, True),
    "slimorca_dataset": ("Open-Orca/SlimOrca-Dedup", {"format": "sharegpt"}, False),
    "stack_exchange_paired_dataset": ("lvwerra/stack-exchange-paired",
                                      {"columns": {"prompt": "question", "chosen": "response_j",
                                                   "rejected": "response_k"}}, False),
    "chat_dataset": (None, {}, False),
    "instruct_dataset": (None, {}, False),
    "text_completion_dataset": (None, {}, False),
}
# builders that read one folder of their hub dataset (torchtune/datasets/_stack_exchange_paired.py:131)
BUILDER_DATA_DIRS = {"stack_exchange_paired_dataset": "data/rl"}
SCHEDULERS = {"get_cosine_schedule_with_warmup": "cosine", "get_linear_schedule_with_warmup": "linear",
              "get_constant_schedule_with_warmup": "constant_with_warmup"}
OPTIMIZERS = {"torch.optim.AdamW": "adamw_torch", "bitsandbytes.optim.PagedAdamW8bit": "paged_adamw_8bit",
              "bitsandbytes.optim.PagedAdamW": "paged_adamw_32bit", "torch.optim.SGD": "sgd"}
DTYPES = {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16"}


def _leaf(component: Any) -> str:
    return str(component).rsplit(".", 1)[-1]


def _model(value: Any, tr: Translation) -> dict[str, Any]:
    name = _leaf(value)
    if name.startswith("qlora_"):
        # torchao's NF4 (blocks of 64, scales quantized again) in the model dtype: bitsandbytes' nf4 + double quant
        return {"peft.method": "lora", "quantization.bits": 4, "quantization.quant_type": "nf4",
                "quantization.double_quant": True}
    if name.startswith("lora_"):
        return {"peft.method": "lora"}
    tr.noop("model._component_", f"{name}: full fine-tuning (no adapter)")
    return {}


def _targets(value: Any, tr: Translation) -> dict[str, Any]:
    """torchtune's module names as the Hugging Face checkpoint's; for an architecture that fuses projections
    (Phi-3: qkv_proj, gate_up_proj) the fused module, and a partial choice among its parts listed."""
    names = [ATTENTION.get(m, m) for m in tr.get("model.lora_attn_modules") or []]
    names += MLP if tr.get("model.apply_lora_to_mlp") else []
    names += ["lm_head"] if tr.get("model.apply_lora_to_output") else []
    arch, how = architecture(tr)
    fused = FUSED.get(arch or "", {})
    if not fused:
        return {"peft.target_modules": names}
    out: list[str] = []
    for name in names:
        target = next((f for f, parts in fused.items() if name in parts), name)
        if target not in out:
            out.append(target)
    for target, parts in fused.items():
        chosen = [p for p in parts if p in names]
        if chosen and len(chosen) < len(parts):
            tr.skip("model.lora_attn_modules", f"{', '.join(chosen)}: {arch} ({how}) fuses {', '.join(parts)} in "
                                               f"{target}; LoRA on {target} adapts all of them")
    tr.notes.append(f"target modules named as {arch} has them ({how}): {', '.join(out)}")
    return {"peft.target_modules": out}


def architecture(tr: Translation) -> tuple[str | None, str]:
    """The Hugging Face architecture the checkpoint has: from its config.json when it is here, else from the
    torchtune model family the builder belongs to."""
    found = near(f"{tr.get('checkpointer.checkpoint_dir', '')}/config.json", tr)
    if found is not None:
        names = json.loads(found.read_text()).get("architectures") or [None]
        return names[0], f"{found}"
    family = str(tr.get("model._component_", "")).split(".")[-2:-1]
    arch = FAMILIES.get(family[0]) if family else None
    return arch, f"torchtune's {family[0] if family else '?'} builders load {arch} checkpoints"


def _checkpointer(value: Any, tr: Translation) -> dict[str, Any]:
    if "HF" not in _leaf(tr.get("checkpointer._component_", "")):
        tr.skip("checkpointer._component_", "a Meta / torchtune checkpoint: peftrun loads Hugging Face checkpoints; "
                                            "model.name_or_path is the checkpoint_dir")
    return {"model.name_or_path": value}


def _dataset(item: dict[str, Any], tr: Translation, key: str) -> dict[str, Any] | None:
    name = _leaf(item.get("_component_", ""))
    if name not in DATASETS:
        raise RecipeError(Problem("", f"{key}._component_", f"peftrun cannot run this torchtune config: its data "
                                                             f"builder {name} is not one peftrun reads "
                                                             f"({', '.join(DATASETS)})"))
    if name.startswith("alpaca"):
        tr.skip(f"{key}._component_", ALPACA_NOTE)
    data_dir = item.get("data_dir", BUILDER_DATA_DIRS.get(name))
    if data_dir:
        tr.skip(f"{key}.data_dir", f"the builder reads the dataset's {data_dir} folder (data_dir); peftrun's "
                                   "source has no data_dir: set data_files to that folder's files")
    source, shape, _ = DATASETS[name]
    path = item.get("data_files") if item.get("source") in ("json", "csv", "parquet") else item.get("source", source)
    columns = dict(shape.get("columns", {}))
    fmt = shape.get("format")
    if name == "chat_dataset":
        style, column = item.get("conversation_style"), item.get("conversation_column", "conversations")
        fmt = "sharegpt" if style == "sharegpt" and column == "conversations" else None
        if style == "openai":
            columns = {"messages": column} if column != "messages" else {}
        elif fmt is None:
            fmt = {"messages": column, "role": "from", "content": "value",
                   "roles": {"human": "user", "gpt": "assistant"}}
    elif name == "instruct_dataset":
        mapping = item.get("column_map") or {}
        columns = {"prompt": mapping.get("input", "input"), "completion": mapping.get("output", "output")}
    elif name == "text_completion_dataset":
        columns = {"text": item.get("column", "text")}
    for extra in sorted(set(item) - {"_component_", "source", "data_files", "split", "packed", "train_on_input",
                                      "conversation_style", "conversation_column", "column_map", "column",
                                      "data_dir"}):
        tr.skip(f"{key}.{extra}", "not carried by peftrun's importer")
    columns = {k: v for k, v in columns.items() if k != v}
    return source_entry(str(path), split=item.get("split"), format=fmt, columns=columns)


def _datasets(value: Any, tr: Translation) -> dict[str, Any]:
    items = value if isinstance(value, list) else [value]
    entries = [e for i, item in enumerate(items) if (e := _dataset(item, tr, "dataset" if len(items) == 1
                                                                     else f"dataset[{i}]")) is not None]
    write_sources(tr, "dataset", entries)
    first = items[0] if items else {}
    out: dict[str, Any] = {}
    if first.get("packed"):
        out["trainer.packing"] = True
    name = _leaf(first.get("_component_", ""))
    on_input = first.get("train_on_input", DATASETS.get(name, (None, {}, False))[2])
    if on_input and "DPOLoss" not in str(tr.get("loss._component_", "")):
        out["trainer.completion_only_loss"] = False  # the loss covers the prompt too
    return out


def _tokenizer(value: Any, tr: Translation) -> dict[str, Any]:
    """llama2_tokenizer applies Llama2ChatTemplate ([INST] ... [/INST]) unless told otherwise
    (torchtune/models/llama2/_model_builders.py:45); other tokenizers use the model's own chat format."""
    alpaca = str(tr.get("dataset._component_", "")).rsplit(".", 1)[-1].startswith("alpaca")
    if _leaf(value) == "llama2_tokenizer" and not tr.has("tokenizer.prompt_template") and not alpaca:
        return {"model.chat_template": "llama2"}
    return {"model.chat_template": "alpaca"} if alpaca else {}


def _kd_loss(value: Any, tr: Translation) -> dict[str, Any]:
    """The distillation loss: forward KL is TRL's generalized JSD at beta 0."""
    name = _leaf((value or {}).get("_component_", "")) if isinstance(value, dict) else _leaf(value)
    if "ForwardKL" not in name:
        tr.skip("kd_loss", f"{name}: only the forward KL has a counterpart (TRL's beta 0)")
        return {}
    return {"trainer.beta": 0.0}


KD_MIX = ("torchtune trains on the dataset's completions with (1 - kd_ratio) x cross-entropy + kd_ratio x forward KL "
          "to the teacher; TRL's DistillationTrainer minimises the divergence alone, on completions the student "
          "generates (trl/experimental/distillation)")


def _loss(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.has("kd_loss"):  # the knowledge distillation recipes (recipes/knowledge_distillation_*.py)
        return {"trainer.type": "distillation"}
    if value is None:
        return {"trainer.type": "sft"}
    name = _leaf(value)
    if name == "DPOLoss":
        return {"trainer.type": "dpo", "trainer.beta": tr.get("loss.beta", 0.1)}
    if "CrossEntropy" in name:
        return {"trainer.type": "sft"}
    tr.skip("loss._component_", f"{name}: peftrun's importer carries cross-entropy (SFT) and DPOLoss")
    return {"trainer.type": "sft"}


def _optimizer(value: Any, tr: Translation) -> dict[str, Any]:
    name = str(value)
    if name not in OPTIMIZERS:
        tr.skip("optimizer._component_", f"{name}: no transformers optimizer name known for it")
        return {}
    fused = name == "torch.optim.AdamW" and tr.get("optimizer.fused")
    out: dict[str, Any] = {"trainer.optim": "adamw_torch_fused" if fused else OPTIMIZERS[name]}
    if name.endswith("AdamW") and not tr.has("optimizer.weight_decay"):
        out["trainer.weight_decay"] = 0.01  # torch.optim.AdamW's default (transformers': 0.0)
    return out


def _scheduler(value: Any, tr: Translation) -> dict[str, Any]:
    if value is None:
        return {"trainer.lr_scheduler_type": "constant"}  # no scheduler: a constant learning rate
    name = _leaf(value)
    if name not in SCHEDULERS:
        tr.skip("lr_scheduler._component_", f"{name}: no transformers scheduler known for it")
        return {}
    return {"trainer.lr_scheduler_type": SCHEDULERS[name]}


def _betas(value: Any, tr: Translation) -> dict[str, Any]:
    return {"trainer.adam_beta1": float(value[0]), "trainer.adam_beta2": float(value[1])}


def _max_steps(value: Any, tr: Translation) -> dict[str, Any]:
    return {"trainer.max_steps": int(value) * int(tr.get("epochs", 1))} if value else {}


def _fsdp_offload(value: Any, tr: Translation) -> dict[str, Any]:
    return {"launch.strategy": "fsdp", "launch.offload_params": bool(value)}


def _number(path: str) -> Any:
    return to(path, lambda v: float(v) if isinstance(v, str) else v)


KEYS = (
    Key("model._component_", "peft.method / quantization", "lora_* -> lora; qlora_* -> lora with 4-bit nf4 + double "
        "quant; another builder -> full fine-tuning", _model),
    Key("model.lora_attn_modules", "peft.target_modules", "output_proj -> o_proj; with apply_lora_to_mlp "
        "(gate/up/down_proj) and apply_lora_to_output (lm_head)", _targets),
    Key("model.apply_lora_to_mlp", "peft.target_modules", "with lora_attn_modules", _targets),
    Key("model.apply_lora_to_output", "peft.target_modules", "with lora_attn_modules", _targets),
    Key("model.lora_rank", "peft.r", default=8),
    Key("model.lora_alpha", "peft.lora_alpha", default=16),
    Key("model.lora_dropout", "peft.lora_dropout", default=0.0),
    Key("model.use_dora", "peft.use_dora"),
    Key("model.quantize_base", "quantization", "true -> as qlora_*",
        lambda v, tr: _model("qlora_" if v else "lora_", tr)),
    Key("checkpointer.checkpoint_dir", "model.name_or_path", "the Hugging Face checkpoint directory", _checkpointer),
    Key("checkpointer._component_", "model.name_or_path", "with checkpoint_dir", lambda v, tr: {}),
    Key("checkpointer.output_dir", "output.dir"),
    Key("output_dir", "output.dir"),
    Key("tokenizer.max_seq_len", "trainer.max_length", "null -> null (no truncation)", default=None),
    Key("tokenizer._component_", "model.chat_template", "llama2_tokenizer -> llama2 (its default [INST] template); "
        "an alpaca builder -> alpaca", _tokenizer),
    Key("tokenizer.path", "-", "peftrun loads the checkpoint's tokenizer", lambda v, tr: {}),
    Key("tokenizer.prompt_template", reason="a torchtune prompt template: set model.chat_template"),
    Key("dataset", "dataset.path / dataset.sources", "the builder's hub source (or source / data_files), its "
        "format or column map; packed -> trainer.packing; train_on_input -> completion_only_loss", _datasets),
    Key("loss._component_", "trainer.type", "cross-entropy -> sft, DPOLoss -> dpo (beta 0.1)", _loss, default=None),
    Key("kd_loss", "trainer.type / trainer.beta", "knowledge distillation: distillation; ForwardKLLoss -> beta 0",
        _kd_loss),
    Key("kd_ratio", reason=KD_MIX),
    Key("teacher_checkpointer", "trainer.teacher_model_name_or_path", "its checkpoint_dir",
        lambda v, tr: {"trainer.teacher_model_name_or_path": v["checkpoint_dir"]}),
    Key("teacher_model", "-", "the teacher's builder: its checkpoint says the architecture",
        lambda v, tr: tr.noop("teacher_model", "the teacher's checkpoint says its architecture") or {}),
    Key("loss.beta", "trainer.beta", "with DPOLoss", lambda v, tr: {"trainer.beta": v}),
    Key("loss.label_smoothing", "trainer.label_smoothing"),
    Key("optimizer._component_", "trainer.optim", "AdamW -> adamw_torch (fused: adamw_torch_fused), weight decay "
        "0.01 unless given (torch's default)", _optimizer),
    Key("optimizer.lr", "trainer.learning_rate", "a number (YAML 1.1 reads 3e-4 as text)",
        _number("trainer.learning_rate")),
    Key("optimizer.weight_decay", "trainer.weight_decay"),
    Key("optimizer.betas", "trainer.adam_beta1 / adam_beta2", "[beta1, beta2] -> the two fields", _betas),
    Key("optimizer.eps", "trainer.adam_epsilon", "a number", _number("trainer.adam_epsilon")),
    Key("optimizer.fused", "trainer.optim", "with optimizer._component_", lambda v, tr: {}),
    Key("lr_scheduler._component_", "trainer.lr_scheduler_type", "cosine / linear / constant_with_warmup; no "
        "scheduler -> constant", _scheduler, default=None),
    Key("lr_scheduler.num_warmup_steps", "trainer.warmup_steps"),
    Key("lr_scheduler.num_cycles", "trainer.lr_scheduler_kwargs", "0.5 (the default) -> unset",
        lambda v, tr: {"trainer.lr_scheduler_kwargs": {"num_cycles": v}} if v != 0.5 else {}),
    Key("batch_size", "trainer.per_device_train_batch_size"),
    Key("epochs", "trainer.num_train_epochs", default=1),
    Key("max_steps_per_epoch", "trainer.max_steps", "x epochs", _max_steps),
    Key("gradient_accumulation_steps", "trainer.gradient_accumulation_steps", default=1),
    Key("clip_grad_norm", "trainer.max_grad_norm", "absent / null -> 0 (no clipping)",
        lambda v, tr: {"trainer.max_grad_norm": float(v) if v is not None else 0.0}, default=None),
    Key("dtype", "model.dtype", "bf16 -> bfloat16, fp32 -> float32", lambda v, tr: {"model.dtype": DTYPES.get(v, v)}),
    Key("enable_activation_checkpointing", "trainer.activation_checkpointing", default=False),
    Key("enable_activation_offloading", "-", "true: not carried",
        not_carried_when_on("enable_activation_offloading", "activation offloading is not in peftrun")),
    Key("compile", "trainer.torch_compile"),
    Key("seed", "seed"),
    Key("fsdp_cpu_offload", "launch", "strategy fsdp, offload_params", _fsdp_offload),
    Key("resume_from_checkpoint", "-", "true: not carried",
        not_carried_when_on("resume_from_checkpoint", "run `peftrun RECIPE --resume`")),
    Key("save_every_n_steps", "trainer.save_steps"),
)
IGNORED = {
    "device": "peftrun picks the device", "shuffle": "TRL shuffles the training data too",
    "metric_logger": "logging", "log_every_n_steps": "logging", "log_peak_memory_stats": "logging",
    "log_level": "logging", "profiler": "profiling", "low_cpu_ram": "loading memory only",
    "save_adapter_weights_only": "peftrun saves the adapter (output.save)", "checkpointer.checkpoint_files":
    "peftrun loads every file of the checkpoint", "checkpointer.recipe_checkpoint": "resume state",
    "checkpointer.model_type": "read from the checkpoint's config", "optimizer_in_bwd": "memory only",
    "cudnn_deterministic_mode": "determinism switch", "fsdp_reshard_after_forward": "memory only",
    "custom_sharded_layers": "sharding layout", "loss.num_output_chunks": "memory only",
}

TABLE = Table("torchtune", "torchtune", KEYS, CITED, None, "", IGNORED)


def resolved(config: dict[str, Any]) -> dict[str, Any]:
    """The config with its OmegaConf interpolations (`${output_dir}`) resolved, as torchtune reads it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(config), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        return config


def translate_source(source: Source) -> Translation:
    return translate(resolved(source.config), TABLE, str(source.path.parent))
