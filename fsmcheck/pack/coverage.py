"""What a pack run exercised (states, arcs, pairs, rejections, resets, flag
sets) and the advisories it recorded: deviations from a SHOULD of the uAPI,
reported but not failed.

Under pytest-xdist each worker has its own :data:`COVERAGE`; the plugin
sends it to the controller as ``dataclasses.asdict`` (sets, tuples and
dicts of str and int, which execnet carries as they are) and merges it there
with :meth:`Coverage.merge`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["COVERAGE", "Coverage", "ConformanceAdvisory", "advise"]


class ConformanceAdvisory(UserWarning):
    """A deviation from a SHOULD-level rule of the uAPI (a warning, not a failure)."""


@dataclass
class Coverage:
    """Sets of exercised items, each tagged with the flag-set label."""

    flag_sets: set = field(default_factory=set)
    flags_seen: set = field(default_factory=set)    # migration_flags() values devices reported
    states: set = field(default_factory=set)
    arcs: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    rejections: set = field(default_factory=set)
    resets: set = field(default_factory=set)
    comparisons: set = field(default_factory=set)  # (label, how saved states were compared)
    expected: dict = field(default_factory=dict)   # label -> {"states": n, "arcs": n, "pairs": n}
    advisories: dict = field(default_factory=dict)  # (label, text) -> times seen
    limits: set = field(default_factory=set)        # (rule, reason): what the transport cannot show (contract.py)

    _SETS = ("flag_sets", "flags_seen", "states", "arcs", "pairs", "rejections", "resets", "comparisons",
             "limits")

    def merge(self, other: "Coverage") -> None:
        """Add ``other`` (another worker's coverage) into this one: the union of
        the exercised items and of the expected counts; advisory counts add up."""
        for name in self._SETS:
            getattr(self, name).update(getattr(other, name))
        for label, counts in other.expected.items():
            self.expected.setdefault(label, {}).update(counts)
        for key, times in other.advisories.items():
            self.advisories[key] = self.advisories.get(key, 0) + times

    def restart(self) -> None:
        """Forget what was exercised, for a new run in the same process; the
        expected counts, which the pack's modules set once at import, stay."""
        for name in self._SETS:
            getattr(self, name).clear()
        self.advisories.clear()

    def summary(self) -> list[str]:
        """One line per flag set: exercised / expected."""
        lines = []
        for label in sorted(self.flag_sets | set(self.expected)):
            want = self.expected.get(label, {})

            def count(items):
                return len({i for i in items if i[0] == label})

            parts = []
            for key, items in (("states", self.states), ("arcs", self.arcs), ("pairs", self.pairs)):
                total = want.get(key)
                if want and total is None:
                    continue
                parts.append(f"{key} {count(items)}" + (f"/{total}" if total is not None else ""))
            parts.append(f"rejections {count(self.rejections)}")
            parts.append(f"resets {count(self.resets)}")
            run = "" if label in self.flag_sets else "  (not run)"
            lines.append(f"{label}: " + ", ".join(parts) + run)
        for label, how in sorted(self.comparisons):
            lines.append(f"compared [{label}]: {how}")
        for rule, reason in sorted(self.limits):
            lines.append(f"not observable over the transport [{rule}]: {reason} (skipped or adapted)")
        for (label, text), times in sorted(self.advisories.items()):
            lines.append(f"advisory [{label}]: {text}" + (f" ({times} tests)" if times > 1 else ""))
        return lines


COVERAGE = Coverage()


def advise(label: str, text: str) -> None:
    """Record a SHOULD-level deviation for flag set ``label``: it is listed in
    the coverage summary and issued as a :class:`ConformanceAdvisory` warning."""
    import warnings

    key = (label, text)
    COVERAGE.advisories[key] = COVERAGE.advisories.get(key, 0) + 1
    warnings.warn(ConformanceAdvisory(f"[{label}] {text}"), stacklevel=2)
