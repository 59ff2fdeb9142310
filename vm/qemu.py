#!/usr/bin/env python3
"""``make vm-qemu``: real QEMU 10 migrations of a guest with mtty devices
inside the project's VM, one boot for every scenario of vm/qemu_guest.py,
each trace judged with ``fsmcheck check-trace`` against what its scenario
states it must get.

On a fresh Debian bookworm machine (as root) this:

1. adds Debian's ``bookworm-backports`` suite to apt's sources (next to the
   existing Debian entries; apt pins backports below the release, so nothing
   installed is upgraded) and fetches QEMU 10.0.2 with ``apt-get download``
   (``qemu-system-x86``, ``qemu-system-common``, ``qemu-system-data``,
   ``seabios``), unpacked with ``dpkg-deb -x`` under build/vm/qemu10: the
   host's QEMU 7.2 that boots the VM stays as it is;
2. builds the VM of ``make vm-e2e`` (vm/vmimage.py: Linux 6.12, the VFIO
   modules, the virtual environment's python3) with QEMU 10, its firmware and
   the shared-library closure of every ELF file packed, the scenario driver
   vm/qemu_guest.py and ``mtty.ko`` built with vm/mtty-fault-injection.patch
   (module parameters ``fail_mdev``, ``fail_from``, ``fail_to``: one arc of
   one mdev fails with -EIO; unarmed it is mtty as shipped);
3. boots it (TCG unless KVM is usable); inside, the mdevs of
   ``qemu_guest.MDEVS`` are created and every scenario of
   ``qemu_guest.SCENARIOS`` runs; the results come back over the serial
   console (tar + gzip + base64 between markers);
4. writes ``build/vm/results/qemu/SCENARIO/`` (``source.trace``,
   ``destination.trace``, ``*.qmp.jsonl``, ``*.log``, ``result.json``) and
   ``console.log``, runs ``fsmcheck check-trace`` on every trace and QMP
   event log (text shown, ``--json`` into ``check-trace.json``), compares
   each file's findings (rule ids) with the scenario's ``findings``, and
   writes the per-device state sequences to ``sequences.md`` and the
   verdicts to ``verdicts.md``.

Exit status: 0 when every scenario ended as it states (``expect``) and every
log got exactly the findings its scenario expects (none for most); 1
otherwise (also when the VM gave nothing back).

Options: ``--timeout S`` (the whole VM run), ``--accel {auto,kvm,tcg}``,
``--scenario NAME`` (repeatable; default all).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qemu_guest  # noqa: E402
import vmimage  # noqa: E402
from vmimage import BUILD, RESULTS, ROOT, step  # noqa: E402

QEMU10 = BUILD / "qemu10"
OUT = RESULTS / "qemu"
DEBS = ["qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios"]
SUITE = "bookworm-backports"
BACKPORTS = Path("/etc/apt/sources.list.d/bookworm-backports.sources")
BACKPORTS_ENTRY = f"""Types: deb
URIs: http://deb.debian.org/debian
Suites: {SUITE}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
# Firmware QEMU 10 loads for a q35 SeaBIOS guest (its built-in search path:
# /usr/share/qemu, then /usr/share/seabios).
FIRMWARE = ["usr/share/seabios", "usr/share/qemu/kvmvapic.bin", "usr/share/qemu/linuxboot_dma.bin"]
GUEST = ROOT / "vm" / "qemu_guest.py"
FAULT_PATCH = ROOT / "vm" / "mtty-fault-injection.patch"
CHECK_TRACE = [str(ROOT / ".venv" / "bin" / "fsmcheck"), "check-trace"]
_RECORD = re.compile(r"^(?:\d+@(\d+\.\d+):)?vfio_migration_set_device_state +\((\S+)\) state (\S+)$")
_STAMP = re.compile(r"^\d+@(\d+\.\d+):")


# -- 1. QEMU 10 from bookworm-backports ------------------------------------------------------
def _in_backports() -> bool:
    policy = subprocess.run(["apt-cache", "policy", "qemu-system-x86"], capture_output=True, text=True).stdout
    return SUITE in policy


