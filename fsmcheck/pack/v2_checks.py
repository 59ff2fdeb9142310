"""The bodies of the generated v2 tests.

Every function drives a fresh device through a :class:`~.harness.Harness`
and raises :class:`~.harness.ProtocolViolation` (with the sequence from open,
expected vs observed, and the rule's source) on the first deviation from the
model. The expected values come from the pack's ``SPEC``; nothing here knows
VFIO beyond what the spec says, except the errno the kernel uses
(``EINVAL`` for rejections, ``ENODEV`` for disabled handles).
"""

from __future__ import annotations

import contextlib
import zlib
from typing import NamedTuple

import pytest

from ..adapters.contract import transport_limits
from .coverage import COVERAGE, advise
from .harness import AdapterFault, Harness, adapter_lost
from .v2_spec import RULES, V2Spec

__all__ = [
    "check_arc_tour", "check_pair", "check_rejection", "check_reset", "check_saving_session",
    "check_end_of_stream", "check_round_trip", "check_bad_resume", "check_fresh_handles",
    "check_failure_path", "check_sequence", "check_precopy_info", "check_migration_flags",
    "check_precopy_round_trip", "check_stream_current", "open_device", "saved_stream", "saved_state",
    "apply_request", "Step", "read_fd", "write_fd",
]

_STREAMS: dict = {}
_MAX_READS = 10000


def _open(adapter, spec: V2Spec) -> Harness:
    lost = adapter_lost(adapter)
    if lost:
        raise AdapterFault(f"not run: the adapter was given up after an earlier call hung ({lost})")
    try:
        device = adapter.open(spec.flags_value)
    except Exception as exc:
        raise AdapterFault(f"the adapter's open(flags={spec.flags_value}) raised {type(exc).__name__}: {exc}") from None
    h = Harness(device, spec.names, adapter=adapter, label=spec.label, reset_rule=RULES["reset"])
    h.log.append(f"open (flags {spec.label})")
    COVERAGE.limits.update(transport_limits(adapter).items())  # what the transport cannot show (contract.py)
    return h


@contextlib.contextmanager
def open_device(adapter, spec: V2Spec):
    """A fresh device of the spec's flag set; skips when the device's flags
    differ (:func:`check_migration_flags` fails a device whose flags are no
    defined set, and the plugin fails a run in which no suite matched).
    Every handle the device gave and the device itself are closed on exit."""
    h = _open(adapter, spec)
    try:
        flags = h._call("migration_flags", h.device.migration_flags)
        if flags.ok:
            COVERAGE.flags_seen.add(flags.value)
        if not flags.ok or flags.value != spec.flags_value:
            pytest.skip(f"device flags {flags.value if flags.ok else flags.error}, suite {spec.flags_value}")
        COVERAGE.flag_sets.add(spec.label)
        yield h
    finally:
        h.close()


def saved_state(adapter, spec: V2Spec) -> tuple[bytes, bytes | None]:
    """A complete migration stream saved from a fresh device (STOP -> STOP_COPY,
    read to end of stream) and the device's ``state_digest()`` then (None
    without one), cached per adapter and flag set. A device that leaves
    RESUMING needs one: drivers refuse RESUMING -> STOP without a complete,
    valid stream (seen on mtty)."""
    key = (id(adapter), spec.flags_value)
    if key not in _STREAMS:
        with open_device(adapter, spec) as h:
            _set_ok(h, spec, spec.initial, "STOP")
            out = _set_ok(h, spec, "STOP", "STOP_COPY")
            if out.value is None:
                raise h.violation("STOP -> STOP_COPY returned no handle", expected="a new data_fd",
                                  observed="none", rule=RULES["handle-new"])
            stream = _read_all(h, out.value)
            _STREAMS[key] = (stream, h.state_digest())
    return _STREAMS[key]


def saved_stream(adapter, spec: V2Spec) -> bytes:
    """The stream of :func:`saved_state`."""
    return saved_state(adapter, spec)[0]


def _same_state(spec: V2Spec, first: tuple[bytes, bytes | None], second: tuple[bytes, bytes | None]) -> bool:
    """Whether two (stream, digest) pairs, each taken where the device was
    still, show the same device state: by ``state_digest()`` when the
    device has one (its stream format is its own: it may carry a sequence
    number or a time), else by the streams' bytes. Which comparison ran is
    recorded in the coverage."""
    if first[1] is not None and second[1] is not None:
        COVERAGE.comparisons.add((spec.label, "state_digest()"))
        return first[1] == second[1]
    COVERAGE.comparisons.add((spec.label, "saved stream bytes"))
    return first[0] == second[0]


def _shown(state: tuple[bytes, bytes | None]) -> str:
    stream, digest = state
    text = f"{len(stream)} bytes (crc {zlib.crc32(stream):#x})"
    return text + (f", state_digest crc {zlib.crc32(digest):#x}" if digest is not None else "")


