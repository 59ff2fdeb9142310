"""The host side of `make vm-qemu` without a VM: unpacking the results the
VM sends back, judging the scenarios, running the trace check, and the
per-device state sequences of the real traces in ../shared/qemu-traces."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import io
import json
import sys
import tarfile

import pytest

from .conftest import ROOT, require_shared

sys.path.insert(0, str(ROOT / "vm"))
spec = importlib.util.spec_from_file_location("vm_qemu", ROOT / "vm" / "qemu.py")
qemu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qemu)
spec = importlib.util.spec_from_file_location("qemu_guest", ROOT / "vm" / "qemu_guest.py")
guest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guest)

SHARED = ROOT / ".." / "shared" / "qemu-traces"  # the project's shared folder (a symlink)


def console(files: dict[str, bytes], code: int = 0) -> list[str]:
    """Console lines as the init script prints them: a tar of ``files``, gzip, base64."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = base64.b64encode(gzip.compress(raw.getvalue())).decode()
    chunks = [body[i:i + 76] for i in range(0, len(body), 76)]
    return ["noise", "fsmcheck-vm: qemu-results begin", *chunks, "fsmcheck-vm: qemu-results end",
            f"fsmcheck-vm: qemu exit {code}"]


def result(name: str, ok: bool, **extra) -> bytes:
    expected = {"migrate": "completed", "destination": "running"}
    doc = {"scenario": name, "what": "a run", "expected": expected, "ok": ok, "seconds": 1.0,
           "got": expected if ok else {"migrate": "failed", "destination": "inmigrate"}, **extra}
    return json.dumps(doc).encode()


def test_results_come_back_and_are_judged(tmp_path):
    out = tmp_path / "qemu"
    lines = console({"./file/result.json": result("file", True), "./file/source.trace": b"1@1.0:x\n",
                     "./unix/result.json": result("unix", False, error="EOFError: source: QMP closed"),
                     "./unix/source.qmp.jsonl": b"{}\n"}, code=1)
    code, results = qemu.collect(lines, out)
    assert code == 1 and [r["scenario"] for r in results] == ["file", "unix"]
    assert (out / "file/source.trace").read_bytes() == b"1@1.0:x\n"
    assert qemu.traces(out) == [out / "file/source.trace", out / "unix/source.qmp.jsonl"]
    problems = qemu.verdicts(results)
    assert len(problems) == 1 and problems[0].startswith("unix: expected {'migrate': 'completed'")
    assert "'destination': 'inmigrate'" in problems[0] and "QMP closed" in problems[0]


def test_a_vm_that_gives_nothing_back_fails(tmp_path):
    (tmp_path / "qemu").mkdir()
    (tmp_path / "qemu" / "stale.trace").write_text("old")
    assert qemu.collect(["Kernel panic - not syncing"], tmp_path / "qemu") == (1, [])
    assert not (tmp_path / "qemu" / "stale.trace").exists()  # no stale results pass for new ones
    broken = ["fsmcheck-vm: qemu-results begin", "!!", "fsmcheck-vm: qemu-results end", "fsmcheck-vm: qemu exit 0"]
    assert qemu.collect(broken, tmp_path / "qemu") == (0, [])


def test_an_archive_escaping_the_results_folder_is_refused(tmp_path):
    code, results = qemu.collect(console({"../escape.json": b"{}"}), tmp_path / "qemu")
    assert (code, results) == (1, []) and not (tmp_path / "escape.json").exists()


