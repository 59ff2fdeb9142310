"""A pack run's JUnit XML read back per catalogue rule (``fsmcheck rules``).

A failing test is blamed on the one rule its violation names: the pack's
checks cite ``RULES[key]``, a :class:`~fsmcheck.pack.cited.Cited` that names
its catalogue rule, and the message carries it as ``rule: TEXT [ID]``. Only
a failure that names no rule (a plain assertion) falls back to every rule
its test can kill."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..rules import rule_table

__all__ = ["Case", "RuleOutcome", "junit_cases", "rule_outcomes", "blamed_rule"]

#: The ``rule: TEXT [ID]`` line of a violation (possibly behind pytest's ``E   ``).
_BLAMED = re.compile(r"^(?:E\s+)?\s*rule: .*\[((?:v1|v2)\.[A-Za-z0-9-]+)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Case:
    """One test case of the JUnit XML: ``test`` (``module.py::function`` or
    ``module.py::Class``, the ids :func:`fsmcheck.rules.rule_table` uses),
    ``name`` (the full pytest name with parameters), ``outcome`` (``passed``,
    ``failed``, ``error`` (an adapter fault), ``xfailed`` (explained by an
    erratum), ``skipped``) and ``message``/``text`` of a failure
    (the reproduction the check printed)."""

    test: str
    name: str
    outcome: str
    message: str = ""
    text: str = ""


@dataclass
class RuleOutcome:
    """A rule after a run: ``verdict`` is ``failed`` (a killing test failed),
    ``adapter error`` (none failed, but some errored or the adapter raised
    :class:`~fsmcheck.pack.harness.AdapterFault`: not judged), ``erratum``
    (violated only as an ``--errata`` entry explains), ``held`` (its
    killing tests ran and passed), ``advisory`` (a SHOULD the
    pack only advises on, with the run's advisories), ``not run`` (no test
    of it ran against this device) or ``not checked`` (the rule is for the
    user or unobservable); ``failures`` are the failing (or erroring) cases."""

    rule: object
    verdict: str
    ran: int = 0
    failures: list[Case] = field(default_factory=list)


def blamed_rule(case: Case) -> str:
    """The catalogue rule a failing case's violation names ("" when none)."""
    found = _BLAMED.search(case.message) or _BLAMED.search(case.text)
    return found.group(1) if found else ""


def _test_id(classname: str, name: str) -> str:
    parts = classname.split(".")
    for i, part in enumerate(parts):
        if part.startswith("test_"):
            if i + 1 < len(parts) and parts[i + 1].startswith("Test"):
                return f"{part}.py::{parts[i + 1]}"
            return f"{part}.py::{name.split('[', 1)[0]}"
    return f"{classname}::{name.split('[', 1)[0]}"


def junit_cases(junit: Path) -> list[Case]:
    """The test cases of a pytest JUnit XML file.

    Raises:
        ET.ParseError, OSError: the file is not readable JUnit XML.
    """
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        test = _test_id(case.get("classname", ""), case.get("name", ""))
        for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                message = node.get("message") or ""
                if outcome == "failed" and "AdapterFault" in message.split(":", 1)[0]:
                    outcome = "error"  # the adapter broke, the driver was not judged (as fsmcheck mutate counts it)
                elif outcome == "skipped" and node.get("type") == "pytest.xfail":
                    outcome = "xfailed"  # a violation an erratum (--errata) explains
                cases.append(Case(test, case.get("name", ""), outcome, message, node.text or ""))
                break
        else:
            cases.append(Case(test, case.get("name", ""), "passed"))
    return cases


def rule_outcomes(pack: Path, cases: list[Case], protocols=("v2",)) -> list[RuleOutcome]:
    """Every catalogue rule of ``protocols`` with its verdict in the run of
    ``pack`` whose cases are ``cases`` (see :class:`RuleOutcome`)."""
    by_test: dict[str, list[Case]] = {}
    for case in cases:
        by_test.setdefault(case.test, []).append(case)
    blame = {id(c): blamed_rule(c) for c in cases if c.outcome in ("failed", "xfailed")}
    out = []
    for row in rule_table(pack):
        if row.rule.protocol not in protocols:
            continue
        killing = [c for t in row.kills for c in by_test.get(t, ())]
        ran = [c for c in killing if c.outcome != "skipped"]

        def mine(c, rule_id=row.rule.id):  # a failure of this rule: it names it, or names none
            return blame[id(c)] in (rule_id, "")

        failures = _shortest_first([c for c in ran if c.outcome == "failed" and mine(c)])
        errors = [c for c in ran if c.outcome == "error"]
        errata = [c for c in ran if c.outcome == "xfailed" and mine(c)]
        passed = [c for c in ran if c.outcome == "passed"]
        if failures:
            verdict = "failed"
        elif errors:
            verdict, failures = "adapter error", errors
        elif errata:
            verdict, failures = "erratum", errata
        elif passed:
            verdict = "held"
        elif ran:
            verdict = "not run"  # its tests stopped on other rules' failures or on adapter errors
        elif row.status == "advisory":
            verdict = "advisory"
        elif row.status in ("user", "unobservable"):
            verdict = "not checked"
        else:
            verdict = "not run"
        out.append(RuleOutcome(row.rule, verdict, len(ran), failures))
    return out


def _shortest_first(cases: list[Case]) -> list[Case]:
    """The failing cases, the shortest reproduction first (the one a reader
    should start from), then in run order."""
    return sorted(cases, key=lambda c: len(c.text) + len(c.message))
