"""A fleet of devices in parallel (issue 14): one device per pytest-xdist
worker, the refusal of more workers than devices, the coverage merged on the
controller, and the pack's gates (nothing matched, budget) under ``-n``.

The factory :func:`recording` (``--fsmcheck-adapter=tests.test_fleet:recording``)
serves the reference v2 driver for any device and writes, for each process
that asks for it, which device it was given into ``$FLEET_RECORD/<worker>``
(``main`` without xdist); this module, loaded as a plugin of those runs
(``PYTEST_PLUGINS``), adds the state-machine seed the process was given.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import execnet
import pytest

from fsmcheck.adapters.linux import DeviceRefused, Target, factory as linux_factory, target_from_spec
from fsmcheck.pack.coverage import Coverage
from fsmcheck.pack.plugin import RUN, PackRun, read_devices
from fsmcheck.runpack.command import coverage_lines

from .conftest import ROOT, cli, run_pytest

PACK = ROOT / "generated_tests"
ONE = str(PACK / "test_vfio_v2_stop_copy.py")  # the smallest v2 module (515 tests)


def recording(protocol, device=None):
    """Adapter factory of these tests: the reference v2 driver, recording ``device``."""
    from fsmcheck.drivers.reference import ReferenceV2Adapter

    if protocol != "v2":
        return None
    _record().write_text(f"{device}\n")
    return ReferenceV2Adapter()


def _record() -> Path:
    return Path(os.environ["FLEET_RECORD"]) / os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_sessionfinish(session):
    """A hook of the fleet runs (``PYTEST_PLUGINS=tests.test_fleet``): a process
    whose factory was asked adds the seed its run got (``config.stash[RUN]``)."""
    if _record().is_file():
        _record().write_text(_record().read_text() + f"{session.config.stash[RUN].seed}\n")


def deviceless(protocol):
    """A factory without a ``device`` keyword."""
    return None


def _pytest(*args, record: Path | None = None, timeout=300):
    return run_pytest(*args, timeout=timeout,
                      env={"FLEET_RECORD": str(record), "PYTEST_PLUGINS": __name__} if record else None)


def _recorded(record: Path) -> dict[str, tuple[str, str]]:
    return {p.name: tuple(p.read_text().split("\n")[:2]) for p in record.iterdir()}


def _passed(out: str) -> str:
    return next(line for line in reversed(out.splitlines()) if " passed" in line).split(" in ")[0]


# -- one device per worker -------------------------------------------------------------
@pytest.mark.slow
def test_each_worker_drives_its_own_device_with_the_controllers_seed(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    listed = tmp_path / "fleet.txt"
    listed.write_text("# the VFs of card 1\nvf-b   # second\n\nvf-c\n")
    proc = _pytest(ONE, "-n", "2", "--fsmcheck-adapter=tests.test_fleet:recording", "--fsmcheck-examples=2",
                   "-k", "test_pair or test_arc_tour or test_reset or test_rejected",
                   "--fsmcheck-seed=4242", "--fsmcheck-device=vf-a", f"--fsmcheck-devices={listed}", record=record)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert _recorded(record) == {"gw0": ("vf-a", "4242"), "gw1": ("vf-b", "4242")}
    out = proc.stdout
    assert "NOT tested: vf-c (2 worker(s); -n 3 tests each)" in out  # the summary (the header too, without -q)
    lines = coverage_lines(out)
    assert "device vf-a (gw0):" in lines and "device vf-b (gw1):" in lines and "total (2 devices):" in lines
    total = lines[lines.index("total (2 devices):") + 1]
    assert total.startswith("STOP_COPY: states 5/5, arcs 6/6, pairs 16/16"), lines
    per_device = [lines[lines.index(f"device {d} (gw{k}):") + 1] for k, d in enumerate(("vf-a", "vf-b"))]
    assert all(line.startswith("STOP_COPY: states ") for line in per_device), lines


def test_a_replacement_worker_takes_the_device_its_crashed_predecessor_left():
    """pytest_configure_node: gw2 (replacing gw0) gets gw0's device, never one a live worker holds."""
    from fsmcheck.pack import plugin

    config = type("Config", (), {"stash": pytest.Stash()})()
    config.stash[RUN] = run = PackRun(devices=["a", "b"])

    class Node:
        def __init__(self, wid):
            self.gateway, self.workerinput, self.config = type("G", (), {"id": wid})(), {}, config

    nodes = [Node("gw0"), Node("gw1")]
    for node in nodes:
        plugin.pytest_configure_node(node)
    assert [n.workerinput["fsmcheck_device"] for n in nodes] == ["a", "b"]
    plugin.pytest_testnodedown(nodes[0], "crashed")
    replacement = Node("gw2")
    plugin.pytest_configure_node(replacement)
    assert replacement.workerinput["fsmcheck_device"] == "a"
    assert run.held == {"gw1": "b", "gw2": "a"}


