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

from dataclasses import dataclass
from pathlib import Path

from ..inputs import Diagnostic, InputError, parse_toml, read_text
from ..inputs.positions import index_lines
from .harness import ProtocolViolation
from .v1_checks import RULES as V1_RULES
from .v2_spec import RULES as V2_RULES

__all__ = ["Erratum", "ErrataError", "load_errata", "matching"]

_RULES = {"v1": V1_RULES, "v2": V2_RULES}
_KEYS = ("id", "protocol", "rule", "match", "reason")

#: The largest errata file read (bytes): a list of known bugs, not data.
MAX_ERRATA_BYTES = 1 << 20


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


def load_errata(path: str | Path) -> list[Erratum]:
    """Read an errata file (through :mod:`fsmcheck.inputs`: read once, at
    most :data:`MAX_ERRATA_BYTES`, UTF-8, nesting and integer guards).

    Returns:
        the errata, in file order.

    Raises:
        ErrataError: an unreadable file, bad TOML, ``erratum`` that is not an
            array of tables, a missing key, a value of the wrong type, an
            unknown protocol or rule -- every problem found, each at its line.
            Other keys (``vfio_h``, ``upstream``: the evidence) are kept out
            of the :class:`Erratum` and not checked.
    """
    try:
        doc = read_text(path, max_bytes=MAX_ERRATA_BYTES)
        data = parse_toml(doc)
    except InputError as exc:
        raise ErrataError(exc.diagnostics) from None
    lines = index_lines(doc.text)
    problems: list[Diagnostic] = []

    def bad(key: tuple, message: str) -> None:
        name = ".".join(str(k) for k in key[:1]) + "".join(
            f"[{k}]" if isinstance(k, int) else f".{k}" for k in key[1:])
        problems.append(Diagnostic(doc.path, lines.line(key), name, message))

    entries = data.get("erratum", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        bad(("erratum",), "must be an array of tables: [[erratum]]")
        entries = []
    out = []
    for i, entry in enumerate(entries):
        here = len(problems)
        missing = [k for k in _KEYS if k not in entry]
        if missing:
            bad(("erratum", i), f"missing {', '.join(missing)}")
        for key in ("id", "protocol", "rule", "reason"):
            if key in entry and not (isinstance(entry[key], str) and entry[key]):
                bad(("erratum", i, key), "must be a non-empty string")
        protocol, rule, match = entry.get("protocol"), entry.get("rule"), entry.get("match")
        if isinstance(protocol, str) and protocol and protocol not in _RULES:
            bad(("erratum", i, "protocol"), f"{protocol!r} is not v1 or v2")
        elif isinstance(protocol, str) and protocol in _RULES and isinstance(rule, str) and rule and rule not in _RULES[protocol]:
            bad(("erratum", i, "rule"), f"{rule!r} is not one of {', '.join(sorted(_RULES[protocol]))}")
        if "match" in entry and (not isinstance(match, list) or not match
                                 or not all(isinstance(m, str) and m for m in match)):
            bad(("erratum", i, "match"), "must be a non-empty list of non-empty strings")
        if len(problems) == here:
            out.append(Erratum(entry["id"], protocol, rule, tuple(match), entry["reason"]))
    if problems:
        raise ErrataError(problems)
    return out


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