def read_fd(h: Harness, handle: int, size: int = 4096):
    """read() on a data session's handle through the harness; a read that
    returns more bytes than asked is a violation (read(2); vfio.h: the data
    flows "over the FD using read() and write()")."""
    out = h.read(handle, size)
    if out.ok and len(out.value) > max(size, 0):
        raise h.violation(f"read({handle}, {size}) returned {len(out.value)} bytes, more than asked",
                          expected=f"at most {size} bytes", observed=f"{len(out.value)} bytes",
                          rule=RULES["read-bounded"])
    return out


def write_fd(h: Harness, handle: int, data: bytes):
    """write() on a data session's handle through the harness; a write that
    reports more bytes taken than it was given is a violation (write(2))."""
    out = h.write(handle, data)
    if out.ok and out.value > len(data):
        raise h.violation(f"write({handle}) of {len(data)} bytes reported {out.value} bytes taken",
                          expected=f"at most {len(data)}", observed=str(out.value), rule=RULES["write-bounded"])
    return out


def _expect_state(h: Harness, spec: V2Spec, want: str, rule: str = "get") -> None:
    got = h.get()
    COVERAGE.states.add((spec.label, h.name(got)))
    if got != spec.states[want]:
        raise h.violation(f"device_state is {h.name(got)}, expected {want}", expected=want,
                          observed=h.name(got), rule=RULES[rule])


def _check_fd(h: Harness, handle) -> None:
    """A data_fd is a file descriptor: never negative (the contract: on Linux,
    the data_fd)."""
    if handle is not None and handle < 0:
        raise h.violation(f"SET returned handle {handle}", expected="a file descriptor (>= 0)",
                          observed=f"handle {handle}", rule=RULES["handle-fd"])


def _set_ok(h: Harness, spec: V2Spec, current: str, requested: str):
    out = h.set(spec.states[requested])
    outcome, path = spec.outcome(current, requested)
    if not out.ok:
        raise h.violation(f"SET {requested} from {current} failed with {out.error}",
                          expected="success" + (f" via {' -> '.join((current,) + path)}" if path else ""),
                          observed=out.error, rule=RULES["set"])
    _check_fd(h, out.value)
    COVERAGE.pairs.add((spec.label, current, requested))
    for step in zip((current,) + path, path):
        COVERAGE.arcs.add((spec.label,) + step)
    return out


#: write() calls in a row that may accept 0 bytes before the feed gives up.
_MAX_STALLS = 100


def _feed(h: Harness, handle: int, data: bytes, segment: int = 4096) -> None:
    """Write ``data`` in writes of at most ``segment`` bytes, honouring the
    count each write() returns (bytes accepted; vfio.h: "The user is not
    required to preserve buffer segmentation"): the rest is written again."""
    position, stalls = 0, 0
    while position < len(data):
        out = write_fd(h, handle, data[position:position + segment])
        if not out.ok:
            raise h.violation(f"write to the resuming handle failed with {out.error}", expected="accepted",
                              observed=out.error, rule=RULES["resume-take"])
        position += out.value
        stalls = 0 if out.value else stalls + 1
        if stalls >= _MAX_STALLS:
            raise h.violation(f"write to the resuming handle accepted 0 bytes {_MAX_STALLS} times in a row",
                              expected="progress", observed=f"{position} of {len(data)} bytes accepted",
                              rule=RULES["resume-take"])


def _read_all(h: Harness, handle: int) -> bytes:
    data = bytearray()
    for _ in range(_MAX_READS):
        out = read_fd(h, handle, 1 << 16)
        if not out.ok:
            raise h.violation(f"read in STOP_COPY failed with {out.error}", expected="data, then end of stream",
                              observed=out.error, rule=RULES["eof"])
        if not out.value:
            _check_eof_final(h, handle, len(data))
            return bytes(data)
        data += out.value
    raise h.violation("no end of stream in STOP_COPY", expected=f"read() == b'' within {_MAX_READS} reads",
                      observed="data or errors forever", rule=RULES["eof"])


def _check_eof_final(h: Harness, handle: int, size: int) -> None:
    """End of stream in STOP_COPY is permanent (vfio.h: "read() always
    returning 0"): a second read() after it must give 0 bytes again. More
    data means the saving side signalled end of stream early."""
    out = read_fd(h, handle, 1 << 16)
    if out.ok and not out.value:
        return
    seen = out.error or f"{len(out.value)} more bytes"
    raise h.violation(f"the saving device signalled end of stream after {size} bytes, then gave {seen}: "
                      "its end of stream is not final (the saving side is at fault, not RESUMING)",
                      expected="read() == b'' again", observed=seen, rule=RULES["eof-final"])


