"""Which configuration of the old model each configuration of the new model
is compared with.

A configuration of the new model is compared with the old model's
configuration of the same profile whose flag set is the new flag set minus
the flags the old model does not define (its *baseline*): a flag set that
only adds a new flag (vfio.h's reserved future flag) is compared with the set
it extends, so the diff shows what the flag changes. A new configuration
whose baseline the old model lacks is *added*; an old configuration that is
no new configuration's baseline is *removed*.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.schema import Config, Model

__all__ = ["Pairing", "pair_configs"]


@dataclass(frozen=True)
class Pairing:
    """``new`` (a configuration of the new model) and ``old`` (its baseline in
    the old model); either may be None (added / removed)."""

    old: Config | None
    new: Config | None

    @property
    def label(self) -> str:
        """The new configuration's label, or the old one's when removed."""
        return (self.new or self.old).label

    @property
    def baseline(self) -> str | None:
        """The old configuration's label when it differs from the new one's."""
        if self.old is None or self.new is None or self.old.label == self.new.label:
            return None
        return self.old.label


def pair_configs(old: Model, new: Model) -> list[Pairing]:
    """Every new configuration with its baseline (in the new model's order),
    then the old configurations no new one is compared with."""
    known = set(old.flag_bits)
    by_key = {(c.flags, c.profile): c for c in old.configs()}
    out, used = [], set()
    for config in new.configs():
        base = by_key.get((config.flags & known, config.profile))
        if base is not None:
            used.add((base.flags, base.profile))
        out.append(Pairing(base, config))
    out += [Pairing(c, None) for c in old.configs() if (c.flags, c.profile) not in used]
    return out
