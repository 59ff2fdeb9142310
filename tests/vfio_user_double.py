"""A vfio-user server that follows vfio.h: the test double of issue 20.

Speaks the vfio-user protocol (QEMU docs/interop/vfio-user.rst) on a real
UNIX socket, written independently of the adapter's wire module (its own
struct formats) and of fsmcheck (standard library only, so it starts in a
few tens of milliseconds), with a small device of its own behind it that
follows vfio.h for the flag set STOP_COPY|PRE_COPY:

* the arcs vfio.h lists for that flag set; a SET takes the shortest path of
  them with no saving-group state inside (vfio.h: "The path cannot have
  saving group states as interior states"), STOP_COPY -> PRE_COPY refused;
  ERROR, RUNNING_P2P, PRE_COPY_P2P and values >= 8 are refused with EINVAL;
* a 64-byte device image that changes while the device runs (RUNNING,
  PRE_COPY) and never in STOP; its stream is records ``b"VFUD" + u32 length
  + image + crc32``: entering PRE_COPY queues the image as the initial data,
  entering STOP_COPY queues the final image; end of data is an empty reply
  (permanent in STOP_COPY, temporary in PRE_COPY);
* RESUMING -> STOP accepts a stream of one or more complete records with
  good checksums (the last one is loaded), else fails with EINVAL and stays
  in RESUMING;
* MIG_DATA_READ only while saving, MIG_DATA_WRITE only in RESUMING (else
  EINVAL: the protocol's allowed-state rules); DEVICE_RESET: RUNNING, any
  session ended.

Run: ``python tests/vfio_user_double.py [options] SOCKET``. Options for the
failure tests: ``--crash-on N`` (abort on the N-th request after VERSION),
``--no-socket`` (never listen), ``--exit-at-start`` (exit 3 at once),
``--tag T`` (ignored: lets a test find its servers among the processes).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
import zlib
from collections import deque

HDR = "<HHIII"
HDR_SIZE = struct.calcsize(HDR)
EINVAL = 22
ERROR, STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY = 0, 1, 2, 3, 4, 6
SUPPORTED = {STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY}
SAVING = {PRE_COPY, STOP_COPY}
RUNNING_STATES = {RUNNING, PRE_COPY}
ARCS = {STOP: {RUNNING, STOP_COPY, RESUMING}, RUNNING: {STOP, PRE_COPY}, PRE_COPY: {RUNNING, STOP_COPY},
        STOP_COPY: {STOP}, RESUMING: {STOP}}
MAGIC = b"VFUD"


class Refused(Exception):
    """An error reply with errno ``args[0]``."""


def shortest_path(src: int, dst: int) -> list[int] | None:
    """vfio.h's combination transition: the shortest path of arcs, no saving state inside."""
    if src == STOP_COPY and dst == PRE_COPY:
        return None
    seen, queue = {src: [src]}, deque([src])
    while queue:
        node = queue.popleft()
        for nxt in sorted(ARCS.get(node, ())):
            if nxt in seen or (nxt in SAVING and nxt != dst):
                continue
            seen[nxt] = seen[node] + [nxt]
            if nxt == dst:
                return seen[nxt][1:]
            queue.append(nxt)
    return None


def record(image: bytes) -> bytes:
    return MAGIC + struct.pack("<I", len(image)) + image + struct.pack("<I", zlib.crc32(image))


def parse(stream: bytes) -> bytes | None:
    """The last image of a stream of complete, checksummed records, or None."""
    image, pos = None, 0
    while pos < len(stream):
        if stream[pos:pos + 4] != MAGIC or pos + 8 > len(stream):
            return None
        (length,) = struct.unpack_from("<I", stream, pos + 4)
        end = pos + 8 + length + 4
        if end > len(stream):
            return None
        body = stream[pos + 8:pos + 8 + length]
        if struct.unpack_from("<I", stream, end - 4)[0] != zlib.crc32(body):
            return None
        image, pos = body, end
    return image


