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

With pytest-xdist (``-n N``) worker ``gwK`` drives device K and no other
worker touches it (a worker that replaces a crashed one takes the device
that worker left). ``--dist load`` (the default of ``-n``) shares the pack's
tests out over the devices, ``--dist each`` runs the whole pack on every
device. More workers than devices is refused (exit 4) before any device is
opened; devices beyond the workers are not tested (the header says so).
Without xdist only the first device is tested, and the header and the
summary say so (``fsmcheck run-pack`` passes ``-n`` itself for several
devices). The controller picks the state-machine seed and hands it (and the
``--fsmcheck-budget`` deadline) to every worker; each worker sends its
coverage, its pack-test count and why it stopped through xdist's
``workeroutput``, and the controller prints one coverage summary (per device,
then the total) and applies the gates (nothing matched: exit 1; budget spent
or adapter given up: exit 1) to the whole fleet.
"""

from __future__ import annotations

import importlib
import inspect
import random
import time
from pathlib import Path

import pytest

from .coverage import COVERAGE, Coverage
from .errata import ErrataError, load_errata, matching
from .harness import DEFAULTS, LOST, ProtocolViolation

__all__ = ["STATE", "adapter_for", "read_devices"]

DEFAULT_FACTORY = "fsmcheck.drivers.reference:factory"

#: Run-wide plugin state: the factory spec, the resolved factory, the seed,
#: the device of this process (None: the factory's own default), and on the
#: xdist controller what each worker reported (``fleet``: worker id -> dict).
STATE = {"spec": DEFAULT_FACTORY, "factory": None, "seed": None, "examples": 30, "device": None}


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
        listed = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        listed = [d for d in listed if d]
        if not listed:
            raise pytest.UsageError(f"--fsmcheck-devices {path}: the file names no device (one a line, '#' comments)")
        devices += listed
    seen = set()
    for device in devices:
        if device in seen:
            raise pytest.UsageError(f"device {device!r} is named twice (--fsmcheck-device/--fsmcheck-devices): "
                                    "each device is driven by one worker only")
        seen.add(device)
    return devices


def _xdist_workers(config) -> int:
    """How many workers pytest-xdist starts from this controller (0: the run
    is not distributed, or this process is a worker)."""
    if _is_worker(config) or config.getoption("dist", default="no") == "no" or not config.getoption("tx", default=None):
        return 0
    from xdist.workermanage import parse_tx_spec_config

    return len(parse_tx_spec_config(config))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    STATE["spec"] = config.getoption("--fsmcheck-adapter", default=DEFAULT_FACTORY)
    STATE["factory"], STATE["adapters"] = None, {}
    STATE["examples"] = config.getoption("--fsmcheck-examples", default=30)
    DEFAULTS["timeout"] = config.getoption("--fsmcheck-call-timeout", default=10.0)
    budget = config.getoption("--fsmcheck-budget", default=None)
    STATE["budget"] = budget
    STATE["pack_items"], STATE["pack_run"], STATE["budget_spent"], STATE["stopped"] = 0, 0, False, None
    STATE["fleet"], STATE["held"], STATE["unused"] = {}, {}, []
    STATE["device"], STATE["devices"], STATE["workers"], STATE["wall_deadline"] = None, [], 0, None
    errata_path = config.getoption("--fsmcheck-errata", default=None)
    STATE["errata"], STATE["errata_hits"] = [], {}
    if errata_path:
        try:
            STATE["errata"] = load_errata(errata_path)
        except ErrataError as exc:
            raise pytest.UsageError(f"--fsmcheck-errata: {exc}") from None
    if _is_worker(config):  # the controller chose the seed, the deadline and this worker's device
        given = config.workerinput
        STATE["seed"], STATE["device"] = given.get("fsmcheck_seed", 0), given.get("fsmcheck_device")
        STATE["devices"] = given.get("fsmcheck_devices", [])
        wall = given.get("fsmcheck_deadline")
        DEFAULTS["deadline"] = time.monotonic() + (wall - time.time()) if wall is not None else None
        if STATE["devices"] and STATE["device"] is None:
            raise pytest.UsageError(f"xdist worker {given.get('workerid')}: no device is left for it "
                                    f"({len(STATE['devices'])} named)")
        return
    seed = config.getoption("--fsmcheck-seed", default=None)
    STATE["seed"] = seed if seed is not None else random.SystemRandom().randrange(2**32)
    DEFAULTS["deadline"] = time.monotonic() + budget if budget else None
    STATE["wall_deadline"] = time.time() + budget if budget else None
    devices = read_devices(config.getoption("--fsmcheck-device", default=None) or [],
                           config.getoption("--fsmcheck-devices", default=None))
    STATE["devices"] = devices
    if devices:
        _factory_takes_device()
    workers = _xdist_workers(config)
    STATE["workers"] = workers
    if devices and workers > len(devices):
        raise pytest.UsageError(f"{workers} xdist workers but {len(devices)} device(s) named "
                                "(--fsmcheck-device/--fsmcheck-devices): each worker drives a device of its own; "
                                f"name {workers - len(devices)} more or run with -n {len(devices)}")
    if devices:
        STATE["device"] = devices[0] if not workers else None
        STATE["unused"] = devices[max(workers, 1):]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist (controller): give worker ``gwK`` the seed, the budget's
    deadline, and device K (or, for a worker replacing a crashed one, the
    first device no live worker holds)."""
    node.workerinput["fsmcheck_seed"] = STATE["seed"]
    node.workerinput["fsmcheck_deadline"] = STATE.get("wall_deadline")
    devices = STATE.get("devices") or []
    node.workerinput["fsmcheck_devices"] = devices
    if not devices:
        return
    wid = node.gateway.id
    held = set(STATE["held"].values())
    index = int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else -1
    free = [d for d in devices if d not in held]
    device = devices[index] if 0 <= index < len(devices) and devices[index] not in held else (free or [None])[0]
    if device is not None:
        STATE["held"][wid] = device
    node.workerinput["fsmcheck_device"] = device


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist (controller): a worker ended; take what it reported (coverage,
    pack tests, errata hits, why it stopped) and free its device."""
    wid = node.gateway.id
    device = STATE["held"].pop(wid, None)
    report = (getattr(node, "workeroutput", None) or {}).get("fsmcheck")
    if report is None:
        STATE["fleet"].setdefault(wid, {"device": device, "coverage": None, "error": str(error or "no report")})
        return
    coverage = Coverage.from_dict(report["coverage"])
    COVERAGE.merge(coverage)
    STATE["fleet"][wid] = {"device": report["device"], "coverage": coverage, "pack_run": report["pack_run"],
                           "error": None}
    STATE["pack_items"] = max(STATE["pack_items"], report["pack_items"])
    STATE["pack_run"] += report["pack_run"]
    for erratum, hits in report["errata_hits"].items():
        STATE["errata_hits"][erratum] = STATE["errata_hits"].get(erratum, 0) + hits
    if report["budget_spent"]:
        STATE["budget_spent"] = True
    if report["stopped"] and not STATE["stopped"]:
        STATE["stopped"] = report["stopped"]


def pytest_report_header(config):
    errata = f", {len(STATE['errata'])} errata" if STATE.get("errata") else ""
    lines = [f"fsmcheck: adapter {STATE['spec']}, state-machine seed {STATE['seed']} (--fsmcheck-seed to replay)"
             + errata]
    devices = STATE.get("devices") or []
    if devices and STATE.get("workers"):
        lines.append(f"fsmcheck: fleet of {len(devices)} device(s), one per xdist worker: "
                     + ", ".join(f"gw{k} {d}" for k, d in enumerate(devices[:STATE['workers']])))
    elif devices:
        lines.append(f"fsmcheck: device {devices[0]}")
    if STATE.get("unused"):
        lines.append(_unused_note())
    return lines


def _unused_note() -> str:
    devices, unused = STATE["devices"], STATE["unused"]
    how = (f"run with -n {len(devices)} to test each" if not STATE.get("workers")
           else f"{STATE['workers']} worker(s); -n {len(devices)} tests each")
    return f"fsmcheck: NOT tested: {', '.join(unused)} ({how})"


def _is_pack_item(item) -> bool:
    module = getattr(item, "module", None)
    return (getattr(module, "__doc__", None) or "").startswith("fsmcheck conformance pack")


def pytest_collection_modifyitems(session, config, items):
    STATE["pack_items"] = sum(1 for item in items if _is_pack_item(item))


def pytest_runtest_setup(item):
    """Stop the run when its budget (--fsmcheck-budget) is spent."""
    if _is_pack_item(item):
        STATE["pack_run"] += 1
    deadline = DEFAULTS.get("deadline")
    if deadline is not None and time.monotonic() >= deadline:
        STATE["budget_spent"] = True
        why = (f"fsmcheck: the run budget of {STATE['budget']:g} s (--fsmcheck-budget) is spent; "
               "the remaining tests were not run")
        if _is_worker(item.config):  # xdist: stop this worker; the controller stops the others, exit 1
            item.session.shouldstop = STATE["stopped"] = why
            pytest.skip(why)
        pytest.exit(why, returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A violation an erratum explains is reported as xfailed, with its reason."""
    outcome = yield
    report = outcome.get_result()
    if LOST and not item.session.shouldfail:  # a hung adapter ends the run (nothing more is sent to it)
        why = next(iter(LOST.values()))
        item.session.shouldfail = STATE["stopped"] = f"fsmcheck: the adapter was given up ({why}); the run stops here"
    if call.excinfo is not None and report.failed and isinstance(call.excinfo.value, ProtocolViolation):
        report.longrepr = _reproduction(item, call.excinfo.value)
    if call.excinfo is None or not report.failed or not STATE.get("errata"):
        return
    erratum = matching(STATE["errata"], call.excinfo.value)
    if erratum is None:
        return
    STATE["errata_hits"][erratum.id] = STATE["errata_hits"].get(erratum.id, 0) + 1
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


