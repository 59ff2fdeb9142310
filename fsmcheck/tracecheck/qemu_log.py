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
    vfio_load_state_device_buffer_load_start/_end " (%s) idx %" PRIu32   (multifd)
    vfio_save_complete_precopy_thread_end " (%s) ret %d"                 (multifd)
    vm_state_notify "running %d reason %d (%s)"               (system/trace-events)

(as QEMU 10.0.2's log backend prints them; the list of every vfio event and
which are checked or ignored is in :data:`CHECKED` and :data:`IGNORED`).

QEMU 8.0 to 9.0 logged ``vfio_migration_set_state " (%s) state %s"`` only
after a successful ioctl; such a line is read as a record whose request is
implied (as a QMP event is). Every other line (other events, other log
output) is an ``other`` event.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from .events import (IMPLIED, LOAD_DATA, LOAD_END, MALFORMED, OTHER, RECORD, REQUEST, SAVE_DATA, SAVE_END, VM,
                     VMSTATE, Event, read_events)
from .qemu_events import MIGRATION_PREFIXES, VFIO_EVENTS

__all__ = ["read_qemu_log", "parse_line", "looks_like_qemu_log", "KNOWN_EVENTS", "CHECKED", "IGNORED",
           "DEV_DATA_STATE", "unclassified"]

#: vfio_load_state's tag for device data (VFIO_MIG_FLAG_DEV_DATA_STATE in
#: hw/vfio/migration.c); the other tags (setup, config, end) carry no data_fd data.
DEV_DATA_STATE = 0xFFFFFFFFEF100004

_LINE = re.compile(r"(?:(\d+)@(\d+\.\d+):)?([A-Za-z_]\w*)(?: (.*))?\Z")
_TRUNCATED_PREFIX = re.compile(r"\d+@[\d.]*:?\Z")
_DEVICE = re.compile(r" ?\(([^()]*)\)(.*)\Z")
# QEMU 8.0 to 9.0: vfio_migration_set_state " (%s) state %s", logged after the
# ioctl succeeded (no recover state, no record event): a record whose request is implied.
_OLD_SET_STATE = re.compile(r" state (\S+)\Z")
_VMSTATE = re.compile(r" running (\d) reason (\S+) device state (\S+)\Z")
_IDX = re.compile(r" idx (\d+)\Z")
# system/runstate.c: vm_state_notify(int running, int reason, const char *reason_str)
# "running %d reason %d (%s)"; not a vfio event: no device.
_VM_STATE_NOTIFY = re.compile(r"running (\d) reason (-?\d+) \(([^()]*)\)\Z")

# name -> (kind, argument pattern after "(DEVICE)"; its groups give a and b).
# hw/vfio/trace-events and hw/vfio/migration*.c of QEMU 10.0.
_EVENTS: dict[str, tuple[str, re.Pattern]] = {
    # vfio_migration_set_state(): logged first, before the ioctl.
    "vfio_migration_set_state": (REQUEST, re.compile(r" new state (\S+), recover state (\S+)\Z")),
    # vfio_migration_set_device_state(): the state QEMU records.
    "vfio_migration_set_device_state": (RECORD, re.compile(r" state (\S+)\Z")),
    # vfio_save_block(): a read() of the data_fd.
    "vfio_save_block": (SAVE_DATA, re.compile(r" data_size (-?\d+)\Z")),
    "vfio_save_iterate": (SAVE_DATA, re.compile(r" precopy initial size (\d+) precopy dirty size (\d+)\Z")),
    "vfio_save_complete_precopy": (SAVE_DATA, re.compile(r" ret (-?\d+)\Z")),
    # migration-multifd.c vfio_multifd_save_complete_precopy_thread(): the
    # thread asks for STOP_COPY, read()s the data_fd to its end, then logs its
    # end (ret 1: it read the whole stream; 0: it failed, perhaps before reading).
    "vfio_save_complete_precopy_thread_end": (SAVE_DATA, re.compile(r" ret (-?\d+)\Z")),
    "vfio_save_cleanup": (SAVE_END, re.compile(r"\Z")),
    "vfio_load_state": (LOAD_DATA, re.compile(r" data (0x[0-9a-fA-F]+)\Z")),
    "vfio_load_state_device_data": (LOAD_DATA, re.compile(r" size (\d+) ret (-?\d+)\Z")),
    # migration-multifd.c vfio_load_state_buffer_write(): write()s of one
    # buffer to the data_fd happen between these two.
    "vfio_load_state_device_buffer_load_start": (LOAD_DATA, _IDX),
    "vfio_load_state_device_buffer_load_end": (LOAD_DATA, _IDX),
    "vfio_load_cleanup": (LOAD_END, re.compile(r"\Z")),
    "vfio_vmstate_change": (VMSTATE, _VMSTATE),
    "vfio_vmstate_change_prepare": (VMSTATE, _VMSTATE),
    "vfio_save_setup": (OTHER, re.compile(r" data buffer size (\d+)\Z")),
    "vfio_migration_state_notifier": (OTHER, re.compile(r" state (\S+)\Z")),
}

