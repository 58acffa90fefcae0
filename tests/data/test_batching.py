"""The padding fraction each batching gives and the compute comparison the throughput rule settles."""

from __future__ import annotations

import pytest

from peftrun.data.batching import epoch_costs, padded_fraction, padding_fractions, random_batches


def test_random_batches_cover_every_example_once() -> None:
    lengths = list(range(1, 20))
    batches = random_batches(lengths, 4, seed=3)
    assert [len(b) for b in batches] == [4, 4, 4, 4, 3]
    assert sorted(x for b in batches for x in b) == lengths
    assert batches == random_batches(lengths, 4, seed=3) != random_batches(lengths, 4, seed=4)


def test_padded_fraction_counts_positions_past_each_example() -> None:
    assert padded_fraction([[2, 4], [3]]) == pytest.approx(1 - 9 / 11)
    assert padding_fractions([5] * 8, 4) == {"padded": 0.0, "padding_free": 0.0}


def test_long_tails_make_padding_free_cheaper_and_equal_lengths_do_not() -> None:
    tailed = [20] * 56 + [400] * 8
    costs = epoch_costs(tailed, 8, token_cost=1000.0, pair_cost=10.0)
    assert costs.padding_free_cheaper and costs.padding_fraction > 0.5
    equal = epoch_costs([400] * 64, 8, token_cost=1000.0, pair_cost=10.0)
    assert not equal.padding_free_cheaper and equal.padding_fraction == 0.0
    without_attention = epoch_costs([400] * 64, 8, token_cost=1000.0, pair_cost=0.0)
    assert without_attention.padding_free == without_attention.padded  # same tokens, no padding to remove
