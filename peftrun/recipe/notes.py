"""What resolution learns on the way: provenance of filled values, problems, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from peftrun.errors import Problem
from peftrun.recipe.redact import shown
from peftrun.recipe.schema import Recipe


@dataclass
class Notes:
    """What resolution learns on the way: provenance of filled values, problems, warnings."""

    recipe: Recipe
    provenance: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fill(self, path: str, rule: str) -> None:
        self.provenance[path] = rule

    def refuse(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.where(path), path, message))

    def shown(self, path: str, value: object) -> str:
        """repr(value) for a message, or a placeholder when it was read from the environment."""
        return shown(value, path, self.recipe.env_expressions)

    def where(self, path: str) -> str:
        return self.recipe.where(path)

    def given(self, path: str) -> bool:
        return path in self.recipe.sources