def _reach(h: Harness, spec: V2Spec, state: str, stream: bytes | None):
    """From the state at open, request ``state``; returns the handle held there."""
    handle = None
    if state != spec.initial:
        out = _set_ok(h, spec, spec.initial, state)
        handle = out.value
        if state == "RESUMING" and handle is not None and stream is not None:
            _feed(h, handle, stream)
    _expect_state(h, spec, state)
    return handle


def _check_handle_alive(h: Harness, spec: V2Spec, handle: int, state: str, rule: str) -> None:
    direction = spec.direction(state)
    out = read_fd(h, handle, 1) if direction == "read" else write_fd(h, handle, b"")
    if out.error == "ENODEV" or out.error == "EBADF":
        raise h.violation(f"handle {handle} stopped working in {state}", expected="a working data session",
                          observed=out.error, rule=RULES[rule])


def _check_handle_dead(h: Harness, handle: int, rule: str, direction: str | None) -> None:
    """The handle's session has ended: no data flows through it any more.

    ``direction`` is the session's (``"read"``: saving, ``"write"``:
    resuming; :meth:`V2Spec.direction`). A violation: read() gives bytes;
    write() takes bytes; and on an ended resuming session any write() that
    succeeds, even one that reports 0 bytes taken (the session is over: the
    device takes no more data; it used to be only an advisory). Both
    directions are tried. Left open by the sources, so advisories, never
    failures: the errno of the session's own direction (vfio.h names none;
    seed 002 says "render it inoperable"; the in-tree drivers give ENODEV)
    and a read() of end of stream (seed 002: the driver "should piggy back
    the force EOF")."""
    read = read_fd(h, handle, 1)
    if read.ok and read.value:
        raise h.violation(f"handle {handle} still works after its session ended: read() gave data",
                          expected="no data (an error, or a forced end of stream)",
                          observed=f"{len(read.value)} bytes", rule=RULES[rule])
    write = write_fd(h, handle, b"x")
    if write.ok and (write.value or direction == "write"):
        raise h.violation(f"handle {handle} still works after its session ended: write() succeeded",
                          expected="the write fails (the session is over: the device takes no more data)",
                          observed=f"{write.value} bytes accepted", rule=RULES[rule])
    if "open-ended-errno" in transport_limits(h.adapter):  # no fd: the refusal stands in (contract.py)
        return
    own = write if direction == "write" else read
    if direction != "write" and read.ok:  # b"": a forced end of stream
        advise(h.label, f"an ended session's FD reads end of stream ({RULES['open-forced-eof']})")
    elif own.error != "ENODEV":
        advise(h.label, f"I/O on an ended session's FD fails with {own.error or '0 bytes accepted'}, not ENODEV "
                        f"({RULES['open-ended-errno']})")


# -- suites --------------------------------------------------------------------
def check_arc_tour(adapter, spec: V2Spec, tour: list) -> None:
    """Walk the arc tour: each step is ``("arc", src, dst)`` or ``("reset", src, dst)``."""
    stream = saved_stream(adapter, spec) if any(step[2] == "RESUMING" for step in tour) else None
    with open_device(adapter, spec) as h:
        _expect_state(h, spec, spec.initial)
        for kind, src, dst in tour:
            if kind == "reset":
                h.reset()
            else:
                out = _set_ok(h, spec, src, dst)
                _check_handle_returned(h, spec, src, (dst,), out.value, None)
                if dst == "RESUMING" and out.value is not None:
                    _feed(h, out.value, stream)
            _expect_state(h, spec, dst, "reset" if kind == "reset" else "get")


def _check_handle_returned(h, spec, current, path, handle, old) -> None:
    want = spec.returns_handle(current, path)
    limits = transport_limits(h.adapter)
    if "handle-new" in limits or "handle-none" in limits:  # the adapter made the handle up: nothing to judge
        return
    if want and handle is None:
        raise h.violation(f"SET {path[-1]} from {current} returned no handle", expected="a new data_fd",
                          observed="none", rule=RULES["handle-new"])
    if not want and handle is not None:
        raise h.violation(f"SET {path[-1]} from {current} returned handle {handle}", expected="no data_fd",
                          observed=f"handle {handle}", rule=RULES["handle-none"])
    if handle is not None and old is not None and handle == old:
        raise h.violation(f"the new session reuses handle {handle}", expected="a fresh handle",
                          observed=f"handle {handle} again", rule=RULES["handle-fresh"])


