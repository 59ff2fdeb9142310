"""Reading QMP ``VFIO_MIGRATION`` events, one JSON object a line.

QEMU emits the event (device property ``migration-events=on``) from
``vfio_migration_set_device_state()`` in ``hw/vfio/migration.c``, so each
one is a *recorded* state, never a request. Its shape (``qapi/vfio.json``,
QEMU 9.1 onward)::

    {"timestamp": {"seconds": 1713771323, "microseconds": 212268},
     "event": "VFIO_MIGRATION",
     "data": {"device-id": "vfio_dev1", "qom-path": "/machine/peripheral/vfio_dev1",
              "device-state": "stop"}}

``device-state`` is one of ``VfioMigrationState``: stop, running, stop-copy,
resuming, running-p2p, pre-copy, pre-copy-p2p (QEMU never sends ERROR), read
as the kernel's names (``pre-copy-p2p`` -> ``PRE_COPY_P2P``). Other QMP
lines (the greeting, command replies, other events) are ``other`` events,
except ``STOP`` and ``RESUME`` (qapi/run-state.json): the VM's run state,
read as ``vm`` events. QEMU sends ``STOP`` after the VM state-change handlers
ran (system/cpus.c do_vm_stop()) and ``RESUME`` before them
(vm_prepare_start()), so the devices' moves to STOP come before ``STOP`` and
their moves back to RUNNING after ``RESUME``.

A line that is not JSON, nests too deeply, or holds an integer over Python's
digit limit is ``malformed`` (a finding at its line), never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from ..inputs import InputError, parse_json_line
from .events import IMPLIED, MALFORMED, OTHER, RECORD, VM, Event, read_events

__all__ = ["read_qmp", "parse_line", "looks_like_qmp", "state_name"]

_QMP_KEYS = ("event", "return", "QMP", "error", "execute")


def state_name(qapi: str) -> str:
    """The kernel's state name for a ``VfioMigrationState`` value."""
    return qapi.upper().replace("-", "_")


def _load(text: str, number: int = 1) -> tuple[object, str]:
    """(the parsed line, "") or (None, why it is not usable JSON), by
    :func:`fsmcheck.inputs.parse_json_line` (nesting and digit guards)."""
    try:
        return parse_json_line("<qmp>", number, text), ""
    except InputError as exc:
        return None, exc.diagnostics[0].message


def looks_like_qmp(text: str) -> bool:
    """True when ``text`` (one line) is a QMP JSON object."""
    doc, _ = _load(text)
    return isinstance(doc, dict) and any(k in doc for k in _QMP_KEYS)


def parse_line(number: int, text: str) -> Event:
    """The :class:`Event` of one line of a QMP event log."""
    if not text.strip():
        return Event(number, OTHER, "", "", "", "", text)
    doc, why = _load(text, number)
    if why:
        return Event(number, MALFORMED, "", why, "", "", text)
    if not isinstance(doc, dict):
        return Event(number, MALFORMED, "", "not a JSON object", "", "", text)
    name = doc.get("event", "")
    if not isinstance(name, str):
        return Event(number, MALFORMED, "", "'event' is not a string", "", "", text)
    if name in ("STOP", "RESUME"):
        return Event(number, VM, "", "stopped" if name == "STOP" else "running", name, name, text)
    if name != "VFIO_MIGRATION":
        return Event(number, OTHER, "", "", "", name, text)
    data = doc.get("data")
    device = None
    if isinstance(data, dict):
        device = data.get("device-id") or data.get("qom-path")
    if not isinstance(data, dict) or not isinstance(data.get("device-state"), str) or \
            not isinstance(device, str) or not device:
        return Event(number, MALFORMED, "", "VFIO_MIGRATION without a string data.device-state and a string "
                     "device-id or qom-path", "", name, text)
    return Event(number, RECORD, device, state_name(data["device-state"]), IMPLIED, name, text)


def read_qmp(lines: Iterable[tuple[int, str]] | str | os.PathLike) -> Iterator[Event]:
    """The :class:`Event` of each line of a QMP event log, as
    :func:`~.events.read_events` reads them (lines or a path; streaming)."""
    return read_events(parse_line, lines)
