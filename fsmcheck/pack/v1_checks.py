"""The bodies of the generated v1 tests (the migration region).

The pack's ``SPEC`` gives the header layout, the state encodings, the arcs
the sources require, and how to reach each state along required arcs; see
``fsmcheck.generate.v1_pack``.
"""

from __future__ import annotations

import contextlib
import zlib

import pytest

from .cited import cite
from .coverage import COVERAGE, advise
from .harness import AdapterFault, Harness, ProtocolViolation, adapter_lost

__all__ = [
    "check_invalid_write", "check_reserved_bits", "check_bad_access", "check_arc", "check_unspecified_arc",
    "check_reset", "check_saving_and_resuming", "check_bad_resume", "check_error_state", "saved_stream_v1",
]

#: Sources quoted in violations; each names the one catalogue rule a failure citing it breaks.
RULES = {
    "invalid": cite("v1.invalid-states", "SPEC 1 / seed 000: a write of an invalid value fails; device_state "
                    "unchanged"),
    "reserved": cite("v1.reserved-ignored", "seed 001: 'undefined bits are ignored': a write with bits 3-31 set "
                     "is taken"),
    "open-reserved": cite("v1.reserved-preserved", "left open: seed 001: 'undefined bits are ignored, and may or "
                          "may not preserved'"),
    "access": cite("v1.native-access", "seed 001: fields are accessed only at their native width and alignment; "
                   "others fail"),
    "readonly": cite("v1.read-only-fields", "seed 001: pending_bytes and data_offset are read only"),
    "arc": cite("v1.required-arcs", "SPEC 1: transitions the driver must support (and those agreed in review)"),
    "reported": cite("v1.state-read-back", "SPEC 1: device_state reads back the state the device is in"),
    "reset": cite("v1.reset-to-running", "seed 000: any reset returns device_state to 001b, the error state "
                  "included"),
    "error": cite("v1.error-left-by-reset", "SPEC 1: the error state 110b is left only by reset"),
    "saving": cite("v1.data-ready", "seed 001: saving sequence (pending_bytes, data_offset, data_size, data)"),
    "resuming": cite("v1.resume-may-fail", "SPEC 1: clearing RESUMING incorporates the data and fails on bad "
                     "data"),
    "round-trip": cite("v1.deserialize-on-clear", "seed 000: data provided through the region should be used to "
                       "resume the device: a resumed device, saved again, gives the stream it was resumed from"),
}

_STREAMS: dict = {}


@contextlib.contextmanager
def open_v1(adapter, spec: dict):
    lost = adapter_lost(adapter)
    if lost:
        raise AdapterFault(f"not run: the adapter was given up after an earlier call hung ({lost})")
    try:
        device = adapter.open()
    except Exception as exc:
        raise AdapterFault(f"the adapter's open() raised {type(exc).__name__}: {exc}") from None
    h = Harness(device, {s["value"]: s["name"] for s in spec["states"]}, adapter=adapter, label="v1")
    h.log.append("open")
    COVERAGE.flag_sets.add("v1")
    try:
        yield h
    finally:
        h.close()


def _field(spec, name):
    f = spec["fields"][name]
    return f["offset"], f["width"]


def _read_state(h: Harness, spec) -> int:
    out = h.read_header(*_field(spec, "device_state"))
    if not out.ok:
        raise h.violation(f"reading device_state failed with {out.error}", expected="a value",
                          observed=out.error, rule=RULES["reported"])
    COVERAGE.states.add(("v1", out.value & spec["mask"]))
    return out.value


def _bits(spec, value):
    return f"{value & spec['mask']:03b}b" + (f" (device_state {value:#x})" if value & ~spec["mask"] else "")


def _write_state(h: Harness, spec, value):
    return h.write_header(*_field(spec, "device_state"), value)


def _expect(h: Harness, spec, want: int, rule: str, mask_only: bool = True):
    got = _read_state(h, spec)
    if (got & spec["mask"] if mask_only else got) != (want & spec["mask"] if mask_only else want):
        raise h.violation(f"device_state reads {_bits(spec, got)}, expected {_bits(spec, want)}",
                          expected=_bits(spec, want), observed=_bits(spec, got), rule=RULES[rule])