def check_pair(adapter, spec: V2Spec, current: str, requested: str) -> None:
    """One accepted (current, requested) pair: final state, handle, handle rules."""
    outcome, path = spec.outcome(current, requested)
    # Saved before the device is opened: a real device can be opened only once at a time.
    stream = saved_stream(adapter, spec) if "RESUMING" in (current, requested) + path else None
    with open_device(adapter, spec) as h:
        old = _reach(h, spec, current, stream)
        out = _set_ok(h, spec, current, requested)
        _check_handle_returned(h, spec, current, path or (requested,), out.value if path else None, old)
        if not path and out.value is not None:
            raise h.violation(f"SET {requested} in {requested} returned a handle", expected="a no-op",
                              observed=f"handle {out.value}", rule=RULES["handle-none"])
        _expect_state(h, spec, requested)
        if old is not None and path:
            if spec.keeps_session(current, requested) and not spec.returns_handle(current, path):
                _check_handle_alive(h, spec, old, requested, "handle-kept")
            else:
                _check_handle_dead(h, old, "handle-disabled", spec.direction(current))
        if requested == "RESUMING" and out.value is not None and current != requested:
            _feed(h, out.value, stream)


def check_rejection(adapter, spec: V2Spec, current: str, value: int, reason: str) -> None:
    """A rejected request: EINVAL and the state unchanged."""
    stream = saved_stream(adapter, spec) if current == "RESUMING" else None
    with open_device(adapter, spec) as h:
        if current == spec.error:
            _enter_error(h, spec)
        else:
            _reach(h, spec, current, stream)
        out = h.set(value)
        COVERAGE.rejections.add((spec.label, current, value))
        if current == spec.error and value == spec.states[spec.error] and out.ok:
            advise(spec.label, f"SET {spec.error} in {spec.error} succeeded ({RULES['open-error-in-error']})")
        elif out.ok:
            raise h.violation(f"SET {h.name(value)} from {current} ({reason}) was not rejected",
                              expected="an error (EINVAL)", observed=f"success (handle {out.value})",
                              rule=RULES["error-exit" if current == spec.error else "reject"])
        else:
            _reject_errno(h, out.error)
        _expect_state(h, spec, current, "reject")


def _reject_errno(h: Harness, errno: str) -> None:
    """A rejected SET failed with ``errno``: vfio.h says only that such a
    request "return[s] error"; the in-tree drivers give EINVAL (through
    vfio_mig_get_next_state()), so another errno is an advisory."""
    if errno != "EINVAL":
        advise(h.label, f"a rejected SET fails with {errno}, not EINVAL ({RULES['open-reject-errno']})")


def _enter_error(h: Harness, spec: V2Spec) -> None:
    inject = getattr(h.device, "inject_failure", None)
    if inject is None:
        pytest.skip("the device cannot inject failures (no inject_failure): ERROR is unreachable")
    target = next(r for (c, r), (o, p) in sorted(spec.table.items()) if c == spec.initial and o == "path")
    _, path = spec.outcome(spec.initial, target)
    inject(spec.initial, path[0], errno="EIO", to_error=True)
    h.log.append(f"inject failure at {spec.initial} -> {path[0]} (into ERROR)")
    out = h.set(spec.states[target])
    if out.ok:
        raise h.violation("an injected failure did not fail the SET", expected="a failure",
                          observed="success", rule=RULES["failure-reported"])
    _expect_state(h, spec, spec.error, "get")


def check_reset(adapter, spec: V2Spec, current: str) -> None:
    """Reset from ``current``: RUNNING, and the handle held there disabled."""
    stream = saved_stream(adapter, spec) if current == "RESUMING" else None
    with open_device(adapter, spec) as h:
        handle = None
        if current == spec.error:
            _enter_error(h, spec)
        else:
            handle = _reach(h, spec, current, stream)
        h.reset()
        COVERAGE.resets.add((spec.label, current))
        _expect_state(h, spec, spec.reset, "reset")
        if handle is not None:
            _check_handle_dead(h, handle, "reset", spec.direction(current))


def check_saving_session(adapter, spec: V2Spec, path: list[str]) -> None:
    """Enter the saving group, move inside it along ``path``: one handle
    throughout, readable; end of stream in STOP_COPY; leaving disables it."""
    with open_device(adapter, spec) as h:
        current = spec.initial
        out = _set_ok(h, spec, current, path[0])
        handle = out.value
        if handle is None:
            raise h.violation(f"SET {path[0]} returned no handle", expected="a new data_fd", observed="none",
                              rule=RULES["handle-new"])
        current = path[0]
        for state in path[1:]:
            out = _set_ok(h, spec, current, state)
            if out.value is not None:
                raise h.violation(f"{current} -> {state} returned handle {out.value}", expected="the same session",
                                  observed=f"new handle {out.value}", rule=RULES["handle-kept"])
            _check_handle_alive(h, spec, handle, state, "handle-kept")
            current = state
        _expect_state(h, spec, current)
        if current == "STOP_COPY":
            _read_all(h, handle)
        leave = next(s for s in spec.supported if s not in spec.session_groups.get(spec.group(current), ())
                     and spec.outcome(current, s)[0] == "path")
        _set_ok(h, spec, current, leave)
        _check_handle_dead(h, handle, "handle-disabled", spec.direction(current))


