"""The vfio-user adapter (issue 20) against the pure-Python vfio-user server
in tests/vfio_user_double.py, over the real socket protocol: no libvfio-user
needed (tests/test_vfio_user_libvfio.py has the libvfio-user ones)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fsmcheck.adapters.contract import DriverError, transport_limits
from fsmcheck.adapters.vfio_user import DeviceCrashed, VfioUserAdapter, factory
from fsmcheck.adapters.vfio_user_server import ServerError, TemplateError, parse_template

ROOT = Path(__file__).resolve().parent.parent
DOUBLE = ROOT / "tests" / "vfio_user_double.py"
PACK = ROOT / "generated_tests" / "test_vfio_v2_stop_copy_pre_copy.py"
STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY = 1, 2, 3, 4, 6


def template(*options: str) -> str:
    return " ".join(shlex.quote(a) for a in (sys.executable, "-S", str(DOUBLE), *options)) + " {socket}"


def my_children() -> set[int]:
    """PIDs whose parent is this process (from /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                out.add(int(entry))
    return out


def tagged(tag: str) -> list[int]:
    """PIDs of processes whose command line carries ``tag``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if tag.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_device_round_trip_over_the_socket():
    adapter = factory("v2", device=template())
    device = adapter.open(5)
    try:
        assert device.migration_flags() == 5
        assert device.get_state() == RUNNING
        assert device.set_state(STOP) is None
        handle = device.set_state(STOP_COPY)
        assert handle is not None
        stream = b""
        while chunk := device.read(handle, 7):
            stream += chunk
        assert stream.startswith(b"VFUD") and device.read(handle, 7) == b""
        with pytest.raises(DriverError) as refused:  # a saving handle is not written (EBADF, as on an fd)
            device.write(handle, b"x")
        assert refused.value.errno == "EBADF"
        assert device.set_state(STOP) is None
        with pytest.raises(DriverError) as outside:  # the server's allowed-state rule stands in for the fd
            device.read(handle, 1)
        assert outside.value.errno == "EINVAL"
        resume = device.set_state(RESUMING)
        assert resume not in (None, handle)
        assert device.write(resume, stream) == len(stream)
        assert device.set_state(STOP) is None
        with pytest.raises(DriverError) as rejected:
            device.set_state(0)  # ERROR
        assert rejected.value.errno == "EINVAL"
        device.reset()
        assert device.get_state() == RUNNING
    finally:
        device.close()
        adapter.close()
    assert not os.path.exists(device.server.socket_path) and not os.path.exists(adapter.directory)


def test_the_adapter_declares_what_vfio_user_cannot_show():
    limits = transport_limits(factory("v2", device=template()))
    assert {"handle-new", "handle-fresh", "precopy-info", "open-ended-errno"} <= set(limits)
    assert "data_fd" in limits["handle-new"] and "VFIO_MIG_GET_PRECOPY_INFO" in limits["precopy-info"]
    assert transport_limits(object()) == {}


def test_a_crash_is_reported_with_its_signal_request_and_stderr():
    adapter = factory("v2", device=template("--crash-on", "3"))
    device = adapter.open(5)  # request 1: migration flags (the adapter reads them once)
    try:
        device.get_state()  # 2
        with pytest.raises(DeviceCrashed) as crashed:
            device.set_state(STOP)  # 3: the server aborts
        text = str(crashed.value)
        assert text.startswith("device crashed: SIGABRT, last request SET STOP")
        assert "aborting on request 3" in text
        with pytest.raises(DeviceCrashed, match="was not sent"):  # later calls fail at once, the same way
            device.get_state()
    finally:
        device.close()
        adapter.close()


@pytest.mark.parametrize("bad, message", [
    ("echo no-socket-here", "has no {socket}"),
    ("/nonexistent/vfu-server {socket}", "no such program"),
    ("'unbalanced {socket}", "No closing quotation"),
])
def test_unusable_templates(bad, message):
    with pytest.raises(TemplateError, match=message):
        parse_template(bad)


def test_servers_that_do_not_start_are_reported(monkeypatch):
    before = open_fds(), my_children()
    with pytest.raises(ServerError, match=r"exited at start-up \(exit status 3\).*exiting at start-up as asked"):
        factory("v2", device=template("--exit-at-start")).open(5)
    adapter = VfioUserAdapter(parse_template(template("--no-socket")), start_timeout=0.5)
    with pytest.raises(ServerError, match=r"did not create its socket .* within 0.5 s; stderr: .*not listening"):
        adapter.open(5)
    adapter.close()
    assert (open_fds(), my_children()) == before


def test_no_fd_process_or_socket_is_left_behind():
    adapter = factory("v2", device=template("--crash-on", "4"))
    before = open_fds(), my_children()
    devices = [adapter.open(5) for _ in range(3)]
    assert len(my_children()) == len(before[1]) + 3
    for device in devices:
        device.get_state()
    with pytest.raises(DeviceCrashed):
        for _ in range(3):
            devices[0].get_state()
    for device in devices:
        device.close()
    assert (open_fds(), my_children()) == before
    assert os.listdir(adapter.directory) == []
    adapter.close()
    assert not os.path.exists(adapter.directory)


def _pack(extra: list[str], tag: str, env_extra: dict | None = None, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, FSMCHECK_VFIO_USER_SERVER=template("--tag", tag), **(env_extra or {}))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(PACK.parent),
           "--fsmcheck-adapter=fsmcheck.adapters.vfio_user:factory", "--fsmcheck-seed=0", str(PACK), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, **kwargs)


@pytest.mark.slow
def test_the_pack_reports_nothing_against_a_conforming_vfio_user_device():
    """Every suite of the device's flag set but the W-method sequences (make
    vfio-user-e2e runs those against libvfio-user): no failure, no error, and
    the coverage summary says what the transport could not show."""
    tag = uuid.uuid4().hex
    proc = _pack(["-k", "not test_w_method"], tag)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert " passed" in out and "failed" not in out.splitlines()[-1]
    assert "not observable over the transport [handle-fresh]" in out
    assert "STOP_COPY|PRE_COPY: states 5/6, arcs 9/9, pairs 24/24" in out
    assert tagged(tag) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "budget"])
def test_servers_never_outlive_the_run(how, tmp_path):
    """Ctrl-C (SIGINT to pytest) and the pack's budget end the run; no server
    of it is left, and its socket directory is gone."""
    tag = uuid.uuid4().hex
    tmpdir = tmp_path / "tmp"  # the run's TMPDIR: where its socket directories go
    tmpdir.mkdir()
    extra = ["--fsmcheck-budget=3"] if how == "budget" else []
    proc = _pack(extra + ["-k", "test_w_method"], tag, {"TMPDIR": str(tmpdir)}, start_new_session=True)
    try:
        if how == "SIGINT":
            deadline = time.monotonic() + 60
            while not tagged(tag) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert tagged(tag), "no server started"
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 5
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tagged(tag) == []
    assert list(tmpdir.glob("fsmcheck-vfu-*")) == []


def test_run_pack_refuses_bad_templates_before_any_test(tmp_path):
    from click.testing import CliRunner

    from fsmcheck.cli import main

    runner = CliRunner()
    for bad, said in [("true", "has no {socket}"), ("/nonexistent/server {socket}", "no such program"),
                      (template("--exit-at-start"), "exited at start-up (exit status 3)")]:
        result = runner.invoke(main, ["run-pack", "--vfio-user-server", bad, "-o", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert said in result.output
        assert not (tmp_path / "out").exists()
    result = runner.invoke(main, ["run-pack", "--vfio-user-server", template(), "--vfio-cdev", "/dev/null"])
    assert result.exit_code == 2 and "name one target" in result.output


def test_an_erratum_explains_a_group_of_failures_only_when_it_explains_each():
    """hypothesis reports several distinct failures as one ExceptionGroup
    (seen on libvfio-user efd091b: reset refused in STOP, reset keeping PRE_COPY)."""
    from fsmcheck.pack.errata import Erratum, matching
    from fsmcheck.pack.harness import ProtocolViolation
    from fsmcheck.pack.v2_spec import RULES

    erratum = Erratum("reset-refused", "v2", "reset", ("reset failed",), "why")
    known = ProtocolViolation("reset failed with EINVAL", RULES["reset"])
    other = ProtocolViolation("device_state is STOP, expected RUNNING", RULES["get"])
    assert matching([erratum], ExceptionGroup("2 distinct failures", [known, known])) is erratum
    assert matching([erratum], ExceptionGroup("2 distinct failures", [known, other])) is None


def test_a_suite_for_other_flags_starts_no_server():
    """The server's flags are read once; a suite for other flags gets their
    value (so it skips) and no server."""
    adapter = factory("v2", device=template())
    first = adapter.open(5)
    try:
        children = my_children()
        other = adapter.open(1)  # the STOP_COPY suite
        assert other.migration_flags() == 5 and my_children() == children
        with pytest.raises(RuntimeError, match="no server was started"):
            other.get_state()
        other.close()
    finally:
        first.close()
        adapter.close()
