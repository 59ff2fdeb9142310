"""The project's VM, shared by ``make vm-e2e`` (vm/e2e.py) and ``make vm-qemu``
(vm/qemu.py): Debian packages, ``mtty.ko``, an initramfs stage, booting it
with the host's QEMU, and reading a gzip+base64 payload back off the serial
console.

The initramfs holds the interpreter and the packages of the project's
virtual environment (``.venv``, made by ``make setup`` with constraints.txt),
never the system's site-packages, and the shared-library closure (``ldd``) of
every ELF file packed: binaries, ``lib-dynload`` and every extension module of
every package (hypothesis 6.170's ``hypothesis._native`` needs
``libgcc_s.so.1``, which python3's own closure lacks; issue 12).
"""

from __future__ import annotations

import base64
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "vm"
RESULTS = BUILD / "results"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
APT = ["qemu-system-x86", "patch", "linux-image-6.12-amd64", "linux-headers-6.12-amd64", "busybox-static",
       "linux-source-6.12", "cpio", "gcc", "make"]
MODULES = ["irqbypass", "vfio", "vfio_iommu_type1", "mdev"]  # then mtty, built here
SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
# Standard-library parts nothing in the VM imports (kept out of the initramfs).
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
               "dist-packages", "pydoc_data"}

_tag = "vm"


def set_tag(tag: str) -> None:
    """Name printed before every :func:`step` line (``vm-e2e``, ``vm-qemu``)."""
    global _tag
    _tag = tag


def step(text: str) -> None:
    print(f"{_tag}: {text}", flush=True)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