def check_end_of_stream(adapter, spec: V2Spec) -> None:
    """STOP -> STOP_COPY: reading reaches end of stream (read() == b""), which
    is final (read again: b""). Saving twice from STOP, with requests in
    between, shows the same state (by ``state_digest()`` when the device
    has one, else the same stream): in STOP the device does not change its
    internal state (vfio.h) -- the one place besides STOP_COPY and RESUMING
    where the protocol promises stillness."""
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        out = _set_ok(h, spec, "STOP", "STOP_COPY")
        data = _read_all(h, out.value)
        if not data:
            raise h.violation("STOP_COPY produced an empty stream", expected="the device state",
                              observed="0 bytes", rule=RULES["eof"])
        first = (data, h.state_digest())
        _set_ok(h, spec, "STOP_COPY", "STOP")
        for _ in range(3):
            _expect_state(h, spec, "STOP")
        again = _read_all(h, _set_ok(h, spec, "STOP", "STOP_COPY").value)
        second = (again, h.state_digest())
        if not _same_state(spec, first, second):
            raise h.violation("two saves from STOP differ", expected=f"the same state: {_shown(first)}",
                              observed=_shown(second), rule=RULES["stop-frozen"])


def check_stream_current(adapter, spec: V2Spec) -> None:
    """Each STOP_COPY session streams the device's state at that session: save
    a device (STOP -> STOP_COPY), resume it from another device's stream,
    save it again: the second stream must not be the first session's bytes
    again when the two states differ (vfio.h: "STOP_COPY - The device
    internal state can be read out"). When the other device's state equals
    this one's, nothing can be told apart and the test passes (recorded in
    the coverage)."""
    other = saved_state(adapter, spec)
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        first = (_read_all(h, _set_ok(h, spec, "STOP", "STOP_COPY").value), None)
        first = (first[0], h.state_digest())
        _set_ok(h, spec, "STOP_COPY", "STOP")
        _feed(h, _set_ok(h, spec, "STOP", "RESUMING").value, other[0])
        _set_ok(h, spec, "RESUMING", "STOP")
        second = _read_all(h, _set_ok(h, spec, "STOP", "STOP_COPY").value)
        if _same_state(spec, first, other):
            COVERAGE.comparisons.add((spec.label, "stream-current: both devices held the same state, not compared"))
            return
        if second == first[0]:
            raise h.violation("the second STOP_COPY session gave the first session's bytes again, although the "
                              "device was resumed from another state in between",
                              expected=f"the resumed state: {_shown(other)}",
                              observed=f"the first session's {_shown(first)}", rule=RULES["stream-current"])


def check_migration_flags(adapter, spec: V2Spec) -> None:
    """The device's migration_flags() is a defined flag set of the model
    (vfio.h: "at least VFIO_MIGRATION_STOP_COPY must be set"; other
    combinations are undefined). Runs whatever the device's flags are."""
    h = _open(adapter, spec)
    try:
        flags = h._call("migration_flags", h.device.migration_flags)
        h.log.append("migration_flags -> " + (flags.error or f"{flags.value!r}"))
        if not flags.ok:
            raise h.violation(f"VFIO_DEVICE_FEATURE_MIGRATION GET failed with {flags.error}",
                              expected="flags", observed=flags.error, rule=RULES["flags-defined"])
        if not isinstance(flags.value, int) or isinstance(flags.value, bool):
            raise AdapterFault(h.report(f"migration_flags returned {flags.value!r}, not an int"))
        COVERAGE.flags_seen.add(flags.value)
        if spec.defined_flags and flags.value not in spec.defined_flags:
            raise h.violation(f"the device reports migration flags {flags.value:#x}, not a defined flag set",
                              expected=" or ".join(f"{v:#x}" for v in spec.defined_flags),
                              observed=f"{flags.value:#x}", rule=RULES["flags-defined"])
    finally:
        h.close()


