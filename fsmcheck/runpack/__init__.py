"""``fsmcheck run-pack``: the shipped v2 conformance pack against one real
VFIO device (through :mod:`fsmcheck.adapters.linux`), with the JUnit XML, the
coverage summary and an HTML page of which catalogue rules held, failed
(with their reproductions) or drew advisories."""

from .results import RuleOutcome, junit_cases, rule_outcomes

__all__ = ["RuleOutcome", "junit_cases", "rule_outcomes"]