def fetch_qemu10() -> Path:
    """The root of the unpacked QEMU 10 .debs (fetched once, kept in build/)."""
    binary = QEMU10 / "root/usr/bin/qemu-system-x86_64"
    if binary.exists():
        return QEMU10 / "root"
    if not _in_backports():
        if not BACKPORTS.exists():
            step(f"adding Debian's {SUITE} to apt's sources ({BACKPORTS})")
            BACKPORTS.write_text(BACKPORTS_ENTRY)
        vmimage.run(["apt-get", "update", "-qq"])
    debs = QEMU10 / "debs"
    shutil.rmtree(QEMU10, ignore_errors=True)
    debs.mkdir(parents=True)
    step(f"apt-get download {' '.join(f'{p}/{SUITE}' for p in DEBS)}")
    vmimage.run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", *(f"{p}/{SUITE}" for p in DEBS)], cwd=debs)
    root = QEMU10 / "unpacking"
    for deb in sorted(debs.glob("*.deb")):
        vmimage.run(["dpkg-deb", "-x", str(deb), str(root)])
    root.rename(QEMU10 / "root")
    return QEMU10 / "root"


# -- 2. the initramfs -------------------------------------------------------------------------
def _init_script(names: list[str]) -> str:
    one = qemu_guest.MDEVS[:qemu_guest.ONE]
    two = qemu_guest.MDEVS[qemu_guest.ONE:]
    return vmimage.init_preamble(one, "qemu") + f"""for uuid in {' '.join(two)}; do
  echo $uuid > $types/mtty-2/create || fail "creating two-port mdev $uuid"
done
echo "fsmcheck-vm: {len(one)} mtty mdevs ($type), {len(two)} mtty-2; $(qemu-system-x86_64 --version | head -n1)"
mkdir -p /out
start=$(cut -d' ' -f1 /proc/uptime)
python3 /opt/qemu_guest.py /out {' '.join(names)}
rc=$?
echo "fsmcheck-vm: scenarios ran from $start s to $(cut -d' ' -f1 /proc/uptime) s"
echo "fsmcheck-vm: qemu-results begin"
tar -C /out -cf - . | gzip -c | base64
echo "fsmcheck-vm: qemu-results end"
echo "fsmcheck-vm: qemu exit $rc"
poweroff -f
"""


def build_initramfs(release: str, mtty: Path, qemu_root: Path, names: list[str]) -> Path:
    stage = BUILD / "initramfs-qemu"
    vmimage.base_stage(stage, release, mtty)
    info = vmimage.probe_environment([])
    vmimage.stage_python(stage, info)
    vmimage.copy_into(qemu_root / "usr/bin/qemu-system-x86_64", stage, Path("/usr/bin/qemu-system-x86_64"))
    for item in FIRMWARE:
        src = qemu_root / item
        if src.is_dir():
            shutil.copytree(src, stage / item, symlinks=False)
        else:
            vmimage.copy_into(src, stage, Path("/") / item)
    vmimage.copy_library_closure(stage)
    shutil.copy2(GUEST, stage / "opt" / GUEST.name)
    vmimage.byte_compile(stage, info, f"usr/lib/python{info['version']}", "opt")
    gaps = vmimage.missing_libraries(stage)
    if gaps:
        sys.exit("vm-qemu: libraries missing from the initramfs: "
                 + "; ".join(f"{e.relative_to(stage)} needs {', '.join(map(str, libs))}" for e, libs in gaps.items()))
    return vmimage.write_initramfs(stage, _init_script(names), BUILD / "initramfs-qemu.cpio.gz")


# -- 4. results -------------------------------------------------------------------------------
def collect(lines: list[str], out: Path) -> tuple[int, list[dict]]:
    """Unpack the scenario results the VM printed into ``out`` (replaced);
    returns (the guest driver's exit code, or 1 when the VM gave none; the
    ``result.json`` of each scenario, sorted by name). Members outside
    ``out`` or of other types than files and directories are refused."""
    code = re.search(r"fsmcheck-vm: qemu exit (\d+)", "\n".join(lines))
    data = vmimage.payload(lines, "qemu-results")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    results = []
    if data is not None:
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(out, filter="data")
        except (tarfile.TarError, OSError) as exc:
            step(f"the results archive is damaged: {exc}")
            return 1, []
        for path in sorted(out.glob("*/result.json")):
            results.append(json.loads(path.read_text()))
    return (int(code.group(1)) if code else 1), results


