# Two entry points for a fresh machine: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit provision bench devstack-up devstack-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run the main job on the embedded default: a synthetic business, its MRR bridge and KPIs.
demo: $(STAMP)
	$(BIN)/mrr demo --out demo-out

## Provision real servers (Kafka jars via Maven, PostgreSQL and Prometheus via apt) and run every test.
test: $(STAMP) provision
	$(BIN)/python -m pytest -v

## Only the tests that need no server.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not kafka and not postgres and not prometheus"

provision:
	bash tests/stack/provision.sh

## The benchmark suite on real servers (bench/suite.py); e.g. make bench BENCH_ARGS="--sizes 100k,1M --readme".
bench: $(STAMP) provision
	$(BIN)/python -m bench suite $(BENCH_ARGS)

devstack-up: $(STAMP) provision
	$(BIN)/python -m tests.stack up

devstack-down: $(STAMP)
	$(BIN)/python -m tests.stack down

clean:
	rm -rf $(VENV) .mrr demo-out .pytest_cache .hypothesis
