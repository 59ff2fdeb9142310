"""Choosing a device's feature flags: ``--flags SET`` or ``--flags auto``.

``auto`` takes the smallest defined flag set of the model (vfio.h: the four
defined combinations of VFIO_MIGRATION_STOP_COPY, _P2P and _PRE_COPY) that
supports every state the device was recorded in or asked for; ties go to
the model's declaration order. A request counts because QEMU asks only for
states the device advertises (``hw/vfio/migration.c``: ``vfio_save_setup()``
asks for PRE_COPY only when ``vfio_precopy_supported()``, and
``vfio_migration_init()`` registers ``vfio_vmstate_change_prepare()``, the
only source of the P2P requests, only with VFIO_MIGRATION_P2P). The choice
is printed, since a device that only ever used RUNNING, STOP and STOP_COPY
is judged as one without P2P.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model.schema import Model

__all__ = ["auto_flags", "flags_label"]


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