def test_check_trace_runs_on_every_file_and_findings_are_judged(tmp_path):
    """check_traces gives each file's rule ids (an empty log: none, not run);
    judge compares them with the scenario's stated findings, both ways."""
    (tmp_path / "cancel-paused").mkdir()
    good, bad, empty = (tmp_path / "cancel-paused" / n for n in ("destination.trace", "source.trace", "x.qmp.jsonl"))
    good.write_text("fine\n")
    bad.write_text("violation\n")
    empty.write_text("")
    fake = [sys.executable, "-c",
            "import sys, json; files = [a for a in sys.argv[1:] if a != '--json'];"
            "t = [{'file': f, 'violations': [{'rule': 'p2p-quiesce'}, {'rule': 'vm-stopped'}] if 'violation' in "
            "open(f).read() else []} for f in files];"
            "print(json.dumps({'traces': t}) if '--json' in sys.argv else 'table');"
            "sys.exit(1 if any(x['violations'] for x in t) else 0)"]
    found, problems = qemu.check_traces([good, bad, empty], tmp_path, command=fake)
    assert problems == [] and found == {str(good): set(), str(bad): {"p2p-quiesce", "vm-stopped"}, str(empty): set()}
    rows, wrong = qemu.judge([good, bad, empty], found)
    assert wrong == [] and all(r["ok"] for r in rows)  # cancel-paused states exactly these
    found[str(bad)] = {"p2p-quiesce"}
    found[str(good)] = {"data-session"}
    rows, wrong = qemu.judge([good, bad, empty], found)
    assert len(wrong) == 2 and "expected findings none, got ['data-session']" in wrong[0]
    missing = [sys.executable, "-c", "import sys; print('No such command', file=sys.stderr); sys.exit(2)"]
    found, problems = qemu.check_traces([good], tmp_path, command=missing)
    assert problems and not (tmp_path / "check-trace.json").exists()


def test_the_scenario_table_is_complete():
    """Every scenario states how it ends; findings name logs it writes; the
    fault-injected and the cancelled-paused runs expect the P2P and VM findings."""
    names = [s.name for s in guest.SCENARIOS]
    assert len(names) == len(set(names)) >= 11
    for s in guest.SCENARIOS:
        assert s.expect.get("migrate") in ("completed", "failed", "cancelled") and s.what
        assert set(s.findings) <= {"source.trace", "source.qmp.jsonl", "destination.trace", "destination.qmp.jsonl"}
        assert all(i < len(guest.MDEVS) for i in (*s.source, *s.destination))
    by = {s.name: s for s in guest.SCENARIOS}
    assert by["fault-p2p"].findings["source.trace"] == {"p2p-quiesce", "vm-stopped"}
    assert by["cancel-paused"].findings["source.trace"] == {"p2p-quiesce", "vm-stopped"}
    assert by["cancel-paused"].pause and by["cancel-paused"].cancel and by["fault-p2p"].fault is not None


def test_the_boot_sector_loops_and_boots():
    code = guest.boot_sector()
    assert len(code) == 512 and code[-2:] == b"\x55\xaa"
    assert code[26:28] == bytes([0x72, (7 - 28) & 0xFF]) and code[28:30] == bytes([0xEB, (3 - 30) & 0xFF])


def test_the_step_calls_fsmcheck_check_trace_of_the_venv():
    assert qemu.CHECK_TRACE == [str(ROOT / ".venv" / "bin" / "fsmcheck"), "check-trace"]


OURS = ROOT / "tests" / "qemu_traces"  # brought back by `make vm-qemu`
PAIRS = [pytest.param(SHARED, id="shared-file"), pytest.param(OURS / "file", id="vm-qemu-file"),
         pytest.param(OURS / "unix", id="vm-qemu-unix")]


def squash(states):
    return [s for i, (_, s) in enumerate(states) if i == 0 or states[i - 1][1] != s]


def entered(states, state):
    return next(t for t, s in states if s == state)