def verdicts(results: list[dict]) -> list[str]:
    """What went wrong, one line per scenario that did not end as it states
    (empty when all did)."""
    problems = []
    for r in results:
        if r.get("ok"):
            continue
        problems.append(f"{r['scenario']}: expected {r['expected']}, got {r.get('got')}"
                        + (f"; {r['error']}" if "error" in r else ""))
    return problems


def traces(out: Path) -> list[Path]:
    """The trace-event logs and QMP event logs under ``out``, in a fixed order."""
    return sorted([*out.glob("*/*.trace"), *out.glob("*/*.qmp.jsonl")])


def check_traces(files: list[Path], out: Path, command: list[str] = CHECK_TRACE) -> tuple[dict[str, set[str]], list[str]]:
    """Run ``COMMAND FILE...`` (``fsmcheck check-trace``; each file is its own
    trace) showing its text, then with ``--json`` into ``out/check-trace.json``.

    Returns:
        (file path as given -> the rule ids of its findings; problem lines:
        an exit status other than 0 and 1, or no JSON).
    """
    found: dict[str, set[str]] = {str(p): set() for p in files if p.stat().st_size == 0}  # no events: nothing
    names = [str(path) for path in files if str(path) not in found]                    # to judge
    shown = subprocess.run([*command, *names], capture_output=True, text=True, cwd=ROOT)
    for line in (shown.stdout + shown.stderr).splitlines():
        print(f"  check-trace| {line}", flush=True)
    machine = subprocess.run([*command, *names, "--json"], capture_output=True, text=True, cwd=ROOT)
    report = out / "check-trace.json"
    problems = []
    try:
        doc = json.loads(machine.stdout)
        report.write_text(machine.stdout)
        for t in doc["traces"]:
            found[t["file"]] = {v["rule"] for v in t["violations"]}
    except (ValueError, KeyError, TypeError):  # no JSON came: none is left to mislead
        report.unlink(missing_ok=True)
        problems.append("fsmcheck check-trace --json gave no JSON report (its output is above)")
    for code in {shown.returncode, machine.returncode} - {0, 1}:
        problems.append(f"fsmcheck check-trace on {len(files)} traces: exit {code}")
    return found, problems


def judge(files: list[Path], found: dict[str, set[str]], scenarios=qemu_guest.SCENARIOS) -> tuple[list[dict], list[str]]:
    """Each log's findings against its scenario's ``findings`` (none unless
    stated). Returns (one row per log: scenario, file, expected, got, ok;
    the problem lines)."""
    expected = {s.name: s.findings for s in scenarios}
    rows, problems = [], []
    for path in files:
        scenario = path.parent.name
        want = set(expected.get(scenario, {}).get(path.name, ()))
        got = found.get(str(path))
        ok = got is not None and got == want
        rows.append({"scenario": scenario, "file": path.name, "expected": sorted(want),
                     "got": None if got is None else sorted(got), "ok": ok})
        if not ok:
            problems.append(f"{scenario}/{path.name}: expected findings {sorted(want) or 'none'}, got "
                            + ("no verdict (unreadable)" if got is None else str(sorted(got) or "none")))
    return rows, problems


