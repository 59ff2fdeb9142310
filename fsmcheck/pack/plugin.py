"""The pytest plugin that runs conformance packs (entry point ``fsmcheck``).

Options:

``--fsmcheck-adapter=package.module:factory``
    the adapter factory (default: the reference drivers,
    ``fsmcheck.drivers.reference:factory``);
``--fsmcheck-seed=N``
    the seed of the hypothesis state machines (default: random, printed in
    the header so a run can be replayed);
``--fsmcheck-examples=N``
    state-machine runs per flag set (default 30);
``--fsmcheck-call-timeout=S``
    seconds an adapter call may take (default 10); a call that takes longer
    fails its test, the adapter is given up (no further call goes to it;
    the worker thread is a daemon, abandoned) and the run stops, exit 1;
``--fsmcheck-budget=S``
    seconds the whole run may take (default: no budget); when it is spent,
    the call in progress is abandoned and the run stops with exit code 1;
``--fsmcheck-errata=FILE``
    known deviations of the driver under test, reported as xfailed instead
    of failed (:mod:`fsmcheck.pack.errata`).

Fixtures ``fsmcheck_v2`` and ``fsmcheck_v1`` give the adapter of each
protocol (the test is skipped when the factory has none). At the end of a
run that executed pack tests, a coverage summary is printed: states, arcs,
pairs, rejections and resets exercised per flag set.

A run in which pack tests were collected but no suite matched the device
(its migration flags are none of the suites', or the factory has no driver
for the pack's protocols) exits 1, not 0: a gate that tested nothing has
not passed.

A fleet of devices (issue 14):

``--fsmcheck-device=DEVICE`` (repeatable), ``--fsmcheck-devices=FILE``
    the devices under test, in order (the option's, then the file's: one
    device a line, blank lines and text after ``#`` ignored). Each is handed
    to the factory as ``factory(protocol, device=DEVICE)``; the factory must
    take that keyword (``fsmcheck.adapters.linux:factory`` does: ``GROUP:NAME``
    or a cdev path). A device named twice is a usage error (exit 4).

With pytest-xdist (``-n N``) worker ``gwK`` drives device K (docs/packs.md,
"A fleet of devices"); more workers than devices exits 4 before any device
is opened. The controller hands its seed and budget deadline to the workers
(``workerinput``); each sends back its coverage, pack-test count and why it
stopped (``workeroutput``), and the controller prints one summary and
applies the gates to the whole fleet.

A run's state is a :class:`PackRun` in ``config.stash[RUN]``; the
process-wide call settings and lost adapters (``calls.DEFAULTS``, ``LOST``)
and ``COVERAGE`` are set and restarted by each run's ``pytest_configure``.
"""

from __future__ import annotations

import importlib
import inspect
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from .calls import LOST, adapter_lost, deadline_left
from .coverage import COVERAGE, Coverage
from .errata import Erratum, ErrataError, load_errata, matching
from .harness import DEFAULTS, ProtocolViolation

__all__ = ["RUN", "PackRun", "read_devices"]

DEFAULT_FACTORY = "fsmcheck.drivers.reference:factory"