class Device:
    def __init__(self):
        self.state = RUNNING
        self.image = bytearray(range(64))
        self.tick = 0
        self.outgoing = bytearray()   # saving session: data not read yet
        self.incoming = bytearray()   # resuming session: data written
        self.final = False            # the STOP_COPY record is queued

    def run(self) -> None:
        """The device works while running: its image changes."""
        if self.state in RUNNING_STATES:
            self.tick += 1
            self.image[self.tick % len(self.image)] ^= (self.tick * 37 + 11) & 0xFF

    def step(self, dst: int) -> None:
        src = self.state
        if dst in SAVING and src not in SAVING:
            self.outgoing, self.final = bytearray(), False
        if dst == PRE_COPY:
            self.outgoing += record(bytes(self.image))
        if dst == STOP_COPY:
            self.outgoing += record(bytes(self.image))
            self.final = True
        if src == RESUMING and dst == STOP:
            image = parse(bytes(self.incoming))
            if image is None:
                raise Refused(EINVAL)
            self.image = bytearray(image)
        if dst == RESUMING:
            self.incoming = bytearray()
        if dst not in SAVING:
            self.outgoing, self.final = bytearray(), False
        self.state = dst

    def set(self, value: int) -> None:
        if value not in SUPPORTED:
            raise Refused(EINVAL)
        if value == self.state:
            return
        path = shortest_path(self.state, value)
        if path is None:
            raise Refused(EINVAL)
        for state in path:
            self.step(state)

    def reset(self) -> None:
        self.state = RUNNING
        self.outgoing, self.incoming, self.final = bytearray(), bytearray(), False

    def read(self, size: int) -> bytes:
        if self.state not in SAVING:
            raise Refused(EINVAL)
        chunk = bytes(self.outgoing[:size])
        del self.outgoing[:size]
        return chunk

    def write(self, data: bytes) -> None:
        if self.state != RESUMING:
            raise Refused(EINVAL)
        self.incoming += data


def recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Double:
    def __init__(self, max_xfer: int):
        self.device = Device()
        self.max_xfer = max_xfer

    def handle_message(self, cmd: int, body: bytes) -> bytes:
        """The reply payload; raises Refused(errno) for an error reply."""
        self.device.run()
        if cmd == 1:  # VERSION
            caps = {"capabilities": {"max_msg_fds": 8, "max_data_xfer_size": self.max_xfer,
                                     "migration": {"pgsize": 4096}}}
            return struct.pack("<HH", 0, 1) + json.dumps(caps).encode() + b"\0"
        if cmd == 13:  # DEVICE_RESET
            self.device.reset()
            return b""
        if cmd == 16:  # DEVICE_FEATURE
            argsz, flags = struct.unpack_from("<II", body)
            feature, op = flags & 0xFFFF, flags & ~0xFFFF
            if op == 1 << 16 and feature == 1:  # MIGRATION: STOP_COPY | PRE_COPY
                return struct.pack("<IIQ", 16, flags, 1 | 4)
            if op == 1 << 16 and feature == 2:  # MIG_DEVICE_STATE
                return struct.pack("<IIII", 16, flags, self.device.state, 0xFFFFFFFF)
            if op == 1 << 17 and feature == 2:
                self.device.set(struct.unpack_from("<I", body, 8)[0])
                return body
            raise Refused(EINVAL)
        if cmd == 17:  # MIG_DATA_READ
            argsz, size = struct.unpack_from("<II", body)
            if size > self.max_xfer or argsz < 8 + size:
                raise Refused(EINVAL)
            data = self.device.read(size)
            return struct.pack("<II", 8 + len(data), len(data)) + data
        if cmd == 18:  # MIG_DATA_WRITE
            argsz, size = struct.unpack_from("<II", body)
            if size > self.max_xfer or len(body) < 8 + size:
                raise Refused(EINVAL)
            self.device.write(body[8:8 + size])
            return b""
        raise Refused(EINVAL)


def serve(args) -> int:
    if args.exit_at_start:
        print("vfio_user_double: exiting at start-up as asked", file=sys.stderr)
        return 3
    if args.no_socket:
        print("vfio_user_double: not listening, as asked", file=sys.stderr)
        time.sleep(3600)
        return 0
    double = Double(args.max_xfer)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    conn, _ = listener.accept()
    listener.close()
    requests = 0
    with conn:
        while True:
            head = recv_exact(conn, HDR_SIZE)
            if head is None:
                return 0
            msg_id, cmd, size, flags, _ = struct.unpack(HDR, head)
            body = recv_exact(conn, size - HDR_SIZE) if size > HDR_SIZE else b""
            if body is None:
                return 0
            if cmd != 1:
                requests += 1
                if args.crash_on and requests == args.crash_on:
                    print(f"vfio_user_double: aborting on request {requests} (command {cmd}), as asked",
                          file=sys.stderr, flush=True)
                    os.abort()
            try:
                reply, rflags, error = double.handle_message(cmd, body), 1, 0
            except Refused as exc:
                reply, rflags, error = b"", 1 | 0x20, exc.args[0]
            conn.sendall(struct.pack(HDR, msg_id, cmd, HDR_SIZE + len(reply), rflags, error) + reply)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--max-xfer", type=int, default=1 << 20)
    parser.add_argument("--crash-on", type=int, default=0)
    parser.add_argument("--no-socket", action="store_true")
    parser.add_argument("--exit-at-start", action="store_true")
    parser.add_argument("--tag", default="", help="ignored: marks the processes of one test")
    return serve(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
