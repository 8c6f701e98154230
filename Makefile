# The two set-up commands of the README: `make demo` and `make test`.
# Both install everything they need on a fresh Debian 12 machine (as root) and reuse it afterwards.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test test-calendar setup system-packages sandbox s3-server lint clean

demo: setup sandbox
	$(BIN)/telecrm demo $(DEMO_ARGS)

# Test processes in parallel: two per core and one more (each has its own sandbox PBX and
# servers). A test process waits about half its time (real calls, browsers, servers
# starting), so one per core leaves the processor idle half the run; the files with calls
# and browsers go first, and with two per core the first minutes still left most of a
# core idle while they all waited at once (tests/README.md, "Speed").
JOBS ?= $(shell echo $$(( 2 * $$(nproc) + 1 )))

# The tests whose answers depend on the date also run at one of the moments where days, months
# and years turn (Moscow time): just after midnight on 1 January, late on the last day
# of a month, and on 29 February. Each moment is a pinned clock (tests/support/clock.py).
CALENDAR_MOMENTS := 2027-01-01T00:20:00+03:00 2027-01-31T23:50:00+03:00 2028-02-29T12:00:00+03:00

# Bytecode is cached even where the environment says not to: every test process and
# every `telecrm` command a test starts would compile the whole project again.
test: export PYTHONDONTWRITEBYTECODE =
test: setup sandbox s3-server
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --durations=25 \
	  $(foreach at,$(CALENDAR_MOMENTS),--calendar-at $(at)) $(PYTEST_ARGS)

# Only the date-sensitive tests, at those moments (one pytest run holds every test once
# per moment); `make test` already runs them there.
test-calendar: export PYTHONDONTWRITEBYTECODE =
test-calendar: setup
	$(BIN)/python -m pytest -q -n $(JOBS) -m "calendar and not asterisk and not s3 and not postgres" \
	  $(foreach at,$(CALENDAR_MOMENTS),--clock-at $(at))

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
	$(BIN)/python -m tests.support.s3_server build

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