@dataclass
class PackRun:
    """One pytest run of a pack, in ``config.stash[RUN]`` (made by
    ``pytest_configure``; every hook and fixture reads it from its config).
    Times are in seconds; "(controller)" fields are the xdist controller's,
    merged from what the workers report."""

    spec: str = DEFAULT_FACTORY           # --fsmcheck-adapter: package.module:factory
    seed: int = 0                         # --fsmcheck-seed, else random; a worker's is the controller's
    examples: int = 30                    # --fsmcheck-examples: state-machine runs per flag set
    budget: float | None = None           # --fsmcheck-budget (None: no budget)
    wall_deadline: float | None = None    # the time.time() the budget ends at, handed to the workers
    errata: list[Erratum] = field(default_factory=list)   # --fsmcheck-errata, in file order
    devices: list[str] = field(default_factory=list)      # --fsmcheck-device, then --fsmcheck-devices
    device: str | None = None             # the device this process drives (None: the factory's default)
    workers: int = 0                      # xdist workers of this controller (0: none, or a worker)
    unused: list[str] = field(default_factory=list)       # devices no worker drives
    adapters: dict[str, object] = field(default_factory=dict)  # "v2"/"v1" -> adapter (None: no driver)
    pack_items: int = 0                   # pack tests collected ((controller) the most a worker collected)
    pack_run: int = 0                     # pack tests set up ((controller) the fleet's sum)
    budget_spent: bool = False
    stopped: str | None = None            # why the run stopped early (budget, adapter given up)
    errata_hits: Counter = field(default_factory=Counter)     # erratum id -> tests it xfailed
    held: dict[str, str] = field(default_factory=dict)    # (controller) worker id -> its device
    fleet: dict[str, dict] = field(default_factory=dict)  # (controller) worker id -> its report
    _factory: object = None

    def factory(self):
        """The factory ``spec`` names, imported once.

        Raises:
            pytest.UsageError: ``spec`` is not ``package.module:factory``, or
                does not import, or names nothing callable.
        """
        if self._factory is None:
            module_name, _, attr = self.spec.partition(":")
            if not module_name or not attr:
                raise pytest.UsageError(f"--fsmcheck-adapter {self.spec!r}: expected package.module:factory")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise pytest.UsageError(f"--fsmcheck-adapter {self.spec!r}: cannot import {module_name}: "
                                        f"{exc}") from None
            self._factory = getattr(module, attr, None)
            if not callable(self._factory):
                raise pytest.UsageError(f"--fsmcheck-adapter {self.spec!r}: {module_name} has no callable {attr}")
        return self._factory

    def adapter(self, protocol: str):
        """The adapter of ``protocol`` from the factory (asked once per
        protocol and run: ``factory(protocol)``, or ``factory(protocol,
        device=DEVICE)`` when a device is named for this process), or skip the
        test when the factory has none."""
        if protocol not in self.adapters:
            made = self.factory()
            self.adapters[protocol] = made(protocol) if self.device is None else made(protocol, device=self.device)
        if self.adapters[protocol] is None:
            pytest.skip(f"adapter {self.spec} has no {protocol} driver")
        return self.adapters[protocol]

    def unused_note(self) -> str:
        how = (f"run with -n {len(self.devices)} to test each" if not self.workers
               else f"{self.workers} worker(s); -n {len(self.devices)} tests each")
        return f"fsmcheck: NOT tested: {', '.join(self.unused)} ({how})"


#: The key of this run's :class:`PackRun` in ``config.stash``.
RUN = pytest.StashKey[PackRun]()


def pytest_addoption(parser):
    group = parser.getgroup("fsmcheck", "fsmcheck conformance packs")
    group.addoption("--fsmcheck-adapter", default=DEFAULT_FACTORY, metavar="MODULE:FACTORY",
                    help="adapter factory for the conformance pack (default: the reference drivers)")
    group.addoption("--fsmcheck-seed", type=int, default=None, metavar="N",
                    help="seed of the state-machine tests (default: random, printed)")
    group.addoption("--fsmcheck-examples", type=int, default=30, metavar="N",
                    help="state-machine runs per flag set")
    group.addoption("--fsmcheck-call-timeout", type=_positive_seconds, default=10.0, metavar="SECONDS",
                    help="seconds one adapter call may take (> 0); a hung adapter is given up")
    group.addoption("--fsmcheck-budget", type=_positive_seconds, default=None, metavar="SECONDS",
                    help="seconds the whole run may take (> 0; default: no budget); then the run stops, exit 1")
    group.addoption("--fsmcheck-errata", default=None, metavar="FILE",
                    help="TOML file of the driver's known deviations: matching violations are xfailed")
    group.addoption("--fsmcheck-device", action="append", default=[], metavar="DEVICE",
                    help="a device under test, given to the factory as device=DEVICE; repeat for a fleet "
                         "(with -n N, worker gwK drives device K)")
    group.addoption("--fsmcheck-devices", default=None, metavar="FILE",
                    help="file of devices under test, one a line ('#' starts a comment), after --fsmcheck-device")


def _positive_seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value