def _load_factory():
    spec = STATE["spec"]
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise pytest.UsageError(f"--fsmcheck-adapter {spec!r}: expected package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"--fsmcheck-adapter {spec!r}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise pytest.UsageError(f"--fsmcheck-adapter {spec!r}: {module_name} has no callable {attr}")
    return factory


def _factory():
    if STATE["factory"] is None:
        STATE["factory"] = _load_factory()
    return STATE["factory"]


def _factory_takes_device() -> None:
    """Raise pytest.UsageError when devices are named but the factory has no
    ``device`` keyword (it could not tell them apart)."""
    try:
        params = inspect.signature(_factory()).parameters
    except (TypeError, ValueError):  # a builtin or C callable: assume it does
        return
    if "device" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise pytest.UsageError(f"--fsmcheck-device: adapter {STATE['spec']} takes no device= keyword; "
                                "it drives one device of its own")


def adapter_for(protocol: str):
    """The adapter of ``protocol`` from the configured factory (asked once per
    protocol and run: ``factory(protocol)``, or ``factory(protocol,
    device=DEVICE)`` when a device is named for this process), or skip the
    test when the factory has none."""
    adapters = STATE.setdefault("adapters", {})
    if protocol not in adapters:
        device = STATE.get("device")
        adapters[protocol] = _factory()(protocol) if device is None else _factory()(protocol, device=device)
    adapter = adapters[protocol]
    if adapter is None:
        pytest.skip(f"adapter {STATE['spec']} has no {protocol} driver")
    return adapter


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
def fsmcheck_v2():
    """The v2 adapter under test."""
    return adapter_for("v2")


@pytest.fixture(scope="session")
def fsmcheck_v1():
    """The v1 adapter under test."""
    return adapter_for("v1")


def _nothing_matched(config) -> str | None:
    """Why a run that collected pack tests tested nothing, or None (also for
    ``--collect-only``, which runs nothing by design). On the xdist
    controller: of the whole fleet, or of one device whose worker ran pack
    tests that all missed it."""
    if config.option.collectonly or not STATE.get("pack_items"):
        return None
    if not COVERAGE.flag_sets:
        seen = COVERAGE.flags_seen
        if seen:
            return (f"no suite of this run matched the device: it reports migration flags {_flags(seen)}, "
                    "and no suite collected is for them")
        return f"no suite of this run matched: adapter {STATE['spec']} has no driver for the pack's protocols"
    missed = [(w, r) for w, r in sorted(STATE.get("fleet", {}).items())
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
    if _is_worker(config):
        config.workeroutput["fsmcheck"] = {
            "device": STATE.get("device"), "coverage": COVERAGE.to_dict(), "pack_items": STATE["pack_items"],
            "pack_run": STATE["pack_run"], "errata_hits": dict(STATE["errata_hits"]),
            "budget_spent": bool(STATE["budget_spent"]), "stopped": STATE["stopped"] or None}
        return
    if _nothing_matched(config) and session.exitstatus == 0:
        session.exitstatus = 1
    if STATE.get("budget_spent") and session.exitstatus == 0:
        session.exitstatus = 1
    if STATE.get("workers") and STATE.get("stopped") and session.exitstatus == 2:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _is_worker(terminalreporter.config):
        return
    why = _nothing_matched(terminalreporter.config)
    if why:
        terminalreporter.write_sep("=", "fsmcheck: nothing was tested", red=True)
        terminalreporter.write_line(f"fsmcheck: {why} (exit 1)")
    if STATE.get("workers") and STATE.get("stopped"):
        terminalreporter.write_line(f"{STATE['stopped']} (exit 1)")
    if not COVERAGE.flag_sets:
        return
    terminalreporter.write_sep("-", "fsmcheck coverage")
    fleet = {w: r for w, r in sorted(STATE.get("fleet", {}).items(), key=lambda kv: _worker_order(kv[0]))
             if r["device"] is not None}
    for wid, report in fleet.items():
        terminalreporter.write_line(f"device {report['device']} ({wid}):")
        if report["coverage"] is None:
            terminalreporter.write_line(f"  no report: the worker ended with {report['error']}")
            continue
        for line in report["coverage"].summary() or ["nothing run"]:
            terminalreporter.write_line(f"  {line}")
    if fleet:
        terminalreporter.write_line(f"total ({len(fleet)} devices):")
    for line in COVERAGE.summary():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"adapter {STATE['spec']}; state-machine seed {STATE['seed']} "
                                f"(replay with --fsmcheck-seed={STATE['seed']})")
    for erratum in STATE.get("errata", ()):
        hits = STATE["errata_hits"].get(erratum.id, 0)
        terminalreporter.write_line(f"erratum {erratum.id}: " + (f"hit by {hits} test(s)" if hits else
                                                                  "not hit in this run"))
    if STATE.get("unused"):
        terminalreporter.write_line(_unused_note())


def _worker_order(wid: str):
    return (0, int(wid[2:])) if wid.startswith("gw") and wid[2:].isdigit() else (1, wid)
