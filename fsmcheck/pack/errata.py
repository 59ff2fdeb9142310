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

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .harness import ProtocolViolation
from .v1_checks import RULES as V1_RULES
from .v2_spec import RULES as V2_RULES

__all__ = ["Erratum", "ErrataError", "load_errata", "matching"]

_RULES = {"v1": V1_RULES, "v2": V2_RULES}


class ErrataError(ValueError):
    """A malformed errata file; the message names the file and the entry."""


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
    """Read an errata file.

    Raises:
        ErrataError: unreadable TOML, a missing key, an unknown protocol or rule.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ErrataError(f"{path}: {exc}") from None
    out = []
    for i, entry in enumerate(data.get("erratum", [])):
        where = f"{path}: erratum[{i}]"
        missing = [k for k in ("id", "protocol", "rule", "match", "reason") if k not in entry]
        if missing:
            raise ErrataError(f"{where}: missing {', '.join(missing)}")
        if entry["protocol"] not in _RULES:
            raise ErrataError(f"{where}: protocol {entry['protocol']!r} is not v1 or v2")
        if entry["rule"] not in _RULES[entry["protocol"]]:
            raise ErrataError(f"{where}: rule {entry['rule']!r} is not one of "
                              f"{', '.join(sorted(_RULES[entry['protocol']]))}")
        match = entry["match"]
        if not isinstance(match, list) or not match or not all(isinstance(m, str) and m for m in match):
            raise ErrataError(f"{where}: match must be a non-empty list of strings")
        out.append(Erratum(str(entry["id"]), entry["protocol"], entry["rule"], tuple(match), str(entry["reason"])))
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
