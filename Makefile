# Two entry points for a fresh machine: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit provision bench devstack-up devstack-down clean native clean-native

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,native]'
	touch $(STAMP)

# The engine's hot modules compiled with mypyc (projections/engine/native.py); if that fails
# (no C compiler), the engine runs as plain Python and make goes on.
ENGINE_SOURCES := $(addprefix projections/engine/,fx.py pricing.py timeline.py incremental.py native.py build_native.py)
NATIVE := projections/engine/_native.json
$(NATIVE): $(STAMP) $(ENGINE_SOURCES)
	$(BIN)/python projections/engine/build_native.py || echo "mrr: compiling the engine failed; it runs as plain Python" >&2

## Compile the engine with mypyc again (after editing it; make demo/test/bench do it when needed).
native: $(STAMP)
	$(BIN)/python projections/engine/build_native.py

## Remove the compiled engine: it runs as plain Python.
clean-native:
	rm -rf projections/engine/*.so projections/_engine_native__mypyc*.so $(NATIVE) build/native

## Run the main job on the embedded default: a synthetic business, its MRR bridge and KPIs.
demo: $(STAMP) $(NATIVE)
	$(BIN)/mrr demo --out demo-out

## Provision real servers (Kafka jars via Maven, PostgreSQL and Prometheus via apt) and run every test.
test: $(STAMP) $(NATIVE) provision
	$(BIN)/python -m pytest -v

## Only the tests that need no server.
test-unit: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest -m "not kafka and not postgres and not prometheus"

provision:
	bash tests/stack/provision.sh

## The benchmark suite on real servers (bench/suite.py); e.g. make bench BENCH_ARGS="--sizes 100k,1M --readme".
bench: $(STAMP) $(NATIVE) provision
	$(BIN)/python -m bench suite $(BENCH_ARGS)

devstack-up: $(STAMP) provision
	$(BIN)/python -m tests.stack up

devstack-down: $(STAMP)
	$(BIN)/python -m tests.stack down

clean: clean-native
	rm -rf $(VENV) .mrr demo-out .pytest_cache .hypothesis
