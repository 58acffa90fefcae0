"""TRL CLI configs (`trl <command> --config FILE`, or the command line itself) -> peftrun recipes.

A TRL CLI config holds the fields of TRL's ModelConfig, ScriptArguments (GRPO / RLOO: their script
arguments), DatasetMixtureConfig and the trainer's config class, side by side. Read from TRL's own source:
trl/trainer/model_config.py (ModelConfig and its defaults), trl/trainer/utils.py (get_peft_config,
get_quantization_config), trl/scripts/utils.py (ScriptArguments, DatasetMixtureConfig, TrlParser),
trl/scripts/{sft,dpo,grpo,kto,reward,rloo}.py (what each command builds).
"""

from __future__ import annotations

import re
from typing import Any

from peftrun.interop.convert import deepspeed, not_carried_when_on, source_entry, trainer_field, write_sources
from peftrun.interop.keymap import Key, Table, Translation, translate
from peftrun.interop.sources import Source

CITED = (
    "https://github.com/huggingface/trl/blob/main/trl/trainer/model_config.py",
    "https://github.com/huggingface/trl/blob/main/trl/trainer/utils.py",
    "https://github.com/huggingface/trl/blob/main/trl/scripts/utils.py",
    "https://github.com/huggingface/trl/blob/main/trl/scripts/sft.py",
    "https://github.com/huggingface/trl/blob/main/trl/scripts/grpo.py",
    "https://huggingface.co/docs/trl/clis",
)
FULL_LOAD = "peftrun loads datasets in full"
REGISTRY_REWARDS = ("accuracy_reward", "reasoning_accuracy_reward", "think_format_reward")
TRAINER_ONLY = {"grpo": ("reward_funcs", "num_generations", "max_completion_length", "use_vllm"),
                "dpo": ("rpo_alpha", "ref_model_init_kwargs", "use_weighting"),
                "kto": ("desirable_weight", "undesirable_weight"),
                "reward": ("center_rewards_coefficient",)}


def _peft(key: str) -> Any:
    """A LoRA field of ModelConfig: carried only with use_peft, as get_peft_config does."""
    def convert(value: Any, tr: Translation) -> dict[str, Any]:
        if not tr.get("use_peft"):
            if tr.has(key):
                tr.noop(key, "use_peft is off: TRL trains no adapter")
            return {}
        if key == "lora_target_modules":
            return {"peft.target_modules": _targets(value, tr)}
        return {_PEFT_NAMES[key]: value}
    return convert


SUFFIX_REGEX = re.compile(r"^\(\.\*\\\.\)\?(\w+)$")  # `(.*\.)?q_proj`: what a list entry means to PEFT


def _targets(value: Any, tr: Translation) -> Any:
    """ModelConfig's lora_target_modules as the recipe's: unset = PEFT's per-architecture default (qv), a one-item
    list is a string to PEFT (ModelConfig.__post_init__): all-linear, or a full-match regex."""
    names = [value] if isinstance(value, str) else value
    if names is None:
        return "qv"
    if len(names) != 1:
        return list(names)
    match = SUFFIX_REGEX.match(names[0])
    if names[0] == "all-linear" or match:
        return "all-linear" if names[0] == "all-linear" else [match.group(1)]
    tr.skip("lora_target_modules", f"{names[0]!r}: one name reaches PEFT as a full-match regex in TRL (it adapts "
                                   "only a module whose whole name is that); written as a module name")
    return list(names)


_PEFT_NAMES = {"lora_r": "peft.r", "lora_alpha": "peft.lora_alpha", "lora_dropout": "peft.lora_dropout",
               "lora_modules_to_save": "peft.modules_to_save", "use_rslora": "peft.use_rslora",
               "use_dora": "peft.use_dora", "lora_target_parameters": "peft.target_parameters"}


