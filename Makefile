# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
CONFIG  ?= config.toml
STAMP   := $(VENV)/.installed

.PHONY: run test bench venv system-deps clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,nats,s3]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests drive for real: promtool (prometheus), headless chromium,
# nats-server, docker-compose (config validation only). Installed only when missing.
system-deps:
	@bash .ci/system-deps.sh

run: venv
	$(BIN)/adlmon run --config $(CONFIG)

test: venv system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Writes each benchmark's section of BENCHMARKS.md (the mechanisms one runs HiGHS at n = 10^5: ~5 min).
bench: venv
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/mechanisms.py --update BENCHMARKS.md
	$(BIN)/python benchmarks/metrics.py --update BENCHMARKS.md
	$(BIN)/python benchmarks/burst.py
	$(BIN)/python benchmarks/archive_hour.py

clean:
	rm -rf $(VENV) build *.egg-info
