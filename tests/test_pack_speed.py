"""Speed and scale of the pack (issue 14), and that nothing was given up for it:
the reference drivers derive once per flag set (a bounded cache of read-only
tables, a mutant that changes the table gets its own), the harness still runs
every call on a worker it can abandon, and ``fsmcheck mutate`` (fork server,
killing-order file, jobs) reports the same table whatever the order.

No test here measures time: the figures are ``bench/bench_pack.py``'s."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest

from fsmcheck import mutation
from fsmcheck.mutation import order as mutation_order, runs as mutation_runs
from fsmcheck.adapters.contract import DriverError
from fsmcheck.drivers.reference import ReferenceV2Adapter, v2_model
from fsmcheck.drivers.v1_device import ReferenceV1Adapter, derive_v1
from fsmcheck.drivers.v2_device import ReferenceV2Device, derive
from fsmcheck.model.schema import Config
from fsmcheck.pack import calls, harness
from fsmcheck.pack.harness import LOST, AdapterFault, Harness
from fsmcheck.semantics.combination import REJECTED, derive_table

from .conftest import ROOT

PACK = ROOT / "generated_tests"
FLAG_SETS = (1, 3, 5, 7)   # STOP_COPY, +P2P, +PRE_COPY, all three


def _config(model, flags_value):
    return Config(model.flags_of(flags_value), model.profiles[0].name, model.flag_order)


# -- the reference drivers derive once per flag set -------------------------------------------
def test_devices_of_one_flag_set_share_one_derived_table():
    """200 opens over the four flag sets derive four tables, each equal to
    derive_table's; every other open is a cache hit."""
    derive.cache_clear()
    adapter = ReferenceV2Adapter()
    devices = {}
    for i in range(200):
        device = adapter.open(FLAG_SETS[i % 4])
        devices.setdefault(FLAG_SETS[i % 4], []).append(device.table)
        device.close()
    assert derive.cache_info()[:2] == (196, 4)  # (hits, misses)
    model = v2_model()
    for flags, tables in devices.items():
        assert all(t is tables[0] for t in tables)
        assert dict(tables[0]) == derive_table(model, _config(model, flags))


def test_a_derived_table_is_read_only():
    device = ReferenceV2Adapter().open(7)
    try:
        with pytest.raises(TypeError):
            device.table[("RUNNING", "STOP")] = None
        with pytest.raises(TypeError):
            del device.arcs[("RUNNING", "STOP")]
        with pytest.raises(AttributeError):
            device.running.add("STOP")
    finally:
        device.close()
    v1 = ReferenceV1Adapter().open()
    with pytest.raises(nx.NetworkXError):
        v1.graph.add_edge("a", "b")


class _NoDirectStop(ReferenceV2Device):
    """A mutant whose table rejects RUNNING -> STOP."""

    @classmethod
    def derive_table(cls, model, config):
        table = dict(super().derive_table(model, config))
        old = table[("RUNNING", "STOP")]
        table[("RUNNING", "STOP")] = dataclasses.replace(old, outcome=REJECTED, path=(), reason="mutant")
        return table


def test_a_mutant_that_changes_the_table_gets_its_own_entry():
    """Opened in either order, the mutant sees its table and the reference its
    own: the derive hook is part of the key."""
    derive.cache_clear()
    for order in ((ReferenceV2Device, _NoDirectStop), (_NoDirectStop, ReferenceV2Device)):
        for cls in order:
            device = ReferenceV2Adapter(cls).open(1)
            try:
                if cls is _NoDirectStop:
                    with pytest.raises(DriverError, match="rejected"):
                        device.set_state(device.value_of["STOP"])
                else:
                    device.set_state(device.value_of["STOP"])
                    assert device.state == "STOP"
            finally:
                device.close()
    assert derive.cache_info().misses == 2 and derive.cache_info().currsize == 2


def test_a_model_changed_in_memory_is_not_served_the_cached_table():
    """dataclasses.replace keeps the content key; the cache compares the models."""
    model = v2_model()
    derive.cache_clear()
    ReferenceV2Device(model, 1).close()
    fewer = dataclasses.replace(model, arcs=tuple(a for a in model.arcs if (a.src, a.dst) != ("STOP", "RUNNING")))
    assert fewer.digest == model.digest
    device = ReferenceV2Device(fewer, 1)
    assert ("STOP", "RUNNING") not in device.arcs
    assert device.table[("STOP", "RUNNING")].path != ("RUNNING",)
    assert derive.cache_info().misses == 2