@pytest.mark.parametrize("workers", [["-n", "3"], ["--tx", "3*popen", "--dist", "load"]])
@pytest.mark.slow
def test_more_workers_than_devices_is_refused_before_anything_opens(tmp_path, workers):
    record = tmp_path / "record"
    record.mkdir()
    proc = _pytest(ONE, *workers, "--fsmcheck-adapter=tests.test_fleet:recording", "--fsmcheck-device=vf-a",
                   "--fsmcheck-device=vf-b", record=record)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "3 xdist workers but 2 device(s) named" in proc.stderr and "-n 2" in proc.stderr
    assert list(record.iterdir()) == []  # no factory was asked, no device opened


@pytest.mark.parametrize("args, message", [
    (["--fsmcheck-device=vf-a", "--fsmcheck-device=vf-a"], "device 'vf-a' is named twice"),
    (["--fsmcheck-devices=/nonexistent/fleet.txt"], "--fsmcheck-devices /nonexistent/fleet.txt: cannot read it"),
    (["--fsmcheck-device=vf-a", "--fsmcheck-adapter=tests.test_fleet:deviceless"], "takes no device= keyword"),
])
@pytest.mark.slow
def test_bad_device_lists_are_usage_errors(args, message):
    proc = _pytest(ONE, *args)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr


