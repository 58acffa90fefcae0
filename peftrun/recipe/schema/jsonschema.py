"""The JSON Schema of a recipe, for editors (yaml-language-server) and `peftrun schema`.

It is derived from the pydantic models and shaped for files checked one at a time, as editors do:

- nothing is required: a recipe that `extends` a base, and the base itself, are partial files
  (`peftrun validate` checks the whole chain); unknown keys and wrong types stay errors at every depth;
- a discriminated section (`peft.method`, `trainer.type`, `launch.strategy`) is checked against the
  arm its tag selects (if/then), so an error names the key (`'lora_alpah' was unexpected`) instead of
  "not valid under any of the given schemas"; without its tag (a partial file) it accepts the keys
  of any arm;
- `null` stays allowed where a section or value may be null (a recipe may switch off a base's section);
- a number or boolean may be written as an interpolation (`${oc.env:MACHINE_RANK,0}`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from peftrun.recipe.schema.bounds import BOUNDS
from peftrun.recipe.schema.recipe import Recipe
from peftrun.recipe.schema.sweep import SweepSection
from peftrun.recipe.schema.trainer import TrainerSection
from peftrun.recipe.shipped import SECTION_TAGS, shipped_base_tags, shipped_dir


SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"
# No description of its own: editors show the first description they meet on hover, and that must be the field's.
INTERPOLATION = {"type": "string", "pattern": r"^\$\{.+\}$"}


class _Shaper:
    """Shapes pydantic's schema nodes for partial files (see the module docstring)."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs  # pydantic's definitions, read for the unions' arms
        self.added: dict[str, Any] = {}  # the Any<Section> definitions for sections without their tag
        self.arms: dict[str, dict[Any, dict[str, Any]]] = {}  # tag -> its value -> the arm ($ref) it selects

    def target(self, node: dict[str, Any]) -> dict[str, Any]:
        return self.defs[node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node

    def tag_property(self, arms: list[dict[str, Any]]) -> str | None:
        """The property whose `const` tells the arms of a union apart, if there is one."""
        if len(arms) < 2 or not all("$ref" in arm for arm in arms):
            return None
        targets = [self.target(arm) for arm in arms]
        common = set.intersection(*(set(t.get("properties", {})) for t in targets))
        tagged = [p for p in sorted(common) if all("const" in t["properties"][p] for t in targets)]
        return tagged[0] if tagged else None

    def any_arm(self, arms: list[dict[str, Any]]) -> dict[str, Any]:
        """The keys of every arm (a partial section without its tag): unknown keys are still refused."""
        merged: dict[str, dict[str, Any]] = {}  # key -> {shaped schema (as JSON): a $ref to it in its arm}
        for arm in arms:
            for name, prop in self.target(arm).get("properties", {}).items():
                ref = {"$ref": f"{arm['$ref']}/properties/{name}"}  # JSON pointer: no second copy of the field
                merged.setdefault(name, {}).setdefault(json.dumps(self.node(prop), sort_keys=True), ref)
        properties = {name: next(iter(refs.values())) if len(refs) == 1 else {"anyOf": list(refs.values())}
                      for name, refs in merged.items()}
        return {"type": "object", "additionalProperties": False, "properties": properties}

    def discriminated(self, node: dict[str, Any], tag: str) -> dict[str, Any]:
        arms = node.pop("oneOf")
        node.pop("discriminator", None)
        values = [self.target(arm)["properties"][tag]["const"] for arm in arms]
        self.arms[tag] = dict(zip(values, arms))
        name = f"Any{str(node.get('title', tag.title())).replace(' ', '')}"
        self.added[name] = self.any_arm(arms)
        node["type"] = "object"
        node["properties"] = {tag: {"enum": values, "description": f"Selects the kind of section: {', '.join(map(str, values))}."}}
        node["allOf"] = [
            {"if": {"type": "object", "required": [tag], "properties": {tag: {"const": value}}}, "then": arm}
            for value, arm in zip(values, arms)
        ] + [{"if": {"type": "object", "not": {"required": [tag]}}, "then": {"$ref": f"#/$defs/{name}"}}]
        return node

    def node(self, node: Any) -> Any:
        """One schema node, children first."""
        if isinstance(node, list):
            return [self.node(item) for item in node]
        if not isinstance(node, dict):
            return node
        for arm in node.get("anyOf", []):  # an optional union (`peft: ... | None`) is named by its field
            if isinstance(arm, dict) and "oneOf" in arm and "title" in node:
                arm.setdefault("title", node["title"])
        node = {key: value if key in ("const", "default", "enum") else self.node(value) for key, value in node.items()}
        node.pop("required", None)
        tag = self.tag_property(node["oneOf"]) if "oneOf" in node else None
        if tag:
            return self.discriminated(node, tag)
        arms = node.get("anyOf", [])
        if {"type": "null"} in arms and len(arms) == 2:
            return _nullable(node)
        if arms:  # a named value (`all-linear`) before the general form: editors report the first arm's error
            node["anyOf"] = sorted(arms, key=lambda arm: not (isinstance(arm, dict) and "enum" in arm))
        if node.get("type") in ("integer", "number", "boolean") and "const" not in node and "enum" not in node:
            return _interpolable(node)
        return node


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """anyOf [X, null] -> "if not null, then X": errors come from X itself."""
    arms = node.pop("anyOf")
    (inner,) = [arm for arm in arms if arm != {"type": "null"}]
    node.update({"if": {"not": {"type": "null"}}, "then": inner})
    return node


def _interpolable(node: dict[str, Any]) -> dict[str, Any]:
    """A number or boolean that may also be written as `${...}`: an interpolation passes, anything else
    is checked as before (so a wrong value reads "'long' is not of type 'integer'")."""
    kept = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
    return {**kept, "if": {"$ref": "#/$defs/Interpolation"}, "then": {}, "else": node}


def _numeric(node: Any) -> dict[str, Any] | None:
    """The node that says `type: number|integer` inside a field's schema (interpolable, nullable or not)."""
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer"):
            return node
        children = [v for k, v in node.items() if k in ("else", "then", "anyOf")]
    elif isinstance(node, list):
        children = node
    else:
        return None
    return next((found for child in children if (found := _numeric(child)) is not None), None)


def _with_bounds(defs: dict[str, Any]) -> None:
    """The ranges of recipe/schema/bounds.py on every trainer type's fields, so editors flag them too."""
    for section in get_args(get_args(TrainerSection)[0]):
        arm = defs[section.__name__]
        for name, bound in BOUNDS.items():
            target = _numeric(arm.get("properties", {}).get(name))
            if target is None:
                continue
            if bound.unless is None:
                target.update(bound.json)
                continue
            lifted = {"anyOf": [{"not": {"required": [bound.unless]}}, {"properties": {bound.unless: {"maximum": 0}}}]}
            arm.setdefault("allOf", []).append({"if": lifted, "then": {"properties": {name: {**target, **bound.json}}}})


def _shipped_base_tags(arms: dict[str, dict[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    """A file that extends one shipped base and leaves out a section's tag gets the base's arm for that section
    (`extends: peftrun:sft-lora` + `peft: {alpha: 32}` is checked as LoRA, where `alpha` is unknown)."""
    rules = []
    for name, tags in shipped_base_tags().items():
        extends = {"anyOf": [{"const": name}, {"type": "array", "maxItems": 1, "contains": {"const": name}}]}
        then = {section: {"if": {"type": "object", "not": {"required": [SECTION_TAGS[section]]}},
                          "then": arms[SECTION_TAGS[section]][value]}
                for section, value in tags.items() if value in arms.get(SECTION_TAGS[section], {})}
        if then:
            rules.append({"if": {"type": "object", "required": ["extends"], "properties": {"extends": extends}},
                          "then": {"properties": then}})
    return rules


def recipe_json_schema() -> dict[str, Any]:
    raw = Recipe.model_json_schema()
    shaper = _Shaper(raw.pop("$defs"))
    defs = {name: shaper.node(node) for name, node in shaper.defs.items()}
    _with_bounds(defs)
    schema = shaper.node(raw)
    schema["allOf"] = _shipped_base_tags(shaper.arms)
    schema["$defs"] = dict(sorted({**defs, **shaper.added, "Interpolation": INTERPOLATION}.items()))
    schema["$schema"] = SCHEMA_URL
    schema["title"] = "peftrun recipe"
    return schema


def sweep_json_schema() -> dict[str, Any]:
    """A sweep file's schema: a recipe's, and its `sweep:` section (recipe/schema/sweep.py)."""
    schema = recipe_json_schema()
    raw = SweepSection.model_json_schema()
    shaper = _Shaper(raw.pop("$defs", {}))
    schema["$defs"].update({name: shaper.node(node) for name, node in shaper.defs.items()})
    schema["$defs"]["SweepSection"] = shaper.node(raw)
    schema["properties"]["sweep"] = {"$ref": "#/$defs/SweepSection"}
    schema["title"] = "peftrun sweep"
    return schema


def recipe_json_schema_text() -> str:
    return json.dumps(recipe_json_schema(), indent=1, sort_keys=True) + "\n"


def sweep_json_schema_text() -> str:
    return json.dumps(sweep_json_schema(), indent=1, sort_keys=True) + "\n"


def default_schema_path(name: str = "recipe") -> Path:
    return shipped_dir("schemas") / f"{name}.schema.json"
