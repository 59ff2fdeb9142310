"""The vfio-user wire protocol, as much of it as migration needs.

Written from QEMU's ``docs/interop/vfio-user.rst`` (the protocol
specification; "Message Format", "VFIO_USER_VERSION",
"VFIO_USER_DEVICE_FEATURE", "VFIO_USER_MIG_DATA_READ",
"VFIO_USER_MIG_DATA_WRITE", "VFIO_USER_DEVICE_RESET"), with standard-library
sockets and :mod:`struct` only. Every message is a 16-byte header (all
fields little-endian)::

    u16 message ID | u16 command | u32 message size (header included)
    u32 flags (bits 0-3 type: 0 command, 1 reply; bit 4 no reply; bit 5 error)
    u32 error (an errno, in an error reply)

followed by the command's payload. :class:`Connection` sends one command and
reads its reply; a server that closes the connection or dies raises
:class:`ConnectionLost`; an error reply raises
:class:`~fsmcheck.adapters.contract.DriverError` with the errno's name.
"""

from __future__ import annotations

import errno as errno_names
import json
import socket
import struct

from .contract import DriverError

__all__ = ["COMMANDS", "Connection", "ConnectionLost", "HEADER", "MIG_DATA", "FEATURE", "PROTOCOL_VERSION",
           "VFIO_DEVICE_FEATURE_GET", "VFIO_DEVICE_FEATURE_SET", "VFIO_DEVICE_FEATURE_MIGRATION",
           "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", "errno_name", "version_payload"]

#: The header: msg_id, command, message size, flags, error (vfio-user.rst "Header").
HEADER = struct.Struct("<HHIII")
#: VFIO_USER_DEVICE_FEATURE payload head: argsz, flags (then the feature's data).
FEATURE = struct.Struct("<II")
#: VFIO_USER_MIG_DATA_READ / _WRITE payload head: argsz, size (then the data).
MIG_DATA = struct.Struct("<II")
#: VFIO_USER_VERSION payload head: major, minor (then NUL-terminated JSON).
VERSION = struct.Struct("<HH")

COMMANDS = {"VFIO_USER_VERSION": 1, "VFIO_USER_DEVICE_RESET": 13, "VFIO_USER_DEVICE_FEATURE": 16,
            "VFIO_USER_MIG_DATA_READ": 17, "VFIO_USER_MIG_DATA_WRITE": 18}
_NAMES = {v: k for k, v in COMMANDS.items()}
_TYPE_MASK, _TYPE_REPLY, _F_ERROR = 0xF, 0x1, 0x20

# The feature numbers and operation bits are vfio.h's (vfio-user.rst: "as defined in <linux/vfio.h>").
VFIO_DEVICE_FEATURE_GET = 1 << 16
VFIO_DEVICE_FEATURE_SET = 1 << 17
VFIO_DEVICE_FEATURE_MIGRATION = 1
VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2

#: vfio-user.rst: the protocol version this client speaks (major 0, minor 1).
PROTOCOL_VERSION = (0, 1)
#: vfio-user.rst: the default max_data_xfer_size when a peer names none.
DEFAULT_MAX_DATA_XFER = 1 << 20
#: The largest reply this client accepts (a bound: a corrupt size never makes it allocate more).
MAX_REPLY = 64 << 20


def errno_name(number: int) -> str:
    """``22`` -> ``"EINVAL"`` (``"E<number>"`` for one Python does not name)."""
    return errno_names.errorcode.get(number, f"E{number}")


def version_payload(max_data_xfer: int = DEFAULT_MAX_DATA_XFER) -> bytes:
    """The client's VFIO_USER_VERSION payload: major, minor, and the JSON
    capabilities (``max_msg_fds`` 0: this client passes no fds;
    ``max_data_xfer_size``; ``migration.pgsize``), NUL-terminated."""
    caps = {"capabilities": {"max_msg_fds": 0, "max_data_xfer_size": max_data_xfer,
                             "migration": {"pgsize": 4096, "max_bitmap_size": 1 << 20}}}
    return VERSION.pack(*PROTOCOL_VERSION) + json.dumps(caps, sort_keys=True).encode() + b"\0"


class ConnectionLost(ConnectionError):
    """The server closed the connection (EOF, reset, broken pipe) or sent
    something that is not a reply to the request; ``request`` names the
    request in flight."""

    def __init__(self, request: str, why: str):
        super().__init__(f"{why} (request {request})")
        self.request = request
        self.why = why


