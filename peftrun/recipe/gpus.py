"""Target hardware named on the command line (`--gpu NAME|SIZE`, `--gpus N`): a table of GPUs, light (no torch).

Memory is what `nvidia-smi` reports as the card's total (MiB); bf16 is compute capability 8.0 or newer.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.hardware import Hardware, probe_light, ram_bytes, topology


@dataclass(frozen=True)
class GPU:
    name: str
    memory_mib: int
    bf16: bool


_TABLE = (
    GPU("NVIDIA B200", 183_359, True),
    GPU("NVIDIA H200", 143_771, True),
    GPU("NVIDIA H100 80GB", 81_559, True),
    GPU("NVIDIA A100 80GB", 81_920, True),
    GPU("NVIDIA A100 40GB", 40_960, True),
    GPU("NVIDIA L40S", 46_068, True),
    GPU("NVIDIA L40", 46_068, True),
    GPU("NVIDIA RTX 6000 Ada", 49_140, True),
    GPU("NVIDIA RTX A6000", 49_140, True),
    GPU("NVIDIA A10G", 23_028, True),
    GPU("NVIDIA A10", 23_028, True),
    GPU("NVIDIA L4", 23_034, True),
    GPU("NVIDIA GeForce RTX 5090", 32_607, True),
    GPU("NVIDIA GeForce RTX 4090", 24_564, True),
    GPU("NVIDIA GeForce RTX 3090", 24_576, True),
    GPU("NVIDIA V100 32GB", 32_768, False),
    GPU("NVIDIA V100 16GB", 16_384, False),
    GPU("NVIDIA T4", 15_360, False),
)
# what a user types -> table entry (lower case, no spaces, dashes or underscores)
_ALIASES = {
    "b200": "NVIDIA B200", "h200": "NVIDIA H200", "h100": "NVIDIA H100 80GB", "h10080gb": "NVIDIA H100 80GB",
    "a100": "NVIDIA A100 80GB", "a10080gb": "NVIDIA A100 80GB", "a10080": "NVIDIA A100 80GB",
    "a10040gb": "NVIDIA A100 40GB", "a10040": "NVIDIA A100 40GB", "l40s": "NVIDIA L40S", "l40": "NVIDIA L40",
    "rtx6000ada": "NVIDIA RTX 6000 Ada", "a6000": "NVIDIA RTX A6000", "rtxa6000": "NVIDIA RTX A6000",
    "a10g": "NVIDIA A10G", "a10": "NVIDIA A10", "l4": "NVIDIA L4",
    "rtx5090": "NVIDIA GeForce RTX 5090", "5090": "NVIDIA GeForce RTX 5090",
    "rtx4090": "NVIDIA GeForce RTX 4090", "4090": "NVIDIA GeForce RTX 4090",
    "rtx3090": "NVIDIA GeForce RTX 3090", "3090": "NVIDIA GeForce RTX 3090",
    "v100": "NVIDIA V100 32GB", "v10032gb": "NVIDIA V100 32GB", "v10016gb": "NVIDIA V100 16GB", "t4": "NVIDIA T4",
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(gb|gib|g)?$", re.IGNORECASE)


def gpu_names() -> list[str]:
    """The names `--gpu` accepts (besides a plain size such as 24GB)."""
    return sorted(_ALIASES)


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text.lower()).removeprefix("nvidia").removeprefix("geforce")


def find_gpu(text: str) -> GPU:
    """A GPU by name (a100-80gb, H100, rtx4090, ...) or size (24GB: a bf16-capable card of that memory)."""
    size = _SIZE.match(text.strip())
    if size:
        gib = float(size.group(1)) if (size.group(2) or "").lower() in ("gib", "g") else float(size.group(1)) * 1e9 / 2**30
        return GPU(f"{text.strip()} GPU (bf16 assumed)", int(gib * 1024), True)
    name = _ALIASES.get(_key(text))
    if name is None:
        raise RecipeError(Problem("--gpu", "", f"unknown GPU {text!r}; known: {', '.join(gpu_names())}, or a size such as 24GB"))
    return next(gpu for gpu in _TABLE if gpu.name == name)


def target_hardware(gpu: str | None, gpus: int | None, nodes: int | None = None, gpus_per_node: int | None = None) -> Hardware:
    """The hardware to resolve for: the named GPU (x N per node, on `nodes` machines), N of this machine's GPUs,
    or this machine."""
    wanted = topology(gpu, gpus, nodes, gpus_per_node)
    count = wanted.gpus_per_node
    if wanted.gpu is None:
        here = probe_light()
        if not here.cuda:
            if count is not None or wanted.nodes > 1:
                raise RecipeError(Problem("--gpus", "", "this machine has no GPU: name one with --gpu (e.g. --gpu a100-80gb)"))
            return Hardware(memory_bytes=ram_bytes())
        return Hardware(True, here.bf16, count or here.device_count, here.name, here.memory_bytes, wanted.nodes)
    found = find_gpu(wanted.gpu)
    return Hardware(cuda=True, bf16=found.bf16, device_count=count or 1, name=found.name,
                    memory_bytes=found.memory_mib * 2**20, nodes=wanted.nodes)


def hardware_from_args(args: argparse.Namespace, gpus: int | None = None) -> Hardware:
    """target_hardware from the flags add_hardware_arguments adds (`gpus` overrides --gpus / --gpus-per-node)."""
    per_node = gpus or args.gpus_per_node
    return target_hardware(args.gpu, None if gpus else args.gpus, args.nodes, per_node)


def add_hardware_arguments(parser: argparse.ArgumentParser) -> None:
    """--gpu / --gpus for commands that resolve a recipe (validate, explain, plan)."""
    parser.add_argument("--gpu", metavar="[Nx]NAME|SIZE", help="resolve for this GPU instead of this machine: "
                        "a name (a100-80gb, h100, l40s, rtx4090, t4, ...) or a size (24GB), with a count per node (8x h100)")
    parser.add_argument("--gpus", type=int, metavar="N", help="number of GPUs (with --gpu, or of this machine's kind)")
    parser.add_argument("--gpus-per-node", type=int, metavar="G", help="GPUs on each machine (the same as --gpus, or 8x in --gpu 8x h100)")
    parser.add_argument("--nodes", type=int, metavar="N", help="machines of that many GPUs each (multi-node); default 1")

