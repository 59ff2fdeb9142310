"""Known deviations (errata) of a driver under test.

A vendor or a CI job that runs a pack against a driver with a known,
reported bug lists it in an errata file, so the run stays green for that
bug alone while every other violation still fails. The pack itself is never
edited: ``pytest PACK --fsmcheck-errata=FILE``. The file is TOML::

    [[erratum]]
    id = "mtty-resume-invalid-header-accepted"   # a name for the report
    protocol = "v2"                              # "v2" or "v1"
    rule = "resume-validate"                     # a key of the protocol's RULES
    match = ["accepted a zeros stream"]          # substrings of the violation, any one
    reason = "why, with the driver's source lines"

A test whose :class:`~fsmcheck.pack.harness.ProtocolViolation` cites the
erratum's rule and contains one of its ``match`` strings is reported as
xfailed with the erratum's id and reason (JUnit XML: skipped, with the
message). Adapter faults and every other violation fail as usual. The
terminal summary lists how often each erratum was hit, and the errata that
were not hit (a fixed driver shows up there).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from ..inputs import Diagnostic, InputError
from ..inputs.schema import entries, load_toml, names, string, table
from .harness import ProtocolViolation
from .v1_checks import RULES as V1_RULES
from .v2_spec import RULES as V2_RULES

__all__ = ["EVIDENCE_SCHEMA", "Erratum", "ErrataError", "SCHEMA", "load_errata", "read_errata", "matching"]

_RULES = {"v1": V1_RULES, "v2": V2_RULES}

#: The largest errata file read (bytes): a list of known bugs, not data.
MAX_ERRATA_BYTES = 1 << 20

_MATCH = names("substrings of the violation's message; any one matches", item=string("", minLength=1), minItems=1)
_EVIDENCE = {"vfio_h": string("the vfio.h sentence the driver deviates from (evidence)"),
             "upstream": string("the driver's source file:line that shows the deviation (evidence)")}

#: The errata file format (JSON Schema draft 2020-12).
SCHEMA: dict = table("A driver's known deviations (TOML), for `run-pack --errata` and "
                     "`pytest --fsmcheck-errata` (fsmcheck/pack/errata.py).", {
    "erratum": entries("`[[erratum]]`: one known deviation, reported as xfailed where it explains a violation", {
        "id": string("a name for the report", minLength=1),
        "protocol": string("the protocol whose checks cite the rule", enum=list(_RULES)),
        "rule": string("a key of the protocol's RULES (fsmcheck/pack/v2_spec.py, v1_checks.py)", minLength=1),
        "match": _MATCH,
        "reason": string("why, with the driver's source lines", minLength=1),
        **_EVIDENCE,
    }, ["id", "protocol", "rule", "match", "reason"]),
    "crash": entries("`[[crash]]`: a known crash of the server under test (vfio-user/e2e.py's runs)", {
        "id": string("a name for the report", minLength=1),
        "signal": string("the signal the server dies of (`SIGABRT`)", minLength=1),
        "match": _MATCH,
        "reason": string("why, with the server's source lines", minLength=1),
        **_EVIDENCE,
    }, ["id", "signal", "match", "reason"]),
})


def _with_evidence(schema: dict) -> dict:
    out = copy.deepcopy(schema)
    for kind in ("erratum", "crash"):
        item = out["properties"][kind]["items"]
        item["required"] += ["vfio_h", "upstream"]
        item["properties"]["vfio_h"]["minLength"] = 1
        item["properties"]["upstream"].update(pattern=r"[\w/.-]+\.[ch]:\d+",
                                              description="a file:line of the upstream source (`lib/x.c:12`)")
    return out


#: :data:`SCHEMA` with the evidence required: every entry names its vfio.h
#: sentence and an upstream ``file.c:line`` (the committed errata of vfio-user/).
EVIDENCE_SCHEMA: dict = _with_evidence(SCHEMA)


class ErrataError(InputError, ValueError):
    """A malformed errata file: every problem as a
    :class:`~fsmcheck.inputs.Diagnostic` (``file:line: key: message``)."""


@dataclass(frozen=True)
class Erratum:
    """One known deviation (see the module docstring)."""

    id: str
    protocol: str
    rule: str
    match: tuple[str, ...]
    reason: str

    @property
    def rule_text(self) -> str:
        """The rule as violation messages cite it."""
        return _RULES[self.protocol][self.rule]


def read_errata(path: str | Path, *, evidence: bool = False) -> dict:
    """Read and check an errata file (through :mod:`fsmcheck.inputs`: read
    once, at most :data:`MAX_ERRATA_BYTES`, UTF-8, nesting and integer guards;
    structure by :data:`SCHEMA`, or :data:`EVIDENCE_SCHEMA` with ``evidence``).

    Returns:
        the parsed document (``erratum`` and ``crash``: lists of tables).

    Raises:
        ErrataError: an unreadable file, bad TOML, a structure the schema
            refuses (a missing or unknown key, a value of the wrong type or
            empty, an unknown protocol), or a rule that is not a key of the
            protocol's RULES -- every problem found, each at its line.
    """
    try:
        doc, data, lines = load_toml(path, EVIDENCE_SCHEMA if evidence else SCHEMA, max_bytes=MAX_ERRATA_BYTES)
    except InputError as exc:
        raise ErrataError(exc.diagnostics) from None
    unknown = [Diagnostic(doc.path, lines.line(("erratum", i, "rule")), f"erratum[{i}].rule",
                          f"{e['rule']!r} is not one of {', '.join(sorted(_RULES[e['protocol']]))}")
               for i, e in enumerate(data.get("erratum", [])) if e["rule"] not in _RULES[e["protocol"]]]
    if unknown:
        raise ErrataError(unknown)
    return data


def load_errata(path: str | Path) -> list[Erratum]:
    """The errata of the file at ``path`` (:func:`read_errata`), in file
    order; the evidence keys (``vfio_h``, ``upstream``) and ``[[crash]]``
    entries are kept out of the :class:`Erratum` list.

    Raises:
        ErrataError: as :func:`read_errata`.
    """
    return [Erratum(e["id"], e["protocol"], e["rule"], tuple(e["match"]), e["reason"])
            for e in read_errata(path).get("erratum", [])]


def matching(errata: list[Erratum], exc: BaseException) -> Erratum | None:
    """The erratum that explains ``exc``, or None. A group of failures (hypothesis:
    "found N distinct failures") is explained when each of them is; the first's erratum."""
    if isinstance(exc, BaseExceptionGroup):
        found = [matching(errata, sub) for sub in exc.exceptions]
        return found[0] if found and all(found) else None
    if not isinstance(exc, ProtocolViolation):
        return None
    text = str(exc)
    for erratum in errata:
        if exc.rule == erratum.rule_text and any(m in text for m in erratum.match):
            return erratum
    return None
