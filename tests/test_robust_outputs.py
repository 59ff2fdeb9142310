"""Outputs that cannot be written, runs killed while writing, and files that
must stay what they were (issue 23). Every command that writes goes through
fsmcheck.outputs: one diagnostic ``PATH:1: <output>: cannot write: ...``,
exit 2, before the run's work; nothing partial left behind."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from fsmcheck import outputs
from fsmcheck.outputs import OutputError, write_file

from .conftest import MODELS, ROOT
from .robust_util import assert_clean, fsmcheck

V1, V2 = MODELS / "vfio_v1.toml", MODELS / "vfio_v2.toml"
TRACE = ROOT / "tests" / "qemu_traces" / "source.trace"


def _commands(out):
    """Every command that writes, with its output at ``out`` (a file path or a directory)."""
    return {
        "verify --sarif": ["verify", "-q", V1, "--sarif", out / "v.sarif"],
        "verify --trace-dir": ["verify", "-q", V1, "--trace-dir", out / "traces"],
        "generate": ["generate", V1, "-o", out / "pack"],
        "report": ["report", "-q", V1, "-o", out / "r.html"],
        "report --diagrams": ["report", "-q", V1, "-o", os.devnull, "--diagrams", out / "d"],
        "render": ["render", V1, "-o", out / "v1.svg"],
        "export": ["export", V1, "--format", "json", "-o", out / "v1.json"],
        "export promela": ["export", V1, "--format", "promela", "-o", out / "pml"],
        "diff --html": ["diff", "--quiet", V1, V1, "--html", out / "d.html"],
        "check-trace --sarif": ["check-trace", "-q", TRACE, "--sarif", out / "t.sarif"],
        "run-pack -o": ["run-pack", "--vfio-cdev", os.devnull, "--adapter", "fsmcheck.drivers.reference:factory",
                        "--seed", "0", "-o", out / "rp"],
    }


@pytest.mark.parametrize("name", sorted(_commands(ROOT)))
def test_output_under_a_regular_file_is_one_diagnostic(tmp_path, name):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    if name == "report --diagrams":  # report.html goes to /dev/null; the diagrams under the file
        pass
    run = fsmcheck(*_commands(blocker)[name], cwd=tmp_path)
    assert_clean(run, 2)
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "<output>: cannot write:" in lines[0] and "is not a directory" in lines[0], run.err
    assert blocker.read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@contextlib.contextmanager
def _tmpfs(path, *options):
    """A small tmpfs at ``path`` (root only: skipped otherwise)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root only): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("name", ["generate", "verify --sarif", "run-pack -o", "export"])
def test_read_only_file_system_is_refused_before_running(tmp_path, name):
    with _tmpfs(tmp_path / "ro", "ro", "size=64k") as ro:
        run = fsmcheck(*_commands(ro)[name], cwd=tmp_path)
        assert_clean(run, 2)
        assert "read-only file system" in run.err, run.err
        assert "run-pack: " not in run.err  # nothing ran
        assert list(ro.iterdir()) == []


def test_full_file_system_is_one_diagnostic_and_leaves_nothing(tmp_path):
    with _tmpfs(tmp_path / "full", "size=16k") as full:
        (full / "keep.txt").write_text("kept\n")
        run = fsmcheck("report", "-q", V2, "-o", full / "r.html", cwd=tmp_path)  # a report is ~1 MB
        assert_clean(run, 2)
        assert "r.html:1: <output>: cannot write: No space left on device" in run.err, run.err
        assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]


def test_write_error_leaves_nothing(tmp_path, monkeypatch):
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    with pytest.raises(OutputError) as caught:
        write_file(tmp_path / "x.txt", "y" * 100000)
    assert str(caught.value) == f"{tmp_path / 'x.txt'}:1: <output>: cannot write: No space left on device"
    assert isinstance(caught.value, OSError)
    assert list(tmp_path.iterdir()) == []


def test_a_run_killed_while_writing_leaves_nothing(tmp_path):
    # the child SIGKILLs itself in the middle of writing 8 MB over an old file
    (tmp_path / "big.bin").write_bytes(b"old")
    child = textwrap.dedent(f"""
        import os, signal
        from fsmcheck import outputs
        real = os.write
        def write(fd, data):
            real(fd, bytes(data[:1 << 20]))
            os.kill(os.getpid(), signal.SIGKILL)
        outputs.os.write = write
        outputs.write_file({str(tmp_path / 'big.bin')!r}, b"x" * (8 << 20))
    """)
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT)
    assert done.returncode == -9
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]
    assert (tmp_path / "big.bin").read_bytes() == b"old"


def test_stale_named_temporaries_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".fsmcheck-tmp.{dead.pid}.0011.out.json"
    stale.write_text("partial")
    mine = tmp_path / f".fsmcheck-tmp.{os.getpid()}.0022.out.json"  # a live process's: kept
    mine.write_text("in progress")
    outputs._SWEPT.discard(str(tmp_path))
    write_file(tmp_path / "out.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "out.json"])


def test_overwrite_keeps_the_mode_and_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    run = fsmcheck("export", V1, "--format", "json", "-o", link)
    assert_clean(run, 0)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.read_text().startswith("{")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    run = fsmcheck("export", V1, "--format", "dot", "-o", target)
    assert_clean(run, 0)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text().startswith("digraph")
    new = tmp_path / "new.json"
    old_mask = os.umask(0o027)
    try:
        write_file(new, "{}")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640


@pytest.mark.parametrize("option, value, message", [
    ("--deadline", "inf", "not in the range"),
    ("--deadline", "nan", "nan is not a number of seconds"),
    ("--deadline", "-inf", "not in the range"),
    ("--deadline", "1e300", "not in the range"),
    ("--devices", str(10**30), "not in the range 1<=x<=1024"),
    ("--devices", str(10**9), "not in the range 1<=x<=1024"),
])
def test_verify_numbers_are_bounded(option, value, message):
    run = fsmcheck("verify", "-q", option, value, MODELS / "qemu_orchestration.toml")
    assert_clean(run, 2)
    assert message in run.err, run.err


def test_the_most_devices_end_by_the_deadline():
    run = fsmcheck("verify", "-q", "--devices", "1024", "--deadline", "4", MODELS / "qemu_orchestration.toml",
                   timeout=60)
    # The counting product decides 1,024 devices at once (it holds); an engine
    # the deadline stops says unknown (exit 1) -- either way the run ends.
    assert_clean(run, 0, 1)
    assert run.rc == 0 or "unknown" in run.text, run.text[-2000:]


def test_the_deadline_reaches_orchestration_engines():
    """--deadline bounds an orchestration model as it bounds a device model:
    what is not decided by then is unknown (exit 1), said per engine."""
    run = fsmcheck("verify", "-q", "--devices", "4", "--failures", "1", "--deadline", "0.2",
                   MODELS / "qemu_orchestration.toml", timeout=60)
    assert_clean(run, 1)
    assert "not decided before the deadline" in run.text, run.text[-2000:]
