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
lines (the greeting, command replies, other events) are ``other`` events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .events import IMPLIED, MALFORMED, OTHER, RECORD, Event

__all__ = ["read_qmp", "looks_like_qmp", "state_name"]

_QMP_KEYS = ("event", "return", "QMP", "error", "execute")


def state_name(qapi: str) -> str:
    """The kernel's state name for a ``VfioMigrationState`` value."""
    return qapi.upper().replace("-", "_")


def looks_like_qmp(text: str) -> bool:
    """True when ``text`` (one line) is a QMP JSON object."""
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and any(k in doc for k in _QMP_KEYS)


def parse_line(number: int, text: str) -> Event:
    """The :class:`Event` of one line of a QMP event log."""
    if not text.strip():
        return Event(number, OTHER, "", "", "", "", text)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return Event(number, MALFORMED, "", f"not a JSON object ({exc.msg}; truncated?)", "", "", text)
    if not isinstance(doc, dict):
        return Event(number, MALFORMED, "", "not a JSON object", "", "", text)
    name = doc.get("event", "")
    if name != "VFIO_MIGRATION":
        return Event(number, OTHER, "", "", "", str(name), text)
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("device-state"), str) or \
            not (data.get("device-id") or data.get("qom-path")):
        return Event(number, MALFORMED, "", "VFIO_MIGRATION without data.device-state and a device-id "
                     "or qom-path", "", name, text)
    device = data.get("device-id") or data["qom-path"]
    return Event(number, RECORD, device, state_name(data["device-state"]), IMPLIED, name, text)


def read_qmp(path: Path) -> Iterator[Event]:
    """Yield one :class:`Event` per line of the QMP log at ``path``, streaming.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, 1):
            yield parse_line(number, raw.rstrip("\r\n"))
