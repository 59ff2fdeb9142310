#!/usr/bin/env python3
"""``make vm-e2e``: the v2 conformance pack against mtty on the real kernel.

On a fresh Debian machine (as root) this:

1. installs Debian's ``qemu-system-x86``, ``linux-image-6.12-amd64``,
   ``linux-headers-6.12-amd64``, ``busybox-static``, ``linux-source-6.12``
   (and ``cpio``, ``gcc``, ``make`` to build with);
2. builds ``mtty.ko`` out of tree from ``samples/vfio-mdev/mtty.c`` of
   linux-source-6.12 against the headers (Debian's kernel has no samples;
   reused while the kernel and the source are the same);
3. builds an initramfs (vm/vmimage.py, shared with ``make vm-qemu``):
   busybox, the decompressed modules ``irqbypass``, ``vfio``,
   ``vfio_iommu_type1``, ``mdev`` and ``mtty``, the interpreter of the
   project's virtual environment (``.venv``, pinned by constraints.txt) with
   its standard library, fsmcheck, the packages the pack imports taken from
   that environment (pytest, hypothesis...), the shared-library closure of
   every ELF file packed (extension modules included; the build stops when
   one is missing), and the v2 pack;
4. boots it with QEMU, trying KVM first when ``/dev/kvm`` is usable and
   falling back to TCG when KVM does not reach the init script;
5. inside: loads the modules, creates one mtty mdev per worker through
   sysfs (``--workers N``, default 1; each mdev has its own IOMMU group),
   runs the v2 pack through :mod:`fsmcheck.adapters.linux` on their VFIO
   groups (``--fsmcheck-devices``; with N > 1 ``-n N``: pytest-xdist worker
   gwK drives mdev K, in a VM of N vCPUs, ``--cpus``), and sends the JUnit XML back over
   the serial console (gzip + base64 between markers), with pytest's output
   (and its coverage summary, per mdev and in total) streamed live;
6. writes ``build/vm/results/{junit.xml,console.log,coverage.txt}``, prints
   the summary, and exits with pytest's exit code (1 if the VM gave none).

mtty's known deviations (``vm/mtty-errata.toml``) are passed to the pack with
``--fsmcheck-errata``: they are reported as xfailed with their reasons, and
any other violation fails the run.

Options: ``--seed N`` (the state-machine seed, printed either way),
``--workers N`` (1..8; 1, the default, is the fastest under TCG on this
2-core host: bench/bench_fleet.py), ``--cpus N`` (vCPUs, default one per
worker), ``--profile`` (pytest under cProfile in the VM:
build/vm/results/profile.txt), ``--timeout S`` (the whole VM run),
``--accel {auto,kvm,tcg}``, ``-k EXPR`` (a pytest selection, for debugging).

Guest-side speed (TCG; measured with ``--profile``): every module packed is
byte-compiled at build time (the standard library, the packages, fsmcheck
and the pack) and the pack runs with ``--assert=plain`` (its checks raise
their own messages; the generated tests have no bare ``assert``), so no
process in the VM compiles Python source; the packages sit in the
interpreter's site-packages and hypothesis's constants of fsmcheck's modules
are cached at build time (hypothesis parses every local module's source at
collection: 17 s per process before); ``--capture=sys -p no:logging`` spare
the per-test fd duplication and log capture the pack does not use.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmimage  # noqa: E402
from vmimage import BUILD, RESULTS, ROOT, step  # noqa: E402

MTTY_UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
MAX_WORKERS = 8
#: One mtty mdev per worker (each its own IOMMU group, so its own /dev/vfio/N); the first is MTTY_UUID.
MTTY_UUIDS = [f"{MTTY_UUID[:-4]}{1001 + k}" for k in range(MAX_WORKERS)]
DEFAULT_WORKERS = 1  # fastest under TCG on a 2-core host: see bench/bench_fleet.py
ERRATA = ROOT / "vm" / "mtty-errata.toml"  # mtty's known deviations, xfailed with their reasons
# What the pack imports in the VM; the files they load are packed from .venv.
# jsonschema: the errata file is checked by its schema (fsmcheck.inputs.schema
# imports it when a file is checked, not at import).
PACK_IMPORTS = ["pytest", "_pytest.junitxml", "_hypothesis_pytestplugin", "fsmcheck.pack.plugin",
                "fsmcheck.adapters.linux", "hypothesis.stateful", "hypothesis.strategies", "jsonschema",
                "xdist.plugin", "xdist.remote", "xdist.dsession", "execnet",
                *sorted(p.stem for p in (ROOT / "generated_tests").glob("test_vfio_v2_*.py"))]


def _init_script(seed: int, select: str | None) -> str:
    """The VM's /init: N mtty mdevs (N = ``fsmcheck.workers=N`` on the kernel
    command line, default 1), their VFIO groups listed as ``/dev/vfio/G:UUID``
    in /tmp/fleet.txt, and the pack run on them (``-n N`` with N > 1: one
    mdev per pytest-xdist worker), its JUnit XML sent back on the console."""
    k = f" -k '{select}'" if select else ""
    return vmimage.init_preamble([], "pytest", "PYTHONPATH=/opt/fsmcheck") + f"""workers=1 profile=""
