# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
CONFIG  ?= config.toml
STAMP   := $(VENV)/.installed

.PHONY: run test bench fuzz venv system-deps clean

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
	$(BIN)/python benchmarks/riskbased.py --update BENCHMARKS.md
	$(BIN)/python benchmarks/burst.py
	$(BIN)/python benchmarks/archive_hour.py
	$(BIN)/python benchmarks/capture_replay.py

# Every parser entry point (tests/fuzz/entry_points.py), 100,000 generated and mutated
# inputs each, through parse -> engine; writes BENCHMARKS.md "## Fuzzing" (~10 min on one core).
# Then a coverage-guided atheris pass (libFuzzer mutating the input bytes; skipped with a note
# when atheris cannot be installed).
fuzz: venv
	$(BIN)/pip install -q -e '.[test,nats,fuzz]' || echo "atheris did not install: its pass is skipped"
	$(BIN)/python -m tests.fuzz.run --n 100000
	$(BIN)/python -m tests.fuzz.atheris_run --runs 20000

clean:
	rm -rf $(VENV) build *.egg-info
