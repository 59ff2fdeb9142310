# fsmcheck: every target installs what it needs first (see `setup`).
# Everything runs from a virtual environment (.venv), never the system
# interpreter; constraints.txt pins the versions the tests passed with.
BASE_PYTHON ?= python3
VENV := .venv
PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
DEVICE_MODELS := models/vfio_v1.toml models/vfio_v2.toml
# verify and report also take the orchestration model (N = 2 devices by default)
MODELS := $(DEVICE_MODELS) models/qemu_orchestration.toml

.PHONY: all main setup lock verify report pack check-pack wheel-check test test-fast docs table kernel mutate bench bench-ci bench-memory bench-scale bench-startup bench-pack bench-fleet bench-trace bench-orchestration vm-e2e vm-qemu fuzz fuzz-ci clean vfio-user-e2e

all: main

# Debian's graphviz (the `dot` program, for diagrams), linux-source-6.12
# (the kernel C that kernel-walk and driver-arcs are tested on), chromium
# (the report's browser test), spin and gcc (the Promela cross-check), meson,
# ninja-build, libjson-c-dev, libcmocka-dev and pkg-config (libvfio-user for
# vfio-user-e2e; cmocka because its meson.build requires it); then
# the Python package with its test extras (playwright drives the system
# chromium, jsonschema validates SARIF); then the SARIF 2.1.0 schema from
# npm (Microsoft's @microsoft/jest-sarif ships it). Idempotent.
APT_PACKAGES := graphviz linux-source-6.12 chromium spin gcc meson ninja-build libjson-c-dev libcmocka-dev pkg-config
SARIF_SCHEMA := .tools/sarif-2.1.0-rtm.5.json
.setup.stamp: pyproject.toml constraints.txt
	@if ! command -v dot >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || \
	   ! command -v spin >/dev/null 2>&1 || [ ! -f /usr/src/linux-source-6.12.tar.xz ] || \
	   ! command -v meson >/dev/null 2>&1 || ! pkg-config --exists json-c cmocka 2>/dev/null; then \
	  echo "setup: installing Debian's $(APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@[ -x $(PYTHON) ] || $(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@if [ ! -f $(SARIF_SCHEMA) ]; then \
	  mkdir -p .tools && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 --pack-destination .tools >/dev/null && \
	  tar -xzf .tools/microsoft-jest-sarif-1.0.0-beta.0.tgz -C .tools --strip-components=3 \
	    package/lib/schemas/sarif-2.1.0-rtm.5.json && rm .tools/microsoft-jest-sarif-1.0.0-beta.0.tgz; \
	fi
	@touch $@

setup: .setup.stamp

# The main job: verify the shipped models on both engines, write the review
# report and diagrams, generate the conformance pack, run it against the
# reference drivers (all four v2 flag sets and v1) with its coverage summary
# and JUnit XML, then the mutation score.
main: verify report pack mutate

verify: setup
	fsmcheck verify $(MODELS) --sarif verify.sarif

# report.html (self-contained) and diagrams/*.svg for the shipped models.
report: setup
	fsmcheck report $(MODELS) -o report.html --diagrams diagrams

pack: setup
	fsmcheck generate $(DEVICE_MODELS) -o generated_tests
	$(PYTHON) -m pytest -q -p no:cacheprovider generated_tests --junitxml=pack-junit.xml

# Fails when the committed pack is not what the models generate.
check-pack: setup
	fsmcheck generate --check

mutate: setup
	fsmcheck mutate --pack generated_tests