@pytest.mark.parametrize("folder", PAIRS)
def test_sequences_of_real_pairs(folder):
    """The per-device sequences read from real pairs (../shared/qemu-traces and
    the ones `make vm-qemu` brought back) are the ones issue 10 reports: source
    RUNNING -> PRE_COPY -> PRE_COPY_P2P -> STOP_COPY -> STOP with both devices
    in PRE_COPY_P2P before either enters STOP_COPY; destination RESUMING ->
    RUNNING_P2P -> RUNNING with both in RUNNING_P2P before either is RUNNING."""
    if folder == SHARED:
        require_shared((folder / "source.trace").exists(), "qemu-traces/source.trace")
    elif not (folder / "source.trace").exists():
        pytest.skip(f"no {folder}")
    source = qemu.sequences(folder / "source.trace")
    destination = qemu.sequences(folder / "destination.trace")
    assert len(source) == 2 and len(destination) == 2
    for states in source.values():
        src = squash(states)
        assert src[src.index("PRE_COPY") - 1:src.index("STOP") + 1] == \
            ["RUNNING", "PRE_COPY", "PRE_COPY_P2P", "STOP_COPY", "STOP"]
        assert all(t is not None and t >= 0 for t, _ in states)
    assert max(entered(s, "PRE_COPY_P2P") for s in source.values()) < \
        min(entered(s, "STOP_COPY") for s in source.values())
    for states in destination.values():
        assert squash(states)[:3] == ["RESUMING", "RUNNING_P2P", "RUNNING"]
    assert max(entered(s, "RUNNING_P2P") for s in destination.values()) < \
        min(entered(s, "RUNNING") for s in destination.values())


def test_the_failure_run_never_left_running():
    """defaults/: the migration failed before any device left RUNNING; QEMU's
    request back to RUNNING is the no-op (no set_device_state after it)."""
    result = json.loads((OURS / "defaults" / "result.json").read_text())
    assert result["source"]["query-migrate"]["status"] == "failed" and result["ok"]
    assert "ram_save_setup failed: Operation not supported" in result["source"]["query-migrate"]["error-desc"]
    for states in qemu.sequences(OURS / "defaults" / "source.trace").values():
        assert "PRE_COPY" not in [s for _, s in states]
    text = (OURS / "defaults" / "source.trace").read_text()
    assert text.count("new state RUNNING, recover state ERROR") == 4  # 2 at start-up, 2 no-ops after the failure


def test_sequence_table_has_a_row_per_side_and_device(tmp_path):
    for side in ("source", "destination"):
        (tmp_path / "file").mkdir(exist_ok=True)
        (tmp_path / "file" / f"{side}.trace").write_text(
            "7@100.000000:migrate_set_state new state setup\n"
            "7@100.500000:vfio_migration_set_device_state  (dev-a) state PRE_COPY\n"
            "7@101.250000:vfio_migration_set_device_state  (dev-b) state STOP\n")
    table = qemu.sequence_table(tmp_path)
    rows = table.splitlines()[2:]
    assert rows == ["| file | source | `dev-a` | PRE_COPY (0.500000) |", "| file | source | `dev-b` | STOP (1.250000) |",
                    "| file | destination | `dev-a` | PRE_COPY (0.500000) |",
                    "| file | destination | `dev-b` | STOP (1.250000) |"]


def test_the_command_lines_carry_the_options_migration_needs():
    tuned = guest.command(["u1", "u2"], guest.TUNED, "/t", "/q")
    default = guest.command(["u1", "u2"], guest.DEFAULTS, "/t", "/q", incoming="file:/s")
    devices = [tuned[i + 1] for i, a in enumerate(tuned) if a == "-device"]
    assert devices == [f"vfio-pci,id=mtty{i},sysfsdev=/sys/bus/mdev/devices/u{i + 1},"
                       "enable-migration=on,x-device-dirty-page-tracking=off,migration-events=on" for i in range(2)]
    assert "x-device-dirty-page-tracking=off" not in " ".join(default)
    assert default[-2:] == ["-incoming", "file:/s"] and "-incoming" not in tuned
    assert tuned[tuned.index("-msg") + 1] == "timestamp=on" and "migrate_set_state" in tuned


def test_the_init_script_creates_the_mdevs_and_sends_results_back():
    script = qemu._init_script([])
    assert script.startswith("#!/bin/busybox sh") and all(u in script for u in guest.MDEVS)
    assert "mtty-2/create" in script
    assert "python3 /opt/qemu_guest.py /out" in script and "fsmcheck-vm: qemu-results begin" in script
    assert script.rstrip().endswith("poweroff -f")


def test_the_docs_table_is_the_one_the_committed_traces_give():
    assert qemu.sequence_table(OURS) in (ROOT / "docs" / "check-trace.md").read_text()
