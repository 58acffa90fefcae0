"""Generate peftrun/interop/tool_keys/<tool>.json: every key a tool's config takes, with its default and the
file:line it is declared at, read (by Python's ast, nothing imported or run) from the tool's own source at a
pinned commit.

    python scripts/gen_tool_keys.py MIRROR_ROOT     # bare clones named owner+name/repo

The importers use the table to tell a valid setting they do not carry (reported as such) from a key the tool
does not have; the corpus expectations cite the defaults by the file:line recorded here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "peftrun" / "interop" / "tool_keys"
# tool -> (repository, the files whose classes declare the config's keys)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "axolotl": ("axolotl-ai-cloud/axolotl", tuple(f"src/axolotl/utils/schemas/{n}.py" for n in (
        "config", "datasets", "deprecated", "fsdp", "integrations", "model", "multimodal", "peft", "quantization",
        "training", "trl", "vllm", "dynamic_checkpoint"))),
    "llamafactory": ("hiyouga/LLaMA-Factory", tuple(f"src/llamafactory/hparams/{n}.py" for n in (
        "data_args", "finetuning_args", "model_args", "training_args", "generating_args", "evaluation_args"))),
    "llamafactory_v1": ("hiyouga/LLaMA-Factory", tuple(f"src/llamafactory/v1/config/{n}.py" for n in (
        "data_args", "model_args", "training_args", "sample_args"))),
    "trl_script": ("huggingface/trl", ("trl/scripts/utils.py", "trl/trainer/model_config.py")),
}
CALLS = ("Field", "field")


def _default(node: ast.expr | None) -> Any:
    """The literal default of `x: T = value`, `= Field(default=...)` or `= field(default=...)`; "?" when it is
    computed (a factory, a name)."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in CALLS:
        for kw in node.keywords:
            if kw.arg == "default":
                return _default(kw.value)
            if kw.arg == "default_factory":
                return "?"
        return _default(node.args[0]) if node.args else None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return "?"


def keys_of(text: str, path: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for cls in ast.walk(ast.parse(text)):
        if not isinstance(cls, ast.ClassDef):
            continue
        for item in cls.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
                if not name.startswith("_") and name != "model_config":
                    found.setdefault(name, {"default": _default(item.value), "at": f"{path}:{item.lineno}",
                                            "class": cls.name})
    return found


def main(root: Path) -> None:
    for tool, (repo_name, files) in SOURCES.items():
        repo = root / repo_name.replace("/", "+") / "repo"
        commit = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        keys: dict[str, dict[str, Any]] = {}
        for path in files:
            text = subprocess.run(["git", "--git-dir", str(repo), "show", f"{commit}:{path}"], check=True,
                                  capture_output=True, text=True).stdout
            for name, row in keys_of(text, path).items():
                keys.setdefault(name, row)
        table = {"repository": repo_name, "commit": commit, "keys": dict(sorted(keys.items()))}
        (OUT / f"{tool}.json").write_text(json.dumps(table, indent=1, sort_keys=False, default=str) + "\n")
        print(f"{tool}: {len(keys)} keys at {commit[:10]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
