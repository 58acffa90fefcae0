"""What peftrun knows about PEFT's methods beyond their config fields (those come from peft_fields.json).

Which methods cannot wrap a causal LM from a config alone, which cannot be merged into the base weights,
which do not adapt linear layers (so the target_modules presets do not apply), and how each is used in a run.
Every entry says why; `docs/methods.md` shows the same table. Pure data: no library is imported.
"""

from __future__ import annotations

from typing import Final

from peftrun.recipe.extras import EXTRAS

# Methods that cannot wrap a causal LM from a config alone, with the reason (peft 0.21.2, transformers 5).
REFUSED: Final[dict[str, str]] = {
    "xlora": "X-LoRA mixes several already-trained LoRA adapters through a learned router; it needs those "
             "adapters and a model wrapper, not a config alone: train LoRA adapters first",
    "poly": "Polytropon routes between adapter skills by a task id per example; TRL's trainers pass no task ids",
    "multitask_prompt_tuning": "multitask prompt tuning needs a task id per example; TRL's trainers pass no task ids",
    "cpt": "context-aware prompt tuning needs per-example token-type masks built by its own data pipeline; "
           "TRL's collators do not produce them",
    "adaption_prompt": "under TRL 1.16's SFT trainer an adaption-prompt model does not return the log-probabilities "
                       "of TRL's fused LM head ('CausalLMOutputWithPast' object has no attribute 'log_probs')",
}
# Refused only while the optional extra that installs their dependency is missing: method -> extra.
NEEDS_EXTRA: Final[dict[str, str]] = {"adamss": "adamss"}
# Methods whose adapter cannot be merged into the base weights, with the reason.
PROMPT_LEARNING_NO_MERGE: Final = "its virtual tokens are inputs, not weights"
NOT_MERGEABLE: Final[dict[str, str]] = {
    "lily": "PEFT 0.21.2 implements no merge for Lily",
    "shadow": "ShadowPEFT adapts through a parallel network whose effect depends on the input, not a weight delta",
    "beft": "BEFT merges only into layers that have a bias; the adapted layers of most LLMs have none",
}
# Methods that take target_modules but do not adapt linear layers: the presets and the all-linear default
# do not apply (PEFT picks the layers: norms, embeddings, attention blocks, decoder layers).
NOT_LINEAR: Final = ("ln_tuning", "trainable_tokens", "adaption_prompt", "shadow")
# Presets a method cannot use: (method, preset) -> reason.
BAD_PRESETS: Final[dict[tuple[str, str], str]] = {
    ("ia3", "all-linear"): "PEFT 0.21.2 saves an all-linear IA3 adapter that it cannot reload (target_modules are "
                           "expanded, feedforward_modules are not): name the modules, or use the qv or attention preset",
}
# Methods that fail under gradient checkpointing (the attention mask and the prefix lengths disagree).
NO_CHECKPOINTING: Final[dict[str, str]] = {
    "prefix_tuning": "prefix tuning fails under gradient checkpointing (attention mask length mismatch)",
}


# LoRA initializations that cannot run on a quantized base, with the reason.
INIT_NEEDS_FULL_PRECISION: Final[dict[str, str]] = {
    "loftq": "LoftQ quantizes the full-precision base itself while it initializes LoRA (the base stays in full "
             "precision, holding the quantized values): remove the `quantization` section",
    "corda": "CorDA decomposes the full-precision weights with the data's covariance: remove the `quantization` section",
}
# LoRA initializations refused while the optional extra that installs their dependency is missing.
INIT_NEEDS_EXTRA: Final[dict[str, str]] = {"loftq": "loftq"}
# LoRA initializations that run a data pass over the recipe's data before training (train/init_data_pass.py).
DATA_PASS_INITS: Final = ("eva", "corda")


def _missing(needs: dict[str, str], name: str) -> str | None:
    extra = EXTRAS.get(needs.get(name, ""))
    return extra.reason() if extra is not None and extra.missing() else None


def refusal(method: str) -> str | None:
    """Why `method` cannot run here, or None."""
    return REFUSED.get(method) or _missing(NEEDS_EXTRA, method)


def init_refusal(init: str) -> str | None:
    """Why the LoRA initialization `init` cannot run here (a missing optional dependency), or None."""
    return _missing(INIT_NEEDS_EXTRA, init)


def merge_refusal(method: str, prompt_learning: bool) -> str | None:
    """Why a `method` adapter cannot be merged into the model, or None when it can."""
    if prompt_learning:
        return PROMPT_LEARNING_NO_MERGE
    return NOT_MERGEABLE.get(method)
