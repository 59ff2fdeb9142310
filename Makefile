# fsmcheck: every target installs what it needs first (see `setup`).
PYTHON ?= python3
MODELS := models/vfio_v1.toml models/vfio_v2.toml

.PHONY: all main setup verify pack check-pack test table kernel mutate bench clean

all: main

# Debian's graphviz (the `dot` program, for diagrams) and linux-source-6.12
# (the kernel C that kernel-walk and driver-arcs are tested on), then the
# Python package with its dependencies. Idempotent.
.setup.stamp: pyproject.toml
	@if ! command -v dot >/dev/null 2>&1 || [ ! -f /usr/src/linux-source-6.12.tar.xz ]; then \
	  echo "setup: installing Debian's graphviz and linux-source-6.12"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz linux-source-6.12 >/dev/null; \
	fi
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

setup: .setup.stamp

# The main job: verify the shipped models on both engines, generate the
# conformance pack, run it against the reference drivers (all four v2 flag
# sets and v1) with its coverage summary, then the mutation score.
main: verify pack mutate

verify: setup
	fsmcheck verify $(MODELS)

pack: setup
	fsmcheck generate $(MODELS) -o generated_tests
	$(PYTHON) -m pytest -q -p no:cacheprovider generated_tests

# Fails when the committed pack is not what the models generate.
check-pack: setup
	fsmcheck generate --check

mutate: setup
	fsmcheck mutate --pack generated_tests

# The tests (pytest), after set-up.
test: setup
	$(PYTHON) -m pytest -q

# The derived combination tables of every flag set.
table: setup
	fsmcheck table models/vfio_v2.toml

# kernel-walk and driver-arcs on Debian's linux-source-6.12 and the NVMe RFC (seed 004).
KSRC := .kernel-src/linux-source-6.12
$(KSRC): | setup
	mkdir -p .kernel-src && tar -C .kernel-src -xf /usr/src/linux-source-6.12.tar.xz \
	  linux-source-6.12/include/uapi/linux/vfio.h linux-source-6.12/drivers/vfio linux-source-6.12/samples/vfio-mdev
kernel: setup $(KSRC)
	fsmcheck kernel-walk $(KSRC)/drivers/vfio/vfio_main.c
	@for d in samples/vfio-mdev/mtty.c drivers/vfio/pci/mlx5/main.c drivers/vfio/pci/qat/main.c \
	  drivers/vfio/pci/hisilicon/hisi_acc_vfio_pci.c drivers/vfio/pci/pds/lm.c; do \
	  fsmcheck driver-arcs $(KSRC)/$$d || exit 1; done
	-fsmcheck driver-arcs ../shared/seeds/004_*.txt

# Benchmarks: engine times with ratios against a baseline measured in the same run.
bench: setup
	$(PYTHON) bench/bench_verify.py

clean:
	rm -rf .setup.stamp .pytest_cache .hypothesis *.egg-info .kernel-src
