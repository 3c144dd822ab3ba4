# Two commands set everything up on a fresh machine (see README):
#   make demo   - create .venv, install, run the demo on the embedded stack
#   make test   - create .venv, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ORACLE := tests/lorawan_node/node_modules/.installed
# Extra arguments for the demo, e.g. make demo ARGS="--hours 24 --json"
ARGS ?=
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k lorawan"
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Second LoRaWAN implementation (npm lora-packet) the crypto tests compare against.
$(ORACLE): tests/lorawan_node/package-lock.json
	npm ci --prefix tests/lorawan_node --no-audit --no-fund --loglevel=error
	touch $@

demo: $(INSTALLED)
	$(BIN)/livinglab demo $(ARGS)

test: $(INSTALLED) $(ORACLE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(INSTALLED)
	$(BIN)/python -m bench.payload_codec
	$(BIN)/python -m bench.lorawan_frames

clean:
	rm -rf $(VENV) data firmware/build tests/lorawan_node/node_modules