class Connection:
    """One client connection to a vfio-user server's UNIX socket.

    Args:
        sock: a connected ``AF_UNIX`` stream socket (owned: :meth:`close` closes it).
        timeout: seconds one request may wait for its reply (a backstop under
            the pack's own call timeout); expiry raises :class:`ConnectionLost`.
    """

    def __init__(self, sock: socket.socket, timeout: float = 30.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self._next_id = 0
        self.max_data_xfer = DEFAULT_MAX_DATA_XFER
        self.server_version: dict = {}

    def close(self) -> None:
        self.sock.close()

    def request(self, command: str, payload: bytes = b"", what: str = "") -> bytes:
        """Send ``command`` (a key of :data:`COMMANDS`) with ``payload``; the reply's payload.

        Raises:
            DriverError: the server answered with an error reply (its errno's name).
            ConnectionLost: EOF, a reset or broken connection, a timeout, or a
                reply that does not answer this request.
        """
        what = what or command
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF
        header = HEADER.pack(msg_id, COMMANDS[command], HEADER.size + len(payload), 0, 0)
        try:
            self.sock.sendall(header + payload)
            head = self._recv_exact(HEADER.size, what)
            rid, rcmd, size, flags, error = HEADER.unpack(head)
            if size < HEADER.size or size > MAX_REPLY:
                raise ConnectionLost(what, f"the reply's message size {size} is not in {HEADER.size}..{MAX_REPLY}")
            body = self._recv_exact(size - HEADER.size, what)
        except socket.timeout:
            raise ConnectionLost(what, f"no reply within {self.sock.gettimeout():g} s") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionLost(what, f"the connection broke ({exc.strerror or exc})") from None
        if (flags & _TYPE_MASK) != _TYPE_REPLY or rid != msg_id or rcmd != COMMANDS[command]:
            raise ConnectionLost(what, f"expected the reply to message {msg_id} ({command}), got message {rid} "
                                       f"command {_NAMES.get(rcmd, rcmd)} flags {flags:#x}")
        if flags & _F_ERROR:
            raise DriverError(errno_name(error), f"{what}: error reply")
        return body

    def _recv_exact(self, size: int, what: str) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionLost(what, "the server closed the connection" if not data else
                                     f"the server closed the connection after {len(data)} of {size} bytes")
            data += chunk
        return bytes(data)

    # -- the messages ------------------------------------------------------------
    def negotiate(self) -> dict:
        """VFIO_USER_VERSION: offer :func:`version_payload`; keep the server's
        capabilities (its ``max_data_xfer_size`` bounds each data message).

        Raises:
            DriverError, ConnectionLost: as :meth:`request`; DriverError("EPROTO")
                for a reply that is not a version (major 0) with JSON.
        """
        body = self.request("VFIO_USER_VERSION", version_payload(), "VERSION")
        if len(body) < VERSION.size:
            raise DriverError("EPROTO", f"VERSION reply of {len(body)} bytes")
        major, minor = VERSION.unpack_from(body)
        if major != PROTOCOL_VERSION[0]:
            raise DriverError("EPROTO", f"the server speaks vfio-user {major}.{minor}, not {PROTOCOL_VERSION[0]}.x")
        text = body[VERSION.size:].split(b"\0", 1)[0]
        try:
            caps = json.loads(text or b"{}")
        except ValueError:
            raise DriverError("EPROTO", f"the server's VERSION JSON does not parse: {text[:80]!r}") from None
        self.server_version = caps if isinstance(caps, dict) else {}
        server_max = (self.server_version.get("capabilities") or {}).get("max_data_xfer_size")
        if isinstance(server_max, int) and server_max > 0:
            self.max_data_xfer = min(self.max_data_xfer, server_max)
        return self.server_version

    def feature(self, flags: int, data: bytes, reply_size: int, what: str) -> bytes:
        """VFIO_USER_DEVICE_FEATURE with ``flags`` (operation | feature) and
        ``data``; the reply's feature data (``reply_size`` bytes, zero-padded if short)."""
        argsz = FEATURE.size + max(len(data), reply_size)
        body = self.request("VFIO_USER_DEVICE_FEATURE", FEATURE.pack(argsz, flags) + data, what)
        out = body[FEATURE.size:FEATURE.size + reply_size]
        return out + bytes(reply_size - len(out))

    def mig_data_read(self, size: int, what: str) -> bytes:
        """VFIO_USER_MIG_DATA_READ of up to ``size`` bytes (bounded by the
        server's ``max_data_xfer_size``); the data (b"": none)."""
        size = min(size, self.max_data_xfer)
        body = self.request("VFIO_USER_MIG_DATA_READ", MIG_DATA.pack(MIG_DATA.size + size, size), what)
        if len(body) < MIG_DATA.size:
            raise DriverError("EPROTO", f"MIG_DATA_READ reply of {len(body)} bytes")
        _, got = MIG_DATA.unpack_from(body)
        data = body[MIG_DATA.size:MIG_DATA.size + got]
        if got > size or len(data) != got:
            raise DriverError("EPROTO", f"MIG_DATA_READ reply says {got} bytes, carries {len(data)}, asked {size}")
        return data

    def mig_data_write(self, data: bytes, what: str) -> int:
        """VFIO_USER_MIG_DATA_WRITE of ``data`` (at most ``max_data_xfer_size``
        bytes of it); the bytes sent (the server takes all or fails)."""
        data = data[: self.max_data_xfer]
        self.request("VFIO_USER_MIG_DATA_WRITE", MIG_DATA.pack(MIG_DATA.size + len(data), len(data)) + data, what)
        return len(data)