def test_v1_devices_share_one_graph():
    derive_v1.cache_clear()
    adapter = ReferenceV1Adapter()
    graphs = {id(adapter.open().graph) for _ in range(30)}
    assert len(graphs) == 1 and derive_v1.cache_info()[:2] == (29, 1)  # (hits, misses)


# -- the harness: a cheaper handoff, the same guarantees -------------------------------------------
def _spec():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pack_speed_stop_copy", PACK / "test_vfio_v2_stop_copy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPEC


class _Records(ReferenceV2Device):
    threads: list = []

    def get_state(self):
        self.threads.append(threading.current_thread())
        return super().get_state()


def test_calls_run_on_one_worker_per_device_which_ends_at_close():
    assert calls._DIRECT is False  # the bench-only switch is off in real runs
    spec = _spec()
    _Records.threads = []
    h = Harness(ReferenceV2Adapter(_Records).open(1), spec.names, label=spec.label)
    for _ in range(50):
        h.get()
    worker = h._worker.thread
    h.close()
    assert set(_Records.threads) == {worker} and worker is not threading.current_thread()
    worker.join(5)
    assert not worker.is_alive()


def test_a_hung_call_is_abandoned_and_its_thread_ends_when_the_call_returns():
    release = threading.Event()

    class Blocks(ReferenceV2Device):
        def set_state(self, state):
            release.wait()
            return super().set_state(state)

    spec = _spec()
    adapter = ReferenceV2Adapter(Blocks)
    h = Harness(adapter.open(1), spec.names, timeout=0.05, adapter=adapter, label=spec.label)
    try:
        h.get()
        worker = h._worker.thread
        with pytest.raises(AdapterFault, match="the adapter hung in SET STOP"):
            h.set({name: value for value, name in spec.names.items()}["STOP"])
        assert worker.daemon and worker.is_alive()
        with pytest.raises(AdapterFault, match="not sent: the device was given up"):
            h.get()
        release.set()
        worker.join(5)
        assert not worker.is_alive()  # the abandoned worker does not wait for calls that never come
    finally:
        release.set()
        LOST.clear()


def test_what_the_adapter_raises_is_handed_to_the_test():
    spec = _spec()

    class Raises(ReferenceV2Device):
        def get_state(self):
            raise RuntimeError("driver exploded")

        def read(self, handle, size):
            raise KeyboardInterrupt

    h = Harness(ReferenceV2Adapter(Raises).open(1), spec.names, label=spec.label)
    try:
        with pytest.raises(AdapterFault, match="the adapter raised RuntimeError in GET: driver exploded"):
            h.get()
        assert h.set(8).error == "EINVAL"            # a DriverError is an outcome
        with pytest.raises(KeyboardInterrupt):        # not swallowed by the worker
            h.read(3)
    finally:
        h.close()


def test_a_timeout_beyond_what_locks_take_is_accepted():
    spec = _spec()
    h = Harness(ReferenceV2Adapter().open(1), spec.names, timeout=1e300, label=spec.label)
    try:
        assert spec.names[h.get()] == "RUNNING"
    finally:
        h.close()


# -- fsmcheck mutate ------------------------------------------------------------------------
def test_a_junit_testcase_names_its_node():
    def case(classname, name):
        return ET.fromstring(f'<testcase classname="{classname}" name="{name}"/>')

    assert (mutation_runs._test_id(PACK, case("test_vfio_v2_stop_copy", "test_pair[STOP-&gt;RUNNING]"))
            == "test_vfio_v2_stop_copy.py::test_pair[STOP->RUNNING]")
    assert (mutation_runs._test_id(PACK, case("test_vfio_v2_stop_copy.TestStateMachine", "runTest"))
            == "test_vfio_v2_stop_copy.py::TestStateMachine::runTest")
    assert mutation_runs._test_id(PACK, case("no_such_module", "test_x")) == ""


def _fake_pack(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "test_vfio_v2_x.py").write_text("# v2\n")
    (pack / "test_vfio_v1.py").write_text("# v1\n")
    return pack


MUTANTS = [("v2", "A", "pkg:factory_A", "a"), ("v2", "B", "pkg:factory_B", "b"),
           ("v1", "C", "pkg:factory_C", "c"), ("v1", "D", "pkg:factory_D", "d")]


