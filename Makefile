# fsmcheck: every target installs what it needs first (see `setup`).
PYTHON ?= python3
MODELS := models/vfio_v1.toml models/vfio_v2.toml

.PHONY: all setup verify test table bench clean

all: verify

# Debian's graphviz (the `dot` program, for diagrams) and the Python package
# with its dependencies. Idempotent; re-run after editing pyproject.toml.
.setup.stamp: pyproject.toml
	@if ! command -v dot >/dev/null 2>&1; then \
	  echo "setup: installing Debian's graphviz"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	fi
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

setup: .setup.stamp

# The main job: verify the shipped models on both engines.
verify: setup
	fsmcheck verify $(MODELS)

# The tests (pytest), after set-up.
test: setup
	$(PYTHON) -m pytest -q

# The derived combination tables of every flag set.
table: setup
	fsmcheck table models/vfio_v2.toml

# Benchmarks: engine times with ratios against a baseline measured in the same run.
bench: setup
	$(PYTHON) bench/bench_verify.py

clean:
	rm -rf .setup.stamp .pytest_cache .hypothesis *.egg-info
