"""The rule catalogue: every MUST/SHOULD of vfio.h and seeds 000-004, with
the pack tests that can kill a violation of it.

:func:`load_catalogue` reads ``catalogue.toml`` (beside this module); the
killing tests come from :func:`~.citations.pack_citations`, which reads the
checks' citations, so the list follows the code. :func:`rule_table` joins
the two for a generated pack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import Diagnostic, InputError
from ..inputs.schema import entries, load_toml, names, string, table
from .citations import pack_citations

__all__ = ["CATALOGUE", "LEVELS", "SCHEMA", "CatalogueError", "Rule", "RuleRow", "load_catalogue",
           "pack_rule_keys", "rule_table", "uncovered_musts"]

#: The shipped catalogue.
CATALOGUE = Path(__file__).with_name("catalogue.toml")

#: MUST and SHOULD bind the driver; USER binds the user (the pack honours it);
#: OPEN is behaviour the sources leave open (an advisory, never a failure).
LEVELS = ("MUST", "SHOULD", "USER", "OPEN")
SOURCES = ("vfio.h", "seed 000", "seed 001", "seed 002", "seed 003", "seed 004", "SPEC.md")


#: The catalogue file format (JSON Schema draft 2020-12).
SCHEMA: dict = table("The rule catalogue (TOML, fsmcheck/rules/catalogue.toml): one entry per MUST/SHOULD of "
                     "vfio.h (Linux 6.12) and of seeds 000-004, plus the places the sources leave open.", {
    "rule": entries("`[[rule]]`: one rule", {
        "id": string("a unique id: `v2.` or `v1.` and a name", pattern=r"^v[12]\."),
        "level": string("MUST, SHOULD (the driver's obligations), USER (the user's, which the pack honours) or "
                        "OPEN (left open: an advisory, never a failure)", enum=list(LEVELS)),
        "sentence": string("the source's words, verbatim (whitespace and punctuation aside)", minLength=1),
        "source": string("the document the sentence is from (SPEC.md: the project's digest of the seeds)",
                         enum=list(SOURCES)),
        "section": string("where in the source"),
        "pack_rules": names("keys of the protocol's RULES the pack's checks cite for it (the killing tests are "
                            "derived from the checks, never listed)"),
        "unobservable": string("why the pack cannot see a violation through the adapter contract"),
        "note": string("a remark for the report"),
    }, ["id", "level", "sentence", "source", "section"]),
})


class CatalogueError(InputError, ValueError):
    """The catalogue file is malformed: every problem as a
    :class:`~fsmcheck.inputs.Diagnostic` (``file:line: key: message``)."""


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
    """Read and validate a catalogue file (through :mod:`fsmcheck.inputs`,
    its structure by :data:`SCHEMA`).

    Raises:
        CatalogueError: unreadable TOML, a structure the schema refuses (a
            missing or unknown field, an id without its protocol, an unknown
            level or source), a duplicate id, an unknown pack rule, or a MUST,
            SHOULD or OPEN with neither pack rules nor an ``unobservable``
            reason -- every problem, each at its ``file:line``.
    """
    try:
        doc, data, lines = load_toml(path, SCHEMA)
    except InputError as exc:
        raise CatalogueError(exc.diagnostics) from None
    rules, problems = [], []
    for i, entry in enumerate(data.get("rule", [])):
        rule = Rule(entry["id"], entry["level"], " ".join(entry["sentence"].split()), entry["source"],
                    entry["section"], tuple(entry.get("pack_rules", ())), entry.get("unobservable", ""),
                    entry.get("note", ""))

        def bad(key: str, message: str) -> None:
            problems.append(Diagnostic(doc.path, lines.line(("rule", i, key)), f"rule[{i}].{key}", message))

        if any(r.id == rule.id for r in rules):
            bad("id", f"duplicate id {rule.id!r}")
        keys = pack_rule_keys(rule.protocol)
        unknown = [k for k in rule.pack_rules if k not in keys]
        if unknown:
            bad("pack_rules", f"pack rule(s) {', '.join(unknown)} not in the {rule.protocol} RULES")
        if rule.level in ("MUST", "SHOULD", "OPEN") and not rule.pack_rules and not rule.unobservable:
            bad("level", f"a {rule.level} needs pack_rules or an unobservable reason")
        rules.append(rule)
    if problems:
        raise CatalogueError(problems)
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