def _fake_run_pack(calls, kills, rng=None):
    """A run_pack that kills each mutant with the test ``kills`` names (the
    reference passes), optionally sleeping a random while (to shuffle the order
    of completion)."""

    def fake(pack, modules, factory, seed, extra=None, *, tests=None):
        calls.append((factory, tuple(extra or ()), tuple(tests or ())))
        if rng is not None:
            time.sleep(rng.random() / 50)
        r = mutation.MutantResult(factory, "", "")
        name = factory.rsplit("_", 1)[-1]
        if "reference" in factory:
            r.passed = 5
        elif tests is None or tests == [kills[name]]:
            r.failed, r.first_kill = 1, kills[name]
            r.suites = {kills[name].split("::")[1].split("[")[0]: 1}
        else:
            r.passed = 1
        return r

    return fake


def _pack_key(pack, seed):
    """order_key without the fsmcheck sources (others edit them while the tests run)."""
    import hashlib

    return hashlib.sha256(repr((seed, [(p.name, p.read_bytes()) for p in sorted(pack.glob("test_*.py"))])).encode()
                          ).hexdigest()


def test_the_order_key_follows_the_pack_and_the_seed(tmp_path):
    pack = _fake_pack(tmp_path)
    key = mutation.order_key(pack, 0)
    assert len(key) == 64 and mutation.order_key(pack, 1) != key
    (pack / "test_vfio_v1.py").write_text("# v1, regenerated\n")
    assert mutation.order_key(pack, 0) != key


def test_the_killing_order_file_is_used_and_a_stale_one_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation_order, "order_key", _pack_key)
    pack, cache = _fake_pack(tmp_path), tmp_path / "cache"
    kills = {"A": "test_vfio_v2_x.py::test_pair[a]", "B": "test_vfio_v2_x.py::test_reset[b]",
             "C": "test_vfio_v1.py::test_bad_access[c]", "D": "test_vfio_v1.py::test_reset[d]"}
    calls = []
    monkeypatch.setattr(mutation_runs, "run_pack", _fake_run_pack(calls, kills))
    monkeypatch.setattr(mutation_runs, "all_mutants", lambda: MUTANTS)
    _, cold = mutation.score(pack, jobs=1, cache_dir=cache)
    assert not any(tests for _f, _e, tests in calls)          # no file yet: every mutant runs with -x
    doc = json.loads((cache / mutation.ORDER_FILE).read_text())
    assert {k: v.get("first_kill") for k, v in doc["runs"].items()} == {
        "v2:reference": None, "v1:reference": None, "v2:A": kills["A"], "v2:B": kills["B"],
        "v1:C": kills["C"], "v1:D": kills["D"]}

    calls.clear()
    _, warm = mutation.score(pack, jobs=1, cache_dir=cache)
    hinted = {f: tests for f, _e, tests in calls if tests}
    assert hinted == {f"pkg:factory_{m}": (kills[m],) for m in "ABCD"}
    assert len(calls) == 6 and all(r.hinted for r in warm)    # one run each, the recorded test alone
    assert [(r.name, r.killed, r.suites) for r in warm] == [(r.name, r.killed, r.suites) for r in cold]

    kills["B"] = "test_vfio_v2_x.py::test_pair[b]"             # the recorded test no longer kills B
    calls.clear()
    _, results = mutation.score(pack, jobs=1, cache_dir=cache)
    assert [c for c in calls if c[0] == "pkg:factory_B"] == [
        ("pkg:factory_B", ("-x",), ("test_vfio_v2_x.py::test_reset[b]",)), ("pkg:factory_B", ("-x",), ())]
    assert all(r.killed for r in results)

    (pack / "test_vfio_v1.py").write_text("# v1, regenerated\n")  # another pack: the file is stale
    calls.clear()
    mutation.score(pack, jobs=1, cache_dir=cache)
    assert not any(tests for _f, _e, tests in calls)
    calls.clear()
    mutation.score(pack, jobs=1, cache_dir=cache, use_cache=False)
    assert not any(tests for _f, _e, tests in calls)


def test_a_malformed_order_file_is_ignored(tmp_path):
    path = tmp_path / mutation.ORDER_FILE
    for text in ("", "{", "[]", '{"version": 1, "key": "k", "runs": []}', '{"version": 99, "key": "k", "runs": {}}'):
        path.write_text(text)
        assert mutation_order.read_order(path, "k") == {}


