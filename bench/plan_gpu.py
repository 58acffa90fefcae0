"""The plan's memory estimate against real GPU peaks.

1. Published runs: PEFT's method-comparison suite (method_comparison/MetaMathQA/results, Llama-3.2-3B in
   bfloat16 on one L40S, batch 4, length up to 768, no checkpointing, torch AdamW, no AMP, the model's own
   loss on full logits, SDPA). Their figure is the 99th percentile of torch.cuda.memory_reserved() after
   each step, less the memory reserved before training (so no CUDA context): compared with the plan's
   expected total less the context. Needs only Llama-3.2-3B's config (written here), no weights.
2. This machine's GPU, when there is one: random Llamas of about 0.5 B parameters (configs written here, a
   byte-level tokenizer, rows long enough to fill max_length) trained for a few steps by `peftrun.run` (LoRA,
   LoRA with checkpointing, QLoRA, full fine-tuning); each run's manifest holds the plan next to
   torch.cuda.max_memory_allocated / max_memory_reserved, printed as one table (live vs allocated, reserved vs
   reserved). Without a GPU it says so and exits 0.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/plan_gpu.py
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from peftrun.errors import RecipeError
from peftrun.plan.estimate import estimate
from peftrun.plan.memory import CUDA_CONTEXT
from peftrun.plan.settings import read_settings
from peftrun.recipe.gpus import target_hardware
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan

LLAMA_32_3B = {  # meta-llama/Llama-3.2-3B config.json (the fields that shape the model)
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192,
    "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128,
    "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": True, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "hidden_act": "silu", "bos_token_id": 128000, "eos_token_id": 128001,
}
# (name, peft section or None, published GiB: (p99 reserved, max reserved), published trainable, published total)
PUBLISHED = [
    ("lora r32 q,v", {"method": "lora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
     (18.74, 20.76), 9_175_040, 3_221_924_864),
    ("dora r32 q,v", {"method": "lora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
                      "use_dora": True}, (20.66, 22.85), 9_289_728, 3_222_039_552),
    ("full fine-tuning", None, (34.78, 36.20), 3_212_749_824, 3_212_749_824),
    ("lora r64 q,v", {"method": "lora", "r": 64, "lora_alpha": 128, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
     (18.97, 21.00), 18_350_080, 3_231_099_904),
    ("ia3", {"method": "ia3", "target_modules": ["down_proj", "v_proj", "k_proj"], "feedforward_modules": ["down_proj"]},
     (19.49, 21.64), 286_720, 3_213_036_544),
    ("loha r32 q,v", {"method": "loha", "r": 32, "alpha": 64, "target_modules": ["q_proj", "v_proj"]},
     (20.34, 22.27), 18_350_080, 3_231_099_904),
    ("oft r32 q,v", {"method": "oft", "r": 32, "target_modules": ["q_proj", "v_proj"], "oft_block_size": 0},
     (18.76, 20.80), 8_171_520, 3_220_921_344),
    ("boft q,v", {"method": "boft", "boft_block_size": 4, "boft_n_butterfly_factor": 1, "target_modules": ["q_proj", "v_proj"]},
     (20.92, 23.00), 802_816, 3_213_552_640),
    ("vera r256 q,v", {"method": "vera", "r": 256, "target_modules": ["q_proj", "v_proj"]}, (18.27, 20.14), 129_024, 3_212_878_848),
    ("fourierft q,v", {"method": "fourierft", "n_frequency": 1000, "scaling": 300, "target_modules": ["q_proj", "v_proj"]},
     (20.11, 22.03), 56_000, 3_212_805_824),
    ("ln_tuning", {"method": "ln_tuning", "target_modules": ["input_layernorm", "norm", "post_attention_layernorm"]},
     (17.83, 19.73), 175_104, 3_212_924_928),
    ("prompt tuning 200", {"method": "prompt_tuning", "num_virtual_tokens": 200}, (21.17, 22.72), 614_400, 3_213_364_224),
]


def published(model_dir: Path) -> None:
    print("PEFT method comparison, Llama-3.2-3B, 1 x L40S, batch 4 x 768, bf16, AdamW, no checkpointing")
    print("published: p99 and max of torch.cuda.memory_reserved() per step (max: the longest batches, up to 768 tokens)")
    print(f"{'run':<18} {'params ok':>9} {'low':>6} {'expected':>9} {'high':>6} {'p99':>6} {'max':>6} {'exp/max':>8} {'low/max':>8} {'exp/p99':>8}")
    for name, peft, measured, trainable, total in PUBLISHED:  # GiB = 2**30 bytes, as published
        recipe = {"model": {"name_or_path": str(model_dir), "dtype": "bfloat16"},
                  "trainer": {"type": "sft", "per_device_train_batch_size": 4, "max_length": 768,
                              "activation_checkpointing": False, "optim": "adamw_torch", "learning_rate": 1.0e-4},
                  "dataset": {"path": str(model_dir / "config.json")}}
        if peft:
            recipe["peft"] = peft
        try:
            plan = checked_plan(load_recipe(recipe), target_hardware("l40s", None))
        except RecipeError as exc:
            print(f"{name:<18} not run: {exc.problems[0]}")
            continue
        settings = dataclasses.replace(read_settings(plan), full_logits=True)  # the suite's loop: model(**batch).loss
        result = estimate(plan, settings, mixed_precision=False)  # no AMP in the suite
        low, expected, high = ((result.memory.band[k] - CUDA_CONTEXT) / 2**30 for k in ("low", "expected", "high"))
        same = (result.counts.trainable, result.counts.total) == (trainable, total)
        p99, peak = measured
        print(f"{name:<18} {str(same):>9} {low:>6.2f} {expected:>9.2f} {high:>6.2f} {p99:>6.2f} {peak:>6.2f} "
              f"{(expected - peak) / peak:>+8.1%} {(low - peak) / peak:>+8.1%} {(expected - p99) / p99:>+8.1%}")


GPU_MODEL = {"vocab_size": 259, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 10,
             "num_attention_heads": 16, "num_key_value_heads": 4, "max_position_embeddings": 2048}
GPU_CASES = [  # (name, recipe sections beyond the model and data)
    ("lora bf16", {"peft": {"method": "lora", "target_modules": "all-linear"}, "trainer": {"activation_checkpointing": False}}),
    ("lora bf16 ckpt", {"peft": {"method": "lora", "target_modules": "all-linear"}, "trainer": {"activation_checkpointing": True}}),
    ("qlora nf4", {"peft": {"method": "lora", "target_modules": "all-linear"}, "quantization": {"bits": 4},
                   "trainer": {"activation_checkpointing": True}}),
    ("full bf16", {"trainer": {"activation_checkpointing": True}}),
]


def _gpu_inputs(directory: Path) -> tuple[Path, Path]:
    """A random Llama with a byte-level tokenizer, and rows of 4000 characters (4000 tokens: max_length fills)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    model_dir = directory / "model"
    core = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", *sorted(pre_tokenizers.ByteLevel.alphabet())])}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>").save_pretrained(str(model_dir))
    config = LlamaConfig(**GPU_MODEL, pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(str(model_dir))
    data = directory / "train.jsonl"
    data.write_text("".join(json.dumps({"text": "peftrun " * 500}) + "\n" for _ in range(64)))
    return model_dir, data


def gpu_recipe(name: str, sections: dict, model_dir: Path, data: Path, out: Path) -> dict:
    return {"model": {"name_or_path": str(model_dir), "dtype": "bfloat16"}, "dataset": {"path": str(data)},
            "output": {"dir": str(out / name.replace(" ", "-"))},
            **{k: v for k, v in sections.items() if k != "trainer"},
            "trainer": {"type": "sft", "per_device_train_batch_size": 4, "max_length": 2048, "max_steps": 3,
                        "save_strategy": "no", "report_to": "none", **sections["trainer"]}}


def _measure(name: str, sections: dict, model_dir: Path, data: Path, out: Path) -> None:
    import torch

    import peftrun

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()  # each run's own peak
    recipe = gpu_recipe(name, sections, model_dir, data, out)
    record = json.loads((peftrun.run(recipe) / "manifest.json").read_text())["memory"]
    figures, measured = record["figures_gb"], record["measured_gb"]
    print(f"{name:<16} {figures['live']:>8.2f} {measured['cuda_max_allocated']:>9.2f} {record['errors']['cuda_max_allocated']:>+7.1%} "
          f"{figures['reserved']:>9.2f} {measured['cuda_max_reserved']:>9.2f} {record['errors']['cuda_max_reserved']:>+7.1%}", flush=True)


def on_this_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        print("\nno GPU on this machine: the live-GPU check did not run (published runs above are the GPU reference)")
        return
    print(f"\n{torch.cuda.get_device_name(0)}: random Llama {GPU_MODEL['hidden_size']} x {GPU_MODEL['num_hidden_layers']} layers, "
          "batch 4 x 2048, 3 steps each (GB)")
    print(f"{'run':<16} {'plan live':>8} {'allocated':>9} {'error':>7} {'plan resv':>9} {'reserved':>9} {'error':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = _gpu_inputs(Path(tmp))
        for name, sections in GPU_CASES:
            _measure(name, sections, model_dir, data, Path(tmp) / "runs")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(LLAMA_32_3B))
        published(Path(tmp))
    on_this_gpu()
    return 0


if __name__ == "__main__":
    sys.exit(main())
