"""The light side: a recipe file becomes a resolved Plan with provenance.

schema (one pydantic model per section), loader (safe YAML, extends, overrides,
interpolation, source map), validation, the pure resolver, defaults and rules,
explain. Imports none of torch, transformers, peft, trl, bitsandbytes, datasets
or accelerate (tests/recipe/test_layers.py checks it).
"""
