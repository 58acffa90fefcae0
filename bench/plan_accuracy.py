"""The plan's exact parts checked against real tensors on this CPU.

Activations: one training step (forward, TRL's loss, backward) of a small random Llama with LoRA, estimated
on the meta device (peftrun.plan.activations) and run for real; the real peak is the allocator's own record
(torch.profiler memory events, summed in time order), an independent measure. Several lengths, batch sizes,
checkpointing on and off, SDPA and eager attention, a 4-bit and an 8-bit base (bitsandbytes on this CPU); the
error per case is printed. Then weights, gradients
and AdamW states: the plan's bytes against the real model, its gradients and the optimizer after one step.

    PYTHONPATH=. HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 python bench/plan_accuracy.py
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

import torch
from peft import get_peft_model
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from peftrun.builders import build_peft_config, build_quantization_config
from peftrun.plan import activations
from peftrun.plan.estimate import estimate, skeleton_for
from peftrun.plan.memory import gradient_bytes, optimizer_bytes, weight_bytes
from peftrun.plan.settings import read_settings
from peftrun.plan.skeleton import Skeleton, _trainer_casts
from peftrun.train.modeling import keep_4bit_trainable_on_cpu
from peftrun.recipe.hardware import CPU
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.validation import checked_plan


def build_model(directory: Path) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=4096, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
                         tie_word_embeddings=False, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(str(directory))


def plan_for(directory: Path, overrides: list[str]):  # noqa: ANN201
    recipe = {"model": {"name_or_path": str(directory), "dtype": "float32"},
              "peft": {"method": "lora", "r": 16, "target_modules": "all-linear", "lora_dropout": 0.0},
              "trainer": {"type": "sft"}, "dataset": {"path": str(directory / "config.json")}}
    return checked_plan(load_recipe(recipe, overrides), CPU)


def real_skeleton(plan) -> Skeleton:  # noqa: ANN001
    """The model as a run loads it: quantized when the recipe says so, with TRL's and peftrun's casts."""
    base = AutoModelForCausalLM.from_pretrained(plan.recipe.model.name_or_path, dtype=torch.float32,
                                                attn_implementation=plan.recipe.model.attn_implementation or "sdpa",
                                                quantization_config=build_quantization_config(plan))
    keep_4bit_trainable_on_cpu(base)
    peft_model = get_peft_model(base, build_peft_config(plan))
    _trainer_casts(plan, peft_model)
    return Skeleton(base, peft_model)


def real_peak(plan) -> int:  # noqa: ANN001
    """Peak bytes the CPU allocator held for tensors created during one real step."""
    skeleton, settings = real_skeleton(plan), read_settings(plan)
    model = activations._prepare(skeleton, settings, plan.recipe.model.attn_implementation or "sdpa", None)
    with activations._meta_stand_ins(cuda=False):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            activations._forward(model, settings)[0].backward()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    return peak


CASES = [*itertools.product((128, 512), (1, 4), (False, True), ("sdpa",), (None,)),
         (256, 2, False, "eager", None), (256, 2, True, "eager", None), (256, 2, False, "sdpa", 4), (256, 2, False, "sdpa", 8)]


def activation_cases(directory: Path) -> list[float]:
    """The plan's activations and gradients (the step's peak) against the real step's peak."""
    print(f"{'length':>6} {'batch':>5} {'ckpt':>5} {'attn':>6} {'bits':>4} {'estimate MB':>12} {'real MB':>9} {'error':>7}")
    errors = []
    for length, batch, ckpt, attn, bits in CASES:
        plan = plan_for(directory, [f"trainer.max_length={length}", f"trainer.per_device_train_batch_size={batch}",
                                    f"trainer.activation_checkpointing={str(ckpt).lower()}", f"model.attn_implementation={attn}",
                                    *([f"quantization.bits={bits}"] if bits else [])])
        memory = estimate(plan).memory
        planned, real = memory.activations + memory.gradients, real_peak(plan)
        errors.append((planned - real) / real)
        print(f"{length:>6} {batch:>5} {str(ckpt):>5} {attn:>6} {bits or '-':>4} {planned / 1e6:>12.1f} {real / 1e6:>9.1f} "
              f"{errors[-1]:>+7.1%}")
    return errors


def exact_parts(directory: Path) -> None:
    plan = plan_for(directory, ["trainer.max_length=128", "trainer.per_device_train_batch_size=2"])
    meta, real = skeleton_for(plan), real_skeleton(plan)
    frozen, adapter = weight_bytes(meta, None)
    loaded = sum(p.numel() * p.element_size() for p in real.model.parameters())
    model = activations._prepare(real, read_settings(plan), "sdpa", None)
    with activations._meta_stand_ins(cuda=False):
        activations._forward(model, read_settings(plan))[0].backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    optimizer.step()
    states = {id(t.untyped_storage()): t.untyped_storage().nbytes() for s in optimizer.state.values()
              for t in s.values() if torch.is_tensor(t)}
    for name, planned, measured in (("weights + adapter", frozen + adapter, loaded), ("gradients", gradient_bytes(meta), grads),
                                    ("AdamW states", optimizer_bytes(meta, "adamw_torch")[0], sum(states.values()))):
        print(f"{name:<18} plan {planned:>12,} real {measured:>12,} {'exact' if planned == measured else 'DIFFERENT'}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        build_model(directory)
        errors = activation_cases(directory)
        print(f"activations: mean |error| {sum(map(abs, errors)) / len(errors):.1%}, worst {max(errors, key=abs):+.1%}")
        exact_parts(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
