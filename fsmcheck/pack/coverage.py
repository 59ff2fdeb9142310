"""What a pack run exercised: states, arcs, pairs, rejections, resets, flag sets."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["COVERAGE", "Coverage"]


@dataclass
class Coverage:
    """Sets of exercised items, each tagged with the flag-set label."""

    flag_sets: set = field(default_factory=set)
    states: set = field(default_factory=set)
    arcs: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    rejections: set = field(default_factory=set)
    resets: set = field(default_factory=set)
    expected: dict = field(default_factory=dict)   # label -> {"states": n, "arcs": n, "pairs": n}

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
        return lines


COVERAGE = Coverage()