# fsmcheck as an installed tool: build the wheel (python -m build: sdist, then
# the wheel from it; the shipped models go in as package data), install it
# into a fresh virtual environment outside the checkout, and from a temporary
# directory run `fsmcheck models`, `fsmcheck verify vfio_v1 vfio_v2`, check
# that the installed tool generates the committed pack byte for byte, and run
# that pack against the reference drivers, `fsmcheck rules` (the shipped
# pack's rules, no checkout) and `fsmcheck run-pack --reference` (the
# built-in reference device: no VFIO device in CI);
# then `pipx install` of the same wheel. Nothing is left behind (the
# temporary directory is removed). About 1 minute.
wheel-check: setup
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "wheel-check: in $$tmp"; \
	$(PYTHON) -m build --outdir "$$tmp/dist" . >"$$tmp/build.log" 2>&1 || { cat "$$tmp/build.log"; exit 1; }; \
	wheel=$$(ls "$$tmp"/dist/*.whl); echo "wheel-check: built $$wheel"; \
	$(BASE_PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt "$$wheel"; \
	cp -r generated_tests "$$tmp/pack"; \
	cd "$$tmp"; \
	venv/bin/fsmcheck models; \
	venv/bin/fsmcheck verify -q vfio_v1 vfio_v2; \
	venv/bin/fsmcheck generate --check -o pack; \
	venv/bin/python -m pytest -q -p no:cacheprovider --fsmcheck-seed=0 pack; \
	venv/bin/fsmcheck rules >/dev/null; \
	venv/bin/fsmcheck run-pack --reference -q --seed 0 -o run-pack; test -s run-pack/results.html; \
	PIPX_HOME="$$tmp/pipx" PIPX_BIN_DIR="$$tmp/pipx-bin" PIPX_MAN_DIR="$$tmp/pipx-man" \
	  $(CURDIR)/$(VENV)/bin/pipx install --quiet "$$wheel"; \
	"$$tmp/pipx-bin/fsmcheck" verify -q vfio_v1; \
	echo "wheel-check: the wheel works installed (venv and pipx) outside the checkout"

# Re-pin constraints.txt to what the environment has now (after a deliberate upgrade).
lock: setup
	$(PYTHON) -m pip freeze --exclude-editable > constraints.txt

# The tests (pytest), after set-up: the full gate.
test: setup
	$(PYTHON) -m pytest -q

# The edit loop (under 90 s): the tests not marked slow, vm, kernel or browser
# (markers in pyproject.toml), on two pytest-xdist workers.
test-fast: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider -n 2 -m "not slow and not vm and not kernel and not browser"

# The manual (docs/, MkDocs) into build/site, strict: a warning fails. The
# CLI reference comes from the click commands (mkdocs-click), the model-format
# keys from the loader, the measured figures from build/bench/ (make bench).
docs: setup
	$(PYTHON) -m mkdocs build --strict --quiet
	@echo "docs: built build/site/index.html"

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

# The v2 pack against mtty on Debian's Linux 6.12 booted in QEMU, through
# real ioctls (fsmcheck.adapters.linux). Installs its own Debian packages,
# builds mtty.ko and an initramfs under build/vm; results in build/vm/results.
vm-e2e: setup
	$(PYTHON) vm/e2e.py

# Real QEMU 10.0.2 (Debian bookworm-backports, unpacked under build/vm/qemu10)
# migrations in one boot of the project's VM, every scenario of
# vm/qemu_guest.py (file:, live unix:, default options, four devices, multifd,
# cancel in pre-copy, paused source, cancel of a paused VM, destination load
# failure with and without return-path, and the fault-injected mtty of
# vm/mtty-fault-injection.patch). Each scenario states how it must end and
# which check-trace findings each of its logs must get; fails otherwise.
# Results, verdicts.md and check-trace.json in build/vm/results/qemu.
vm-qemu: setup
	$(PYTHON) vm/qemu.py

# Benchmarks (issue 14), each figure with a ratio against a baseline measured in
# the same run (the machine is noisy; compare ratios, not times). About 20
# minutes: the shipped models on both engines; the engines on models of
# N = 8..128 states and generate at N = 128 (baseline: networkx); start-up and
# verify v1 against SPIN (baseline: SPIN, and `python -c pass`); the reference
# adapter's opens, the pack through the harness and fsmcheck mutate (baselines:
# deriving per open, a bare pass-through, one plain pack run); the VM pack on
# 1, 2 and 4 mtty workers (baseline: 1 worker); peak RSS of verify on chains of
# 125..500 states and scale models (baseline: python -c pass; growth per
# doubling, 4x = quadratic; fails at 1 GiB for 500 states).
# Each script's output is also written to build/bench/NAME.txt (with the
# command and the date), which `make docs` shows as the measured figures.
BENCH_OUT := build/bench
RECORD := $(PYTHON) bench/record.py $(BENCH_OUT)
bench: setup
	$(RECORD) bench/bench_verify.py
	$(RECORD) bench/bench_scale.py
	$(RECORD) bench/bench_startup.py
	$(RECORD) bench/bench_pack.py
	$(RECORD) bench/bench_fleet.py --seed 1234
	$(RECORD) bench/bench_memory.py
	$(MAKE) --no-print-directory bench-orchestration

# The bounded form CI runs (about 2 minutes): the same measurements, small.
bench-ci: setup
	$(RECORD) bench/bench_verify.py --repeat 1
	$(RECORD) bench/bench_scale.py --states 8 16 32 --repeat 1 --generate 32
	$(RECORD) bench/bench_startup.py --repeat 2
	$(RECORD) bench/bench_pack.py --rounds 1 --no-mutate --seconds 1
	$(RECORD) bench/bench_memory.py --states 64 128 --scale 16 32

bench-scale: setup
	$(RECORD) bench/bench_scale.py

bench-memory: setup
	$(RECORD) bench/bench_memory.py

bench-startup: setup
	$(RECORD) bench/bench_startup.py

bench-pack: setup
	$(RECORD) bench/bench_pack.py

# A fleet in the VM: the v2 pack on 1, 2 and 4 mtty mdevs, one pytest-xdist worker
# (and vCPU) each, same seed; speed-ups against the 1-worker run of the same invocation.
bench-fleet: setup
	$(RECORD) bench/bench_fleet.py

# check-trace throughput (lines/s) on a synthetic 10^6-line QEMU log built from
# the real trace, with ratios against raw line reading measured in the same run.
bench-trace: setup
	$(RECORD) bench/bench_trace.py

# N = 2..32 devices (F = 0) and 2..16 (F = 1): the explicit engine (counted
# product, partial-order reduction) and z3, beside SPIN's pan on the Promela
# export for N <= 8 (pan's C compile dominates: about 10-25 minutes on a loaded machine)
bench-orchestration: setup
	$(RECORD) bench/bench_orchestration.py --devices 2,4,8,12,16,32 --failures 0,1 --max-devices-with-failures 16

# The verifier core under fuzzing (fuzz/, hypothesis-driven): >= 10^4 random
# valid models through both engines (0 disagreements, 0 engine errors, 0
# hangs), >= 10^5 mutated shipped models through the loader (only
# ModelError), and 2 x 10^4 mutated real traces through check-trace (exit
# 0/1/2 only, lines inside the file, a pipe's verdict the file's); then
# (fuzz/robust.py) diff pairs, mutated errata files and command lines with odd
# option values (exits 0/1/2 only, no traceback); figures in docs/fuzz.md.
# Seeded (FUZZ_SEED=N replays a run; default random, printed),
# bounded by FUZZ_SECONDS per campaign; failing inputs go to fuzz-failures/.
FUZZ_SEED ?=
FUZZ_SECONDS ?= 7200
FUZZ_JOBS ?= 2
fuzz: setup
	$(PYTHON) -m fuzz all $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --models 10000 --inputs 100000 --traces 20000 \
	  --pairs 1000 --errata 20000 --command-lines 5000 \
	  --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) --progress
	$(PYTHON) -m fuzz.orchestration all $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --inputs 12000 \
	  --seconds $(FUZZ_SECONDS)

# The bounded form CI runs: fixed seed, 80 models, 3,000 loader inputs, 300
# mutated traces (every 4th also through a pipe), 40 diff pairs, 1,000 errata
# files and 200 command lines (about 3 minutes: 143 s measured).
fuzz-ci: setup
	$(PYTHON) -m fuzz all --seed 13 --models 80 --inputs 3000 --traces 300 --pairs 40 --errata 1000 \
	  --command-lines 200 --seconds 300 --batch 40
	$(PYTHON) -m fuzz.orchestration loader --seed 13 --inputs 1000 --seconds 120
	$(PYTHON) -m fuzz.orchestration engines --seed 13 --inputs 2 --seconds 180 --slow 60

clean:
	rm -rf fuzz-failures .venv .setup.stamp .pytest_cache .hypothesis *.egg-info .kernel-src .tools artifacts diagrams build \
	  report.html verify.sarif pack-junit.xml

# The v2 pack against vfio-user devices (issue 20): builds libvfio-user at
# efd091b and 4d9f663 from ../shared/third_party/libvfio-user (unmodified
# tarballs; meson + ninja, under build/vfio-user), fsmcheck's C test device
# against each and the patched samples/server; runs `fsmcheck run-pack
# --vfio-user-server` on the three at once and prints the revision x rule x
# verdict table. Fails on any failure or crash that vfio-user/errata/*.toml
# does not explain, on a hang, or past 3 minutes.
vfio-user-e2e: setup
	$(PYTHON) vfio-user/e2e.py
