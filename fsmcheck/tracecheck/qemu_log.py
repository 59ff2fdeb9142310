"""Reading QEMU's trace-event log (the default ``log`` trace backend, ``-D FILE``).

Each event is one line, ``NAME ARGS`` where ARGS is the event's format from
``hw/vfio/trace-events`` (QEMU 10), optionally preceded by the
``PID@SECONDS.MICROSECONDS:`` prefix that ``-msg timestamp=on`` adds. The
log backend writes the name, a space, then the format, so VFIO events read
``vfio_migration_set_state  (DEVICE) new state STOP, recover state ERROR``.

The formats read (QEMU 10 ``hw/vfio/trace-events``)::

    vfio_migration_set_state " (%s) new state %s, recover state %s"
    vfio_migration_set_device_state " (%s) state %s"
    vfio_save_block " (%s) data_size %" PRId64
    vfio_save_iterate " (%s) precopy initial size %" PRIu64 " precopy dirty size %" PRIu64
    vfio_save_complete_precopy " (%s) ret %d"
    vfio_save_cleanup " (%s)"
    vfio_load_state " (%s) data 0x%" PRIx64
    vfio_load_state_device_data " (%s) size %" PRIu64 " ret %d"
    vfio_load_cleanup " (%s)"
    vfio_save_setup " (%s) data buffer size %" PRIu64
    vfio_vmstate_change(_prepare) " (%s) running %d reason %s device state %s"
    vfio_migration_state_notifier " (%s) state %d"

QEMU 8.0 to 9.0 logged ``vfio_migration_set_state " (%s) state %s"`` only
after a successful ioctl; such a line is read as a record whose request is
implied (as a QMP event is). Every other line (other events, other log
output) is an ``other`` event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from .events import (IMPLIED, LOAD_DATA, LOAD_END, MALFORMED, OTHER, RECORD, REQUEST, SAVE_DATA, SAVE_END,
                     Event)

__all__ = ["read_qemu_log", "looks_like_qemu_log", "KNOWN_EVENTS", "DEV_DATA_STATE"]

#: vfio_load_state's tag for device data (VFIO_MIG_FLAG_DEV_DATA_STATE in
#: hw/vfio/migration.c); the other tags (setup, config, end) carry no data_fd data.
DEV_DATA_STATE = 0xFFFFFFFFEF100004

_LINE = re.compile(r"(?:(\d+)@(\d+\.\d+):)?([A-Za-z_]\w*)(?: (.*))?\Z")
_TRUNCATED_PREFIX = re.compile(r"\d+@[\d.]*:?\Z")
_DEVICE = re.compile(r" ?\(([^()]*)\)(.*)\Z")
# QEMU 8.0 to 9.0: vfio_migration_set_state " (%s) state %s", logged after the
# ioctl succeeded (no recover state, no record event): a record whose request is implied.
_OLD_SET_STATE = re.compile(r" state (\S+)\Z")

# name -> (kind, argument pattern after "(DEVICE)", which groups give a and b)
_EVENTS: dict[str, tuple[str, re.Pattern]] = {
    "vfio_migration_set_state": (REQUEST, re.compile(r" new state (\S+), recover state (\S+)\Z")),
    "vfio_migration_set_device_state": (RECORD, re.compile(r" state (\S+)\Z")),
    "vfio_save_block": (SAVE_DATA, re.compile(r" data_size (-?\d+)\Z")),
    "vfio_save_iterate": (SAVE_DATA, re.compile(r" precopy initial size (\d+) precopy dirty size (\d+)\Z")),
    "vfio_save_complete_precopy": (SAVE_DATA, re.compile(r" ret (-?\d+)\Z")),
    "vfio_save_cleanup": (SAVE_END, re.compile(r"\Z")),
    "vfio_load_state": (LOAD_DATA, re.compile(r" data (0x[0-9a-fA-F]+)\Z")),
    "vfio_load_state_device_data": (LOAD_DATA, re.compile(r" size (\d+) ret (-?\d+)\Z")),
    "vfio_load_cleanup": (LOAD_END, re.compile(r"\Z")),
    "vfio_save_setup": (OTHER, re.compile(r" data buffer size (\d+)\Z")),
    "vfio_vmstate_change": (OTHER, re.compile(r" running (\d) reason (\S+) device state (\S+)\Z")),
    "vfio_vmstate_change_prepare": (OTHER, re.compile(r" running (\d) reason (\S+) device state (\S+)\Z")),
    "vfio_migration_state_notifier": (OTHER, re.compile(r" state (\S+)\Z")),
}

#: The events whose format this reader checks.
KNOWN_EVENTS = frozenset(_EVENTS) | {"migrate_set_state"}


def looks_like_qemu_log(text: str) -> bool:
    """True when ``text`` (one line) is a trace-event line of a known event,
    with or without the timestamp prefix."""
    m = _LINE.match(text)
    return m is not None and m.group(3) in KNOWN_EVENTS


def parse_line(number: int, text: str) -> Event:
    """The :class:`Event` of one log line (``text`` without its line end)."""
    m = _LINE.match(text)
    if m is None:
        if _TRUNCATED_PREFIX.match(text):
            return Event(number, MALFORMED, "", "truncated line: only the timestamp prefix", "", "", text)
        return Event(number, OTHER, "", "", "", "", text)
    name, args = m.group(3), m.group(4)
    spec = _EVENTS.get(name)
    if spec is None:
        if args is None and name not in KNOWN_EVENTS and any(k.startswith(name) for k in _EVENTS):
            return Event(number, MALFORMED, "", f"truncated line: {name!r} is the start of a known event name",
                         "", name, text)
        return Event(number, OTHER, "", "", "", name, text)
    kind, pattern = spec
    d = _DEVICE.match(args or "")
    found = pattern.match(d.group(2)) if d is not None else None
    if found is None and name == "vfio_migration_set_state" and d is not None:
        old = _OLD_SET_STATE.match(d.group(2))
        if old is not None:  # QEMU before 9.1: logged after a successful ioctl only
            return Event(number, RECORD, d.group(1), old.group(1), IMPLIED, name, text)
    if found is None:
        return Event(number, MALFORMED, d.group(1) if d else "",
                     f"{name}: the arguments do not fit its format in hw/vfio/trace-events (truncated?)",
                     "", name, text)
    device, groups = d.group(1), found.groups()
    if name == "vfio_load_state" and int(groups[0], 16) != DEV_DATA_STATE:
        kind = OTHER  # setup, config and end-of-state tags carry no data_fd data
    a = groups[0] if groups else ""
    b = groups[1] if len(groups) > 1 else ""
    return Event(number, kind, device, a, b, name, text)


def read_qemu_log(path: Path) -> Iterator[Event]:
    """Yield one :class:`Event` per line of the log at ``path``, streaming
    (one line in memory at a time).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for number, raw in enumerate(handle, 1):
            yield parse_line(number, raw.rstrip("\r\n"))