def _drain(h: Harness, spec, limit: int = 10000) -> list[bytes]:
    """The saving sequence of seed 001 until pending_bytes is 0: the chunks,
    each of the size the device gave (data_size)."""
    data = []
    for _ in range(limit):
        pending = h.read_header(*_field(spec, "pending_bytes"))
        if not pending.ok:
            raise h.violation(f"reading pending_bytes failed with {pending.error}", expected="a count",
                              observed=pending.error, rule=RULES["saving"])
        if pending.value == 0:
            return data
        offset = h.read_header(*_field(spec, "data_offset"))
        size = h.read_header(*_field(spec, "data_size"))
        if not offset.ok or not size.ok:
            raise h.violation("reading data_offset/data_size failed", expected="values",
                              observed=offset.error or size.error, rule=RULES["saving"])
        chunk = h.read_data(offset.value, size.value)
        if not chunk.ok:
            raise h.violation(f"reading the data section failed with {chunk.error}", expected="data",
                              observed=chunk.error, rule=RULES["saving"])
        data.append(bytes(chunk.value))
    raise h.violation("pending_bytes never reached 0 in stop-and-copy", expected="0 after draining",
                      observed=f"still > 0 after {limit} iterations", rule=RULES["saving"])


def _resume(h: Harness, spec, chunks: list[bytes]) -> None:
    """The resuming sequence: each saved chunk, in order and with the size it
    was saved with (SPEC 1; seed 001: the data section of the resuming
    device need not be larger than the saving one's)."""
    for chunk in chunks:
        offset = h.read_header(*_field(spec, "data_offset"))
        if not offset.ok:
            raise h.violation(f"reading data_offset while resuming failed with {offset.error}", expected="an offset",
                              observed=offset.error, rule=RULES["resuming"])
        written = h.write_data(offset.value, chunk)
        if not written.ok:
            raise h.violation(f"writing a {len(chunk)}-byte chunk at data_offset failed with {written.error}",
                              expected="accepted (the chunk has the size the device saved it with)",
                              observed=written.error, rule=RULES["resuming"])
        out = h.write_header(*_field(spec, "data_size"), len(chunk))
        if not out.ok:
            raise h.violation(f"writing data_size failed with {out.error}", expected="accepted",
                              observed=out.error, rule=RULES["resuming"])


def saved_stream_v1(adapter, spec) -> list[bytes]:
    """A complete stream, as its chunks: 001 -> 010 (stop-and-copy), drained."""
    key = id(adapter)
    if key not in _STREAMS:
        with open_v1(adapter, spec) as h:
            _walk(h, spec, [spec["values"]["RUNNING"], spec["values"]["SAVING"]], None)
            _STREAMS[key] = _drain(h, spec)
            _walk(h, spec, [spec["values"]["STOP"]], None)
    return _STREAMS[key]


def _walk(h: Harness, spec, values, stream) -> None:
    """Write each value in turn (a path of required arcs), checking each."""
    current = _read_state(h, spec) & spec["mask"]
    for value in values:
        if value == current:
            continue
        if current == spec["values"]["RESUMING"] and stream is not None:
            _resume(h, spec, stream)
        out = _write_state(h, spec, value)
        if not out.ok:
            raise h.violation(f"write {_bits(spec, value)} from {_bits(spec, current)} failed with {out.error}",
                              expected="success", observed=out.error, rule=RULES["arc"])
        COVERAGE.arcs.add(("v1", current, value & spec["mask"]))
        _expect(h, spec, value, "reported")
        current = value & spec["mask"]


def _reach(h, spec, state: str, stream):
    _walk(h, spec, spec["reach"][state], stream)


def check_invalid_write(adapter, spec, current: str, value: int) -> None:
    with open_v1(adapter, spec) as h:
        _reach(h, spec, current, None)
        out = _write_state(h, spec, value)
        COVERAGE.rejections.add(("v1", current, value))
        if out.ok:
            raise h.violation(f"write of invalid {_bits(spec, value)} from {current} succeeded",
                              expected="failure", observed="success", rule=RULES["invalid"])
        _expect(h, spec, spec["values"][current], "invalid")