for word in $(cat /proc/cmdline); do
  case $word in
    fsmcheck.workers=*) workers=${{word#fsmcheck.workers=}};;
    fsmcheck.profile=1) profile="-m cProfile -o /tmp/pytest.prof";;
  esac
done
: > /tmp/fleet.txt
n=0
for uuid in {' '.join(MTTY_UUIDS)}; do
  [ $n -lt $workers ] || break
  n=$((n + 1))
  echo $uuid > $types/$type/create || fail "creating mdev $uuid"
  group=$(basename $(readlink /sys/bus/mdev/devices/$uuid/iommu_group))
  [ -c /dev/vfio/$group ] || fail "no /dev/vfio/$group"
  echo "fsmcheck-vm: mtty mdev $uuid ($type) in VFIO group $group"
  echo "/dev/vfio/$group:$uuid" >> /tmp/fleet.txt
done
[ $n -eq $workers ] || fail "$workers workers asked for, at most {MAX_WORKERS} mdevs"
dist=""
[ $workers -gt 1 ] && dist="-p xdist.plugin -n $workers"
echo "fsmcheck-vm: $workers worker(s) on $(grep -c ^processor /proc/cpuinfo) CPU(s)"
cd /pack
start=$(cut -d' ' -f1 /proc/uptime)
python3 $profile -m pytest -p fsmcheck.pack.plugin -p _hypothesis_pytestplugin -p no:cacheprovider $dist \\
  --assert=plain --capture=sys -p no:logging -q -rs --color=no \\
  --fsmcheck-adapter=fsmcheck.adapters.linux:factory --fsmcheck-devices=/tmp/fleet.txt \\
  --fsmcheck-seed={seed} --junitxml=/tmp/junit.xml{k} \\
  --fsmcheck-errata=/pack/mtty-errata.toml \\
  test_vfio_v2_*.py
rc=$?
echo "fsmcheck-vm: pack ran from $start s to $(cut -d' ' -f1 /proc/uptime) s"
if [ -n "$profile" ]; then
  echo "fsmcheck-vm: profile begin"
  python3 -c "import pstats; s = pstats.Stats('/tmp/pytest.prof'); s.sort_stats('cumulative').print_stats(80); s.sort_stats('tottime').print_stats(50)" | gzip | base64
  echo "fsmcheck-vm: profile end"
fi
echo "fsmcheck-vm: junit begin"
gzip -c /tmp/junit.xml | base64
echo "fsmcheck-vm: junit end"
echo "fsmcheck-vm: pytest exit $rc"
poweroff -f
"""


def build_initramfs(release: str, mtty: Path, seed: int, select: str | None) -> Path:
    """The initramfs of the run (any number of workers: the kernel command
    line picks it), at build/vm/initramfs.cpio.gz."""
    stage = BUILD / "initramfs"
    vmimage.base_stage(stage, release, mtty)
    for d in ("pack", "opt/fsmcheck"):
        (stage / d).mkdir(parents=True)
    info = vmimage.probe_environment(PACK_IMPORTS)
    packed = vmimage.stage_python(stage, info, skip_packages={"fsmcheck"}, site=vmimage.site_packages(info))
    step(f"packed {len(packed)} packages from {info['site']} with {info['executable']}: "
         + ", ".join(f"{d} {v}" for d, v in sorted(info["dists"].items())
                     if d.lower() in ("pytest", "hypothesis", "pluggy", "attrs", "sortedcontainers", "pytest-xdist",
                                      "execnet")))
    shutil.copytree(ROOT / "fsmcheck", stage / "opt/fsmcheck/fsmcheck", ignore=shutil.ignore_patterns("__pycache__"))
    for module in sorted((ROOT / "generated_tests").glob("test_vfio_v2_*.py")):
        shutil.copy2(module, stage / "pack" / module.name)
    shutil.copy2(ERRATA, stage / "pack" / ERRATA.name)
    vmimage.byte_compile(stage, info, f"usr/lib/python{info['version']}", "opt", "pack")
    hypothesis_constants(stage / "opt/fsmcheck", stage / "pack" / ".hypothesis")
    gaps = vmimage.missing_libraries(stage)
    if gaps:
        sys.exit("vm-e2e: libraries missing from the initramfs: "
                 + "; ".join(f"{e.relative_to(stage)} needs {', '.join(map(str, libs))}" for e, libs in gaps.items()))
    return vmimage.write_initramfs(stage, _init_script(seed, select), BUILD / "initramfs.cpio.gz")


def hypothesis_constants(package: Path, storage: Path) -> None:
    """Fill hypothesis's cache of constants (``storage``/constants, keyed by
    the SHA-1 of each source) for every module under ``package``, with
    hypothesis's own code run by the venv's interpreter: in the VM each
    pytest process (each xdist worker) would otherwise parse fsmcheck's
    sources at collection to find them. The VM runs in /pack, where
    hypothesis looks for ``.hypothesis``."""
    code = ("import sys, types\n"
            "from hypothesis.internal.constants_ast import constants_from_module\n"
            "for path in sys.argv[1:]:\n"
            "    module = types.ModuleType('m')\n"
            "    module.__file__ = path\n"
            "    constants_from_module(module)\n")
    files = sorted(str(p) for p in package.rglob("*.py"))
    vmimage.run([str(vmimage.venv_python()), "-c", code, *files], cwd=ROOT,
                env=dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=str(storage)))
    step(f"hypothesis constants of {len(files)} fsmcheck modules cached in {storage.relative_to(BUILD)}/constants")


# -- 6. results ------------------------------------------------------------------------
def collect(lines: list[str]) -> tuple[int, bytes | None]:
    """(pytest's exit code, or 1 when the VM gave none; the JUnit XML or None)."""
    code = re.search(r"fsmcheck-vm: pytest exit (\d+)", "\n".join(lines))
    return (int(code.group(1)) if code else 1), vmimage.payload(lines, "junit")


def run_vm(release: str, initrd: Path, accel: str, timeout: float, seed: int, workers: int,
           profile: bool = False, cpus: int | None = None) -> dict:
    """Boot ``initrd`` with ``cpus`` vCPUs (default: ``workers``) and
    ``workers`` pack workers, write
    build/vm/results/{console.log,coverage.txt,junit.xml} and return what
    came back: ``code`` (pytest's exit code, 1 when the VM gave none),
    ``junit`` (bytes or None), ``coverage`` (text or None), ``accel``,
    ``booted`` (seconds to the init script), ``pack`` (seconds the pack ran,
    guest clock), ``wall`` (seconds QEMU ran, host clock), ``text`` (the
    console). With ``profile`` the pytest process (the xdist controller
    when ``workers`` > 1) runs under cProfile and its statistics are written
    to build/vm/results/profile.txt."""
    started = time.monotonic()
    lines, used, booted = vmimage.boot(release, initrd, accel, timeout,
                                       f"fsmcheck.seed={seed} fsmcheck.workers={workers}"
                                       + (" fsmcheck.profile=1" if profile else ""), smp=cpus or workers)
    wall = time.monotonic() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console.log").write_text("\n".join(lines) + "\n")
    code, junit = collect(lines)
    text = "\n".join(lines)
    coverage = re.search(r"-+ fsmcheck coverage -+\n(.*?\nadapter [^\n]*)", text, re.S)
    stats = vmimage.payload(lines, "profile")
    (RESULTS / "profile.txt").unlink(missing_ok=True)
    if stats:
        (RESULTS / "profile.txt").write_bytes(stats)
    for name in ("coverage.txt", "junit.xml"):
        (RESULTS / name).unlink(missing_ok=True)  # never leave a previous run's results behind
    if coverage:
        (RESULTS / "coverage.txt").write_text(coverage.group(1) + "\n")
    if junit is not None:
        (RESULTS / "junit.xml").write_bytes(junit)
    window = re.search(r"pack ran from ([\d.]+) s to ([\d.]+) s", text)
    pack_seconds = float(window.group(2)) - float(window.group(1)) if window else float("nan")
    return {"code": code, "junit": junit, "coverage": coverage.group(1) if coverage else None, "accel": used,
            "booted": booted, "pack": pack_seconds, "wall": wall, "text": text}


def junit_counts(junit: bytes) -> dict[str, int]:
    """tests, failures, errors, skipped (xfailed not included) and xfailed of a JUnit XML."""
    suite = ET.fromstring(junit).find(".//testsuite")
    if suite is None:
        suite = ET.fromstring(junit)
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["xfailed"] = sum(1 for case in suite.iter("testcase") for s in case.findall("skipped")
                            if s.get("type") == "pytest.xfail")
    counts["skipped"] -= counts["xfailed"]
    return counts


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text}: expected 1..{MAX_WORKERS} workers")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="state-machine seed (default: random, printed)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the VM may run (default 3600)")
    parser.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    parser.add_argument("--workers", type=_workers, default=DEFAULT_WORKERS, metavar="N",
                        help=f"pack workers (pytest-xdist), each on its own mtty mdev; the VM gets N vCPUs "
                             f"(default {DEFAULT_WORKERS}; 1 runs without xdist)")
    parser.add_argument("--cpus", type=_workers, default=None, metavar="N",
                        help="vCPUs of the VM (default: one per worker)")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k selection inside the VM")
    parser.add_argument("--profile", action="store_true",
                        help="run pytest in the VM under cProfile (build/vm/results/profile.txt)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    vmimage.set_tag("vm-e2e")
    step(f"state-machine seed {seed} (replay with --seed {seed}); {args.workers} worker(s)")
    started = time.monotonic()
    vmimage.ensure_packages()
    release = vmimage.kernel_release()
    initrd = build_initramfs(release, vmimage.build_mtty(release), seed, args.select)
    built = time.monotonic() - started
    cpus = args.cpus or args.workers
    run = run_vm(release, initrd, args.accel, args.timeout, seed, args.workers, args.profile, cpus)
    code, junit, text = run["code"], run["junit"], run["text"]
    if junit is None:
        step("no JUnit XML came back from the VM: see build/vm/results/console.log")
        return code or 1
    counts = junit_counts(junit)
    step(f"results: {counts['tests']} tests, {counts['failures']} failed, {counts['errors']} errors, "
         f"{counts['skipped']} skipped, {counts['xfailed']} xfailed (known mtty errata, "
         f"{ERRATA.relative_to(ROOT)}); pytest exit {code}")
    for line in re.findall(r"^erratum .*$", text, re.M):
        step(line)
    step(f"times: build {built:.0f} s, boot to init {run['booted']:.1f} s ({run['accel']}), pack {run['pack']:.0f} s "
         f"in the VM with {args.workers} worker(s) on {cpus} vCPU(s), QEMU {run['wall']:.0f} s")
    step(f"wrote {RESULTS.relative_to(ROOT)}/junit.xml, console.log" + (", coverage.txt" if run["coverage"] else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
