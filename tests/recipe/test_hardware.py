"""The machines named on the command line: `--gpu [Nx]NAME`, `--gpus`, `--nodes`, `--gpus-per-node`."""

from __future__ import annotations

import pytest

from peftrun.errors import RecipeError
from peftrun.recipe.gpus import target_hardware
from peftrun.recipe.hardware import Topology, topology


@pytest.mark.parametrize(("args", "expected"), [
    ({"gpu": "8x h100"}, Topology("h100", 8, 1)),
    ({"gpu": "4*A100-80GB", "nodes": 2}, Topology("A100-80GB", 4, 2)),
    ({"gpu": "h100", "nodes": 2, "gpus_per_node": 8}, Topology("h100", 8, 2)),
    ({"gpu": "24GB", "gpus": 2}, Topology("24GB", 2, 1)),
    ({"gpu": "8x h100", "gpus_per_node": 8}, Topology("h100", 8, 1)),
    ({}, Topology(None, None, 1)),
])
def test_topology(args: dict, expected: Topology) -> None:
    assert topology(**args) == expected


@pytest.mark.parametrize(("args", "message"), [
    ({"gpu": "8x h100", "gpus_per_node": 4}, "GPU counts disagree (--gpu 8, --gpus-per-node 4)"),
    ({"gpu": "h100", "gpus": 2, "gpus_per_node": 4}, "GPU counts disagree (--gpus-per-node 4, --gpus 2)"),
    ({"gpu": "h100", "nodes": 0}, "--nodes must be at least 1, not 0"),
    ({"gpu": "0x h100"}, "--gpu must be at least 1, not 0"),
])
def test_topology_refusals(args: dict, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        topology(**args)
    assert message in str(caught.value)


def test_target_hardware_on_nodes() -> None:
    hardware = target_hardware("8x h100", None, nodes=4)
    assert (hardware.name, hardware.device_count, hardware.nodes) == ("NVIDIA H100 80GB", 8, 4)
    assert hardware.describe() == "4 nodes x 8 x NVIDIA H100 80GB (bf16)"
