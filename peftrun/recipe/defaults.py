"""Every default peftrun fills in, in one place, each with the rule `explain` names.

Static defaults are used by the schema (so they also reach the JSON Schema);
rule-based defaults (learning rate, dtype, TRL precision flags) are applied by
the resolver from the tables here.
"""

from __future__ import annotations

from typing import Final

from peftrun.recipe.trainer_types import TRAINERS

# --- static defaults (schema field defaults) -------------------------------------------
SEED: Final = 42
MODEL_DTYPE: Final = "auto"
LORA_R: Final = 16  # TRL ModelConfig
LORA_ALPHA: Final = 32  # TRL ModelConfig
LORA_DROPOUT: Final = 0.05  # TRL ModelConfig
LORA_BIAS: Final = "none"  # TRL get_peft_config
LORA_TARGET_MODULES: Final = "all-linear"  # peftrun: all linear layers train better than PEFT's q/v
PROMPT_TUNING_VIRTUAL_TOKENS: Final = 20  # also for the other prompt-learning methods (PEFT leaves it unset)
PROMPT_TUNING_INIT: Final = "RANDOM"
QUANT_TYPE_4BIT: Final = "nf4"  # QLoRA paper
DOUBLE_QUANT_4BIT: Final = True  # QLoRA paper
DATASET_SPLIT: Final = "train"
OUTPUT_DIR: Final = "runs/{name}"
OUTPUT_SAVE: Final = "adapter"

# Chat templates shipped in peftrun/data/templates/, each with the token that ends an assistant turn
# (None: the tokenizer's own EOS); that token becomes the trainer's EOS (rule template-eos).
CHAT_TEMPLATES: Final[dict[str, str | None]] = {
    "chatml": "<|im_end|>",
    "llama2": None,
    "llama3": "<|eot_id|>",
    "mistral": None,
    "gemma": "<end_of_turn>",
    "phi3": "<|end|>",
    "qwen3": "<|im_end|>",
    "qwen3-no-thinking": "<|im_end|>",
    "zephyr": None,
    "alpaca": None,
}

# Checks of the data as the trainer will see it, run before the model loads (peftrun/data/checks.py, docs/data.md):
# name -> (severity, what fails). An "error" makes the run useless and stops it (exit 3) unless the recipe
# names it in dataset.checks.allow; a "warning" is printed and recorded in the manifest.
DATA_CHECKS: Final[dict[str, tuple[str, str]]] = {
    "no-trained-tokens": ("error", "no example keeps a token that carries loss"),
    "eos-never-trained": ("error", "the stop token (EOS / end of turn) carries loss in no example"),
    "assistant-mask-empty": ("error", "assistant-only loss finds no assistant token in an example"),
    "examples-without-loss": ("warning", "some examples carry no loss"),
    "eos-not-always-trained": ("warning", "the stop token carries loss in some examples only"),
    "double-bos": ("warning", "an example starts with the BOS token twice"),
    "completion-truncated": ("warning", "max_length cuts off trained tokens"),
    "chosen-equals-rejected": ("warning", "a preference pair whose chosen and rejected are identical"),
    "saved-template-differs": ("warning", "the saved tokenizer renders a conversation differently from training"),
    "sequences-see-each-other": ("warning", "packed / padding-free sequences attend to each other"),
}

# GRPO reward functions shipped in peftrun/train/rewards.py, by the names a recipe uses
SHIPPED_REWARDS: Final = ("answer_match", "answer_contains", "think_format", "concise")

# --- learning-rate rule ----------------------------------------------------------------------
# Full fine-tuning baseline per trainer type, and its source.
# The full fine-tuning baseline per trainer type and its source: recipe/trainer_types.py (TRAINERS).
LORA_LR_MULTIPLIER: Final = 10.0
PROMPT_TUNING_LEARNING_RATE: Final = 2.0e-2