def verdict_table(results: list[dict], rows: list[dict]) -> str:
    """Markdown: per scenario its statement, expected and actual end, and
    per log the expected and actual check-trace findings."""
    lines = ["| scenario | what | expected end | got | ok |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['scenario']} | {r['what']} | {r['expected']} | {r.get('got')} | "
                     f"{'yes' if r.get('ok') else 'NO'} |")
    lines += ["", "| scenario | log | expected findings | check-trace found | ok |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['scenario']} | {row['file']} | {', '.join(row['expected']) or 'none'} | "
                     f"{'unreadable' if row['got'] is None else ', '.join(row['got']) or 'none'} | "
                     f"{'yes' if row['ok'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def sequences(trace: Path, origin: float | None = None) -> dict[str, list[tuple[float | None, str]]]:
    """Per device (the name in parentheses), the states QEMU recorded
    (``vfio_migration_set_device_state``) in a trace-event log, in order, each
    with its time in seconds after ``origin`` (the log's first timestamp when
    None; None without ``-msg timestamp=on``)."""
    seen: dict[str, list[tuple[float | None, str]]] = {}
    with open(trace) as f:
        for line in f:
            line = line.rstrip("\n")
            stamp = _STAMP.match(line)
            if origin is None and stamp:
                origin = float(stamp.group(1))
            found = _RECORD.match(line)
            if found:
                at = float(found.group(1)) - origin if found.group(1) and origin is not None else None
                seen.setdefault(found.group(2), []).append((at, found.group(3)))
    return seen


def first_stamp(trace: Path) -> float | None:
    with open(trace) as f:
        for line in f:
            stamp = _STAMP.match(line)
            if stamp:
                return float(stamp.group(1))
    return None


def sequence_table(out: Path) -> str:
    """A Markdown table: per scenario, side and device, the recorded state
    sequence with times in seconds after the scenario's first source event."""
    rows = ["| scenario | side | device | recorded states (s after the source's first event) |",
            "|---|---|---|---|"]
    for scenario in sorted(p for p in out.iterdir() if p.is_dir()):
        origin = first_stamp(scenario / "source.trace") if (scenario / "source.trace").exists() else None
        for side in ("source", "destination"):
            trace = scenario / f"{side}.trace"
            if not trace.exists():
                continue
            for device, states in sorted(sequences(trace, origin).items()):
                text = " → ".join(f"{s} ({t:.6f})" if t is not None else s for t, s in states)
                rows.append(f"| {scenario.name} | {side} | `{device}` | {text} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=900, help="seconds the VM may run (default 900)")
    parser.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    parser.add_argument("--scenario", action="append", default=[],
                        choices=[s.name for s in qemu_guest.SCENARIOS], help="run only these (repeatable)")
    parser.add_argument("--judge-only", action="store_true",
                        help="no VM: judge the results of the last run in build/vm/results/qemu again")
    args = parser.parse_args()
    vmimage.set_tag("vm-qemu")
    if args.judge_only:
        return judge_results()
    started = time.monotonic()
    vmimage.ensure_packages()
    qemu_root = fetch_qemu10()
    release = vmimage.kernel_release()
    initrd = build_initramfs(release, vmimage.build_mtty(release, FAULT_PATCH), qemu_root, args.scenario)
    built = time.monotonic() - started
    lines, accel, booted = vmimage.boot(release, initrd, args.accel, args.timeout)
    code, results = collect(lines, OUT)
    (OUT / "console.log").write_text("\n".join(lines) + "\n")
    text = "\n".join(lines)
    window = re.search(r"scenarios ran from ([\d.]+) s to ([\d.]+) s", text)
    inside = float(window.group(2)) - float(window.group(1)) if window else float("nan")
    step(f"times: build {built:.0f} s, boot to init {booted:.1f} s ({accel}), scenarios {inside:.0f} s in the VM")
    if not results:
        step(f"no scenario results came back from the VM: see {OUT.relative_to(ROOT)}/console.log")
        return 1
    return judge_results(results) or code


def judge_results(results: list[dict] | None = None) -> int:
    """Judge the scenario results and every log under OUT (check-trace against
    each scenario's stated findings); print and write the tables. 0 when all
    is as stated, 1 otherwise."""
    if results is None:
        results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*/result.json"))]
        if not results:
            step(f"no results under {OUT.relative_to(ROOT)}: run make vm-qemu first")
            return 1
    problems = verdicts(results)
    for r in results:
        step(f"{r['scenario']}: expected {r['expected']}, got {r.get('got')}, "
             f"{'as expected' if r['ok'] else 'NOT as expected'} ({r['seconds']:.1f} s in the VM)")
    files = traces(OUT)
    step(f"fsmcheck check-trace on {len(files)} traces")
    found, failed = check_traces(files, OUT)
    rows, wrong = judge(files, found)
    problems += failed + wrong
    step(f"{sum(r['ok'] for r in rows)} of {len(rows)} logs judged as their scenario expects; "
         f"{sum(r['ok'] for r in results)} of {len(results)} scenarios ended as stated")
    table = sequence_table(OUT)
    (OUT / "sequences.md").write_text(table)
    (OUT / "verdicts.md").write_text(verdict_table(results, rows))
    print(table, end="")
    print(verdict_table(results, rows), end="")
    step(f"wrote {OUT.relative_to(ROOT)}/ (traces, QMP event logs, result.json, check-trace.json, sequences.md, "
         "verdicts.md)")
    for problem in problems:
        step(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
