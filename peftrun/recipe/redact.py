"""Values read from the environment (`${oc.env:...}`) are never printed: messages name the expression instead.

`env` maps a dotted key path to the raw string its value was read from (Recipe.env_expressions): the
strings that read an environment variable, and those that interpolate such a key (`${a.b}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

REFERENCE = re.compile(r"\$\{([^${}:]+)\}")  # ${a.b}: another key of the recipe (not a resolver such as oc.env)


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


def through_references(strings: Mapping[str, str]) -> dict[str, str]:
    """Of `strings` (dotted path -> raw string holding `${...}`), those that read the environment directly
    or through a chain of references to keys that do."""
    env = {path: raw for path, raw in strings.items() if "oc.env:" in raw}
    grew = True
    while grew:
        grew = False
        for path, raw in strings.items():
            if path not in env and any(expression_behind(ref.strip(), env) for ref in REFERENCE.findall(raw)):
                env[path], grew = raw, True
    return env