TRL_PEFT_GUIDE: Final = "TRL's PEFT guide: LoRA ~10x the full fine-tuning rate"
PEFT_PROMPT_EXAMPLE: Final = "PEFT's causal-LM prompt-tuning example trains at 3e-2; useful range 1e-2 to 3e-2"
SUITE_FULL_FT_RATE: Final = 1.0e-5  # the suite's full fine-tuning run (full-finetuning/llama-3.2-3B-lr_0.00001)


def _suite(rate: float) -> tuple[float, str]:
    """A multiplier from PEFT's method-comparison suite (method_comparison/MetaMathQA, Llama-3.2-3B): the rate of
    the method's best-scoring published run over the suite's full fine-tuning rate (1e-5)."""
    return (float(f"{rate / SUITE_FULL_FT_RATE:.6g}"),
            f"PEFT method-comparison suite: best {'{method}'} run at {rate:g}, full fine-tuning at {SUITE_FULL_FT_RATE:g}")


# PEFT method -> ("x", multiplier of the trainer's full fine-tuning rate, source) or ("abs", rate, source).
# Methods without a published suite run take the LoRA rule; refused methods (recipe/methods.py) have none.
METHOD_LEARNING_RATES: Final[dict[str, tuple[str, float, str]]] = {
    "lora": ("x", LORA_LR_MULTIPLIER, TRL_PEFT_GUIDE),
    "prompt_tuning": ("abs", PROMPT_TUNING_LEARNING_RATE, PEFT_PROMPT_EXAMPLE),
    **{method: ("x", *_suite(rate)) for method, rate in {
        "adalora": 1e-4, "adamss": 1e-4, "adaption_prompt": 5e-3, "beft": 1e-4, "boft": 1e-4, "c3a": 3e-1,
        "deft": 1e-4, "delora": 1e-3, "fourierft": 1e-4, "frod": 1e-4, "glora": 1e-4, "gralora": 2e-4,
        "hira": 4.5e-3, "ia3": 5e-3, "lily": 1e-4, "ln_tuning": 1e-4, "loha": 1e-4, "lokr": 3e-3,
        "miss": 1e-4, "oft": 1e-4, "osf": 5e-5, "p_tuning": 1e-4, "peanut": 1e-4, "prefix_tuning": 5e-3,
        "psoft": 1e-4, "pvera": 3e-3, "randlora": 1e-4, "road": 1e-3, "shira": 3e-4, "tinylora": 1e-3,
        "trainable_tokens": 2e-1, "unilora": 1e-4, "vblora": 1e-4, "vera": 1e-3, "waveft": 1e-4,
    }.items()},
}
NO_SUITE_RUN: Final = "the LoRA rule (PEFT's method-comparison suite publishes no run for this method)"

# peftrun's defaults layered over PEFT's own, per method: field -> (value, rule `explain` shows).
LINEAR_TARGETS: Final = (LORA_TARGET_MODULES, "default: all-linear (peftrun; trains better than PEFT's q/v default)")
VIRTUAL_TOKENS: Final = (PROMPT_TUNING_VIRTUAL_TOKENS, f"default: {PROMPT_TUNING_VIRTUAL_TOKENS} virtual tokens")
PEFT_DEFAULTS: Final[dict[str, dict[str, tuple[object, str]]]] = {
    "lora": {
        "r": (LORA_R, f"default: TRL ModelConfig lora_r={LORA_R}"),
        "lora_alpha": (LORA_ALPHA, f"default: TRL ModelConfig lora_alpha={LORA_ALPHA}"),
        "lora_dropout": (LORA_DROPOUT, f"default: TRL ModelConfig lora_dropout={LORA_DROPOUT}"),
        "bias": (LORA_BIAS, "default: TRL get_peft_config bias='none'"),
    },
    "prompt_tuning": {"prompt_tuning_init": (PROMPT_TUNING_INIT, f"default: {PROMPT_TUNING_INIT} initialization")},
    "ia3": {"target_modules": ("qv", "default: qv = PEFT's per-architecture IA3 layers (an all-linear IA3 adapter "
                                     "does not reload in PEFT 0.21.2)")},
}


