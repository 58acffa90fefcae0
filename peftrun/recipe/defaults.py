"""Every default peftrun fills in, in one place, each with the rule `explain` names.

Static defaults are used by the schema (so they also reach the JSON Schema);
rule-based defaults (learning rate, dtype, TRL precision flags) are applied by
the resolver from the tables here.
"""

from __future__ import annotations

from typing import Final

# --- static defaults (schema field defaults) -------------------------------------------
SEED: Final = 42
MODEL_DTYPE: Final = "auto"
LORA_R: Final = 16  # TRL ModelConfig
LORA_ALPHA: Final = 32  # TRL ModelConfig
LORA_DROPOUT: Final = 0.05  # TRL ModelConfig
LORA_BIAS: Final = "none"  # TRL get_peft_config
LORA_TARGET_MODULES: Final = "all-linear"  # peftrun: all linear layers train better than PEFT's q/v
PROMPT_TUNING_VIRTUAL_TOKENS: Final = 20
PROMPT_TUNING_INIT: Final = "RANDOM"
QUANT_TYPE_4BIT: Final = "nf4"  # QLoRA paper
DOUBLE_QUANT_4BIT: Final = True  # QLoRA paper
COMPUTE_DTYPE_4BIT: Final = "auto"  # follows the resolved model dtype
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

# GRPO reward functions shipped in peftrun/train/rewards.py, by the names a recipe uses
SHIPPED_REWARDS: Final = ("answer_match", "answer_contains", "think_format", "concise")

# --- learning-rate rule (TRL's PEFT guidance) -------------------------------------------
FULL_FT_LEARNING_RATE: Final = {"sft": 2.0e-5, "dpo": 5.0e-7, "grpo": 1.0e-6, "reward": 1.0e-5}
LORA_LR_MULTIPLIER: Final = 10.0
PROMPT_TUNING_LEARNING_RATE: Final = 2.0e-2

# --- provenance labels for values the user did not write -----------------------------------
RULES: Final[dict[str, str]] = {
    "name": "default: the recipe file's stem",
    "seed": f"default: {SEED}",
    "model.dtype": "rule dtype-auto: bfloat16 where the GPU supports it, else float32",
    "peft.r": f"default: TRL ModelConfig lora_r={LORA_R}",
    "peft.lora_alpha": f"default: TRL ModelConfig lora_alpha={LORA_ALPHA}",
    "peft.lora_dropout": f"default: TRL ModelConfig lora_dropout={LORA_DROPOUT}",
    "peft.bias": "default: TRL get_peft_config bias='none'",
    "peft.target_modules": "default: all-linear (peftrun; trains better than PEFT's q/v default)",
    "peft.task_type": "rule task-type: CAUSAL_LM, SEQ_CLS for the reward trainer",
    "peft.modules_to_save": "rule reward-head: the reward trainer trains and saves the `score` head",
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
    "peft.num_virtual_tokens": f"default: {PROMPT_TUNING_VIRTUAL_TOKENS} virtual tokens",
    "peft.prompt_tuning_init": f"default: {PROMPT_TUNING_INIT} initialization",
    "launch.num_processes": "rule launch-processes: auto = every visible GPU, one process without a GPU",
    "launch.mixed_precision": "rule launch-precision: follows the trainer's bf16 / fp16 flags (TRL's config decides)",
    "quantization.quant_storage": "rule quant-storage: FSDP / ZeRO-3 shard 4-bit weights stored in the compute dtype",
    "trainer.log_level_replica": "rule launch-logs: ranks other than 0 log errors only",
    "trainer.eos_token": "rule template-eos: the chat template ends each assistant turn with this token",
    "peft.trainable_tokens": "rule new-tokens: added / EOS / BOS tokens train their embedding and output rows "
                             "(PEFT trainable_token_indices) and are saved with the adapter",
}


def learning_rate_rule(trainer_type: str, peft_method: str | None) -> tuple[float, str]:
    """The learning rate for a trainer and PEFT method, with the rule's explanation."""
    base = FULL_FT_LEARNING_RATE[trainer_type]
    if peft_method == "prompt_tuning":
        return PROMPT_TUNING_LEARNING_RATE, "rule learning-rate: prompt tuning 2e-2 (useful range 1e-2 to 3e-2)"
    if peft_method == "lora":
        rate = float(f"{base * LORA_LR_MULTIPLIER:.6g}")
        return rate, f"rule learning-rate: LoRA = 10 x the full fine-tuning {trainer_type} rate {base:g}"
    return base, f"rule learning-rate: full fine-tuning {trainer_type} baseline {base:g}"