def check_precopy_round_trip(adapter, spec: V2Spec, path: list[str]) -> None:
    """Save through the pre-copy states of ``path`` (reading while the device
    runs and changes) to the end of stream in STOP_COPY; resume the stream
    into a fresh device; its state, saved from STOP, equals the source's,
    saved from STOP after the migration. vfio.h: end of stream "indicates the
    entire device state has been transferred" -- changes made in PRE_COPY
    (and PRE_COPY_P2P) included."""
    with open_device(adapter, spec) as h:
        handle = _set_ok(h, spec, spec.initial, path[0]).value
        if handle is None:
            raise h.violation(f"SET {path[0]} returned no handle", expected="a new data_fd", observed="none",
                              rule=RULES["handle-new"])
        stream, current = bytearray(), path[0]
        for state in path[1:]:
            for _ in range(4):  # read what pre-copy offers while the device runs
                _expect_state(h, spec, current)
                out = read_fd(h, handle, 1 << 16)
                if out.ok and out.value:
                    stream += out.value
            _set_ok(h, spec, current, state)
            current = state
        stream += _read_all(h, handle)
        _set_ok(h, spec, "STOP_COPY", "STOP")
        digest = h.state_digest()
        source = (_read_all(h, _set_ok(h, spec, "STOP", "STOP_COPY").value), digest)
    stream = bytes(stream)
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        _feed(h, _set_ok(h, spec, "STOP", "RESUMING").value, stream)
        _set_ok(h, spec, "RESUMING", "STOP")
        digest = h.state_digest()
        copy = (_read_all(h, _set_ok(h, spec, "STOP", "STOP_COPY").value), digest)
        if not _same_state(spec, source, copy):
            raise h.violation(f"the device resumed from a stream saved through {' -> '.join(path)} does not hold "
                              "the source's final state", expected=f"the source's, in STOP: {_shown(source)}",
                              observed=_shown(copy), rule=RULES["stream-complete"])


def check_round_trip(adapter, spec: V2Spec, segment: int) -> None:
    """Save a device, resume another with the stream rewritten in ``segment``-byte
    writes; the resumed device, in STOP, holds the saved state: its
    ``state_digest()`` equals the source's, or (without one) re-saving it
    gives the same stream."""
    source = saved_state(adapter, spec)
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        out = _set_ok(h, spec, "STOP", "RESUMING")
        _feed(h, out.value, source[0], segment)
        _set_ok(h, spec, "RESUMING", "STOP")
        digest = h.state_digest()
        again = _set_ok(h, spec, "STOP", "STOP_COPY")
        copy = (_read_all(h, again.value), digest)
        if not _same_state(spec, source, copy):
            raise h.violation("the resumed device does not hold the saved state",
                              expected=f"the saved state: {_shown(source)}",
                              observed=_shown(copy), rule=RULES["round-trip"])