# TRL settings that decide what a run trains: `explain` shows each with TRL's own default when neither the
# recipe nor a peftrun rule sets it (a user must see the batch size they train with).
SHOWN_TRL_DEFAULTS: Final = ("per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
                             "max_steps", "max_length", "max_completion_length", "weight_decay", "lr_scheduler_type",
                             "warmup_steps", "max_grad_norm", "optim", "activation_checkpointing")
# transformers 5 falls back to the deprecated alias when the new name is None (training_args.py __post_init__);
# TRL's configs default the alias (gradient_checkpointing: True) and leave the new name None.
TRL_DEFAULT_ALIASES: Final = {"activation_checkpointing": "gradient_checkpointing"}

# --- provenance labels for values the user did not write -----------------------------------
RULES: Final[dict[str, str]] = {
    "name": "default: the recipe file's stem",
    "seed": f"default: {SEED}",
    "model.dtype": "rule dtype-auto: bfloat16 where the GPU supports it, else float32",
    "peft.task_type": "rule task-type: CAUSAL_LM, SEQ_CLS for the reward trainer",
    "peft.modules_to_save": "rule reward-head: the reward trainer trains and saves the `score` head",
    "peft.total_step": "rule adalora-steps: AdaLoRA's rank schedule spans trainer.max_steps",
    "quantization.quant_type": "default: nf4 (QLoRA paper)",
    "quantization.double_quant": "default: double quantization on (QLoRA paper)",
    "quantization.compute_dtype": "rule compute-dtype: follows the resolved model.dtype",
    "trainer.learning_rate": "rule learning-rate",
    "trainer.bf16": "rule precision: matches model.dtype and the hardware",
    "trainer.fp16": "rule precision: matches model.dtype and the hardware",
    "trainer.use_cpu": "rule precision: no CUDA device, so TRL runs on the CPU",
    "trainer.output_dir": "from output.dir",
    "trainer.seed": "from seed",
    "trainer.eval_strategy": "rule eval: dataset.eval is set, so evaluate at the end of every epoch",
    "output.dir": "default: runs/${name}",
    "launch.num_processes": "rule launch-processes: auto = every visible GPU, one process without a GPU",
    "launch.mixed_precision": "rule launch-precision: follows the trainer's bf16 / fp16 flags (TRL's config decides)",
    "quantization.quant_storage": "rule quant-storage: FSDP / ZeRO-3 shard 4-bit weights stored in the compute dtype",
    "trainer.log_level_replica": "rule launch-logs: ranks other than 0 log errors only",
    "trainer.eos_token": "rule template-eos: the chat template ends each assistant turn with this token",
    "dataset.checks.allow": "rule data-checks: " + ", ".join(k for k, (sev, _) in DATA_CHECKS.items() if sev == "error")
                            + " stop a run (exit 3) unless allowed here; the other checks warn",
    "peft.trainable_tokens": "rule new-tokens: added / EOS / BOS tokens train their embedding and output rows "
                             "(PEFT trainable_token_indices) and are saved with the adapter",
}


def peft_defaults(method: str, linear_targets: bool, prompt_learning: bool) -> dict[str, tuple[object, str]]:
    """peftrun's defaults for a PEFT method: field -> (value, rule). `linear_targets`: the method adapts the
    modules target_modules names (all-linear by default); `prompt_learning`: it trains virtual tokens."""
    out: dict[str, tuple[object, str]] = {}
    if linear_targets:
        out["target_modules"] = LINEAR_TARGETS
    if prompt_learning:
        out["num_virtual_tokens"] = VIRTUAL_TOKENS
    return {**out, **PEFT_DEFAULTS.get(method, {})}


