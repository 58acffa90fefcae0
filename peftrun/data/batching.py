"""What each batching costs on a dataset's token lengths: the padding fraction `peftrun data` shows, and the
comparison the throughput rule settles at run time (builders/throughput.py, docs/throughput.md).

Pure Python on a list of lengths; the batches are drawn like the trainer's random sampler (a seeded shuffle,
consecutive groups of `batch_size`, the last one possibly short).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


def random_batches(lengths: Sequence[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """The lengths of each batch of one shuffled epoch."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    return [[lengths[i] for i in order[start:start + batch_size]] for start in range(0, len(order), batch_size)]


def padded_fraction(batches: Sequence[Sequence[int]]) -> float:
    """The share of positions that are padding when every batch is padded to its longest example."""
    positions = sum(len(batch) * max(batch) for batch in batches if batch)
    return 1.0 - sum(map(sum, batches)) / positions if positions else 0.0


def padding_fractions(lengths: Sequence[int], batch_size: int, seed: int = 0) -> dict[str, float]:
    """Padding fraction per batching: padded (TRL's default) and padding_free (one row per batch, no padding)."""
    return {"padded": padded_fraction(random_batches(lengths, batch_size, seed)), "padding_free": 0.0}


def padding_line(padding: dict[str, float]) -> str:
    """`peftrun data`'s line: the padding share of each batching's positions."""
    shares = ", ".join(f"{name.replace('_', '-')} {share:.1%}" for name, share in padding.items() if name != "batch_size")
    return f"padding (batches of {padding['batch_size']:g}): {shares} of the positions computed"


@dataclass(frozen=True)
class Costs:
    """Relative compute of one epoch, padded vs padding-free, and the padded batches' padding fraction."""

    padded: float
    padding_free: float
    padding_fraction: float

    @property
    def padding_free_cheaper(self) -> bool:
        return self.padding_free < self.padded


def epoch_costs(lengths: Sequence[int], batch_size: int, token_cost: float, pair_cost: float,
                seed: int = 0) -> Costs:
    """Compute of one epoch under a masked attention (sdpa / eager), which attends over a whole row: padded
    batches cost B x longest per token and B x longest^2 per attention pair; a padding-free row costs the sum of
    the lengths per token and its square per attention pair. `token_cost`: work per token (the linear layers);
    `pair_cost`: work per query-key pair (attention)."""
    batches = random_batches(lengths, batch_size, seed)
    padded = sum(len(b) * max(b) * (token_cost + max(b) * pair_cost) for b in batches if b)
    flat = sum(sum(b) * (token_cost + sum(b) * pair_cost) for b in batches if b)
    return Costs(float(padded), float(flat), padded_fraction(batches))
