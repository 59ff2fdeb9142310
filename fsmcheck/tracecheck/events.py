"""The events a trace is read into, whatever its format.

Every reader (:mod:`.qemu_log`, :mod:`.qmp`, :mod:`.itf`) yields one
:class:`Event` per line of its file, so that the checker can keep a window of
the lines around a finding and count what it ignored. ``kind`` says what the
checker does with it:

* ``request``  -- QEMU asked for a new ``device_state`` (``a`` = the new
  state, ``b`` = the recover state): ``vfio_migration_set_state``.
* ``record``   -- QEMU recorded the device's state (``a``):
  ``vfio_migration_set_device_state``; or, with ``b`` = :data:`IMPLIED`, a
  record whose request is implied and not in the trace (a QMP
  ``VFIO_MIGRATION`` event, or QEMU 8.0-9.0's ``vfio_migration_set_state``
  logged after a successful ioctl).
* ``step``     -- one state of an ITF trace (``a`` = state, ``b`` = ``via``:
  ``open``, ``request``, ``reset`` or ``failure``).
* ``save-data`` / ``load-data`` -- device data read from / written to the
  data_fd (``vfio_save_block``, ``vfio_save_iterate``,
  ``vfio_save_complete_precopy``; ``vfio_load_state_device_data``,
  ``vfio_load_state`` with the DEV_DATA_STATE tag).
* ``save-end`` / ``load-end`` -- QEMU closed the data_fd
  (``vfio_save_cleanup``, ``vfio_load_cleanup``).
* ``vm``       -- the VM's run state changed (``a`` = ``running`` or
  ``stopped``, ``b`` = the reason): QEMU's ``vm_state_notify`` trace event
  (system/runstate.c, logged before any state-change handler runs), the QMP
  events ``RESUME`` and ``STOP``.
* ``vmstate``  -- QEMU's VM state-change handler ran for a device (``a`` =
  ``prepare`` or ``change``, ``b`` = ``1`` running / ``0`` stopping):
  ``vfio_vmstate_change_prepare`` / ``vfio_vmstate_change`` (logged after the
  handler's request); the evidence ``--flags auto`` takes P2P support from.
* ``malformed`` -- a line of a known event whose arguments do not fit its
  format, or a truncated line (``a`` = what is wrong).
* ``other``    -- anything else (events deliberately ignored, see
  :data:`fsmcheck.tracecheck.qemu_log.IGNORED`; other QEMU log output;
  ``migrate_set_state``): kept for context and counted, never an error.
  ``name`` is the event name, so a ``vfio_*`` event that is neither checked
  nor ignored is counted apart (:attr:`TraceReport.unclassified`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..inputs import open_lines

__all__ = ["Event", "read_events", "IMPLIED", "REQUEST", "RECORD", "STEP", "SAVE_DATA", "LOAD_DATA", "SAVE_END",
           "LOAD_END", "VM", "VMSTATE", "MALFORMED", "OTHER"]

REQUEST, RECORD, STEP = "request", "record", "step"
SAVE_DATA, LOAD_DATA, SAVE_END, LOAD_END = "save-data", "load-data", "save-end", "load-end"
VM, VMSTATE = "vm", "vmstate"
MALFORMED, OTHER = "malformed", "other"
#: ``b`` of a record whose request is implied (see the module docstring).
IMPLIED = "implied"


class Event(NamedTuple):
    """One line of a trace.

    Attributes:
        line: 1-based line number in the trace file.
        kind: one of the kinds of the module docstring.
        device: the device name (QEMU's ``vbasedev->name``, the QMP
            ``device-id``, or the ITF trace's name); ``""`` when none.
        a, b: the kind's arguments (see the module docstring); ``""`` when unused.
        name: the event name as written (``vfio_save_block``, ``VFIO_MIGRATION``).
        text: the line as read, without its line end.
    """

    line: int
    kind: str
    device: str
    a: str
    b: str
    name: str
    text: str


def read_events(parse: Callable[[int, str], Event],
                lines: Iterable[tuple[int, str]] | str | os.PathLike) -> Iterator[Event]:
    """Yield ``parse(number, text)``, one :class:`Event` per ``(line number,
    text)`` of ``lines`` (streaming: one line at a time); given a path, its
    lines are read once with :func:`fsmcheck.inputs.open_lines`.

    Raises:
        fsmcheck.inputs.InputError: (a path) unreadable, a line over the bound or not UTF-8.
    """
    if isinstance(lines, (str, os.PathLike)):
        with open_lines(lines) as source:
            yield from read_events(parse, source)
        return
    for number, text in lines:
        yield parse(number, text)
