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
    seconds an adapter call may take (default 10);
``--fsmcheck-errata=FILE``
    known deviations of the driver under test, reported as xfailed instead
    of failed (:mod:`fsmcheck.pack.errata`).

Fixtures ``fsmcheck_v2`` and ``fsmcheck_v1`` give the adapter of each
protocol (the test is skipped when the factory has none). At the end of a
run that executed pack tests, a coverage summary is printed: states, arcs,
pairs, rejections and resets exercised per flag set.
"""

from __future__ import annotations

import importlib
import random

import pytest

from .coverage import COVERAGE
from .errata import ErrataError, load_errata, matching
from .harness import DEFAULTS

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
    group.addoption("--fsmcheck-call-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="seconds one adapter call may take")
    group.addoption("--fsmcheck-errata", default=None, metavar="FILE",
                    help="TOML file of the driver's known deviations: matching violations are xfailed")


def pytest_configure(config):
    STATE["spec"] = config.getoption("--fsmcheck-adapter", default=DEFAULT_FACTORY)
    STATE["factory"], STATE["adapters"] = None, {}
    seed = config.getoption("--fsmcheck-seed", default=None)
    STATE["seed"] = seed if seed is not None else random.SystemRandom().randrange(2**32)
    STATE["examples"] = config.getoption("--fsmcheck-examples", default=30)
    DEFAULTS["timeout"] = config.getoption("--fsmcheck-call-timeout", default=10.0)
    if not DEFAULTS["timeout"] > 0:  # 0, negative or nan: every call would "hang"
        raise pytest.UsageError(f"--fsmcheck-call-timeout must be > 0 seconds, got {DEFAULTS['timeout']}")
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A violation an erratum explains is reported as xfailed, with its reason."""
    outcome = yield
    report = outcome.get_result()
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


def pytest_terminal_summary(terminalreporter):
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
