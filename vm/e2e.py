#!/usr/bin/env python3
"""``make vm-e2e``: the v2 conformance pack against mtty on the real kernel.

On a fresh Debian machine (as root) this:

1. installs Debian's ``qemu-system-x86``, ``linux-image-6.12-amd64``,
   ``linux-headers-6.12-amd64``, ``busybox-static``, ``linux-source-6.12``
   (and ``python3``, ``cpio``, ``gcc``, ``make`` to build with);
2. builds ``mtty.ko`` out of tree from ``samples/vfio-mdev/mtty.c`` of
   linux-source-6.12 against the headers (Debian's kernel has no samples);
3. builds an initramfs: busybox, the decompressed modules ``irqbypass``,
   ``vfio``, ``vfio_iommu_type1``, ``mdev`` and ``mtty``, Debian's python3
   with its standard library and the shared libraries its extension modules
   need, fsmcheck, the pure-Python packages the pack imports (pytest,
   hypothesis...) and the generated v2 pack;
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
import base64
import gzip
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "vm"
RESULTS = BUILD / "results"
APT = ["qemu-system-x86", "linux-image-6.12-amd64", "linux-headers-6.12-amd64", "busybox-static",
       "linux-source-6.12", "python3", "cpio", "gcc", "make"]
MODULES = ["irqbypass", "vfio", "vfio_iommu_type1", "mdev"]  # then mtty, built here
SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
MTTY_UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
ERRATA = ROOT / "vm" / "mtty-errata.toml"  # mtty's known deviations, xfailed with their reasons
PY = "python3.11"
# Standard-library parts the pack never imports (kept out of the initramfs).
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
               "dist-packages", "pydoc_data", "config-3.11-x86_64-linux-gnu"}


def step(text: str) -> None:
    print(f"vm-e2e: {text}", flush=True)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


# -- 1. packages -------------------------------------------------------------------
def ensure_packages() -> None:
    missing = [p for p in APT if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                                text=True).stdout != "install ok installed"]
    if missing:
        step(f"installing Debian's {' '.join(missing)}")
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", *missing], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            stdout=subprocess.DEVNULL)


def kernel_release() -> str:
    """The newest installed 6.12 amd64 kernel that has its headers."""
    found = []
    for image in Path("/boot").glob("vmlinuz-6.12*-amd64"):
        release = image.name[len("vmlinuz-"):]
        if (Path("/lib/modules") / release / "build").exists():
            found.append(release)
    if not found:
        sys.exit("vm-e2e: no 6.12 amd64 kernel with headers in /boot and /lib/modules")
    return sorted(found, key=lambda r: [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", r)])[-1]


# -- 2. mtty.ko ---------------------------------------------------------------------
def build_mtty(release: str) -> Path:
    work = BUILD / "mtty"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tarfile.open(SOURCE) as tar:
        member = tar.getmember("linux-source-6.12/samples/vfio-mdev/mtty.c")
        (work / "mtty.c").write_bytes(tar.extractfile(member).read())
    (work / "Kbuild").write_text("obj-m := mtty.o\n")
    step(f"building mtty.ko against /lib/modules/{release}/build")
    run(["make", "-s", "-C", f"/lib/modules/{release}/build", f"M={work}", "modules"], stdout=subprocess.DEVNULL)
    return work / "mtty.ko"


# -- 3. initramfs ---------------------------------------------------------------------
def _copy(src: Path, stage: Path) -> None:
    dest = stage / str(src).lstrip("/")
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.resolve(), dest)


def _libraries(elf: Path) -> set[Path]:
    out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
    libs = set()
    for line in out.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libs.add(Path(match.group(1)))
    return libs


def _pack_modules() -> list[Path]:
    """Files of the third-party Python modules the v2 pack imports (asked of
    this machine's Python, which ran the pack in `make main`)."""
    probe = (
        "import sys, glob, os, importlib\n"
        "sys.path.insert(0, 'generated_tests')\n"
        "import pytest, _pytest.junitxml, _hypothesis_pytestplugin, fsmcheck.pack.plugin, fsmcheck.adapters.linux\n"
        "import hypothesis.stateful, hypothesis.strategies\n"
        "[importlib.import_module(os.path.basename(f)[:-3]) for f in sorted(glob.glob('generated_tests/test_vfio_v2_*.py'))]\n"
        "for m in list(sys.modules.values()):\n"
        "    f = getattr(m, '__file__', None) or ''\n"
        "    if 'packages' in f: print(m.__name__, f)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    roots = set()
    for line in out.splitlines():
        name, path = line.split(" ", 1)
        top = name.split(".")[0]
        path = Path(path)
        site = next(p for p in path.parents if p.name.endswith("packages"))
        roots.add(site / top if (site / top).is_dir() else site / f"{top}.py")
    return sorted(roots)


def _init_script(seed: int, select: str | None) -> str:
    k = f" -k '{select}'" if select else ""
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/opt/fsmcheck:/opt/site
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mount -t tmpfs tmpfs /tmp
echo "fsmcheck-vm: booted at $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)"
fail() {{ echo "fsmcheck-vm: FAILED: $*"; echo "fsmcheck-vm: pytest exit 99"; poweroff -f; }}
for m in {' '.join(MODULES)} mtty; do insmod /lib/modules/$m.ko || fail "insmod $m"; done
types=/sys/class/mdev_bus/mtty/mdev_supported_types
[ -d $types ] || fail "mtty registered no mdev types"
type=$(ls $types | head -n1)
echo {MTTY_UUID} > $types/$type/create || fail "creating the mdev"
group=$(basename $(readlink /sys/bus/mdev/devices/{MTTY_UUID}/iommu_group))
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
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib/modules", "pack", "opt/site", "opt/fsmcheck"):
        (stage / d).mkdir(parents=True)
    shutil.copy2("/bin/busybox", stage / "bin/busybox")
    for name in MODULES:
        found = sorted((Path("/lib/modules") / release / "kernel").rglob(f"{name}.ko*"))
        if not found:
            sys.exit(f"vm-e2e: module {name} not found for {release}")
        data = found[0].read_bytes()
        (stage / f"lib/modules/{name}.ko").write_bytes(lzma.decompress(data) if found[0].suffix == ".xz" else data)
    shutil.copy2(mtty, stage / "lib/modules/mtty.ko")
    # Debian's python3 with its standard library and shared libraries.
    stdlib = Path(f"/usr/lib/{PY}")
    shutil.copytree(stdlib, stage / str(stdlib).lstrip("/"), symlinks=False,
                    ignore=lambda d, names: [n for n in names if Path(d) == stdlib and n in STDLIB_SKIP])
    _copy(Path(f"/usr/bin/{PY}"), stage)
    os.symlink(PY, stage / "usr/bin/python3")
    elves = [Path(f"/usr/bin/{PY}"), *sorted((stdlib / "lib-dynload").glob("*.so"))]
    for lib in sorted(set().union(*(_libraries(e) for e in elves))):
        _copy(lib, stage)
    # fsmcheck, the packages the pack imports, and the v2 pack.
    shutil.copytree(ROOT / "fsmcheck", stage / "opt/fsmcheck/fsmcheck",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in _pack_modules():
        if path.name == "fsmcheck":
            continue
        if path.is_dir():
            shutil.copytree(path, stage / "opt/site" / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, stage / "opt/site" / path.name)
    for module in sorted((ROOT / "generated_tests").glob("test_vfio_v2_*.py")):
        shutil.copy2(module, stage / "pack" / module.name)
    shutil.copy2(ERRATA, stage / "pack" / ERRATA.name)
    # Byte-compile with the VM's own interpreter (TCG is slow to compile).
    run([f"/usr/bin/{PY}", "-m", "compileall", "-q", "-j0", "-s", str(stage), "-p", "/",
         str(stage / "usr/lib" / PY), str(stage / "opt")], stdout=subprocess.DEVNULL)
    init = stage / "init"
    init.write_text(_init_script(seed, select))
    init.chmod(0o755)
    image = BUILD / "initramfs.cpio.gz"
    names = subprocess.run(["find", "."], cwd=stage, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=stage, input=names.encode(),
                          capture_output=True, check=True).stdout
    image.write_bytes(gzip.compress(cpio, compresslevel=1))
    step(f"initramfs {image.relative_to(ROOT)}: {len(cpio) / 2**20:.0f} MiB "
         f"({image.stat().st_size / 2**20:.0f} MiB compressed)")
    return image


# -- 4. boot -----------------------------------------------------------------------------
def _kvm_usable() -> bool:
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def boot(release: str, initrd: Path, accel: str, timeout: float, seed: int) -> tuple[list[str], str, float]:
    """Run the VM; returns (console lines, accelerator used, seconds to the init script)."""
    order = {"auto": ["kvm", "tcg"] if _kvm_usable() else ["tcg"], "kvm": ["kvm"], "tcg": ["tcg"]}[accel]
    for i, kind in enumerate(order):
        cpu = ["-accel", "kvm", "-cpu", "host"] if kind == "kvm" else ["-accel", "tcg", "-cpu", "max"]
        cmd = ["qemu-system-x86_64", *cpu, "-m", "2048", "-smp", "2", "-nographic", "-no-reboot",
               "-kernel", f"/boot/vmlinuz-{release}", "-initrd", str(initrd),
               "-append", f"console=ttyS0 panic=-1 quiet loglevel=3 fsmcheck.seed={seed}"]
        step(f"booting Linux {release} with QEMU ({kind})")
        lines, booted_at, reason = [], None, None
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.set_blocking(proc.stdout.fileno(), False)
        buffer = b""
        while True:
            chunk = proc.stdout.read()
            if chunk:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    line = raw.decode(errors="replace").rstrip("\r")
                    lines.append(line)
                    if booted_at is None and "fsmcheck-vm: booted" in line:
                        booted_at = time.monotonic() - start
                    if not re.fullmatch(r"[A-Za-z0-9+/=]{40,}", line):  # the JUnit payload stays quiet
                        print(f"  vm| {line}", flush=True)
                    if kind == "kvm" and re.search(r"emulation failure|KVM internal error", line):
                        reason = line
            if proc.poll() is not None:
                break
            elapsed = time.monotonic() - start
            if reason or (kind == "kvm" and booted_at is None and elapsed > 90) or elapsed > timeout:
                reason = reason or ("no init within 90 s" if booted_at is None and kind == "kvm"
                                    else f"timed out after {timeout:.0f} s")
                proc.kill()
                proc.wait()
                break
            time.sleep(0.05)
        if buffer:
            lines.append(buffer.decode(errors="replace"))
        if booted_at is not None and not (kind == "kvm" and reason):  # a KVM failure falls back to TCG
            if reason:
                step(f"the VM stopped: {reason}")
            return lines, kind, booted_at
        step(f"{kind} did not reach the init script ({reason or 'QEMU exited'})"
             + ("; falling back to TCG" if i + 1 < len(order) else ""))
    return lines, order[-1], float("nan")


# -- 6. results ------------------------------------------------------------------------
def collect(lines: list[str]) -> tuple[int, bytes | None]:
    text = "\n".join(lines)
    code = re.search(r"fsmcheck-vm: pytest exit (\d+)", text)
    payload = re.search(r"fsmcheck-vm: junit begin\n(.*?)\nfsmcheck-vm: junit end", text, re.S)
    junit = None
    if payload:
        try:
            junit = gzip.decompress(base64.b64decode("".join(payload.group(1).split()), validate=True)) or None
        except (ValueError, OSError, EOFError):
            junit = None
    return (int(code.group(1)) if code else 1), junit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="state-machine seed (default: random, printed)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the VM may run (default 3600)")
    parser.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k selection inside the VM")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    step(f"state-machine seed {seed} (replay with --seed {seed})")
    started = time.monotonic()
    ensure_packages()
    release = kernel_release()
    initrd = build_initramfs(release, build_mtty(release), seed, args.select)
    built = time.monotonic() - started
    lines, accel, booted = boot(release, initrd, args.accel, args.timeout, seed)
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
