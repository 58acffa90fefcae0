# Two commands do everything on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL := models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# The YAML language server editors run; tests/recipe/schema drive it over LSP.
YLS_VERSION := 2.0.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test test-fast test-min wheel-check lock quickstart bench clean slurm sky-venv

# torch first, from the pin in constraints.txt (a CPU build on this machine; any other spec pulls CUDA).
# Then everything else at the versions CI was last run with (requirements-lock.txt, `make lock`).
$(STAMP): pyproject.toml constraints.txt requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -c requirements-lock.txt -e ".[test]"
	npm install --prefix .tools/yls --no-audit --no-fund --silent yaml-language-server@$(YLS_VERSION)
	touch $(STAMP)

setup: $(STAMP)

$(MODEL): | $(STAMP)
	PY=$(PY) bash scripts/fetch_model.sh

# The Slurm tests need a local Slurm (installed and started as root by scripts/setup_slurm.sh; quick when running).
slurm:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/setup_slurm.sh; else echo "make slurm: not root, the local Slurm is not started (its tests fail in CI, skip elsewhere)"; fi

# SkyPilot's own parser checks the tasks `peftrun submit --to skypilot` writes; it lives in a venv of its own
# because SkyPilot pins click<=8.1 (docs/cluster.md).
SKY_VENV := .sky-venv
$(SKY_VENV)/.installed:
	$(PYTHON) -m venv $(SKY_VENV)
	$(SKY_VENV)/bin/pip install -q "skypilot==0.14.1"
	touch $@

sky-venv: $(SKY_VENV)/.installed

test: $(STAMP) $(MODEL) $(SKY_VENV)/.installed slurm
	PEFTRUN_SKY_PYTHON=$(CURDIR)/$(SKY_VENV)/bin/python $(PY) -m pytest -q

# The tests that build or load no model (the recipe layer, the CLI's light commands): well under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The lowest dependency versions pyproject.toml allows, in .venv-min (docs in README: Install).
test-min:
	PYTHON=$(PYTHON) bash scripts/test_min.sh

# The wheel as a user installs it: a fresh virtualenv, no extras, init / validate / explain / a tiny run.
wheel-check: $(STAMP)
	$(PY) scripts/wheel_check.py

# Re-pin requirements-lock.txt to what the test environment has now (after changing pyproject.toml).
lock: $(STAMP)
	{ head -n 2 requirements-lock.txt; $(PY) -m pip freeze --exclude-editable | grep -v -e '^torch==' -e '^peftrun'; } > requirements-lock.tmp
	mv requirements-lock.tmp requirements-lock.txt

# Train the quickstart recipe on SmolLM2-135M-Instruct (replacing the last demo run), then compare
# the base model and the tuned one on the held-out split.
quickstart: $(STAMP) $(MODEL)
	$(PY) -m peftrun recipes/quickstart.yaml --overwrite
	$(PY) -m peftrun eval runs/quickstart

bench: $(STAMP)
	$(PY) bench/validate_speed.py
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) .venv-min .tools $(SKY_VENV) runs .peftrun
