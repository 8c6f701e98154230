# The two set-up commands of the README: `make demo` and `make test`.
# Both install everything they need on a fresh Debian 12 machine (as root) and reuse it afterwards.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test setup system-packages sandbox s3-server lint clean

demo: setup sandbox
	$(BIN)/telecrm demo $(DEMO_ARGS)

test: setup sandbox s3-server
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system-packages $(STAMP)

system-packages:
	@scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Builds (once, cached outside the repository) the Debian sid root holding Asterisk 22.
sandbox: setup
	$(BIN)/python -m asterisk_conf.sandbox build

# Builds (once, cached outside the repository) the Debian sid root holding Ceph's radosgw,
# the real S3 server of the recordings tests.
s3-server: setup
	$(BIN)/python -m tests.s3_server build

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
