"""What a `${...}` may do in a recipe, checked before OmegaConf resolves anything (docs/trust.md).

Allowed: plain references to the recipe's own keys (`${name}`, `${.x}`, `${..x}`), `${oc.env:VAR,default}`
(its value is a secret: never printed, never written) and `${oc.select:key,default}` on the recipe's own
keys. Any other resolver (`oc.create`, `oc.decode`, custom ones), a resolver or key name that is itself an
interpolation, and a value that would expand beyond MAX_EXPANSION characters are refused, located.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from peftrun.errors import Problem, RecipeError

ALLOWED_RESOLVERS = ("oc.env", "oc.select")
MAX_EXPANSION = 1_000_000  # characters (and nodes) one resolved value may hold


@dataclass
class Expr:
    """One string holding interpolations: the keys it reads (absolute dotted paths) and the variables."""

    raw: str
    refs: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)


def _absolute(key: str, path: str) -> str:
    """A reference as written inside the string at `path` (`a.b[0]`, `.x`, `..x`) as an absolute dotted path."""
    key = key.replace("[", ".").replace("]", "")
    if not key.startswith("."):
        return key
    depth = len(key) - len(key.lstrip("."))
    parent = path.split(".")[:-depth]
    return ".".join([*parent, key.lstrip(".")])


def _walk(node: Any, path: str, expr: Expr, refuse: list[str]) -> None:
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as P
    from omegaconf.vendor.antlr4 import ParserRuleContext

    if isinstance(node, P.InterpolationNodeContext):
        key = node.getText()[2:-1]
        if "${" in key:
            refuse.append(f"{node.getText()!r}: a key name cannot be an interpolation")
            return
        expr.refs.append(_absolute(key, path))
        return
    if isinstance(node, P.InterpolationResolverContext):
        name = node.resolverName().getText()
        args = node.sequence().element() if node.sequence() else []
        if "${" in name or name not in ALLOWED_RESOLVERS:
            refuse.append(f"{node.getText()!r}: the resolver {name!r} is not allowed (only "
                          f"{', '.join(ALLOWED_RESOLVERS)} and plain references to the recipe's keys)")
            return
        first = args[0].getText() if args else ""
        if "${" in first:
            refuse.append(f"{node.getText()!r}: the name {name} reads cannot be an interpolation")
            return
        (expr.env if name == "oc.env" else expr.refs).append(first if name == "oc.env" else _absolute(first, path))
        for arg in args[1:]:
            _walk(arg, path, expr, refuse)
        return
    if isinstance(node, ParserRuleContext):
        for child in node.getChildren():
            _walk(child, path, expr, refuse)


def scan(strings: Mapping[str, str], sources: Mapping[str, str]) -> dict[str, Expr]:
    """Dotted path -> Expr for every interpolated string; RecipeError naming each one that is not allowed."""
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError

    out: dict[str, Expr] = {}
    problems: list[Problem] = []
    for path, raw in strings.items():
        expr, refuse = Expr(raw), []
        try:
            _walk(grammar_parser.parse(raw), path, expr, refuse)
        except GrammarParseError:
            refuse.append(f"{raw!r} is not a valid interpolation")
        problems += [Problem(sources.get(path, ""), path, f"interpolation refused: {why}") for why in refuse]
        out[path] = expr
    if problems:
        raise RecipeError(problems)
    return out


def _node(data: Any, path: str) -> Any:
    for key in path.split(".") if path else []:
        if isinstance(data, Mapping) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def check_expansion(data: Any, exprs: Mapping[str, Expr], sources: Mapping[str, str]) -> None:
    """Refuse, before resolving, a value whose references would expand it beyond MAX_EXPANSION (a bomb)."""
    sizes: dict[str, int] = {}

    def size(path: str, node: Any) -> int:
        if path in sizes:
            return sizes[path]
        sizes[path] = 0  # a cycle counts nothing here: OmegaConf reports it
        if isinstance(node, Mapping):
            total = 1 + sum(size(f"{path}.{k}" if path else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            total = 1 + sum(size(f"{path}.{i}" if path else str(i), v) for i, v in enumerate(node))
        elif path in exprs:
            expr = exprs[path]
            total = len(expr.raw) + sum(len(os.environ.get(v, "")) for v in expr.env)
            total += sum(size(ref, _node(data, ref)) for ref in expr.refs)
        else:
            total = len(str(node))
        sizes[path] = min(total, 10 * MAX_EXPANSION)
        return sizes[path]

    for path in exprs:
        if size(path, _node(data, path)) > MAX_EXPANSION:
            raise RecipeError(Problem(sources.get(path, ""), path, (
                f"interpolation refused: its references expand to more than {MAX_EXPANSION:,} characters")))


def env_derived(exprs: Mapping[str, Expr]) -> dict[str, str]:
    """Dotted path -> raw string, for every value read from the environment directly or through references
    (absolute, relative or oc.select) to keys whose value (or a value inside or around it) is."""
    from peftrun.recipe.redact import expression_behind

    env = {path: e.raw for path, e in exprs.items() if e.env}
    grew = True
    while grew:
        grew = False
        for path, expr in exprs.items():
            if path not in env and any(expression_behind(ref, env) for ref in expr.refs):
                env[path], grew = expr.raw, True
    return env


def env_values(exprs: Mapping[str, Expr]) -> list[str]:
    """The values of every environment variable the recipe reads (secrets to mask)."""
    return [os.environ[v] for e in exprs.values() for v in e.env if os.environ.get(v)]