def check_bad_resume(adapter, spec: V2Spec, kind: str) -> None:
    """Resuming with an empty, truncated or all-zero stream fails; reset recovers.

    vfio.h (RESUMING -> STOP): the driver "must fail" when it finds the data
    "incomplete, inconsistent, or otherwise invalid". An empty or truncated
    stream (cut in half, or missing only its last byte -- ``tail``: the
    stream's last record is incomplete, whatever the format) is incomplete,
    so the SET must fail; so must a stream of zeros of
    the saved stream's length, written 7 bytes at a time (the driver may
    refuse some writes), which is no saved state (no header, no magic).
    A ``corrupted`` stream (its last byte flipped) may still be a consistent
    device state -- mtty, whose stream has no checksum, takes it -- so there
    either outcome conforms; the test then checks that the device is in STOP
    or, after a failure, in RESUMING or ERROR, and that reset recovers.
    """
    stream = saved_stream(adapter, spec)
    bad = {"empty": b"", "truncated": stream[: len(stream) // 2], "tail": stream[:-1],
           "corrupted": stream[:-1] + bytes([stream[-1] ^ 0xFF]), "zeros": bytes(len(stream))}[kind]
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        out = _set_ok(h, spec, "STOP", "RESUMING")
        if kind == "zeros":  # small writes; the driver may refuse some of them
            for i in range(0, len(bad), 7):
                write_fd(h, out.value, bad[i:i + 7])
        elif bad:
            _feed(h, out.value, bad)
        result = h.set(spec.states["STOP"])
        if result.ok and kind == "corrupted":
            _expect_state(h, spec, "STOP")
            h.reset()
            _expect_state(h, spec, spec.reset, "reset")
            return
        if result.ok:
            raise h.violation(f"RESUMING -> STOP accepted a {kind} stream", expected="failure",
                              observed="success", rule=RULES["resume-validate"])
        got = h.name(h.get())
        if got not in ("RESUMING", spec.error):
            raise h.violation(f"after the failed RESUMING -> STOP the state is {got}",
                              expected=f"RESUMING or {spec.error}", observed=got, rule=RULES["failure"])
        h.reset()
        _expect_state(h, spec, spec.reset, "reset")


def check_fresh_handles(adapter, spec: V2Spec) -> None:
    """Two sessions in a row get different handles; the first is disabled."""
    limit = transport_limits(adapter).get("handle-fresh")
    if limit:
        pytest.skip(f"not observable over this adapter's transport: {limit}")
    with open_device(adapter, spec) as h:
        _set_ok(h, spec, spec.initial, "STOP")
        first = _set_ok(h, spec, "STOP", "STOP_COPY").value
        _set_ok(h, spec, "STOP_COPY", "STOP")
        second = _set_ok(h, spec, "STOP", "STOP_COPY").value
        if first == second:
            raise h.violation(f"the second session reuses handle {first}", expected="a fresh handle",
                              observed=f"handle {second}", rule=RULES["handle-fresh"])
        _check_handle_dead(h, first, "handle-disabled", "read")


def check_precopy_info(adapter, spec: V2Spec, state: str) -> None:
    """VFIO_MIG_GET_PRECOPY_INFO in the pre-copy state ``state``.

    MUST (a failure): the ioctl works on the data fd in ``state`` -- vfio.h
    makes it mandatory for a driver that claims PRE_COPY; ``initial_bytes``
    never grows within the session (it "indicates the amount of initial
    precopy data"; what the running device changes is ``dirty_bytes``,
    which may grow). SHOULD (recorded as advisories, not failures):
    ``initial_bytes`` drops by what is read; the bytes read up to the
    temporary end of stream are no more than the fields announced (they are
    estimates, and more data may come while the device runs: vfio.h
    "Userspace can wait for more data ... by using poll");
    once initial and dirty bytes are 0, read() returns ENOMSG; in STOP_COPY
    the ioctl fails with EINVAL.
    """
    with open_device(adapter, spec) as h:
        if not hasattr(h.device, "precopy_info"):
            limit = transport_limits(adapter).get("precopy-info")
            pytest.skip(f"not observable over this adapter's transport: {limit}" if limit else
                        "the adapter's device has no precopy_info (VFIO_MIG_GET_PRECOPY_INFO)")
        handle = _set_ok(h, spec, spec.initial, state).value
        if handle is None:
            raise h.violation(f"SET {state} returned no handle", expected="a new data_fd", observed="none",
                              rule=RULES["handle-new"])
        first = h.precopy_info(handle)
        if not first.ok:
            raise h.violation(f"VFIO_MIG_GET_PRECOPY_INFO failed in {state} with {first.error}",
                              expected="initial_bytes and dirty_bytes", observed=first.error,
                              rule=RULES["precopy-info"])
        initial, announced = first.value[0], sum(first.value)

        def info_now():
            nonlocal initial
            now = h.precopy_info(handle)
            if now.ok and now.value[0] > initial:
                raise h.violation(f"{state}: initial_bytes grew from {initial} to {now.value[0]} within the session",
                                  expected=f"at most {initial} (initial data is only read down; device activity "
                                           "is dirty_bytes)", observed=str(now.value[0]), rule=RULES["precopy-initial"])
            if now.ok:
                initial = now.value[0]
            return now

        info_now()  # asked again at once: the device ran, its initial data did not grow
        if initial:
            chunk = read_fd(h, handle, min(initial, 16))
            if chunk.ok and chunk.value:
                before = initial
                after = info_now()
                if after.ok and after.value[0] != before - len(chunk.value):
                    advise(spec.label, f"{state}: initial_bytes went {before} -> {after.value[0]} after "
                                       f"reading {len(chunk.value)} bytes ({RULES['precopy-decrease']})")
                if after.ok:
                    announced = sum(after.value)
        got = 0
        for _ in range(_MAX_READS):  # drain to the temporary end of stream, without asking again
            out = read_fd(h, handle, 1 << 16)
            if not out.ok or not out.value:
                break
            got += len(out.value)
        if got > announced:
            advise(spec.label, f"{state}: {got} bytes read before the temporary end of stream, {announced} "
                               f"announced by VFIO_MIG_GET_PRECOPY_INFO ({RULES['precopy-announced']})")
        for _ in range(_MAX_READS):  # what came since (a running device dirties its state)
            info = info_now()
            if not info.ok or info.value == (0, 0):
                break
            out = read_fd(h, handle, 1 << 16)
            if not out.ok or not out.value:
                break
        out = read_fd(h, handle, 1)
        if out.error != "ENOMSG":
            seen = out.error or (f"{len(out.value)} bytes" if out.value else "0 bytes (end of stream)")
            advise(spec.label, f"{state}: read() at the temporary end of stream gave {seen}, not ENOMSG "
                               f"({RULES['precopy-enomsg']})")
        if spec.outcome(state, "STOP_COPY")[0] == "path":
            _set_ok(h, spec, state, "STOP_COPY")
            late = h.precopy_info(handle)
            if late.error != "EINVAL":
                advise(spec.label, f"STOP_COPY: VFIO_MIG_GET_PRECOPY_INFO gave {late.error or 'success'}, "
                                   f"not EINVAL ({RULES['precopy-einval']})")


def check_failure_path(adapter, spec: V2Spec, current: str, requested: str, index: int, to_error: bool) -> None:
    """Inject a failure at step ``index`` of the derived path: the SET fails,
    the state is the start, one on the path before the failing step, or ERROR;
    reset recovers."""
    outcome, path = spec.outcome(current, requested)
    stream = saved_stream(adapter, spec) if "RESUMING" in (current,) + path else None
    with open_device(adapter, spec) as h:
        inject = getattr(h.device, "inject_failure", None)
        if inject is None:
            pytest.skip("the device cannot inject failures (no inject_failure)")
        _reach(h, spec, current, stream)
        src, dst = ((current,) + path)[index], path[index]
        inject(src, dst, errno="EIO", to_error=to_error)
        h.log.append(f"inject failure at {src} -> {dst}" + (" (into ERROR)" if to_error else ""))
        out = h.set(spec.states[requested])
        if out.ok:
            raise h.violation(f"SET {requested} from {current} succeeded although step {src} -> {dst} failed",
                              expected=f"a failure (the path is {' -> '.join((current,) + path)})",
                              observed="success", rule=RULES["failure-reported"])
        allowed = {current, *path[:index], spec.error}
        got = h.name(h.get())
        if got not in allowed:
            raise h.violation(f"after the failed SET the state is {got}, not on the derived path "
                              f"{' -> '.join((current,) + path)} before the failing step",
                              expected=" or ".join(sorted(allowed)), observed=got, rule=RULES["path"])
        if to_error and got != spec.error:
            raise h.violation("the failure was into ERROR but GET does not say ERROR", expected=spec.error,
                              observed=got, rule=RULES["get"])
        h.reset()
        _expect_state(h, spec, spec.reset, "reset")


class Step(NamedTuple):
    """The model's state after a request, the handle held there, the handle
    the request returned (or None), and whether it was rejected."""

    state: str
    handle: int | None
    new_handle: int | None
    rejected: bool


def apply_request(h: Harness, spec: V2Spec, state: str, handle: int | None, value: int,
                  *, stream_complete: bool = True) -> Step:
    """SET ``value`` from model state ``state`` (holding ``handle``) and check
    the output against the model: EINVAL for a rejected request; otherwise
    success, a new handle exactly where a session starts (never a reused one).
    With ``stream_complete`` False, leaving RESUMING must fail and leave the
    device in RESUMING or ERROR, as GET then says. The oracle of the W-method
    suite and of the state machine."""
    requested = spec.names.get(value)
    outcome, path = spec.outcome(state, requested) if requested else ("rejected", ())
    out = h.set(value)
    if outcome == "rejected":
        if state == spec.error and requested == spec.error and out.ok:
            advise(spec.label, f"SET {spec.error} in {spec.error} succeeded ({RULES['open-error-in-error']})")
        elif out.ok:
            raise h.violation(f"SET {h.name(value)} from {state} was not rejected", expected="an error (EINVAL)",
                              observed="success", rule=RULES["reject"])
        else:
            _reject_errno(h, out.error)
        return Step(state, handle, None, True)
    if state == "RESUMING" and path and not stream_complete:
        if out.ok:
            raise h.violation("leaving RESUMING without a complete stream succeeded", expected="failure",
                              observed="success", rule=RULES["resume-validate"])
        got = h.name(h.get())
        if got not in ("RESUMING", spec.error):
            raise h.violation(f"after the failed SET the state is {got}", expected=f"RESUMING or {spec.error}",
                              observed=got, rule=RULES["failure"])
        return Step(got, handle, None, False)
    if not out.ok:
        raise h.violation(f"SET {requested} from {state} failed with {out.error}", expected="success",
                          observed=out.error, rule=RULES["set"])
    _check_fd(h, out.value)
    if path:
        _check_handle_returned(h, spec, state, path, out.value, handle)
        for step in zip((state,) + path, path):
            COVERAGE.arcs.add((spec.label,) + step)
        if out.value is not None:
            handle = out.value
        elif not spec.keeps_session(state, requested):
            handle = None
    COVERAGE.pairs.add((spec.label, state, requested))
    return Step(requested, handle, out.value if path else None, False)


def check_sequence(adapter, spec: V2Spec, inputs: list) -> None:
    """A W-method sequence: each input is ``("set", value)`` or ``("reset",)``;
    after each, the output (success/EINVAL, handle or not) and GET must match
    the model."""
    resuming = spec.states.get("RESUMING")
    needs_stream = any(item[0] == "set" and item[1] == resuming for item in inputs)
    stream = saved_stream(adapter, spec) if needs_stream else None  # before the device is opened
    with open_device(adapter, spec) as h:
        state, handle = spec.initial, None
        _expect_state(h, spec, state)
        for item in inputs:
            if item[0] == "reset":
                h.reset()
                state, handle = spec.reset, None
                _expect_state(h, spec, state, "reset")
                continue
            step = apply_request(h, spec, state, handle, item[1])
            state, handle = step.state, step.handle
            if state == "RESUMING" and step.new_handle is not None:
                _feed(h, step.new_handle, stream)
            _expect_state(h, spec, state, "reject" if step.rejected else "get")