def read_devices(options: list[str], path: str | None) -> list[str]:
    """The devices of a run: ``options`` (each ``--fsmcheck-device``), then the
    lines of the file ``path`` (``--fsmcheck-devices``; blank lines and text
    after ``#`` ignored), in order.

    Raises:
        pytest.UsageError: the file cannot be read or names no device, or a
            device is named twice (two workers would share it).
    """
    devices = [d.strip() for d in options if d.strip()]
    if path is not None:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise pytest.UsageError(f"--fsmcheck-devices {path}: cannot read it: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
        listed = [d for d in (line.split("#", 1)[0].strip() for line in text.splitlines()) if d]
        if not listed:
            raise pytest.UsageError(f"--fsmcheck-devices {path}: the file names no device (one a line, '#' comments)")
        devices += listed
    twice = next((d for i, d in enumerate(devices) if d in devices[:i]), None)
    if twice is not None:
        raise pytest.UsageError(f"device {twice!r} is named twice (--fsmcheck-device/--fsmcheck-devices): "
                                "each device is driven by one worker only")
    return devices


def _xdist_workers(config) -> int:
    """How many workers pytest-xdist starts from this controller (0: the run
    is not distributed, or this process is a worker): the ``--tx`` specs
    (``-n N`` is N ``popen`` specs once xdist has resolved it), ``K*SPEC``
    counting K, as xdist documents the option."""
    if _is_worker(config) or config.getoption("dist", default="no") == "no":
        return 0
    specs = [tx.partition("*") for tx in config.getoption("tx", default=None) or ()]
    return sum(int(k) if star and k.isdigit() else 1 for k, star, _ in specs)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    errata_path = config.getoption("--fsmcheck-errata", default=None)
    try:
        errata = load_errata(errata_path) if errata_path else []
    except ErrataError as exc:
        raise pytest.UsageError(f"--fsmcheck-errata: {exc}") from None
    budget = config.getoption("--fsmcheck-budget", default=None)
    run = config.stash[RUN] = PackRun(spec=config.getoption("--fsmcheck-adapter", default=DEFAULT_FACTORY),
                                      examples=config.getoption("--fsmcheck-examples", default=30),
                                      budget=budget, errata=errata)
    COVERAGE.restart()
    LOST.clear()  # ids of an earlier run's adapters, which a new adapter may reuse
    DEFAULTS["timeout"] = config.getoption("--fsmcheck-call-timeout", default=10.0)
    if _is_worker(config):  # the controller chose the seed, the deadline and this worker's device
        given = config.workerinput
        run.seed, run.device = given.get("fsmcheck_seed", 0), given.get("fsmcheck_device")
        run.devices = given.get("fsmcheck_devices", [])
        wall = given.get("fsmcheck_deadline")
        DEFAULTS["deadline"] = time.monotonic() + (wall - time.time()) if wall is not None else None
        if run.devices and run.device is None:
            raise pytest.UsageError(f"xdist worker {given.get('workerid')}: no device is left for it "
                                    f"({len(run.devices)} named)")
        return
    seed = config.getoption("--fsmcheck-seed", default=None)
    run.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    DEFAULTS["deadline"] = time.monotonic() + budget if budget else None
    run.wall_deadline = time.time() + budget if budget else None
    run.devices = read_devices(config.getoption("--fsmcheck-device", default=None) or [],
                               config.getoption("--fsmcheck-devices", default=None))
    run.workers = workers = _xdist_workers(config)
    if run.devices:
        _factory_takes_device(run)
        if workers > len(run.devices):
            raise pytest.UsageError(f"{workers} xdist workers but {len(run.devices)} device(s) named "
                                    "(--fsmcheck-device/--fsmcheck-devices): each worker drives a device of its own; "
                                    f"name {workers - len(run.devices)} more or run with -n {len(run.devices)}")
        run.device = run.devices[0] if not workers else None
        run.unused = run.devices[max(workers, 1):]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist (controller): give worker ``gwK`` the seed, the budget's
    deadline, and device K (or, for a worker replacing a crashed one, the
    first device no live worker holds)."""
    run = node.config.stash[RUN]
    node.workerinput["fsmcheck_seed"] = run.seed
    node.workerinput["fsmcheck_deadline"] = run.wall_deadline
    devices = node.workerinput["fsmcheck_devices"] = run.devices
    if not devices:
        return
    wid = node.gateway.id
    held = set(run.held.values())
    index = int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else -1
    free = [d for d in devices if d not in held]
    device = devices[index] if 0 <= index < len(devices) and devices[index] not in held else (free or [None])[0]
    if device is not None:
        run.held[wid] = device
    node.workerinput["fsmcheck_device"] = device


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist (controller): a worker ended; take what it reported (coverage,
    pack tests, errata hits, why it stopped) and free its device."""
    run, wid = node.config.stash[RUN], node.gateway.id
    device = run.held.pop(wid, None)
    report = (getattr(node, "workeroutput", None) or {}).get("fsmcheck")
    if report is None:
        run.fleet.setdefault(wid, {"device": device, "coverage": None, "error": str(error or "no report")})
        return
    coverage = Coverage(**report["coverage"])
    COVERAGE.merge(coverage)
    run.fleet[wid] = {"device": report["device"], "coverage": coverage, "pack_run": report["pack_run"], "error": None}
    run.pack_items = max(run.pack_items, report["pack_items"])
    run.pack_run += report["pack_run"]
    run.errata_hits.update(report["errata_hits"])
    run.budget_spent = run.budget_spent or report["budget_spent"]
    run.stopped = run.stopped or report["stopped"]


def pytest_report_header(config):
    run = config.stash[RUN]
    errata = f", {len(run.errata)} errata" if run.errata else ""
    lines = [f"fsmcheck: adapter {run.spec}, state-machine seed {run.seed} (--fsmcheck-seed to replay)" + errata]
    if run.devices and run.workers:
        lines.append(f"fsmcheck: fleet of {len(run.devices)} device(s), one per xdist worker: "
                     + ", ".join(f"gw{k} {d}" for k, d in enumerate(run.devices[:run.workers])))
    elif run.devices:
        lines.append(f"fsmcheck: device {run.devices[0]}")
    if run.unused:
        lines.append(run.unused_note())
    return lines


def _is_pack_item(item) -> bool:
    module = getattr(item, "module", None)
    return (getattr(module, "__doc__", None) or "").startswith("fsmcheck conformance pack")


def pytest_collection_modifyitems(session, config, items):
    config.stash[RUN].pack_items = sum(1 for item in items if _is_pack_item(item))


def pytest_runtest_setup(item):
    """Stop the run when its budget (--fsmcheck-budget) is spent."""
    run = item.config.stash[RUN]
    if _is_pack_item(item):
        run.pack_run += 1
    left = deadline_left()
    if left is not None and left <= 0:
        run.budget_spent = True
        why = (f"fsmcheck: the run budget of {run.budget:g} s (--fsmcheck-budget) is spent; "
               "the remaining tests were not run")
        if _is_worker(item.config):  # xdist: stop this worker; the controller stops the others, exit 1
            item.session.shouldstop = run.stopped = why
            pytest.skip(why)
        pytest.exit(why, returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A violation an erratum explains is reported as xfailed, with its reason."""
    outcome = yield
    report, run = outcome.get_result(), item.config.stash[RUN]
    lost = next(filter(None, map(adapter_lost, run.adapters.values())), None)
    if lost and not item.session.shouldfail:  # a hung adapter ends the run (nothing more is sent to it)
        item.session.shouldfail = run.stopped = f"fsmcheck: the adapter was given up ({lost}); the run stops here"
    if call.excinfo is not None and report.failed and isinstance(call.excinfo.value, ProtocolViolation):
        report.longrepr = _reproduction(item, call.excinfo.value)
    if call.excinfo is None or not report.failed or not run.errata:
        return
    erratum = matching(run.errata, call.excinfo.value)
    if erratum is None:
        return
    run.errata_hits[erratum.id] += 1
    report.outcome = "skipped"
    report.wasxfail = f"erratum {erratum.id}: {erratum.reason}"


def _reproduction(item, exc: ProtocolViolation) -> str:
    """A violation's report: the test, the violation (headline, the rule it
    breaks with its catalogue id, expected and observed, the operations from
    open with runs of identical steps folded) and the notes hypothesis adds
    (the shrunk falsifying example) -- not the Python traceback through the
    pack's own code, which says nothing about the driver and made a failing
    run's log and JUnit XML tens of megabytes."""
    notes = [str(n) for n in getattr(exc, "__notes__", None) or ()]
    return "\n".join([f"{type(exc).__name__}: {exc}", *notes])


def _factory_takes_device(run: PackRun) -> None:
    """Raise pytest.UsageError when devices are named but the factory has no
    ``device`` keyword (it could not tell them apart)."""
    try:
        params = inspect.signature(run.factory()).parameters
    except (TypeError, ValueError):  # a builtin or C callable: assume it does
        return
    if "device" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise pytest.UsageError(f"--fsmcheck-device: adapter {run.spec} takes no device= keyword; "
                                "it drives one device of its own")


@pytest.fixture
def record_property(request):
    """pytest's ``record_property``, except in a pack module under JUnit
    family xunit2 (pytest's default), whose schema has no properties on a
    test case (pytest warns once per test there): the pack's observations
    (v1's unspecified arcs) then go to the test suite's properties
    (``record_testsuite_property``), each value prefixed with its test's id.
    Under xdist the suite's properties are not collected (pytest #7767)."""
    if not _is_pack_item(request.node) or request.config.getini("junit_family") != "xunit2":
        return request.getfixturevalue("record_property")  # pytest's own, which this overrides
    suite = request.getfixturevalue("record_testsuite_property")
    return lambda name, value: suite(name, f"{request.node.nodeid}: {value}")


@pytest.fixture(scope="session")
def fsmcheck_v2(request):
    """The v2 adapter under test."""
    return request.config.stash[RUN].adapter("v2")


@pytest.fixture(scope="session")
def fsmcheck_v1(request):
    """The v1 adapter under test."""
    return request.config.stash[RUN].adapter("v1")


def _nothing_matched(config) -> str | None:
    """Why a run that collected pack tests tested nothing, or None (also for
    ``--collect-only``, which runs nothing by design). On the xdist
    controller: of the whole fleet, or of one device whose worker ran pack
    tests that all missed it."""
    run = config.stash[RUN]
    if config.option.collectonly or not run.pack_items:
        return None
    if not COVERAGE.flag_sets:
        seen = COVERAGE.flags_seen
        if seen:
            return (f"no suite of this run matched the device: it reports migration flags {_flags(seen)}, "
                    "and no suite collected is for them")
        return f"no suite of this run matched: adapter {run.spec} has no driver for the pack's protocols"
    missed = [(w, r) for w, r in sorted(run.fleet.items())
              if r["device"] is not None and r["coverage"] is not None and r["pack_run"]
              and not r["coverage"].flag_sets]
    if missed:
        return "; ".join(f"device {r['device']} ({w}) ran {r['pack_run']} pack tests and no suite matched it"
                         + (f" (it reports migration flags {_flags(r['coverage'].flags_seen)})"
                            if r["coverage"].flags_seen else "") for w, r in missed)
    return None


def _flags(seen) -> str:
    return ", ".join(f"{v:#x}" if isinstance(v, int) else str(v) for v in sorted(seen, key=str))


def pytest_sessionfinish(session, exitstatus):
    """A run whose pack tests all skipped for want of a matching device fails,
    so does one stopped by its budget or a given-up adapter (exit 1; on the
    xdist controller that stop arrives as an interruption, 2, and is mapped
    to 1). An xdist worker reports to the controller instead of judging."""
    config = session.config
    run = config.stash[RUN]
    if _is_worker(config):
        config.workeroutput["fsmcheck"] = {
            "device": run.device, "coverage": asdict(COVERAGE), "pack_items": run.pack_items,
            "pack_run": run.pack_run, "errata_hits": dict(run.errata_hits),
            "budget_spent": run.budget_spent, "stopped": run.stopped}
        return
    if _nothing_matched(config) and session.exitstatus == 0:
        session.exitstatus = 1
    if run.budget_spent and session.exitstatus == 0:
        session.exitstatus = 1
    if run.workers and run.stopped and session.exitstatus == 2:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    config = terminalreporter.config
    if _is_worker(config):
        return
    run, write = config.stash[RUN], terminalreporter.write_line
    why = _nothing_matched(config)
    if why:
        terminalreporter.write_sep("=", "fsmcheck: nothing was tested", red=True)
        write(f"fsmcheck: {why} (exit 1)")
    if run.workers and run.stopped:
        write(f"{run.stopped} (exit 1)")
    if not COVERAGE.flag_sets:
        return
    terminalreporter.write_sep("-", "fsmcheck coverage")
    fleet = {w: r for w, r in sorted(run.fleet.items(), key=lambda kv: _worker_order(kv[0])) if r["device"] is not None}
    for wid, report in fleet.items():
        write(f"device {report['device']} ({wid}):")
        if report["coverage"] is None:
            write(f"  no report: the worker ended with {report['error']}")
            continue
        for line in report["coverage"].summary() or ["nothing run"]:
            write(f"  {line}")
    if fleet:
        write(f"total ({len(fleet)} devices):")
    for line in COVERAGE.summary():
        write(line)
    write(f"adapter {run.spec}; state-machine seed {run.seed} (replay with --fsmcheck-seed={run.seed})")
    for erratum in run.errata:
        hits = run.errata_hits[erratum.id]
        write(f"erratum {erratum.id}: " + (f"hit by {hits} test(s)" if hits else "not hit in this run"))
    if run.unused:
        write(run.unused_note())


def _worker_order(wid: str):
    return (0, int(wid[2:])) if wid.startswith("gw") and wid[2:].isdigit() else (1, wid)
