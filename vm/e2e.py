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
5. inside: loads the modules, creates an mtty mdev through sysfs, runs the
   v2 pack through :mod:`fsmcheck.adapters.linux` on its VFIO group, and
   sends the JUnit XML back over the serial console (gzip + base64 between
   markers), with pytest's output (and its coverage summary) streamed live;
6. writes ``build/vm/results/{junit.xml,console.log,coverage.txt}``, prints
   the summary, and exits with pytest's exit code (1 if the VM gave none).

mtty's known deviations (``vm/mtty-errata.toml``) are passed to the pack with
``--fsmcheck-errata``: they are reported as xfailed with their reasons, and
any other violation fails the run.

Options: ``--seed N`` (the state-machine seed, printed either way),
``--timeout S`` (the whole VM run), ``--accel {auto,kvm,tcg}``,
``-k EXPR`` (a pytest selection, for debugging).
"""

from __future__ import annotations

import argparse
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
ERRATA = ROOT / "vm" / "mtty-errata.toml"  # mtty's known deviations, xfailed with their reasons
# What the pack imports in the VM; the files they load are packed from .venv.
PACK_IMPORTS = ["pytest", "_pytest.junitxml", "_hypothesis_pytestplugin", "fsmcheck.pack.plugin",
                "fsmcheck.adapters.linux", "hypothesis.stateful", "hypothesis.strategies",
                *sorted(p.stem for p in (ROOT / "generated_tests").glob("test_vfio_v2_*.py"))]


def _init_script(seed: int, select: str | None) -> str:
    k = f" -k '{select}'" if select else ""
    return vmimage.init_preamble([MTTY_UUID], "pytest", "PYTHONPATH=/opt/fsmcheck:/opt/site") + f"""group=$(basename $(readlink /sys/bus/mdev/devices/{MTTY_UUID}/iommu_group))
[ -c /dev/vfio/$group ] || fail "no /dev/vfio/$group"
echo "fsmcheck-vm: mtty mdev {MTTY_UUID} ($type) in VFIO group $group"
cd /pack
start=$(cut -d' ' -f1 /proc/uptime)
FSMCHECK_VFIO_GROUP=/dev/vfio/$group FSMCHECK_VFIO_DEVICE={MTTY_UUID} \\
  python3 -m pytest -p fsmcheck.pack.plugin -p _hypothesis_pytestplugin -p no:cacheprovider -q -rs --color=no \\
  --fsmcheck-adapter=fsmcheck.adapters.linux:factory --fsmcheck-seed={seed} --junitxml=/tmp/junit.xml{k} \\
  --fsmcheck-errata=/pack/mtty-errata.toml \\
  test_vfio_v2_*.py
rc=$?
echo "fsmcheck-vm: pack ran from $start s to $(cut -d' ' -f1 /proc/uptime) s"
echo "fsmcheck-vm: junit begin"
gzip -c /tmp/junit.xml | base64
echo "fsmcheck-vm: junit end"
echo "fsmcheck-vm: pytest exit $rc"
poweroff -f
"""


def build_initramfs(release: str, mtty: Path, seed: int, select: str | None) -> Path:
    stage = BUILD / "initramfs"
    vmimage.base_stage(stage, release, mtty)
    for d in ("pack", "opt/fsmcheck"):
        (stage / d).mkdir(parents=True)
    info = vmimage.probe_environment(PACK_IMPORTS)
    packed = vmimage.stage_python(stage, info, skip_packages={"fsmcheck"})
    step(f"packed {len(packed)} packages from {info['site']} with {info['executable']}: "
         + ", ".join(f"{d} {v}" for d, v in sorted(info["dists"].items())
                     if d.lower() in ("pytest", "hypothesis", "pluggy", "attrs", "sortedcontainers")))
    shutil.copytree(ROOT / "fsmcheck", stage / "opt/fsmcheck/fsmcheck", ignore=shutil.ignore_patterns("__pycache__"))
    for module in sorted((ROOT / "generated_tests").glob("test_vfio_v2_*.py")):
        shutil.copy2(module, stage / "pack" / module.name)
    shutil.copy2(ERRATA, stage / "pack" / ERRATA.name)
    vmimage.byte_compile(stage, info, f"usr/lib/python{info['version']}", "opt")
    gaps = vmimage.missing_libraries(stage)
    if gaps:
        sys.exit("vm-e2e: libraries missing from the initramfs: "
                 + "; ".join(f"{e.relative_to(stage)} needs {', '.join(map(str, libs))}" for e, libs in gaps.items()))
    return vmimage.write_initramfs(stage, _init_script(seed, select), BUILD / "initramfs.cpio.gz")


# -- 6. results ------------------------------------------------------------------------
def collect(lines: list[str]) -> tuple[int, bytes | None]:
    """(pytest's exit code, or 1 when the VM gave none; the JUnit XML or None)."""
    code = re.search(r"fsmcheck-vm: pytest exit (\d+)", "\n".join(lines))
    return (int(code.group(1)) if code else 1), vmimage.payload(lines, "junit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="state-machine seed (default: random, printed)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the VM may run (default 3600)")
    parser.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k selection inside the VM")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    vmimage.set_tag("vm-e2e")
    step(f"state-machine seed {seed} (replay with --seed {seed})")
    started = time.monotonic()
    vmimage.ensure_packages()
    release = vmimage.kernel_release()
    initrd = build_initramfs(release, vmimage.build_mtty(release), seed, args.select)
    built = time.monotonic() - started
    lines, accel, booted = vmimage.boot(release, initrd, args.accel, args.timeout, f"fsmcheck.seed={seed}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console.log").write_text("\n".join(lines) + "\n")
    code, junit = collect(lines)
    text = "\n".join(lines)
    coverage = re.search(r"-+ fsmcheck coverage -+\n(.*?\nadapter [^\n]*)", text, re.S)
    if coverage:
        (RESULTS / "coverage.txt").write_text(coverage.group(1) + "\n")
    window = re.search(r"pack ran from ([\d.]+) s to ([\d.]+) s", text)
    pack_seconds = float(window.group(2)) - float(window.group(1)) if window else float("nan")
    if junit is None:
        step("no JUnit XML came back from the VM: see build/vm/results/console.log")
        return code or 1
    (RESULTS / "junit.xml").write_bytes(junit)
    suite = ET.fromstring(junit).find(".//testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    xfailed = sum(1 for case in suite.iter("testcase") for s in case.findall("skipped")
                  if s.get("type") == "pytest.xfail")
    step(f"results: {counts['tests']} tests, {counts['failures']} failed, {counts['errors']} errors, "
         f"{counts['skipped'] - xfailed} skipped, {xfailed} xfailed (known mtty errata, "
         f"{ERRATA.relative_to(ROOT)}); pytest exit {code}")
    for line in re.findall(r"^erratum .*$", text, re.M):
        step(line)
    step(f"times: build {built:.0f} s, boot to init {booted:.1f} s ({accel}), pack {pack_seconds:.0f} s in the VM")
    step(f"wrote {RESULTS.relative_to(ROOT)}/junit.xml, console.log" + (", coverage.txt" if coverage else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