def check_reserved_bits(adapter, spec, target: str, reserved: int) -> None:
    with open_v1(adapter, spec) as h:
        before = _read_state(h, spec)
        value = (before & ~spec["mask"]) | reserved | spec["values"][target]
        out = _write_state(h, spec, value)
        if not out.ok:
            raise h.violation(f"write {_bits(spec, value)} failed with {out.error}", expected="success",
                              observed=out.error, rule=RULES["reserved"])
        got = _read_state(h, spec)
        if got & spec["mask"] != value & spec["mask"]:
            raise h.violation(f"device_state reads {_bits(spec, got)} after a write of {_bits(spec, value)}",
                              expected=_bits(spec, value), observed=_bits(spec, got), rule=RULES["reported"])
        if got & ~spec["mask"] != value & ~spec["mask"]:
            advise("v1", f"reserved bits written as {value & ~spec['mask']:#x} read back as "
                         f"{got & ~spec['mask']:#x} ({RULES['open-reserved']})")


def check_bad_access(adapter, spec, op: str, offset: int, width: int) -> None:
    with open_v1(adapter, spec) as h:
        out = h.read_header(offset, width) if op == "read" else h.write_header(offset, width, 0)
        if out.ok:
            rule = RULES["readonly"] if op == "write" and any(
                f["offset"] == offset and f["width"] == width for f in spec["fields"].values()) else RULES["access"]
            raise h.violation(f"{op} of {width} bytes at offset {offset} succeeded", expected="failure",
                              observed="success", rule=rule)
        _expect(h, spec, spec["values"]["RUNNING"], "reported")


def check_arc(adapter, spec, src: str, dst: str) -> None:
    stream = saved_stream_v1(adapter, spec) if src == "RESUMING" else None
    with open_v1(adapter, spec) as h:
        _reach(h, spec, src, None)
        _walk(h, spec, [spec["values"][dst]], stream)


def check_unspecified_arc(adapter, spec, src: str, dst: str, record) -> None:
    """Record, not judge: whether the driver takes an arc the sources never discussed."""
    stream = saved_stream_v1(adapter, spec) if src == "RESUMING" else None
    with open_v1(adapter, spec) as h:
        _reach(h, spec, src, None)
        if stream is not None:
            _resume(h, spec, stream)
        out = _write_state(h, spec, spec["values"][dst])
        state = _read_state(h, spec) & spec["mask"]
        record("unspecified_arc", f"{src} -> {dst}: " + ("accepted" if out.ok else out.error)
               + f", reads {state:03b}b")


def check_reset(adapter, spec, current: str) -> None:
    with open_v1(adapter, spec) as h:
        if current == spec["error"]:
            _enter_error(h, spec)
        else:
            _reach(h, spec, current, None)
        h.reset()
        COVERAGE.resets.add(("v1", current))
        _expect(h, spec, spec["values"][spec["reset"]], "reset", mask_only=False)


def _enter_error(h, spec):
    inject = getattr(h.device, "inject_failure", None)
    if inject is None:
        pytest.skip("the device cannot inject failures: the error state is unreachable")
    inject("RUNNING", "STOP", errno="EIO", to_error=True)
    h.log.append("inject failure at RUNNING -> STOP (into the error state)")
    out = _write_state(h, spec, spec["values"]["STOP"])
    if out.ok:
        raise h.violation("an injected failure did not fail the write", expected="failure",
                          observed="success", rule=RULES["error"])
    _expect(h, spec, spec["values"][spec["error"]], "error")


def check_error_state(adapter, spec, value: int) -> None:
    with open_v1(adapter, spec) as h:
        _enter_error(h, spec)
        out = _write_state(h, spec, value)
        if out.ok:
            raise h.violation(f"a write of {_bits(spec, value)} left the error state", expected="failure",
                              observed="success", rule=RULES["error"])
        _expect(h, spec, spec["values"][spec["error"]], "error")


