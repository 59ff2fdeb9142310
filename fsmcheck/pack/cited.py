"""A rule as a check cites it: its text, and the catalogue rule it blames.

A check fails a device by raising a
:class:`~fsmcheck.pack.harness.ProtocolViolation` that cites ``RULES[key]``.
Each ``RULES`` value is a :class:`Cited`: the text people read (with the
rule's source) and ``id``, the one rule of ``fsmcheck/rules/catalogue.toml``
that such a failure breaks. The violation message names it (``rule: TEXT
[ID]``), and ``fsmcheck run-pack``'s results mark that catalogue rule
failed, and no other. A test checks that every ``id`` is a catalogue rule
listing the key in its ``pack_rules``.
"""

from __future__ import annotations

__all__ = ["Cited", "cite", "rule_id_of"]


class Cited(str):
    """A rule text (a ``str``, compared and printed as the text) that also
    carries ``id``, the catalogue rule it blames."""

    id: str

    def __new__(cls, rule_id: str, text: str) -> "Cited":
        made = super().__new__(cls, text)
        made.id = rule_id
        return made

    def __reduce__(self):  # pickles (xdist) as a Cited, not as a bare str
        return (Cited, (self.id, str(self)))


def cite(rule_id: str, text: str) -> Cited:
    """``Cited(rule_id, text)``."""
    return Cited(rule_id, text)


def rule_id_of(rule: object) -> str:
    """The catalogue id a cited rule blames ("" for a plain text)."""
    return getattr(rule, "id", "") or ""