# -- packages and the kernel -----------------------------------------------------------
def ensure_packages(packages: list[str] = APT) -> None:
    """apt-get install the Debian ``packages`` that are not installed."""
    missing = [p for p in packages if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
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
        sys.exit(f"{_tag}: no 6.12 amd64 kernel with headers in /boot and /lib/modules")
    return sorted(found, key=lambda r: [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", r)])[-1]


def build_mtty(release: str, patch: Path | None = None) -> Path:
    """``mtty.ko`` built out of tree from linux-source-6.12's samples/vfio-mdev/mtty.c
    against ``release``'s headers, with ``patch`` (a unified diff of mtty.c,
    applied with ``patch -p1``) when given; reused while the release, the
    source tarball (size, mtime) and the patch are the same (``make vm-e2e``
    and ``make vm-qemu`` share the unpatched one, in build/vm/mtty; a patched
    one is built in build/vm/mtty-PATCHNAME)."""
    work = BUILD / ("mtty" if patch is None else f"mtty-{patch.stem}")
    stat = SOURCE.stat()
    key = f"{release} {SOURCE} {stat.st_size} {stat.st_mtime_ns}\n"
    if patch is not None:
        key += patch.read_text()
    stamp = work / "built-for"
    if (work / "mtty.ko").exists() and stamp.exists() and stamp.read_text() == key:
        step(f"reusing {(work / 'mtty.ko').relative_to(ROOT)} ({release})")
        return work / "mtty.ko"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tarfile.open(SOURCE) as tar:
        member = tar.getmember("linux-source-6.12/samples/vfio-mdev/mtty.c")
        (work / "mtty.c").write_bytes(tar.extractfile(member).read())
    if patch is not None:
        step(f"applying {patch.relative_to(ROOT)} to mtty.c")
        run(["patch", "-p1", "--quiet", "--no-backup-if-mismatch", "-i", str(patch)], cwd=work)
    (work / "Kbuild").write_text("obj-m := mtty.o\n")
    step(f"building mtty.ko against /lib/modules/{release}/build")
    run(["make", "-s", "-C", f"/lib/modules/{release}/build", f"M={work}", "modules"], stdout=subprocess.DEVNULL)
    stamp.write_text(key)
    return work / "mtty.ko"


# -- the stage ---------------------------------------------------------------------------
def copy_into(src: Path, stage: Path, dest: Path | None = None) -> Path:
    """Copy ``src`` (symlinks followed) to the same absolute path under ``stage``
    (or to ``dest``, absolute inside the VM); returns the staged path."""
    target = stage / str(dest or src).lstrip("/")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src.resolve(), target)
    return target


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def ldd(elf: Path) -> set[Path]:
    """The shared libraries ``ldd`` resolves for ``elf`` (absolute host paths).

    Raises RuntimeError when ``ldd`` reports a library as "not found": the file
    could not load in the VM either."""
    out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
    missing = re.findall(r"^\s*(\S+) => not found", out, re.M)
    if missing:
        raise RuntimeError(f"{elf}: ldd finds no {', '.join(missing)}")
    return {Path(m) for m in re.findall(r"(?:=>\s*)?(/\S+)\s+\(0x", out)}


def staged_elves(stage: Path) -> list[Path]:
    """Every ELF file (executable or shared object) under ``stage``."""
    return sorted(p for p in stage.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p))


def copy_library_closure(stage: Path, elves: list[tuple[Path, Path]] | None = None) -> set[Path]:
    """Copy into ``stage`` every shared library that the ELF files in it need.

    ``elves`` are (host path, staged path) pairs to resolve with; by default
    every ELF file already staged (resolved where it lies in the stage, which
    finds the same system libraries). Repeats until nothing new is needed.
    Returns the host paths of the libraries copied."""
    copied: set[Path] = set()
    todo = [host for host, _ in elves] if elves is not None else staged_elves(stage)
    seen: set[Path] = set()
    while todo:
        elf = todo.pop()
        if elf in seen:
            continue
        seen.add(elf)
        for lib in ldd(elf):
            if not (stage / str(lib).lstrip("/")).exists():
                copy_into(lib, stage)
                copied.add(lib)
                todo.append(lib)
    return copied


def missing_libraries(stage: Path) -> dict[Path, list[Path]]:
    """For each ELF file in ``stage``, the ``ldd`` dependencies not packed
    (empty when the closure is complete)."""
    gaps = {}
    for elf in staged_elves(stage):
        lost = sorted(lib for lib in ldd(elf) if not (stage / str(lib).lstrip("/")).exists())
        if lost:
            gaps[elf] = lost
    return gaps


def base_stage(stage: Path, release: str, mtty: Path) -> None:
    """A fresh ``stage``: busybox, the directories init mounts on, and the
    decompressed VFIO modules plus ``mtty.ko`` in /lib/modules."""
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib/modules", "opt"):
        (stage / d).mkdir(parents=True)
    shutil.copy2("/bin/busybox", stage / "bin/busybox")
    for name in MODULES:
        found = sorted((Path("/lib/modules") / release / "kernel").rglob(f"{name}.ko*"))
        if not found:
            sys.exit(f"{_tag}: module {name} not found for {release}")
        data = found[0].read_bytes()
        (stage / f"lib/modules/{name}.ko").write_bytes(lzma.decompress(data) if found[0].suffix == ".xz" else data)
    shutil.copy2(mtty, stage / "lib/modules/mtty.ko")


# -- the virtual environment's Python ------------------------------------------------------
_PROBE = (
    "import sys, sysconfig, json, os, importlib, importlib.metadata as md\n"
    "mods = json.loads(sys.argv[1])\n"
    "sys.path.insert(0, 'generated_tests')\n"
    "for m in mods: importlib.import_module(m)\n"
    "site = sysconfig.get_paths()['purelib']\n"
    "files = {}\n"
    "for m in list(sys.modules.values()):\n"
    "    f = getattr(m, '__file__', None) or ''\n"
    "    if f.startswith(site + os.sep) or 'packages' in f: files[m.__name__] = f\n"
    "dists = {d.metadata['Name']: d.version for d in md.distributions(path=[site])}\n"
    "print(json.dumps({'executable': os.path.realpath(sys._base_executable), 'stdlib': sysconfig.get_paths()['stdlib'],\n"
    "                  'site': site, 'version': '%d.%d' % sys.version_info[:2], 'files': files, 'dists': dists}))\n"
)


def venv_python() -> Path:
    """The project's virtual-environment interpreter (``make setup`` makes it)."""
    if not VENV_PYTHON.exists():
        sys.exit(f"{_tag}: {VENV_PYTHON.relative_to(ROOT)} is missing: run `make setup` first")
    return VENV_PYTHON


def probe_environment(imports: list[str], python: Path | None = None) -> dict:
    """Ask the virtual environment's interpreter (run in the project root)
    which files the modules ``imports`` load. Returns a dict with
    ``executable`` (the base interpreter the venv runs), ``stdlib``, ``site``
    (the venv's site-packages), ``version`` ("3.11"), ``files`` (module name ->
    file, only third-party modules) and ``dists`` (name -> version installed).
    Raises SystemExit when a third-party module comes from outside the venv."""
    out = subprocess.run([str(python or venv_python()), "-c", _PROBE, json.dumps(imports)], capture_output=True,
                         text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(f"{_tag}: importing {', '.join(imports)} in the virtual environment failed:\n{out.stderr}")
    info = json.loads(out.stdout)
    outside = {n: f for n, f in info["files"].items() if not f.startswith(info["site"] + os.sep)}
    if outside:
        sys.exit(f"{_tag}: modules from outside the virtual environment ({info['site']}): "
                 + ", ".join(f"{n} ({f})" for n, f in sorted(outside.items())))
    return info


def package_roots(info: dict) -> list[Path]:
    """The top-level package directories (or single-module files) in the
    venv's site-packages that hold the modules of ``info["files"]``."""
    site = Path(info["site"])
    roots = set()
    for name, file in info["files"].items():
        top = Path(file).relative_to(site).parts[0]
        if not top.startswith(("__editable__", "_distutils_hack")):  # .pth helpers of the venv itself
            roots.add(site / top)
    return sorted(roots)


def stage_python(stage: Path, info: dict, skip_packages: set[str] = frozenset(),
                 site: str = "opt/site") -> list[Path]:
    """Put the venv's interpreter at /usr/bin/python3 with its standard
    library at /usr/lib/pythonX.Y, the packages of :func:`package_roots` in
    ``site`` (less ``skip_packages``), and the library closure of every ELF
    file packed. Returns the package roots packed.

    ``site`` is relative to the stage: /opt/site by default (on PYTHONPATH
    when used); :func:`site_packages` (the interpreter's own site-packages)
    makes them importable without PYTHONPATH and recognised as installed
    packages by tools that treat local code differently, such as
    hypothesis's scan of every local module's source for constants at
    collection (17 s per pytest process under TCG with the packages in
    /opt/site)."""
    version = info["version"]
    stdlib = Path(info["stdlib"])
    dest = stage / "usr/lib" / f"python{version}"
    shutil.copytree(stdlib, dest, symlinks=False, ignore=lambda d, names: [
        n for n in names if (Path(d) == stdlib and (n in STDLIB_SKIP or n.startswith("config-")))
        or n == "__pycache__"])
    copy_into(Path(info["executable"]), stage, Path(f"/usr/bin/python{version}"))
    os.symlink(f"python{version}", stage / "usr/bin/python3")
    roots = [r for r in package_roots(info) if r.name not in skip_packages]
    target = stage / site
    target.mkdir(parents=True, exist_ok=True)
    for path in roots:
        if path.is_dir():
            shutil.copytree(path, target / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target / path.name)
    copy_library_closure(stage)
    return roots


def site_packages(info: dict) -> str:
    """The packed interpreter's own site-packages, relative to the stage
    (``usr/lib/python3.11/site-packages``)."""
    return f"usr/lib/python{info['version']}/site-packages"


def byte_compile(stage: Path, info: dict, *dirs: str) -> None:
    """Byte-compile ``dirs`` of ``stage`` with the interpreter packed (its host
    original, ``info["executable"]``): TCG is slow to compile."""
    targets = [str(stage / d) for d in dirs if (stage / d).exists()]
    run([info["executable"], "-m", "compileall", "-q", "-j0", "-s", str(stage), "-p", "/", *targets],
        stdout=subprocess.DEVNULL)


def init_preamble(uuids: list[str], exit_event: str, env: str = "") -> str:
    """The start of every VM's ``/init`` (busybox shell): mounts, the modules
    (:data:`MODULES`, then mtty), and one mtty mdev per UUID in ``uuids``.

    Args:
        uuids: the mdevs to create through sysfs (none: the caller creates them).
        exit_event: the word of the exit line the host reads
            (``fsmcheck-vm: EXIT_EVENT exit 99`` when a set-up step fails).
        env: extra ``NAME=value`` words for the ``export`` line.

    Returns:
        Shell text ending with ``$type`` set to mtty's mdev type.
    """
    extra = f" {env}" if env else ""
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/tmp PYTHONDONTWRITEBYTECODE=1{extra}
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mount -t tmpfs tmpfs /tmp
echo "fsmcheck-vm: booted at $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)"
fail() {{ echo "fsmcheck-vm: FAILED: $*"; echo "fsmcheck-vm: {exit_event} exit 99"; poweroff -f; }}
for m in {' '.join(MODULES)} mtty; do insmod /lib/modules/$m.ko || fail "insmod $m"; done
types=/sys/class/mdev_bus/mtty/mdev_supported_types
[ -d $types ] || fail "mtty registered no mdev types"
type=$(ls $types | head -n1)
""" + (f"""for uuid in {' '.join(uuids)}; do
  echo $uuid > $types/$type/create || fail "creating mdev $uuid"
done
""" if uuids else "")


def write_initramfs(stage: Path, init: str, image: Path) -> Path:
    """Write ``init`` (the init script) into ``stage`` and pack it as a gzipped
    newc cpio archive at ``image``."""
    (stage / "init").write_text(init)
    (stage / "init").chmod(0o755)
    names = subprocess.run(["find", "."], cwd=stage, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=stage, input=names.encode(),
                          capture_output=True, check=True).stdout
    tmp = image.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio, compresslevel=1))
    tmp.replace(image)
    step(f"initramfs {image.relative_to(ROOT)}: {len(cpio) / 2**20:.0f} MiB "
         f"({image.stat().st_size / 2**20:.0f} MiB compressed)")
    return image


# -- boot ------------------------------------------------------------------------------------
def _kvm_usable() -> bool:
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def boot(release: str, initrd: Path, accel: str, timeout: float, append: str = "",
         memory: int = 2048, smp: int = 2) -> tuple[list[str], str, float]:
    """Run the VM with the host's QEMU until it powers off (or ``timeout``
    seconds, then QEMU is killed); returns (console lines, accelerator used,
    seconds to the init script). ``smp`` vCPUs; KVM is tried first when
    usable and falls back to TCG, multi-threaded (``thread=multi``: one host
    thread per vCPU, so at most the host's cores run in parallel). The kernel
    gets ``no_timer_check``: under TCG on a loaded host its IO-APIC timer check
    can fail and panic the boot ("IO-APIC + timer doesn't work!")."""
    order = {"auto": ["kvm", "tcg"] if _kvm_usable() else ["tcg"], "kvm": ["kvm"], "tcg": ["tcg"]}[accel]
    for i, kind in enumerate(order):
        cpu = ["-accel", "kvm", "-cpu", "host"] if kind == "kvm" else ["-accel", "tcg,thread=multi", "-cpu", "max"]
        cmd = ["qemu-system-x86_64", *cpu, "-m", str(memory), "-smp", str(smp), "-nographic", "-no-reboot",
               "-kernel", f"/boot/vmlinuz-{release}", "-initrd", str(initrd),
               "-append", f"console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check {append}".strip()]
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
                    if not re.fullmatch(r"[A-Za-z0-9+/=]{40,}", line):  # payloads stay quiet
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
        proc.stdout.close()
        if buffer:
            lines.append(buffer.decode(errors="replace"))
        if booted_at is not None and not (kind == "kvm" and reason):  # a KVM failure falls back to TCG
            if reason:
                step(f"the VM stopped: {reason}")
            return lines, kind, booted_at
        step(f"{kind} did not reach the init script ({reason or 'QEMU exited'})"
             + ("; falling back to TCG" if i + 1 < len(order) else ""))
    return lines, order[-1], float("nan")


# -- results ---------------------------------------------------------------------------------
def payload(lines: list[str], name: str) -> bytes | None:
    """The gzip+base64 payload the init script printed between
    ``fsmcheck-vm: NAME begin`` and ``fsmcheck-vm: NAME end``, decoded; None
    when it is absent, not strict base64, or not gzip."""
    text = "\n".join(lines)
    found = re.search(rf"fsmcheck-vm: {re.escape(name)} begin\n(.*?)\nfsmcheck-vm: {re.escape(name)} end", text, re.S)
    if not found:
        return None
    try:
        return gzip.decompress(base64.b64decode("".join(found.group(1).split()), validate=True)) or None
    except (ValueError, OSError, EOFError):
        return None