def check_saving_and_resuming(adapter, spec) -> None:
    """001 -> 011 (pre-copy, drain) -> 010 (drain to 0) -> 000; resume the
    chunks, as saved, into a fresh device; clearing RESUMING succeeds; save
    it (001 -> 010) and resume that into a third device, saved the same way.

    The two re-saved streams are compared only for a device that declares
    ``still_when_idle = True`` (the contract: it does not change its
    internal state in 001b between two register accesses when nobody drives
    it -- no queued work, timers or firmware activity): the v1 arcs give no
    way to stop a resumed device before saving it (100b is left only for
    001b), and a device that works while running legitimately saves a
    different state a moment later. Which comparison ran is recorded in the
    coverage."""
    v = spec["values"]
    with open_v1(adapter, spec) as h:
        _walk(h, spec, [v["SAVING|RUNNING"]], None)
        stream = _drain(h, spec)
        _walk(h, spec, [v["SAVING"]], None)
        stream += _drain(h, spec)
        _walk(h, spec, [v["STOP"]], None)
        still = getattr(h.device, "still_when_idle", False) is True
    if not b"".join(stream):
        raise ProtocolViolation(f"empty migration stream\n  rule: {RULES['saving']} [{RULES['saving'].id}]",
                                RULES["saving"])
    COVERAGE.comparisons.add(("v1", "re-saved streams of resumed devices" if still else
                              "resumed devices not compared: the device does not declare still_when_idle "
                              "(it may work while running)"))
    resaved = []
    for source in (stream, None):
        with open_v1(adapter, spec) as h:
            _walk(h, spec, [v["RESUMING"]], None)
            _resume(h, spec, source if source is not None else resaved[0])
            _walk(h, spec, [v["RUNNING"], v["SAVING"]], None)
            resaved.append(_drain(h, spec))
            _walk(h, spec, [v["STOP"]], None)
            if still and len(resaved) == 2 and b"".join(resaved[0]) != b"".join(resaved[1]):
                first, second = b"".join(resaved[0]), b"".join(resaved[1])
                raise h.violation("a resumed device, saved again, does not give the stream it was resumed from",
                                  expected=f"{len(first)} bytes (crc {zlib.crc32(first):#x})",
                                  observed=f"{len(second)} bytes (crc {zlib.crc32(second):#x})",
                                  rule=RULES["round-trip"])


def _cut(chunks: list[bytes], size: int) -> list[bytes]:
    """The first ``size`` bytes of a chunked stream, cut at the saved chunk
    boundaries (the last chunk shorter)."""
    out, left = [], size
    for chunk in chunks:
        if left <= 0:
            break
        out.append(chunk[:left])
        left -= len(chunk)
    return out


def check_bad_resume(adapter, spec, kind: str) -> None:
    """Empty, truncated (half; ``tail``: all but the last byte) and corrupted
    resume data fail when RESUMING is cleared; reset recovers."""
    stream = saved_stream_v1(adapter, spec)
    total = sum(map(len, stream))
    if kind == "corrupted":
        bad = stream[:-1] + [stream[-1][:-1] + bytes([stream[-1][-1] ^ 0xFF])]
    else:
        bad = _cut(stream, {"empty": 0, "truncated": total // 2, "tail": total - 1}[kind])
    v = spec["values"]
    with open_v1(adapter, spec) as h:
        _walk(h, spec, [v["RESUMING"]], None)
        if bad:
            _resume(h, spec, bad)
        out = _write_state(h, spec, v["RUNNING"])
        if out.ok:
            raise h.violation(f"clearing RESUMING accepted a {kind} stream", expected="failure",
                              observed="success", rule=RULES["resuming"])
        got = _read_state(h, spec) & spec["mask"]
        if got not in (v["RESUMING"], v[spec["error"]]):
            raise h.violation(f"after the failed write device_state is {got:03b}b", expected="100b or 110b",
                              observed=f"{got:03b}b", rule=RULES["resuming"])
        h.reset()
        _expect(h, spec, v[spec["reset"]], "reset", mask_only=False)