def test_the_table_does_not_depend_on_the_order_of_completion(tmp_path, monkeypatch):
    """Four jobs, runs that end in a random order (seed printed): the results
    come back in all_mutants' order, the same for every seed."""
    pack = _fake_pack(tmp_path)
    kills = {m: f"test_vfio_v{1 if m in 'CD' else 2}{'_x' if m in 'AB' else ''}.py::test_{m}[0]" for m in "ABCD"}
    monkeypatch.setattr(mutation_runs, "all_mutants", lambda: MUTANTS)
    tables = []
    for seed in range(3):
        print(f"completion-order seed {seed}")
        ended = []
        monkeypatch.setattr(mutation_runs, "run_pack", _fake_run_pack([], kills, random.Random(seed)))
        ref, results = mutation.score(pack, jobs=4, use_cache=False, progress=lambda r: ended.append(r.name))
        assert sorted(ended) == ["A", "B", "C", "D"]
        tables.append(([(r.name, r.protocol) for r in ref], [(r.name, r.protocol, r.killed, r.suites) for r in results]))
    assert tables[0][0] == [("reference", "v2"), ("reference", "v1")]
    assert [name for name, *_ in tables[0][1]] == ["A", "B", "C", "D"]
    assert tables[0] == tables[1] == tables[2]


def _children() -> set[int]:
    me, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.add(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs os.fork")
def test_the_v1_zoo_forked_cold_and_warm_gives_one_table(tmp_path, monkeypatch):
    """The real v1 pack and mutants: forked from warm servers, then again with
    the killing-order file (every kill hinted), then in fresh processes: one
    table; the servers are gone afterwards and the fds are back."""
    monkeypatch.setattr(mutation_order, "order_key", _pack_key)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "test_vfio_v1.py").write_text((PACK / "test_vfio_v1.py").read_text())
    fds = len(os.listdir("/proc/self/fd"))
    children = _children()

    def table(results):
        return [(r.name, r.killed, r.errors, sorted(r.suites), r.first_kill) for r in results]

    ref, cold = mutation.score(pack, jobs=2, cache_dir=tmp_path / "cache")
    assert [(r.protocol, r.failed, r.errors) for r in ref] == [("v1", 0, 0)] and ref[0].passed > 50
    assert all(r.killed for r in cold) and not any(r.hinted for r in cold), table(cold)
    _, warm = mutation.score(pack, jobs=2, cache_dir=tmp_path / "cache")
    assert [r.name for r in warm if not r.hinted] == []
    _, fresh = mutation.score(pack, jobs=2, use_cache=False, fork=False)
    assert table(cold) == table(warm), (table(cold), table(warm))
    assert table(cold) == table(fresh), (table(cold), table(fresh))
    assert _children() == children
    assert len(os.listdir("/proc/self/fd")) == fds


