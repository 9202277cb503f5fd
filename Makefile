# Two entry points for a fresh machine: `make demo` and `make test`. Both are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned versions the benchmarks were measured with; `make demo CONSTRAINTS=` installs without pins.
CONSTRAINTS ?= constraints/cpu-py311.txt
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_env.sh $(CONSTRAINTS)
	CONSTRAINTS="$(CONSTRAINTS)" bash scripts/install_env.sh $(VENV)
	@touch $(STAMP)

## demo: run the main jobs on the bundled default models, fully offline.
demo: install
	HF_HUB_OFFLINE=1 $(PY) -m jepa_core.demo --output-dir runs/demo

## test: the whole test suite (bundled-model integration tests included), slowest tests listed.
test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

## test-fast: unit tests on tiny random models only.
test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not bundled and not slow and not multiprocess"

## bench: list the benchmarks. Each runs for minutes to an hour on its own; BENCHMARKS.md gives the
## command that produced each recorded figure, and `$(PY) -m bench.NAME --help` its options.
bench:
	@echo "Benchmarks (run one: HF_HUB_OFFLINE=1 $(PY) -m bench.NAME; commands and results in BENCHMARKS.md):"
	@for file in bench/*.py; do echo "  bench.$$(basename $$file .py)"; done

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
