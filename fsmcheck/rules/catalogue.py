"""The rule catalogue: every MUST/SHOULD of vfio.h and seeds 000-004, with
the pack tests that can kill a violation of it.

:func:`load_catalogue` reads ``catalogue.toml`` (beside this module); the
killing tests come from :func:`~.citations.pack_citations`, which reads the
checks' citations, so the list follows the code. :func:`rule_table` joins
the two for a generated pack.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .citations import pack_citations

__all__ = ["CATALOGUE", "LEVELS", "CatalogueError", "Rule", "RuleRow", "load_catalogue", "pack_rule_keys",
           "rule_table", "uncovered_musts"]

#: The shipped catalogue.
CATALOGUE = Path(__file__).with_name("catalogue.toml")

#: MUST and SHOULD bind the driver; USER binds the user (the pack honours it);
#: OPEN is behaviour the sources leave open (an advisory, never a failure).
LEVELS = ("MUST", "SHOULD", "USER", "OPEN")
SOURCES = ("vfio.h", "seed 000", "seed 001", "seed 002", "seed 003", "seed 004", "SPEC.md")


class CatalogueError(ValueError):
    """The catalogue file is malformed (message: ``file: rule[i]: what``)."""


@dataclass(frozen=True)
class Rule:
    """One catalogue entry (see ``catalogue.toml`` for the fields)."""

    id: str
    level: str
    sentence: str
    source: str
    section: str
    pack_rules: tuple[str, ...] = ()
    unobservable: str = ""
    note: str = ""

    @property
    def protocol(self) -> str:
        """``"v2"`` or ``"v1"`` (the id's prefix)."""
        return self.id.split(".", 1)[0]


@dataclass
class RuleRow:
    """A rule with what the pack does about it: ``kills`` (test ids that
    fail a violation) and ``advises`` (test ids that report an advisory)."""

    rule: Rule
    kills: list[str] = field(default_factory=list)
    advises: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``checked``, ``advisory``, ``user`` (honoured by the pack),
        ``unobservable``, or ``NO TEST`` (a driver rule nothing checks)."""
        if self.rule.level == "USER":
            return "user"
        if self.kills:
            return "checked"
        if self.advises:
            return "advisory"
        if self.rule.unobservable:
            return "unobservable"
        return "NO TEST"

    def as_dict(self) -> dict:
        r = self.rule
        return {"id": r.id, "protocol": r.protocol, "level": r.level, "source": r.source, "section": r.section,
                "sentence": r.sentence, "pack_rules": list(r.pack_rules), "status": self.status,
                "killing_tests": self.kills, "advisory_tests": self.advises,
                "unobservable": r.unobservable or None, "note": r.note or None}


def pack_rule_keys(protocol: str) -> dict[str, str]:
    """The ``RULES`` of a protocol's checks: key -> the text violations cite."""
    if protocol == "v2":
        from ..pack.v2_spec import RULES
    else:
        from ..pack.v1_checks import RULES
    return RULES


def load_catalogue(path: Path = CATALOGUE) -> list[Rule]:
    """Read and validate a catalogue file.

    Raises:
        CatalogueError: unreadable TOML, a missing or unknown field, a
            duplicate id, an unknown level, source or pack rule, or a MUST or
            SHOULD with neither pack rules nor an ``unobservable`` reason.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    rules, seen = [], set()
    for i, entry in enumerate(data.get("rule", [])):
        where = f"{path}: rule[{i}]"
        missing = [k for k in ("id", "level", "sentence", "source", "section") if k not in entry]
        if missing:
            raise CatalogueError(f"{where}: missing {', '.join(missing)}")
        unknown = set(entry) - {"id", "level", "sentence", "source", "section", "pack_rules", "unobservable", "note"}
        if unknown:
            raise CatalogueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        rule = Rule(entry["id"], entry["level"], " ".join(entry["sentence"].split()), entry["source"],
                    entry["section"], tuple(entry.get("pack_rules", ())), entry.get("unobservable", ""),
                    entry.get("note", ""))
        if rule.id in seen:
            raise CatalogueError(f"{where}: duplicate id {rule.id!r}")
        seen.add(rule.id)
        if rule.protocol not in ("v1", "v2"):
            raise CatalogueError(f"{where}: id {rule.id!r} must start with 'v1.' or 'v2.'")
        if rule.level not in LEVELS:
            raise CatalogueError(f"{where}: level {rule.level!r} is not one of {', '.join(LEVELS)}")
        if rule.source not in SOURCES:
            raise CatalogueError(f"{where}: source {rule.source!r} is not one of {', '.join(SOURCES)}")
        keys = pack_rule_keys(rule.protocol)
        bad = [k for k in rule.pack_rules if k not in keys]
        if bad:
            raise CatalogueError(f"{where}: pack rule(s) {', '.join(bad)} not in the {rule.protocol} RULES")
        if rule.level in ("MUST", "SHOULD", "OPEN") and not rule.pack_rules and not rule.unobservable:
            raise CatalogueError(f"{where}: a {rule.level} needs pack_rules or an unobservable reason")
        rules.append(rule)
    return rules


def rule_table(pack: Path | dict[str, str], rules: list[Rule] | None = None) -> list[RuleRow]:
    """Every catalogue rule with the tests of the pack in ``pack`` (its
    directory, or ``{module file name: source}``) that can kill (or advise
    on) a violation of it, in catalogue order."""
    rules = load_catalogue() if rules is None else rules
    cited = pack_citations(pack)
    rows = []
    for rule in rules:
        kills, advises = set(), set()
        for key in rule.pack_rules:
            kills.update(cited.kills.get((rule.protocol, key), ()))
            advises.update(cited.advises.get((rule.protocol, key), ()))
        rows.append(RuleRow(rule, sorted(kills), sorted(advises)))
    return rows


def uncovered_musts(rows: list[RuleRow]) -> list[RuleRow]:
    """The MUST rules the pack can observe but no test kills."""
    return [row for row in rows if row.rule.level == "MUST" and row.status == "NO TEST"]