def test_a_worker_whose_wait_was_interrupted_is_not_reused():
    """Ctrl-C (here: a timer signal) while a call is in flight: the next call
    goes to a fresh worker, never to the one still running the old call (it
    would hand back the old call's result), and the old thread ends when
    its call returns."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")

    class Interrupted(Exception):
        pass

    release = threading.Event()

    class Slow(ReferenceV2Device):
        def get_state(self):
            release.wait(10)
            return super().get_state()

        def migration_flags(self):
            return 1

    def interrupt(signum, frame):
        raise Interrupted

    spec = _spec()
    h = Harness(ReferenceV2Adapter(Slow).open(1), spec.names, timeout=30, label=spec.label)
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            h.get()
        first = h._worker.thread
        assert h._worker.busy
        assert h._call("migration_flags", h.device.migration_flags).value == 1
        assert h._worker.thread is not first
        release.set()
        first.join(5)
        assert not first.is_alive()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release.set()
        h.close()


def test_first_kill_runs_start_with_the_flag_set_that_has_every_state(tmp_path):
    order = [m.name for m in mutation.kill_order(sorted(PACK.glob("test_vfio_v2*.py")))]
    assert order[0] == "test_vfio_v2_stop_copy_p2p_pre_copy.py" and order[-1] == "test_vfio_v2_stop_copy.py"
    (tmp_path / "test_vfio_v2_a.py").write_text("SPEC = V2Spec.from_dict({'flags': ['A']})\n")
    (tmp_path / "test_vfio_v2_b.py").write_text("SPEC = V2Spec.from_dict({'flags': ['A', 'B']})\n")
    (tmp_path / "test_vfio_v2_c.py").write_text("this is not python(\n")
    assert [m.name for m in mutation.kill_order(sorted(tmp_path.glob("*.py")))] == [
        "test_vfio_v2_b.py", "test_vfio_v2_a.py", "test_vfio_v2_c.py"]


# -- inline calls for pure-Python drivers, watched -----------------------------------------------
class _PurePython:
    """An adapter that declares its devices pure Python (calls made inline)."""

    pure_python = True

    def __init__(self, device_class):
        self.device_class = device_class

    def open(self, flags):
        return self.device_class(v2_model(), flags)


class _SpinsInPython(ReferenceV2Device):
    def set_state(self, state):
        while True:
            pass

    def get_state(self):
        time.sleep(0.4)   # C: the exception arrives when the sleep returns
        return super().get_state()

    def read(self, handle, size):
        raise RuntimeError("driver exploded")


def test_fsmchecks_own_drivers_are_called_inline_and_others_on_a_worker():
    from fsmcheck.drivers import mutants_v2, nvme_rfc

    assert ReferenceV2Adapter().pure_python and ReferenceV1Adapter().pure_python
    assert ReferenceV2Adapter(mutants_v2.MUTANTS["ChangesInStop"]).pure_python
    assert nvme_rfc.factory("v2").pure_python
    assert not ReferenceV2Adapter(_Records).pure_python   # defined in a test: may block
    spec = _spec()
    for adapter, inline in ((ReferenceV2Adapter(), True), (ReferenceV2Adapter(_Records), False), (None, False)):
        h = Harness(ReferenceV2Adapter().open(1), spec.names, adapter=adapter, label=spec.label)
        try:
            h.get()
            assert h._inline is inline and (h._worker is None) is inline
        finally:
            h.close()


def test_an_inline_call_that_overruns_fails_its_test_and_leaves_nothing_behind():
    """A spin in Python and a sleep in C, on the test's own thread: each fails
    with "the adapter hung", the device and adapter are given up, no exception
    turns up later, and the watchdog thread ends."""
    spec = _spec()
    before = set(threading.enumerate())  # a thread of an earlier test may end meanwhile: compare sets
    try:
        for op, what in ((lambda h: h.set(1), "SET STOP"), (lambda h: h.get(), "GET")):
            adapter = _PurePython(_SpinsInPython)
            h = Harness(adapter.open(1), spec.names, timeout=0.2, adapter=adapter, label=spec.label)
            assert h._inline
            with pytest.raises(AdapterFault, match=f"the adapter hung in {what}"):
                op(h)
            assert LOST[id(adapter)] == f"{what} did not return within 0.2 s"
            with pytest.raises(AdapterFault, match="not sent: the device was given up"):
                h.read(3)
            h.close()
            total = sum(range(200000))   # bytecode runs on: no stray _Hung is raised here
            assert total == 19999900000
    finally:
        LOST.clear()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(threading.enumerate()) - before


def test_an_inline_adapter_that_raises_or_lies_fails_readably_and_the_budget_holds():
    spec = _spec()
    adapter = _PurePython(_SpinsInPython)
    h = Harness(adapter.open(1), spec.names, timeout=30, adapter=adapter, label=spec.label)
    try:
        with pytest.raises(AdapterFault, match="the adapter raised RuntimeError in read\\(3\\): driver exploded"):
            h.read(3)
        harness.DEFAULTS["deadline"] = time.monotonic() + 0.3
        with pytest.raises(AdapterFault, match="the run budget \\(--fsmcheck-budget\\) ran out in SET"):
            h.set(1)
    finally:
        harness.DEFAULTS["deadline"] = None
        h.close()
        LOST.clear()


@pytest.mark.slow
def test_a_pack_run_against_a_pure_python_adapter_that_spins_ends(tmp_path):
    """The whole path through pytest: the spinning SET fails its test, the
    adapter is given up, the run stops, exit 1."""
    import subprocess
    import sys

    (tmp_path / "spinning_pure.py").write_text(
        "from fsmcheck.drivers.reference import ReferenceV2Adapter\n"
        "from fsmcheck.drivers.v2_device import ReferenceV2Device\n"
        "class Spins(ReferenceV2Device):\n"
        "    def set_state(self, state):\n"
        "        while True:\n"
        "            pass\n"
        "class Adapter(ReferenceV2Adapter):\n"
        "    pure_python = True\n"
        "def factory(protocol):\n"
        "    return Adapter(Spins) if protocol == 'v2' else None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(PACK / "test_vfio_v2_stop_copy.py"), "--fsmcheck-adapter=spinning_pure:factory",
                           "--fsmcheck-examples=2", "--fsmcheck-call-timeout=0.5"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "the adapter hung in SET" in proc.stdout
    assert "the adapter was given up (" in proc.stdout and "the run stops here" in proc.stdout
