"""Choosing a device's feature flags: ``--flags SET`` or ``--flags auto``.

``auto`` takes the smallest defined flag set of the model (vfio.h: the four
defined combinations of VFIO_MIGRATION_STOP_COPY, _P2P and _PRE_COPY) that
supports every state the device was recorded in or asked for; ties go to
the model's declaration order. A request counts because QEMU asks only for
states the device advertises (``hw/vfio/migration.c``: ``vfio_save_setup()``
asks for PRE_COPY only when ``vfio_precopy_supported()``, and
``vfio_migration_init()`` registers ``vfio_vmstate_change_prepare()``, the
only source of the P2P requests, only with VFIO_MIGRATION_P2P).

Absence of evidence is not evidence: a device never seen in a P2P state may
well support P2P (a destination whose migration failed stays in RESUMING).
So whether the device *lacks* the P2P flag is decided only from what it did
(:class:`P2PEvidence`): it lacks P2P when QEMU stopped it with the VM
(``vfio_vmstate_change`` running 0) without running
``vfio_vmstate_change_prepare`` for it first -- in a trace that logs that
event for some device (so it was enabled) --, and has P2P when it was in a
P2P state or QEMU ran the prepare handler for it; otherwise its P2P support
is *not determined*, and no P2P-flag finding is made about it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model.schema import Model

__all__ = ["auto_flags", "flags_label", "P2PEvidence", "HAS", "LACKS", "UNKNOWN"]

HAS, LACKS, UNKNOWN = "has", "lacks", "not determined"


class P2PEvidence:
    """What one pass over a trace shows of each device's P2P support.

    Feed it the device's events in order: :meth:`state` for each state it was
    recorded in or asked for, :meth:`handler` for each ``vmstate`` event.
    """

    def __init__(self, p2p_states: frozenset[str]):
        self.p2p_states = p2p_states
        self._prepared: dict[str, bool] = {}
        self._prepare_logged = False
        self.verdict: dict[str, str] = {}

    def state(self, device: str, state: str) -> None:
        if state in self.p2p_states:
            self.verdict[device] = HAS

    def handler(self, device: str, which: str, running: str) -> None:
        """``which`` is ``prepare`` or ``change``; ``running`` ``1`` or ``0``."""
        if which == "prepare":
            self._prepared[device] = True
            self._prepare_logged = True
            self.verdict[device] = HAS
        elif running == "0" and not self._prepared.get(device) and self.verdict.get(device) != HAS:
            self.verdict[device] = LACKS
        if which == "change":
            self._prepared[device] = False

    def of(self, device: str) -> str:
        """:data:`HAS`, :data:`LACKS` or :data:`UNKNOWN` (``LACKS`` only when the
        trace logs the prepare handler for some device: the event was enabled)."""
        verdict = self.verdict.get(device, UNKNOWN)
        return UNKNOWN if verdict == LACKS and not self._prepare_logged else verdict


def auto_flags(model: Model, states: Iterable[str]) -> frozenset[str]:
    """The smallest defined flag set supporting every state in ``states``.

    Args:
        states: state names; names that are not states of ``model`` are ignored.

    Returns:
        The chosen flag set; the largest defined set when none supports them all.
    """
    needed = frozenset().union(*(model.state(s).needs for s in set(states) if s in model.state_names))
    ordered = sorted(enumerate(model.flag_sets), key=lambda p: (len(p[1]), p[0]))
    for _, flags in ordered:
        if needed <= flags:
            return flags
    return ordered[-1][1]


def flags_label(model: Model, flags: frozenset[str]) -> str:
    """``STOP_COPY|P2P|PRE_COPY`` in the model's bit order."""
    return "|".join(f for f in model.flag_order if f in flags) or "(no flags)"