#: The vfio events whose lines this reader checks (kinds above).
CHECKED = frozenset(_EVENTS)

_MIGRATION_IGNORED = {
    "vfio_migration_realize": "device realize, before any migration",
    "vfio_load_device_config_state_start": "PCI config space from the stream, not the data_fd",
    "vfio_load_device_config_state_end": "PCI config space from the stream, not the data_fd",
    "vfio_save_device_config_state": "PCI config space to the stream, not the data_fd",
    "vfio_state_pending_estimate": "QEMU's estimate of the data left, no data_fd transfer",
    "vfio_state_pending_exact": "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, a size query valid in any state",
    "vfio_save_block_precopy_empty_hit": "a pre-copy read found no new data (ENOMSG); reads are judged at "
                                         "vfio_save_block and vfio_save_iterate",
    "vfio_save_complete_precopy_start": "logged before its own STOP_COPY request; its reads are vfio_save_block "
                                        "and vfio_save_complete_precopy",
    "vfio_save_iterate_start": "an iteration starts; its reads are vfio_save_block, its end vfio_save_iterate",
    "vfio_save_complete_precopy_thread_start": "logged before the thread's own STOP_COPY request; its "
                                               "reads are judged at vfio_save_complete_precopy_thread_end",
    "vfio_load_bufs_thread_start": "the multifd load thread starts; its writes are the *_buffer_load_* events",
    "vfio_load_bufs_thread_end": "the multifd load thread ends (also when cancelled before any write)",
    "vfio_load_state_device_buffer_incoming": "a buffer received into QEMU's queue, not written to the device",
    "vfio_load_state_device_buffer_start": "the first buffer is due; the write is its *_buffer_load_start",
    "vfio_load_state_device_buffer_starved": "the load thread waits for a buffer",
    "vfio_load_state_device_buffer_end": "the last buffer was written (after its *_buffer_load_end)",
}

#: Every vfio trace event of QEMU 10.0 that is deliberately not checked, with
#: why: the migration events above (each named), and every event whose name
#: is not a migration one (:data:`.qemu_events.MIGRATION_PREFIXES`: device
#: emulation, DMA mapping, dirty tracking, IOMMU back ends), which says
#: nothing about the migration state machine.
IGNORED: dict[str, str] = {
    **{name: "not a migration event (device emulation, DMA mapping, dirty tracking or an IOMMU back end)"
       for name in VFIO_EVENTS if not name.startswith(MIGRATION_PREFIXES)},
    **_MIGRATION_IGNORED,
}

#: The events whose format this reader knows (checked vfio events, and the
#: non-vfio events it reads).
KNOWN_EVENTS = CHECKED | {"migrate_set_state", "vm_state_notify"}


def unclassified(names: Iterable[str]) -> list[str]:
    """The ``vfio_*`` event names among ``names`` that are neither checked nor
    ignored (an event of a QEMU this reader was not written for), sorted."""
    return sorted({n for n in names if n.startswith("vfio_") and n not in CHECKED and n not in IGNORED})


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
    if name == "vm_state_notify":
        found = _VM_STATE_NOTIFY.match(args or "")
        if found is None:
            return Event(number, MALFORMED, "", "vm_state_notify: the arguments do not fit its format in "
                         "trace-events (truncated?)", "", name, text)
        return Event(number, VM, "", "running" if found.group(1) == "1" else "stopped", found.group(3), name, text)
    spec = _EVENTS.get(name)
    if spec is None:
        if args is None and name not in KNOWN_EVENTS and name not in IGNORED and \
                any(k.startswith(name) for k in _EVENTS):
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
    if name == "vfio_save_complete_precopy_thread_end" and groups[0] != "1":
        kind = OTHER  # the thread failed, perhaps before its STOP_COPY request: nothing to judge
    if kind == VMSTATE:
        return Event(number, kind, device, "prepare" if name.endswith("_prepare") else "change", groups[0],
                     name, text)
    a = groups[0] if groups else ""
    b = groups[1] if len(groups) > 1 else ""
    return Event(number, kind, device, a, b, name, text)


def read_qemu_log(lines: Iterable[tuple[int, str]] | str | os.PathLike) -> Iterator[Event]:
    """The :class:`Event` of each line of a trace-event log, as
    :func:`~.events.read_events` reads them (lines or a path; streaming)."""
    return read_events(parse_line, lines)
