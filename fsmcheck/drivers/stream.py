"""The reference device's migration data stream.

A stream is a sequence of records ``tag (1 byte) | length (u32 LE) | payload``:
``P`` a pre-copy snapshot, ``F`` the final device state, ``E`` the end, whose
payload is the CRC-32 of every byte before it. A complete stream is any number
of ``P`` records, one ``F`` and one ``E``. The user treats it as opaque bytes;
only its byte order matters, not its segmentation (vfio.h).
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["StreamError", "end_record", "parse_stream", "record"]


class StreamError(ValueError):
    """The stream is empty, truncated, corrupted or incomplete."""


def record(tag: bytes, payload: bytes) -> bytes:
    """One record."""
    return tag + struct.pack("<I", len(payload)) + payload


def end_record(previous: bytes) -> bytes:
    """The ``E`` record closing ``previous``."""
    return record(b"E", struct.pack("<I", zlib.crc32(previous)))


def parse_stream(data: bytes, state_size: int) -> bytes:
    """Validate a complete stream; return the final device state.

    Raises:
        StreamError: saying what is wrong and at which byte offset.
    """
    if not data:
        raise StreamError("empty stream")
    offset, final = 0, None
    while offset < len(data):
        if offset + 5 > len(data):
            raise StreamError(f"truncated record header at byte {offset}")
        tag = data[offset:offset + 1]
        (length,) = struct.unpack_from("<I", data, offset + 1)
        start, end = offset + 5, offset + 5 + length
        if end > len(data):
            raise StreamError(f"truncated {tag!r} record at byte {offset}")
        payload = data[start:end]
        if tag == b"P":
            pass
        elif tag == b"F":
            if len(payload) != state_size:
                raise StreamError(f"final state of {len(payload)} bytes, expected {state_size}")
            final = payload
        elif tag == b"E":
            if final is None:
                raise StreamError("end record before the final state")
            if payload != struct.pack("<I", zlib.crc32(data[:offset])):
                raise StreamError("CRC mismatch: corrupted stream")
            if end != len(data):
                raise StreamError(f"{len(data) - end} bytes after the end record")
            return final
        else:
            raise StreamError(f"unknown record tag {tag!r} at byte {offset}")
        offset = end
    raise StreamError("incomplete stream: no end record")
