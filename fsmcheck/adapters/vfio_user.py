"""The vfio-user adapter: a device served over a UNIX socket by a vfio-user
server (libvfio-user's, or anyone's), driven through the protocol itself.

``pytest PACK --fsmcheck-adapter=fsmcheck.adapters.vfio_user:factory`` with
``FSMCHECK_VFIO_USER_SERVER='CMD ARGS {socket}'`` (what ``fsmcheck run-pack
--vfio-user-server`` sets) runs the v2 pack against servers started from that
template: every device the pack opens is a fresh server process and socket
(:mod:`fsmcheck.adapters.vfio_user_server`), stopped and its socket removed
when the device is closed.

The v2 device contract (:mod:`fsmcheck.adapters.contract`) over the protocol
(QEMU ``docs/interop/vfio-user.rst``; :mod:`fsmcheck.adapters.vfio_user_wire`):

* open: ``VFIO_USER_VERSION`` (JSON capabilities: ``max_data_xfer_size``,
  ``migration``);
* ``migration_flags``: ``VFIO_USER_DEVICE_FEATURE`` GET ``MIGRATION``;
* ``get_state``/``set_state``: ``VFIO_USER_DEVICE_FEATURE`` GET/SET
  ``MIG_DEVICE_STATE``;
* ``read``/``write``: ``VFIO_USER_MIG_DATA_READ``/``_WRITE`` (the data
  session); end of data is an empty reply;
* ``reset``: ``VFIO_USER_DEVICE_RESET``.

What the transport cannot show is declared in :data:`TRANSPORT_LIMITS`
(:class:`~fsmcheck.adapters.contract.TransportLimit`): vfio-user has no
data_fd -- the session is the server's migration state, so the handles this
adapter gives are its own numbering of sessions, started where the model's
session groups say a SET starts one (a GET before each SET gives the state
it starts from); a handle keeps the direction of its session (reading a
resuming handle or writing a saving one is ``EBADF``, as on an fd opened for
the other direction) and otherwise its I/O goes to the server, whose
allowed-state rules for MIG_DATA_READ/WRITE stand in for a disabled fd.
There is no ``VFIO_MIG_GET_PRECOPY_INFO`` message, so the device has no
``precopy_info``.

A server that dies or closes the connection is reported as
:class:`DeviceCrashed` ("device crashed: SIGABRT, last request SET STOP ...",
with its stderr tail): the pack reports that as an adapter error, never as a
state-machine verdict, and later calls on that device fail the same way at once.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import tempfile
import weakref
from functools import lru_cache

from ..model import load_model
from ..model.shipped import shipped_model_path
from ..semantics.sessions import expected_effect
from .contract import DriverError, TransportLimit
from .vfio_user_server import ServerError, ServerProcess, TemplateError, parse_template
from .vfio_user_wire import (VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                             VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_SET, Connection, ConnectionLost)

__all__ = ["DeviceCrashed", "ENV", "TRANSPORT_LIMITS", "VfioUserAdapter", "VfioUserDevice", "factory", "probe"]

#: The environment variable the factory reads the server template from.
ENV = "FSMCHECK_VFIO_USER_SERVER"
#: Optional: a file to which one line is appended per server started (measurements).
TALLY = "FSMCHECK_VFU_TALLY"

_NO_FD = ("vfio-user has no data_fd: a data session is the server's migration state, and the adapter numbers "
          "sessions itself from the state change (the model's session groups), so a returned, fresh or "
          "missing handle is not the device's answer")
_NO_PRECOPY_INFO = "vfio-user has no VFIO_MIG_GET_PRECOPY_INFO message"
#: What the vfio-user transport cannot show (see the module docstring).
TRANSPORT_LIMITS = (
    TransportLimit("handle-new", _NO_FD),
    TransportLimit("handle-none", _NO_FD),
    TransportLimit("handle-fresh", _NO_FD + "; a superseded session cannot be addressed"),
    TransportLimit("handle-fd", _NO_FD),
    TransportLimit("open-ended-errno", "no fd is rendered inoperable: outside its session's states "
                                       "MIG_DATA_READ/WRITE are refused by the protocol's allowed-state rules "
                                       "(an error reply), which stand in for the disabled fd"),
    TransportLimit("precopy-info", _NO_PRECOPY_INFO),
    TransportLimit("precopy-decrease", _NO_PRECOPY_INFO),
    TransportLimit("precopy-enomsg", _NO_PRECOPY_INFO + "; the temporary end of pre-copy data is an empty "
                                                        "MIG_DATA_READ reply"),
    TransportLimit("precopy-einval", _NO_PRECOPY_INFO),
)

_STATE_DATA = struct.Struct("<II")   # vfio_user_device_feature_mig_state: device_state, data_fd (unused)
_FLAGS_DATA = struct.Struct("<Q")    # vfio_user_device_feature_migration: flags


class DeviceCrashed(RuntimeError):
    """The server died or dropped the connection: ``how`` (a signal name, an
    exit status, "closed the connection"), ``request`` (the request in
    flight), ``stderr`` (its tail)."""

    def __init__(self, how: str, request: str, stderr: str = ""):
        super().__init__(f"device crashed: {how}, last request {request}" + (f"; stderr: {stderr}" if stderr else ""))
        self.how, self.request, self.stderr = how, request, stderr


@lru_cache(maxsize=None)
def _model():
    return load_model(shipped_model_path("vfio_v2"))


class VfioUserDevice:
    """One server process and its connection (see the module docstring).

    Raises (at construction):
        ServerError: the server did not start or refused the VERSION handshake.
    """

    def __init__(self, argv: list[str], directory: str, name: str, start_timeout: float = 5.0,
                 call_timeout: float = 30.0):
        self.server = ServerProcess(argv, directory, name, start_timeout)
        self.conn = Connection(self.server.sock, call_timeout)
        self._crashed: DeviceCrashed | None = None
        self._known: int | None = None        # device_state as last seen (GET, or a SET that succeeded)
        self._handles: dict[int, str] = {}    # handle -> direction ("read"/"write"), while not closed
        self._numbers = itertools.count(3)    # like fds: small, never reused
        model = _model()
        self._names = {s.value: s.name for s in model.states}
        try:
            self._send("VERSION", self.conn.negotiate)
        except (DeviceCrashed, DriverError) as exc:
            self.server.stop()
            raise ServerError(f"the VERSION handshake failed: {exc}") from None

    # -- requests ----------------------------------------------------------------
    def _send(self, what: str, fn, *args):
        if self._crashed is not None:
            raise DeviceCrashed(self._crashed.how, f"{self._crashed.request} (then {what} was not sent)",
                                self._crashed.stderr)
        try:
            return fn(*args)
        except ConnectionLost as exc:
            how = self.server.died() or f"the server {exc.why}"
            self._crashed = DeviceCrashed(how, what, self.server.stderr_tail())
            raise self._crashed from None

    def _name(self, value: int) -> str:
        return self._names.get(value, str(value))

    def migration_flags(self) -> int:
        """VFIO_USER_DEVICE_FEATURE GET MIGRATION: the ``VFIO_MIGRATION_*`` flags."""
        data = self._send("DEVICE_FEATURE GET MIGRATION", self.conn.feature,
                          VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, b"", _FLAGS_DATA.size,
                          "DEVICE_FEATURE GET MIGRATION")
        return _FLAGS_DATA.unpack(data)[0]

    def get_state(self) -> int:
        """VFIO_USER_DEVICE_FEATURE GET MIG_DEVICE_STATE: ``device_state``."""
        data = self._send("GET", self.conn.feature, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                          b"", _STATE_DATA.size, "DEVICE_FEATURE GET MIG_DEVICE_STATE")
        self._known = _STATE_DATA.unpack(data)[0]
        return self._known

    def set_state(self, state: int) -> int | None:
        """VFIO_USER_DEVICE_FEATURE SET MIG_DEVICE_STATE ``state``: a new handle
        when the model says the move starts a session, else None. The state it
        starts from is the last GET's or successful SET's; after a failed SET
        or a reset a GET is sent first.

        Raises:
            DriverError: the error reply's errno (EINVAL: refused).
            DeviceCrashed: the server died.
        """
        before = self._known if self._known is not None else self.get_state()
        what = f"SET {self._name(state)}"
        self._known = None
        self._send(what, self.conn.feature, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                   _STATE_DATA.pack(state & 0xFFFFFFFF, 0xFFFFFFFF), _STATE_DATA.size,
                   f"DEVICE_FEATURE SET MIG_DEVICE_STATE {self._name(state)}")
        self._known = state
        src, dst = self._names.get(before), self._names.get(state)
        if src is None or dst is None or src == dst:
            return None
        if expected_effect(_model(), src, dst) not in ("starts", "ends+starts"):
            return None
        model = _model()
        handle = next(self._numbers)
        self._handles[handle] = model.session_directions.get(model.group_of(dst, model.session_groups), "read")
        return handle

    def reset(self) -> None:
        """VFIO_USER_DEVICE_RESET."""
        self._known = None
        self._send("RESET", self.conn.request, "VFIO_USER_DEVICE_RESET", b"", "DEVICE_RESET")

    # -- the data session ----------------------------------------------------------
    def _own(self, handle: int, direction: str) -> None:
        if self._handles.get(handle) != direction:
            raise DriverError("EBADF", f"{handle} is not an open {direction} handle of this device")

    def read(self, handle: int, size: int) -> bytes:
        """VFIO_USER_MIG_DATA_READ: up to ``size`` bytes (b"": end of data)."""
        self._own(handle, "read")
        return self._send(f"read({handle})", self.conn.mig_data_read, size, f"MIG_DATA_READ {size}")

    def write(self, handle: int, data: bytes) -> int:
        """VFIO_USER_MIG_DATA_WRITE: the bytes accepted (the server takes a
        message whole or fails it; one message carries at most
        ``max_data_xfer_size`` bytes)."""
        self._own(handle, "write")
        if not data:
            return 0
        return self._send(f"write({handle})", self.conn.mig_data_write, data, f"MIG_DATA_WRITE {len(data)}")

    def close_handle(self, handle: int) -> None:
        """Forget ``handle`` (nothing is sent: there is no fd to close)."""
        if self._handles.pop(handle, None) is None:
            raise DriverError("EBADF", f"{handle} is not an open handle of this device")

    def close(self) -> None:
        """Stop the server and remove its socket (see ServerProcess.stop)."""
        self._handles.clear()
        self.server.stop()


class _OtherFlags:
    """What :meth:`VfioUserAdapter.open` gives a suite for other migration
    flags than the server's: the flags a server of this template reported,
    and no server (the suite reads them and skips). Any other call raises."""

    def __init__(self, flags: int):
        self.flags = flags

    def migration_flags(self) -> int:
        return self.flags

    def _refuse(self, *args):
        raise RuntimeError(f"no server was started for a suite of other migration flags "
                           f"(the server's are {self.flags:#x})")

    get_state = set_state = reset = read = write = close_handle = _refuse

    def close(self) -> None:
        pass


class VfioUserAdapter:
    """Opens each device as a fresh server from ``argv`` (one at a time, in
    a private socket directory removed by :meth:`close` or at exit).

    A server's migration flags are a property of the server program: the
    first device's answer is kept, and a suite for other flags gets no server
    (:class:`_OtherFlags`, which answers that value so the suite skips) --
    the pack's four suites would otherwise start three servers per test
    only to skip.

    Args:
        argv: the template's arguments (:func:`~fsmcheck.adapters.vfio_user_server.parse_template`).
        start_timeout: seconds a server may take to accept on its socket.
    """

    transport_limits = TRANSPORT_LIMITS

    def __init__(self, argv: list[str], start_timeout: float = 5.0):
        self.argv = argv
        self.start_timeout = start_timeout
        self.directory = tempfile.mkdtemp(prefix="fsmcheck-vfu-")
        self.opened = 0
        self.flags: int | None = None
        self._remove = weakref.finalize(self, shutil.rmtree, self.directory, True)  # also at exit

    def open(self, flags: int):
        """A fresh device (a server has its own flags; suites for other flag
        sets skip: see the class docstring).

        Raises:
            ServerError: the server did not start.
        """
        if self.flags is not None and flags != self.flags:
            return _OtherFlags(self.flags)
        self.opened += 1
        device = VfioUserDevice(self.argv, self.directory, f"dev{self.opened}.sock", self.start_timeout)
        tally = os.environ.get(TALLY)
        if tally:  # measurements (make vfio-user-e2e): one line per server started
            try:
                with open(tally, "a", encoding="ascii") as f:
                    f.write(f"{device.server.pid}\n")
            except OSError:
                pass
        if self.flags is None:
            try:
                self.flags = device.migration_flags()
            except (DeviceCrashed, DriverError):
                pass  # the suite's own migration_flags call reports it
        return device

    def close(self) -> None:
        """Remove the socket directory (devices are stopped when closed)."""
        self._remove()


def probe(template: str, start_timeout: float = 5.0) -> int:
    """Start one server from ``template``, shake hands, read its migration
    flags, stop it: the check ``run-pack`` makes before any test runs.

    Returns:
        the device's migration flags.

    Raises:
        TemplateError: the template is unusable; ServerError: the server did not
        start, or crashed on the first requests.
    """
    adapter = VfioUserAdapter(parse_template(template), start_timeout)
    try:
        device = adapter.open(0)
        try:
            return device.migration_flags()
        except (DeviceCrashed, DriverError) as exc:
            raise ServerError(f"DEVICE_FEATURE GET MIGRATION: {exc}") from None
        finally:
            device.close()
    finally:
        adapter.close()


def factory(protocol: str, device: str | None = None, env=os.environ):
    """The adapter factory: ``"v2"`` -> :class:`VfioUserAdapter` for the
    template ``device`` (a ``--fsmcheck-device`` entry) or else ``env[ENV]``;
    None for other protocols. Starts nothing.

    Raises:
        TemplateError: no template is named, or it is unusable.
    """
    if protocol != "v2":
        return None
    template = device if device is not None else env.get(ENV)
    if not template:
        raise TemplateError(f"no vfio-user server named: set {ENV}='CMD ARGS {{socket}}'")
    return VfioUserAdapter(parse_template(template))
