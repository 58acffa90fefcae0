#!/usr/bin/env bash
# `make test-min`: the lowest versions pyproject.toml allows, in their own virtualenv (.venv-min), tested on
# the recipe layer and the library objects peftrun builds (tests/recipe, tests/builders). torch stays at the
# constraints.txt pin: it is the only build of torch this machine can install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=.venv-min
lowest=(
  "transformers==5.23.0" "trl==1.16.0" "peft==0.21.0" "accelerate==1.10.1" "datasets==4.7.0"
  "huggingface_hub==1.31.0" "safetensors==0.8.0" "jinja2==3.1.0" "pydantic==2.9.0" "pyyaml==6.0.1" "omegaconf==2.3.0"
  "ruamel.yaml==0.18.0" "jsonschema==4.18.0" "pytest>=8"
)
# The pins above must be the lower bounds pyproject.toml states (a test keeps them in step).
if [ ! -f "$venv/.installed" ]; then
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q -c constraints.txt torch
  "$venv/bin/pip" install -q -c constraints.txt "${lowest[@]}"
  "$venv/bin/pip" install -q --no-deps -e .
  touch "$venv/.installed"
fi
[ $# -gt 0 ] || set -- tests/recipe tests/builders
# Tests marked ci_env compare with what the locked versions generate (field tables, the committed schema).
HF_HUB_OFFLINE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not ci_env" "$@"