@pytest.mark.slow
def test_without_xdist_only_the_first_device_is_tested_and_the_run_says_so(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    proc = _pytest(ONE, "--fsmcheck-adapter=tests.test_fleet:recording", "--fsmcheck-examples=2",
                   "--fsmcheck-device=vf-a", "--fsmcheck-device=vf-b", "-k", "test_pair", record=record)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert _recorded(record) == {"main": ("vf-a", _recorded(record)["main"][1])}
    assert "fsmcheck: NOT tested: vf-b (run with -n 2 to test each)" in proc.stdout


def test_device_files_skip_comments_and_blank_lines(tmp_path):
    listed = tmp_path / "fleet.txt"
    listed.write_text("/dev/vfio/12:0000:01:00.0  # VF 0\n#/dev/vfio/13:0000:01:00.1\n\n  /dev/vfio/devices/vfio3\n")
    assert read_devices(["7:uuid"], str(listed)) == ["7:uuid", "/dev/vfio/12:0000:01:00.0", "/dev/vfio/devices/vfio3"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(pytest.UsageError, match="names no device"):
        read_devices([], str(tmp_path / "empty.txt"))


# -- the Linux adapter's device entries ------------------------------------------------------
def test_linux_device_entries_name_a_group_device_or_a_cdev():
    assert target_from_spec("/dev/vfio/12:0000:01:00.0") == Target(group="/dev/vfio/12", device="0000:01:00.0")
    assert target_from_spec("7:83b8f4f2-509f") == Target(group="/dev/vfio/7", device="83b8f4f2-509f")
    assert target_from_spec("/dev/vfio/devices/vfio0") == Target(cdev="/dev/vfio/devices/vfio0")
    for bad in ("vfio0", ":x", "/dev/vfio/12:"):
        with pytest.raises(DeviceRefused, match="expected GROUP:NAME"):
            target_from_spec(bad)
    assert linux_factory("v2", device="3:uuid", env={}).target == Target(group="/dev/vfio/3", device="uuid")


def test_linux_env_device_is_refused_when_workers_would_share_it():
    env = {"FSMCHECK_VFIO_CDEV": "/dev/vfio/devices/vfio0", "PYTEST_XDIST_WORKER_COUNT": "2"}
    with pytest.raises(DeviceRefused, match="2 xdist workers and one device"):
        linux_factory("v2", env=env)
    assert linux_factory("v2", env=dict(env, PYTEST_XDIST_WORKER_COUNT="1")).target.cdev == "/dev/vfio/devices/vfio0"


# -- merged results ----------------------------------------------------------------------------
def test_coverage_survives_the_trip_to_the_controller_and_merges_as_a_union():
    a, b = Coverage(), Coverage()
    a.flag_sets.add("v1")
    a.flags_seen.add(7)
    a.states.add(("v1", 3))
    a.arcs.add(("X", "A", "B"))
    a.expected["v1"] = {"states": 6}
    a.advisories[("v1", "odd")] = 2
    b.flag_sets.add("X")
    b.states.update({("v1", 3), ("v1", 4)})
    b.advisories[("v1", "odd")] = 1
    back = Coverage(**execnet.loads(execnet.dumps(asdict(a))))  # as xdist's workeroutput carries it
    assert back == a
    back.merge(Coverage(**execnet.loads(execnet.dumps(asdict(b)))))
    assert back.states == {("v1", 3), ("v1", 4)} and back.flag_sets == {"v1", "X"}
    assert back.advisories == {("v1", "odd"): 3} and back.expected == {"v1": {"states": 6}}


@pytest.mark.slow
def test_merged_coverage_equals_the_sequential_runs():
    """Reference drivers, v2 and v1: the same tests, the same coverage summary
    (advisory counts included), with and without -n 2."""
    modules = [ONE, str(PACK / "test_vfio_v1.py")]
    alone = _pytest(*modules, "--fsmcheck-seed=11", "--fsmcheck-examples=3")
    fleet = _pytest(*modules, "--fsmcheck-seed=11", "--fsmcheck-examples=3", "-n", "2")
    assert alone.returncode == 0 and fleet.returncode == 0, fleet.stdout[-3000:]
    assert _passed(alone.stdout) == _passed(fleet.stdout)
    merged = coverage_lines(fleet.stdout)
    assert merged == coverage_lines(alone.stdout) and len(merged) >= 3, (merged, coverage_lines(alone.stdout))
    assert "state-machine seed 11" in merged[-1]


@pytest.mark.slow
def test_nothing_matched_fails_the_fleet_run():
    proc = _pytest(ONE, str(PACK / "test_vfio_v1.py"), "-n", "2", "--fsmcheck-adapter=tests.conforming_drivers:nothing")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "has no driver for the pack's protocols" in proc.stdout


@pytest.mark.slow
def test_undefined_flags_fail_the_fleet_run():
    proc = _pytest(ONE, "-n", "2", "--fsmcheck-examples=2", "-k", "flags or test_pair",
                   "--fsmcheck-adapter=fsmcheck.drivers.mutants_v2:factory_UndefinedFlags")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "no suite of this run matched the device: it reports migration flags 0x6" in proc.stdout


@pytest.mark.slow
def test_the_budget_stops_every_worker_with_exit_1():
    """A spinning adapter on both workers; the controller's budget (handed to
    the workers) stops the run: exit 1, not xdist's 'interrupted' (2) nor an
    internal error (3)."""
    proc = _pytest(ONE, "-n", "2", "--fsmcheck-adapter=tests.conforming_drivers:spins", "--fsmcheck-examples=2",
                   "--fsmcheck-call-timeout=1000", "--fsmcheck-budget=3", timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "--fsmcheck-budget" in proc.stdout and "INTERNALERROR" not in proc.stdout + proc.stderr


# -- fsmcheck run-pack --devices ------------------------------------------------------------------
@pytest.mark.slow
def test_run_pack_runs_a_fleet_one_worker_per_device(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import fsmcheck.generate.pack as pack_module
    from fsmcheck.cli import main

    full = pack_module.pack_files
    module = "test_vfio_v2_stop_copy.py"
    monkeypatch.setattr(pack_module, "pack_files", lambda model: {module: full(model)[module]})
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("FLEET_RECORD", str(record))
    monkeypatch.setenv("PYTEST_PLUGINS", __name__)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    listed = tmp_path / "fleet.txt"
    listed.write_text("/dev/vfio/7:0000:01:00.0\n/dev/vfio/devices/vfio3  # VF 1\n")
    out = tmp_path / "out"
    result = cli("run-pack", "--devices", str(listed), "-o", str(out), "--seed", "5",
                                       "--adapter", "tests.test_fleet:recording", catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    assert _recorded(record) == {"gw0": ("/dev/vfio/7:0000:01:00.0", "5"), "gw1": ("/dev/vfio/devices/vfio3", "5")}
    coverage = (out / "coverage.txt").read_text()
    assert "device /dev/vfio/7:0000:01:00.0 (gw0):" in coverage and "total (2 devices):" in coverage
    listed.write_text("/dev/vfio/7:a\nnot-a-device\n")
    bad = cli("run-pack", "--devices", str(listed), "-o", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "expected GROUP:NAME" in bad.output and not (tmp_path / "bad").exists()
