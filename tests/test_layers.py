"""The package's layers import downwards only (docs/architecture.md), and the recipe layer stays light.

Every import statement of every module counts, those inside functions too: a lazy import from a higher
layer is still a dependency on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "peftrun"
# lowest first: a module may import from its own layer and the ones before it
LAYERS = ("errors", "recipe", "data", "builders", "plan", "interop", "launch", "train", "sweep", "commands", "cli")
ALWAYS = {"peftrun", "peftrun.errors", "peftrun.hub"}  # the API package, the exception tree, offline mode
HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate", "safetensors", "matplotlib")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "peftrun":  # `from peftrun import train` names a subpackage
                found += [(node.lineno, f"peftrun.{alias.name}") for alias in node.names]
    return found


def test_every_module_is_in_a_layer() -> None:
    unplaced = [module_name(p) for p in modules() if layer_of(module_name(p)) is None and module_name(p) not in ALWAYS
                and module_name(p) != "peftrun.__main__"]
    assert unplaced == []


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_imports_go_downwards(path: Path) -> None:
    here = layer_of(module_name(path))
    if here is None:
        return
    upward = [
        f"{path.name}:{line}: {name}" for line, name in imports(path)
        if (there := layer_of(name)) is not None and LAYERS.index(there) > LAYERS.index(here)
    ]
    assert upward == []


def test_the_recipe_layer_imports_no_heavy_library() -> None:
    heavy = [
        f"{module_name(p)}:{line}: {name}" for p in (PACKAGE / "recipe").rglob("*.py")
        for line, name in imports(p) if name.split(".")[0] in HEAVY
    ]
    assert heavy == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The walker finds imports inside functions (the lazy ones)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from peftrun.train import runner\n    import torch\n")
    assert imports(source) == [(2, "peftrun.train"), (3, "torch")]
