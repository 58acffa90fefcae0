"""trainer.throughput applied to a built TRL trainer: the batching the rule chose (recipe/defaults.py
throughput_rule), settled on the tokenized data where it depends on the lengths, and checked on the model.

Padding-free batches change no token's label and no example's loss: the collator flattens a batch into one row
whose position ids restart at every example, and transformers keeps the examples apart (sdpa / eager: a
block-diagonal mask from masking_utils.find_packed_sequence_indices; FlashAttention: cu_seq_lens). Before a run
uses them, a two-example probe checks that this model really keeps them apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from peftrun.data.batching import epoch_costs, padding_fractions
from peftrun.recipe.defaults import PADDING_FREE_CHEAPER
from peftrun.recipe.plan import Plan
from peftrun.recipe.resolver import throughput_rule

PROBE_LENGTHS = (5, 7)  # two examples flattened into one row for the probe
PROBE_TOLERANCE = 1e-2  # relative to the largest logit: cross-attention changes logits by far more


@dataclass(frozen=True)
class Batching:
    """What a run batches with, why, and the padding fraction padded batches would have had (None: unknown)."""

    name: str  # padded | padding_free | packed
    reason: str
    padded_fraction: float | None = None

    @property
    def padding_fraction(self) -> float | None:
        """The padding share of this batching's positions."""
        return self.padded_fraction if self.name == "padded" else 0.0


def token_lengths(dataset: Any) -> list[int]:
    """The token length of every example of a tokenized dataset (TRL's `input_ids` column)."""
    if dataset is None or "input_ids" not in (dataset.column_names or []):
        return []
    return [len(ids) for ids in dataset["input_ids"]]


def model_costs(config: Any) -> tuple[float, float]:
    """(work per token, work per attention pair) of a decoder, in multiply-adds: the linear layers and the
    output head per token; QK^T and AV per query-key pair in every layer."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden, layers = text.hidden_size, text.num_hidden_layers
    heads = getattr(text, "num_attention_heads", 1)
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    kv = getattr(text, "num_key_value_heads", None) or heads
    inner = getattr(text, "intermediate_size", 4 * hidden)
    per_layer = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim + 3 * hidden * inner
    return float(layers * per_layer + text.vocab_size * hidden), float(2 * layers * heads * head_dim)


def keeps_examples_apart(model: Any) -> bool:
    """Whether the model gives the second of two examples flattened into one row (position ids restarting)
    the same logits as that example alone: its attention does not cross the boundary. Without a cache, as in
    training (transformers looks for packed examples only when there is none)."""
    import torch

    first, second = PROBE_LENGTHS
    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().num_embeddings
    ids = torch.randint(0, vocab, (1, first + second), generator=torch.Generator().manual_seed(0)).to(device)
    positions = torch.cat([torch.arange(first), torch.arange(second)])[None].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            flat = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, first:].float()
            alone = model(input_ids=ids[:, first:], use_cache=False).logits[0].float()
    finally:
        model.train(was_training)
    return bool((flat - alone).abs().max() <= PROBE_TOLERANCE * alone.abs().max())


def _padded_fraction(trainer: Any, lengths: list[int]) -> float | None:
    """The padding share of TRL's padded batches on these lengths (None: no lengths)."""
    if not lengths:
        return None
    return padding_fractions(lengths, trainer.args.per_device_train_batch_size, trainer.args.seed)["padded"]


def _settle(plan: Plan, trainer: Any, lengths: list[int]) -> Batching:
    """The chosen batching for a trainer whose rule allows padding-free batches."""
    name, rule = throughput_rule(plan.recipe, plan.hardware)
    fraction = _padded_fraction(trainer, lengths)
    if name == PADDING_FREE_CHEAPER:
        costs = epoch_costs(lengths, trainer.args.per_device_train_batch_size, *model_costs(trainer.model.config),
                            seed=trainer.args.seed)
        share = f"padding-free {costs.padding_free / max(costs.padded, 1.0):.2f} x the padded compute"
        if not costs.padding_free_cheaper:
            return Batching("padded", f"{rule}: padded batches, {share}", fraction)
        rule = f"{rule}: {share}"
    parallel = trainer.accelerator.parallelism_config
    if parallel is not None and (parallel.cp_enabled or parallel.sp_enabled):
        return Batching("padded", f"{rule}; padded instead: context / sequence parallelism drops the mask", fraction)
    try:
        apart = keeps_examples_apart(trainer.model)
    except Exception as exc:  # a model the probe cannot run stays on the batching that needs no probe
        return Batching("padded", f"{rule}; padded instead: the probe could not run ({type(exc).__name__})", fraction)
    if not apart:
        return Batching("padded", f"{rule}; padded instead: this model lets flattened examples attend to each "
                                  "other", fraction)
    return Batching("padding_free", rule, fraction)


def apply_throughput(plan: Plan, trainer: Any) -> Batching:
    """Apply the plan's batching to a built TRL trainer (its collator) and say what it is."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    name, rule = throughput_rule(plan.recipe, plan.hardware)
    if getattr(trainer.args, "packing", False):  # TRL packs (padding-free for its BFD strategies)
        return Batching("packed", rule if name == "packed" else "trainer.packing set by the recipe", 0.0)
    if getattr(trainer, "padding_free", False):
        return Batching("padding_free", "trainer.padding_free set by the recipe")
    lengths = token_lengths(trainer.train_dataset)
    collator = trainer.data_collator
    if name == "padded" or not isinstance(collator, DataCollatorForLanguageModeling) or not lengths:
        return Batching("padded", rule, _padded_fraction(trainer, lengths))
    batching = _settle(plan, trainer, lengths)
    if batching.name == "padding_free":
        trainer.data_collator = dataclasses.replace(collator, padding_free=True)
        trainer.padding_free = True
    return batching
