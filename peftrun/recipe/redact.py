"""Values read from the environment (`${oc.env:...}`) are never printed: messages name the expression instead.

`env` maps a dotted key path to the raw string its value was read from (Recipe.env_expressions): the
strings that read an environment variable, and those that interpolate such a key (recipe/interpolation.py).
Every such value is also kept as a secret (errors.keep_secret): any message or file that would hold it
anyway shows *** instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from peftrun.errors import MIN_SECRET, Problem, keep_secret


def expression_behind(path: str, env: Mapping[str, str]) -> str | None:
    """The raw string the value at `path` was read from when it, a value inside it or the value holding it
    came from the environment; None otherwise."""
    for key, raw in env.items():
        if not path or key == path or key.startswith(path + ".") or path.startswith(key + "."):
            return raw
    return None


def shown(value: Any, path: str, env: Mapping[str, str], form: Callable[[Any], str] = repr) -> str:
    """form(value), or a placeholder naming the `${...}` the value at `path` was read from."""
    raw = expression_behind(path, env)
    return form(value) if raw is None else f"the value of {raw} (not shown: it comes from the environment)"


NOT_TRAINING_ARGUMENTS = ("trainer.type", "trainer.reward_funcs")  # trainer keys that TRL's arguments do not hold


def environment_problems(env: Mapping[str, str], sources: Mapping[str, str]) -> list[Problem]:
    """Values from the environment that would end up where no mask follows them: the run directory's name
    and card (`name`), TRL's arguments (saved whole in training_args.bin with every checkpoint)."""
    return [Problem(sources.get(path, ""), path, (
        "cannot be read from the environment: it is written into the run directory's name, its card or "
        "training_args.bin; write the value itself (secrets such as the hub token are read from HF_TOKEN)"))
        for path in env if path == "name" or path.startswith("trainer.") and not path.startswith(NOT_TRAINING_ARGUMENTS)]


def keep_secrets(data: Mapping[str, Any], variables: Iterable[str], env: Mapping[str, str]) -> None:
    """Every value read from the environment (`variables`: the variables' values; `env`: the keys whose
    resolved value in `data` derives from them) is masked in every message and file from now on."""
    variables = [value for value in variables if len(value) >= MIN_SECRET]
    for value in variables:
        keep_secret(value)
    for path in env:
        node: Any = data
        for key in path.split("."):
            node = node[int(key)] if isinstance(node, list) else node.get(key) if isinstance(node, Mapping) else None
        for leaf in _strings(node):
            if any(value in leaf for value in variables):  # not a default of an unset variable
                keep_secret(leaf)


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, Mapping):
        node = list(node.values())
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [] if node is None or isinstance(node, bool) else [str(node)]