def _quantization(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("load_in_8bit"):
        return {"quantization.bits": 8}
    if not tr.get("load_in_4bit"):
        return {}
    out = {"quantization.bits": 4, "quantization.quant_type": tr.get("bnb_4bit_quant_type", "nf4"),
           "quantization.double_quant": bool(tr.get("use_bnb_nested_quant", False))}
    storage = tr.get("bnb_4bit_quant_storage")
    return {**out, "quantization.quant_storage": storage} if storage else out


def _task_type(value: Any, tr: Translation) -> dict[str, Any]:
    return {"peft.task_type": value} if tr.get("use_peft") else {}


def _datasets(value: Any, tr: Translation) -> dict[str, Any]:
    entries = []
    for i, item in enumerate(value or []):
        for extra in ("columns", "fraction", "data_dir"):
            if item.get(extra) is not None:
                tr.skip(f"datasets[{i}].{extra}", "not carried by peftrun's importer")
        path = item.get("data_files") if item.get("path") in ("json", "csv", "parquet") else item.get("path")
        entries.append(source_entry(path, split=item.get("split", "train"), name=item.get("name")))
    write_sources(tr, "datasets", entries)
    return {}


def _dataset_name(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("datasets"):
        tr.noop("dataset_name", "`datasets` is given: TRL ignores dataset_name")
        return {}
    return {"dataset.path": value}


def _mixture(value: Any, tr: Translation) -> dict[str, Any]:
    """alignment-handbook's dataset_mixture (src/alignment/configs.py, data.py): each dataset's id, config, split;
    weight keeps that share of its rows (a random subset); test_split_size holds out a share of the mix."""
    entries = []
    for i, item in enumerate(value.get("datasets") or []):
        weight = item.get("weight")
        if weight is not None and float(weight) != 1.0:
            tr.skip(f"dataset_mixture.datasets[{i}].weight", f"weight {weight} keeps that share of the split's rows "
                                                             "(shuffled); peftrun's sources take max_samples, a count")
        entries.append(source_entry(item["id"], split=item.get("split", "train"), name=item.get("config")))
    write_sources(tr, "dataset_mixture", entries)
    share = value.get("test_split_size")
    if share and tr.get("eval_strategy", "no") != "no":
        return {"dataset.eval": {"fraction": float(share)}}
    return {}


def _mixer(value: Any, tr: Translation) -> dict[str, Any]:
    """The older handbook's dataset_mixer {id: share} with dataset_splits: splits naming train are trained on,
    those naming test evaluated on."""
    splits = [str(s) for s in tr.get("dataset_splits") or ["train", "test"]]
    train = [s for s in splits if "train" in s]
    entries = []
    for dataset, share in value.items():
        if float(share) != 1.0:
            tr.skip(f"dataset_mixer.{dataset}", f"share {share} of the rows: peftrun's sources take max_samples, "
                                                "a count")
        entries += [source_entry(dataset, split=split) for split in train]
    write_sources(tr, "dataset_mixer", entries)
    test = [s for s in splits if "test" in s]
    if test and tr.get("eval_strategy", "no") != "no":
        if len(test) > 1 or len(value) > 1:
            tr.skip("dataset_splits", f"eval on {test} of several datasets: peftrun's dataset.eval.split names one")
            return {}
        return {"dataset.eval": {"split": test[0]}}
    return {}


def _splits(value: Any, tr: Translation) -> dict[str, Any]:
    if not tr.get("dataset_mixer"):
        tr.noop("dataset_splits", "read with dataset_mixer only, and there is none")
    return {}


def _eval(value: Any, tr: Translation) -> dict[str, Any]:
    if tr.get("eval_strategy", "no") == "no":
        return {}
    if tr.get("test_split_size"):
        return {"dataset.eval": {"fraction": float(tr.get("test_split_size"))}}
    return {"dataset.eval": {"split": tr.get("dataset_test_split", "test")}}


def _reward_funcs(value: Any, tr: Translation) -> dict[str, Any]:
    names = [value] if isinstance(value, str) else list(value)
    refs = [f"trl.rewards:{n}" if n in REGISTRY_REWARDS else n.rsplit(".", 1)[0] + ":" + n.rsplit(".", 1)[1]
            if "." in n else n for n in names]
    return {"trainer.reward_funcs": refs}


def _hub(value: Any, tr: Translation) -> dict[str, Any]:
    return {"output.hub_model_id": value}


def _push(value: Any, tr: Translation) -> dict[str, Any]:
    """push_to_hub; without hub_model_id transformers names the repository after output_dir's last folder."""
    if not value:
        return {}
    if tr.get("hub_model_id"):
        return {"output.push_to_hub": True}
    return {"output.push_to_hub": True,
            "output.hub_model_id": str(tr.get("output_dir", "trainer_output")).rstrip("/").rsplit("/", 1)[-1]}


def _fsdp(value: Any, tr: Translation) -> dict[str, Any]:
    options = value.split() if isinstance(value, str) else list(value or [])
    if not options or options == ["no"]:
        return {}
    config = tr.get("fsdp_config") or {}
    for key in sorted(set(config) - {"offload_params", "fsdp_offload_params"}):
        tr.skip(f"fsdp_config.{key}", "peftrun's FSDP launch sets this itself (see docs/launch.md)")
    offload = "offload" in options or bool(config.get("offload_params") or config.get("fsdp_offload_params"))
    return {"launch.strategy": "fsdp", "launch.offload_params": offload}


def _accelerate_config(value: Any, tr: Translation) -> dict[str, Any]:
    preset = str(value)
    if preset in ("zero1", "zero2", "zero3"):
        return {"launch.strategy": "deepspeed", "launch.zero_stage": int(preset[-1])}
    if preset in ("fsdp1", "fsdp2"):
        if preset == "fsdp2":
            tr.skip("accelerate_config", "fsdp2: peftrun's FSDP launch is FSDP1")
        return {"launch.strategy": "fsdp"}
    if preset in ("multi_gpu", "single_gpu"):
        return {"launch.strategy": "ddp"}
    return {"launch.accelerate_config": preset}


KEYS = (
    Key("model_name_or_path", "model.name_or_path"),
    Key("model_revision", "model.revision", "main -> unset",
        lambda v, tr: {"model.revision": v} if v != "main" else {}),
    Key("dtype", "model.dtype", "ModelConfig's default float32 made explicit", default="float32"),
    Key("torch_dtype", "model.dtype", "TRL's name until 0.23 (the handbook's)"),
    Key("dataset_mixture", "dataset.sources", "alignment-handbook: id, config, split per dataset; weight != 1 is not "
        "carried; test_split_size -> dataset.eval.fraction", _mixture),
    Key("dataset_mixer", "dataset.sources", "the older handbook's {id: share} with dataset_splits", _mixer),
    Key("dataset_splits", "dataset.split / dataset.eval.split", "with dataset_mixer", _splits),
    Key("chat_template", reason="alignment-handbook's inline jinja chat template: save it as a .jinja file beside "
        "the recipe and set model.chat_template to its path"),
    Key("attn_implementation", "model.attn_implementation"),
    Key("trust_remote_code", "model.trust_remote_code"),
    Key("use_peft", "peft.method", "true -> lora (get_peft_config builds a LoraConfig); false -> full fine-tuning",
        lambda v, tr: {"peft.method": "lora"} if v else {}),
    Key("lora_r", "peft.r", convert=_peft("lora_r"), default=16),
    Key("lora_alpha", "peft.lora_alpha", convert=_peft("lora_alpha"), default=32),
    Key("lora_dropout", "peft.lora_dropout", convert=_peft("lora_dropout"), default=0.05),
    Key("lora_target_modules", "peft.target_modules", "absent -> qv (PEFT's per-architecture default, as TRL "
        "leaves it); one name -> [name]", _peft("lora_target_modules"), default=None),
    Key("lora_target_parameters", "peft.target_parameters", convert=_peft("lora_target_parameters")),
    Key("lora_modules_to_save", "peft.modules_to_save", convert=_peft("lora_modules_to_save")),
    Key("lora_task_type", "peft.task_type", convert=_task_type),
    Key("use_rslora", "peft.use_rslora", convert=_peft("use_rslora")),
    Key("use_dora", "peft.use_dora", convert=_peft("use_dora")),
    Key("load_in_4bit", "quantization", "bits 4 with bnb_4bit_quant_type, use_bnb_nested_quant (default false), "
        "bnb_4bit_quant_storage; compute dtype follows model.dtype as in get_quantization_config", _quantization),
    Key("load_in_8bit", "quantization.bits", "true -> 8", _quantization),
    Key("bnb_4bit_quant_type", "quantization.quant_type", "with load_in_4bit", _quantization),
    Key("use_bnb_nested_quant", "quantization.double_quant", "with load_in_4bit", _quantization),
    Key("bnb_4bit_quant_storage", "quantization.quant_storage", "with load_in_4bit", _quantization),
    Key("dataset_name", "dataset.path", convert=_dataset_name),
    Key("dataset_config", "dataset.name"),
    Key("dataset_train_split", "dataset.split"),
    Key("dataset_test_split", "dataset.eval.split", "used when eval_strategy is not no", _eval, default="test"),
    Key("test_split_size", "dataset.eval.fraction", "used when eval_strategy is not no", _eval),
    Key("datasets", "dataset.path / dataset.sources", "path (data_files for json / csv / parquet), name, split",
        _datasets),
    Key("dataset_streaming", "-", "true: not carried", not_carried_when_on("dataset_streaming", FULL_LOAD)),
    Key("streaming", "-", "true: not carried", not_carried_when_on("streaming", FULL_LOAD)),
    Key("ignore_bias_buffers", "-", "true: not carried",
        not_carried_when_on("ignore_bias_buffers", "a DDP workaround peftrun does not apply")),
    Key("warmup_ratio", "trainer.warmup_steps", "a fraction below 1 (transformers 5 reads it as a ratio)"),
    Key("reward_funcs", "trainer.reward_funcs", "TRL's registry names -> trl.rewards:<name>; a.b.f -> a.b:f",
        _reward_funcs),
    Key("reward_model_name_or_path", reason="peftrun's GRPO takes reward functions, not a reward model"),
    Key("output_dir", "output.dir"),
    Key("seed", "seed"),
    Key("push_to_hub", "output.push_to_hub", "and hub_model_id: output_dir's last folder unless given", _push),
    Key("hub_model_id", "output.hub_model_id", convert=_hub),
    Key("hub_private_repo", "output.private"),
    Key("model_init_kwargs", reason="peftrun's `model` section says how the model loads"),
    Key("resume_from_checkpoint", reason="run `peftrun RECIPE --resume`"),
    Key("fsdp", "launch", "full_shard / shard_grad_op ... -> strategy fsdp; offload -> offload_params", _fsdp),
    Key("fsdp_config", "launch", "with fsdp", lambda v, tr: _fsdp(tr.get("fsdp") or "full_shard", tr)),
    Key("deepspeed", "launch", "strategy deepspeed, zero_stage and offloads from the JSON file",
        lambda v, tr: deepspeed(v, tr, "deepspeed")),
    Key("accelerate_config", "launch", "TRL's presets: zero1-3 -> deepspeed, fsdp1 / fsdp2 -> fsdp, multi_gpu -> "
        "ddp; a file -> launch.accelerate_config", _accelerate_config),
    Key("num_processes", "launch.num_processes", "passed to accelerate launch"),
)
IGNORED = {"env": "environment variables for the run: set them in the shell",
           "overwrite_output_dir": "removed in transformers 5; peftrun overwrites a run directory only when told"}

TABLE = Table("trl", "TRL", KEYS, CITED, trainer_field,
              "any other key that is a field of the command's TRL config class -> trainer.<same name>", IGNORED,
              known="trl_script")


LAYOUT = ("sft", "dpo", "orpo", "kto", "grpo", "reward", "rloo", "cpo")  # recipes/<model>/<trainer>/config.yaml
# TRL's config defaults of the settings that decide a run, written out where peftrun's own differ
TRL_DEFAULTS = ("learning_rate", "max_length", "num_train_epochs", "per_device_train_batch_size",
                "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "packing", "optim",
                "weight_decay", "max_grad_norm", "gradient_checkpointing", "beta", "max_prompt_length")


def trainer_type(source: Source) -> tuple[str, str, bool]:
    """The trainer, how it was told, and whether that is a guess: the command line, else the folder the config
    sits in (alignment-handbook's documented layout recipes/<model>/<sft|dpo|orpo>/ run by scripts/<same>.py),
    else the trainer whose own fields the config uses (a guess), else sft (a guess)."""
    if source.trl_command:
        return source.trl_command, f"trl {source.trl_command}", False
    folder = source.path.resolve().parent.name
    if folder in LAYOUT and "recipes" in source.path.resolve().parts:
        return folder, f"the recipe's folder {folder}/ (recipes/<model>/<trainer>/, run by scripts/{folder}.py)", False
    for kind, fields in TRAINER_ONLY.items():
        used = sorted(set(source.config) & set(fields))
        if used:
            return kind, f"guessed from {', '.join(used)}: a TRL config does not name its trainer", True
    return "sft", "a TRL config does not name its trainer: sft guessed (import the `trl <command>` line)", True


def tool_defaults(tr: Translation, kind: str) -> None:
    """TRL's config defaults of the deciding settings the config leaves out (peftrun's rules differ)."""
    from peftrun.recipe.schema import trl_table

    rows = {r["name"]: r for r in trl_table()["fields"].get(kind, [])}
    for name in TRL_DEFAULTS:
        if name in rows and not tr.has(name) and rows[name]["default"] is not None:
            tr.write(f"trainer.{name}", rows[name]["default"], name, default=True)


def translate_source(source: Source) -> Translation:
    tr = translate(source.config, TABLE, str(source.path.parent))
    kind, how, guess = trainer_type(source)
    tr.write("trainer.type", kind, "trainer type")
    tr.notes.append(f"trainer type {kind}: {how}")
    if guess:
        tr.skip("trainer type", how)
    tool_defaults(tr, kind)
    return tr