def method_rate(peft_method: str) -> tuple[str, float, str]:
    """(kind, value, source) of a PEFT method's learning-rate rule: kind "x" multiplies the trainer's full
    fine-tuning rate, "abs" is a rate of its own."""
    kind, value, source = METHOD_LEARNING_RATES.get(peft_method, ("x", LORA_LR_MULTIPLIER, NO_SUITE_RUN))
    return kind, value, source.replace("{method}", peft_method)


def learning_rate_rule(trainer_type: str, peft_method: str | None) -> tuple[float, str]:
    """The learning rate for a trainer and PEFT method, with the rule's explanation and source."""
    base, origin = TRAINERS[trainer_type].full_ft_learning_rate, TRAINERS[trainer_type].learning_rate_source
    if peft_method is None:
        return base, f"rule learning-rate: full fine-tuning {trainer_type} baseline {base:g} ({origin})"
    kind, value, source = method_rate(peft_method)
    if peft_method == "prompt_tuning":
        return value, "rule learning-rate: prompt tuning 2e-2 (useful range 1e-2 to 3e-2)"
    if kind == "abs":
        return value, f"rule learning-rate: {peft_method} {value:g} ({source})"
    rate = float(f"{base * value:.6g}")
    name = "LoRA" if peft_method == "lora" else peft_method
    return rate, f"rule learning-rate: {name} = {value:g} x the full fine-tuning {trainer_type} rate {base:g}" + (
        "" if peft_method == "lora" else f" ({source})")


# --- throughput rule (trainer.throughput; docs/throughput.md) -------------------------------------
# Batchings a run can use: padded = TRL's default (every batch padded to its longest example);
# padding_free = the batch flattened into one row with position ids restarting at each example
# (transformers keeps the examples apart: masking_utils.find_packed_sequence_indices for sdpa / eager,
# cu_seq_lens for FlashAttention); packed = TRL's BFD packing, which the recipe asks for (trainer.packing).
VARLEN_ATTENTION: Final = ("flash_attention_2", "flash_attention_3")
MASKED_ATTENTION: Final = ("sdpa", "eager")
PADDING_FREE_CHEAPER: Final = "padding_free_if_cheaper"


def throughput_rule(trainer_type: str, setting: str, attention: str | None, packing: bool, prompt_learning: bool,
                    cuda: bool) -> tuple[str, str]:
    """(batching, rule) for trainer.throughput: what a run batches with and the reason `explain` shows.
    PADDING_FREE_CHEAPER is settled at run time from the data's token lengths (builders/throughput.py)."""
    attention = attention or "sdpa"  # transformers' default where the model supports it
    device = "CUDA" if cuda else "CPU"
    if setting == "off":
        return "padded", "trainer.throughput off: TRL's defaults (every batch padded to its longest example)"
    if packing:
        return "packed", ("rule throughput-packing: the recipe asks for packing, so TRL packs best-fit-decreasing "
                          "with position ids (padding-free, examples kept apart)")
    if (why := TRAINERS[trainer_type].padding_free_blocked) is not None:
        return "padded", f"rule throughput-padded: padded batches ({why})"
    if prompt_learning:
        return "padded", "rule throughput-padded: padded batches (virtual tokens need the attention mask)"
    if attention in VARLEN_ATTENTION:
        return "padding_free", (f"rule throughput-sft-varlen: padding-free batches ({attention} on {device}: "
                                "varlen kernels keep the examples apart and cost the sum of their own lengths)")
    if attention in MASKED_ATTENTION:
        return PADDING_FREE_CHEAPER, (
            f"rule throughput-sft-masked: padding-free batches when the data's lengths make them cheaper than "
            f"padding ({attention} on {device} masks the flattened batch, so attention grows with its total length; "
            "settled at run time from the token lengths, recorded in the manifest)")
    return "padded", f"rule throughput-padded: padded batches ({attention} is not known to keep packed examples apart)"
