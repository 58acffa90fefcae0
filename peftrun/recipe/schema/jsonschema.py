"""The JSON Schema of a recipe, for editors (yaml-language-server) and `peftrun schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftrun.recipe.schema.recipe import Recipe

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def recipe_json_schema() -> dict[str, Any]:
    schema = Recipe.model_json_schema()
    schema["required"] = [key for key in schema["required"] if key != "name"]  # the loader defaults it to the file's stem
    schema["$schema"] = SCHEMA_URL
    schema["title"] = "peftrun recipe"
    return schema


def recipe_json_schema_text() -> str:
    return json.dumps(recipe_json_schema(), indent=1, sort_keys=True) + "\n"


def default_schema_path() -> Path:
    return Path(__file__).resolve().parents[3] / "schemas" / "recipe.schema.json"
