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
"""

from __future__ import annotations

import importlib
import random

import pytest

from .coverage import COVERAGE
from .errata import ErrataError, load_errata, matching
import time

from .harness import DEFAULTS, LOST

__all__ = ["STATE", "adapter_for"]

DEFAULT_FACTORY = "fsmcheck.drivers.reference:factory"

#: Run-wide plugin state: the factory spec, the resolved factory, the seed.
STATE = {"spec": DEFAULT_FACTORY, "factory": None, "seed": None, "examples": 30}


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


def pytest_configure(config):
    STATE["spec"] = config.getoption("--fsmcheck-adapter", default=DEFAULT_FACTORY)
    STATE["factory"], STATE["adapters"] = None, {}
    seed = config.getoption("--fsmcheck-seed", default=None)
    STATE["seed"] = seed if seed is not None else random.SystemRandom().randrange(2**32)
    STATE["examples"] = config.getoption("--fsmcheck-examples", default=30)
    DEFAULTS["timeout"] = config.getoption("--fsmcheck-call-timeout", default=10.0)
    budget = config.getoption("--fsmcheck-budget", default=None)
    DEFAULTS["deadline"] = time.monotonic() + budget if budget else None
    STATE["budget"] = budget
    STATE["pack_items"] = 0
    errata_path = config.getoption("--fsmcheck-errata", default=None)
    STATE["errata"], STATE["errata_hits"] = [], {}
    if errata_path:
        try:
            STATE["errata"] = load_errata(errata_path)
        except ErrataError as exc:
            raise pytest.UsageError(f"--fsmcheck-errata: {exc}") from None


def pytest_report_header(config):
    errata = f", {len(STATE['errata'])} errata" if STATE.get("errata") else ""
    return (f"fsmcheck: adapter {STATE['spec']}, state-machine seed {STATE['seed']} (--fsmcheck-seed to replay)"
            + errata)


def _is_pack_item(item) -> bool:
    module = getattr(item, "module", None)
    return (getattr(module, "__doc__", None) or "").startswith("fsmcheck conformance pack")


def pytest_collection_modifyitems(session, config, items):
    STATE["pack_items"] = sum(1 for item in items if _is_pack_item(item))


def pytest_runtest_setup(item):
    """Stop the run when its budget (--fsmcheck-budget) is spent."""
    deadline = DEFAULTS.get("deadline")
    if deadline is not None and time.monotonic() >= deadline:
        STATE["budget_spent"] = True
        pytest.exit(f"fsmcheck: the run budget of {STATE['budget']:g} s (--fsmcheck-budget) is spent; "
                    "the remaining tests were not run", returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A violation an erratum explains is reported as xfailed, with its reason."""
    outcome = yield
    report = outcome.get_result()
    if LOST and not item.session.shouldfail:  # a hung adapter ends the run (nothing more is sent to it)
        why = next(iter(LOST.values()))
        item.session.shouldfail = f"fsmcheck: the adapter was given up ({why}); the run stops here"
    if call.excinfo is None or not report.failed or not STATE.get("errata"):
        return
    erratum = matching(STATE["errata"], call.excinfo.value)
    if erratum is None:
        return
    STATE["errata_hits"][erratum.id] = STATE["errata_hits"].get(erratum.id, 0) + 1
    report.outcome = "skipped"
    report.wasxfail = f"erratum {erratum.id}: {erratum.reason}"


def _factory():
    if STATE["factory"] is None:
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
        STATE["factory"] = factory
    return STATE["factory"]


def adapter_for(protocol: str):
    """The adapter of ``protocol`` from the configured factory (asked once per
    protocol and run), or skip the test."""
    adapters = STATE.setdefault("adapters", {})
    if protocol not in adapters:
        adapters[protocol] = _factory()(protocol)
    adapter = adapters[protocol]
    if adapter is None:
        pytest.skip(f"adapter {STATE['spec']} has no {protocol} driver")
    return adapter


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
    ``--collect-only``, which runs nothing by design)."""
    if config.option.collectonly or not STATE.get("pack_items") or COVERAGE.flag_sets:
        return None
    seen = COVERAGE.flags_seen
    if seen:
        shown = ", ".join(f"{v:#x}" if isinstance(v, int) else str(v) for v in sorted(seen, key=str))
        return (f"no suite of this run matched the device: it reports migration flags {shown}, "
                "and no suite collected is for them")
    return f"no suite of this run matched: adapter {STATE['spec']} has no driver for the pack's protocols"


def pytest_sessionfinish(session, exitstatus):
    """A run whose pack tests all skipped for want of a matching device fails."""
    if _nothing_matched(session.config) and session.exitstatus == 0:
        session.exitstatus = 1
    if STATE.get("budget_spent") and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    why = _nothing_matched(terminalreporter.config)
    if why:
        terminalreporter.write_sep("=", "fsmcheck: nothing was tested", red=True)
        terminalreporter.write_line(f"fsmcheck: {why} (exit 1)")
    if not COVERAGE.flag_sets:
        return
    terminalreporter.write_sep("-", "fsmcheck coverage")
    for line in COVERAGE.summary():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"adapter {STATE['spec']}; state-machine seed {STATE['seed']} "
                                f"(replay with --fsmcheck-seed={STATE['seed']})")
    for erratum in STATE.get("errata", ()):
        hits = STATE["errata_hits"].get(erratum.id, 0)
        terminalreporter.write_line(f"erratum {erratum.id}: " + (f"hit by {hits} test(s)" if hits else
                                                                  "not hit in this run"))
