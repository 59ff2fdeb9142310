"""The Linux adapter: a real VFIO device through real ioctls.

``pytest generated_tests --fsmcheck-adapter=fsmcheck.adapters.linux:factory``
runs a conformance pack against the device named in the environment:

``FSMCHECK_VFIO_GROUP`` and ``FSMCHECK_VFIO_DEVICE``
    the legacy container/group path: the group (``/dev/vfio/12`` or ``12``)
    and the device's name in it (an mdev UUID, a PCI address ``0000:01:00.0``).
    Opening: ``/dev/vfio/vfio`` (``VFIO_GET_API_VERSION``), the group
    (``VFIO_GROUP_GET_STATUS``: viable), ``VFIO_GROUP_SET_CONTAINER``,
    ``VFIO_SET_IOMMU`` type1v2 (or type1), ``VFIO_GROUP_GET_DEVICE_FD``.
``FSMCHECK_VFIO_CDEV``
    the cdev + iommufd path (kernels with ``CONFIG_VFIO_DEVICE_CDEV`` and
    ``CONFIG_IOMMUFD``): ``/dev/vfio/devices/vfioN``, ``/dev/iommu``,
    ``VFIO_DEVICE_BIND_IOMMUFD``, ``IOMMU_IOAS_ALLOC``,
    ``VFIO_DEVICE_ATTACH_IOMMUFD_PT``.

or, for a fleet, by the pack's ``--fsmcheck-device`` (repeatable) or
``--fsmcheck-devices FILE`` (:func:`target_from_spec`: ``GROUP:NAME`` such as
``/dev/vfio/12:0000:01:00.0`` or ``12:UUID``, or a cdev path
``/dev/vfio/devices/vfio0``); with pytest-xdist ``-n N`` each worker drives
one of them. The environment names one device, so it is refused when
several xdist workers would share it.

The device (:class:`LinuxV2Device`) implements the v2 adapter contract
(:mod:`fsmcheck.adapters.contract`) with ``VFIO_DEVICE_FEATURE``: GET
``MIGRATION`` (flags), GET/SET ``MIG_DEVICE_STATE`` (``{u32 device_state;
s32 data_fd}``), GET ``MIG_DATA_SIZE``; ``VFIO_DEVICE_RESET``; and on a data
fd ``read``/``write`` and ``VFIO_MIG_GET_PRECOPY_INFO``. Data-session
handles are the real ``data_fd`` numbers; they stay open until the device is
closed, so a number is never reused while the device is open.

Safety, because this touches a real device:

* it runs only on a device named explicitly (no default, no discovery);
* it refuses a device that is in use: the kernel's ``EBUSY`` on opening the
  group or the device fd, or a group that is not viable, raises
  :class:`DeviceRefused`, nothing is changed;
* it resets the device when it opens it and again when it closes it, and
  checks that the device is ``RUNNING`` afterwards (raising
  :class:`DeviceRefused` at open if not);
* it closes every fd it opened (data fds, device, group, container), also
  when a step fails half-way;
* I/O is only done on data fds this device got from the kernel; any other
  handle fails with ``EBADF`` without touching the fd.

Errors from the kernel arrive as :class:`~fsmcheck.adapters.contract.DriverError`
with the errno name (``EINVAL``, ``ENODEV``, ``ENOMSG``...).
"""

from __future__ import annotations

import errno as errno_names
import fcntl
import os
import struct
from dataclasses import dataclass, field
from typing import Callable

from . import vfio_uapi as uapi
from .contract import DriverError

__all__ = ["DeviceRefused", "LinuxV2Adapter", "LinuxV2Device", "OsCalls", "Target", "factory", "target_from_env",
           "target_from_spec"]

RUNNING = 2  # enum vfio_device_mig_state: VFIO_DEVICE_STATE_RUNNING


class DeviceRefused(RuntimeError):
    """The adapter will not drive this device (not named, in use, not
    viable, not RUNNING after reset), or the uAPI calls to open it failed."""


def errno_name(number: int) -> str:
    """``22`` -> ``"EINVAL"`` (``"E<number>"`` for a number Python does not name)."""
    return errno_names.errorcode.get(number, f"E{number}")


@dataclass(frozen=True)
class Target:
    """The device to drive: ``group`` + ``device`` (group path) or ``cdev``."""

    group: str | None = None
    device: str | None = None
    cdev: str | None = None

    def describe(self) -> str:
        return f"cdev {self.cdev}" if self.cdev else f"group {self.group} device {self.device}"


def target_from_env(env=os.environ) -> Target:
    """The :class:`Target` named by ``FSMCHECK_VFIO_GROUP`` + ``FSMCHECK_VFIO_DEVICE``
    or by ``FSMCHECK_VFIO_CDEV``.

    Raises:
        DeviceRefused: neither is set, or only half of the group pair.
    """
    cdev, group, device = (env.get(k) or None for k in ("FSMCHECK_VFIO_CDEV", "FSMCHECK_VFIO_GROUP",
                                                         "FSMCHECK_VFIO_DEVICE"))
    if cdev and (group or device):
        raise DeviceRefused("name one device: FSMCHECK_VFIO_CDEV, or FSMCHECK_VFIO_GROUP with "
                            "FSMCHECK_VFIO_DEVICE, not both")
    if cdev:
        return Target(cdev=cdev)
    if group and device:
        return Target(group=group if group.startswith("/") else f"/dev/vfio/{group}", device=device)
    raise DeviceRefused("no device named: the Linux adapter drives only a device named explicitly; set "
                        "FSMCHECK_VFIO_GROUP (e.g. /dev/vfio/12) and FSMCHECK_VFIO_DEVICE (its name, e.g. "
                        "an mdev UUID), or FSMCHECK_VFIO_CDEV (/dev/vfio/devices/vfioN)")


def target_from_spec(spec: str) -> Target:
    """The :class:`Target` of one ``--fsmcheck-device`` entry: ``GROUP:NAME``
    (the group path or number, then the device's name in it, split at the
    first ``:``: ``/dev/vfio/12:0000:01:00.0``, ``12:UUID``) or a cdev path
    (``/dev/vfio/devices/vfioN``, no ``:``).

    Raises:
        DeviceRefused: ``spec`` is neither.
    """
    text = spec.strip()
    group, sep, device = text.partition(":")
    if sep:
        if not group or not device:
            raise DeviceRefused(f"device {spec!r}: expected GROUP:NAME (e.g. /dev/vfio/12:0000:01:00.0) "
                                "or a cdev path (/dev/vfio/devices/vfioN)")
        return Target(group=group if group.startswith("/") else f"/dev/vfio/{group}", device=device)
    if not text.startswith("/"):
        raise DeviceRefused(f"device {spec!r}: expected GROUP:NAME (e.g. /dev/vfio/12:0000:01:00.0) "
                            "or a cdev path (/dev/vfio/devices/vfioN)")
    return Target(cdev=text)


class OsCalls:
    """The system calls the adapter makes; tests replace it with a fake kernel."""

    def open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def close(self, fd: int) -> None:
        os.close(fd)

    def ioctl(self, fd: int, request: int, arg=0):
        """``ioctl(fd, request, arg)``: ``arg`` an int, or a bytearray the kernel
        may fill; returns the ioctl's int result."""
        return fcntl.ioctl(fd, request, arg, True) if isinstance(arg, bytearray) else fcntl.ioctl(fd, request, arg)

    def read(self, fd: int, size: int) -> bytes:
        return os.read(fd, size)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)


@dataclass
class _Fds:
    """Every fd this device opened, closed in reverse order by :meth:`close_all`."""

    calls: OsCalls
    opened: list = field(default_factory=list)

    def add(self, fd: int) -> int:
        self.opened.append(fd)
        return fd

    def close_all(self) -> None:
        while self.opened:
            fd = self.opened.pop()
            try:
                self.calls.close(fd)
            except OSError:
                pass


def _kernel(call: Callable, *args):
    """Run a system call; an OSError becomes DriverError(errno name)."""
    try:
        return call(*args)
    except OSError as exc:
        raise DriverError(errno_name(exc.errno), exc.strerror or "") from None


class LinuxV2Device:
    """One opened VFIO device (see the module docstring); the v2 device contract."""

    def __init__(self, target: Target, calls: OsCalls | None = None):
        self.target = target
        self.calls = calls or OsCalls()
        self._fds = _Fds(self.calls)
        self._data_fds: set[int] = set()
        self.fd = -1
        try:
            self.fd = self._open_cdev() if target.cdev else self._open_group()
            self.reset()
            state = self.get_state()
            if state != RUNNING:
                raise DeviceRefused(f"{target.describe()}: device_state is {state} after VFIO_DEVICE_RESET, "
                                    f"not RUNNING ({RUNNING})")
        except DriverError as exc:
            self._fds.close_all()
            raise DeviceRefused(f"{target.describe()}: opening failed with {exc.errno}: {exc.message}") from None
        except BaseException:
            self._fds.close_all()
            raise

    # -- opening -------------------------------------------------------------
    def _open_path(self, path: str, what: str) -> int:
        try:
            return self._fds.add(self.calls.open(path))
        except OSError as exc:
            if exc.errno == errno_names.EBUSY:
                raise DeviceRefused(f"{self.target.describe()}: {what} {path} is in use (EBUSY); "
                                    "the adapter refuses a device another process holds") from None
            raise DeviceRefused(f"{self.target.describe()}: cannot open {what} {path}: "
                                f"{errno_name(exc.errno)} ({exc.strerror})") from None

    def _open_group(self) -> int:
        container = self._open_path("/dev/vfio/vfio", "the VFIO container")
        version = _kernel(self.calls.ioctl, container, uapi.IOCTLS["VFIO_GET_API_VERSION"], 0)
        if version != uapi.CONSTANTS["VFIO_API_VERSION"]:
            raise DeviceRefused(f"VFIO API version {version}, expected {uapi.CONSTANTS['VFIO_API_VERSION']}")
        group = self._open_path(self.target.group, "the group")
        status = bytearray(uapi.group_status.pack(uapi.group_status.size, 0))
        _kernel(self.calls.ioctl, group, uapi.IOCTLS["VFIO_GROUP_GET_STATUS"], status)
        _, flags = uapi.group_status.unpack(status)
        if not flags & uapi.CONSTANTS["VFIO_GROUP_FLAGS_VIABLE"]:
            raise DeviceRefused(f"{self.target.describe()}: the group is not viable (a device in it is "
                                "bound to a non-VFIO driver)")
        if flags & uapi.CONSTANTS["VFIO_GROUP_FLAGS_CONTAINER_SET"]:
            raise DeviceRefused(f"{self.target.describe()}: the group is already in a container (in use)")
        _kernel(self.calls.ioctl, group, uapi.IOCTLS["VFIO_GROUP_SET_CONTAINER"],
                bytearray(struct.pack("@i", container)))
        for kind in ("VFIO_TYPE1v2_IOMMU", "VFIO_TYPE1_IOMMU"):
            if _kernel(self.calls.ioctl, container, uapi.IOCTLS["VFIO_CHECK_EXTENSION"], uapi.CONSTANTS[kind]):
                _kernel(self.calls.ioctl, container, uapi.IOCTLS["VFIO_SET_IOMMU"], uapi.CONSTANTS[kind])
                break
        else:
            raise DeviceRefused("the container offers no type1 IOMMU")
        name = bytearray(self.target.device.encode() + b"\0")
        try:
            fd = self.calls.ioctl(group, uapi.IOCTLS["VFIO_GROUP_GET_DEVICE_FD"], name)
        except OSError as exc:
            if exc.errno == errno_names.EBUSY:
                raise DeviceRefused(f"{self.target.describe()}: the device is in use (EBUSY)") from None
            raise DeviceRefused(f"{self.target.describe()}: VFIO_GROUP_GET_DEVICE_FD failed with "
                                f"{errno_name(exc.errno)}") from None
        return self._fds.add(fd)

    def _open_cdev(self) -> int:
        device = self._open_path(self.target.cdev, "the device")
        iommufd = self._open_path("/dev/iommu", "iommufd")
        bind = bytearray(uapi.bind_iommufd.pack(uapi.bind_iommufd.size, 0, iommufd, 0))
        try:
            self.calls.ioctl(device, uapi.IOCTLS["VFIO_DEVICE_BIND_IOMMUFD"], bind)
        except OSError as exc:
            if exc.errno == errno_names.EBUSY:
                raise DeviceRefused(f"{self.target.describe()}: the device is in use (EBUSY)") from None
            raise DriverError(errno_name(exc.errno), "VFIO_DEVICE_BIND_IOMMUFD") from None
        ioas = bytearray(uapi.ioas_alloc.pack(uapi.ioas_alloc.size, 0, 0))
        _kernel(self.calls.ioctl, iommufd, uapi.IOCTLS["IOMMU_IOAS_ALLOC"], ioas)
        ioas_id = uapi.ioas_alloc.unpack(ioas)[2]
        attach = bytearray(uapi.attach_iommufd_pt.pack(uapi.attach_iommufd_pt.size, 0, ioas_id))
        _kernel(self.calls.ioctl, device, uapi.IOCTLS["VFIO_DEVICE_ATTACH_IOMMUFD_PT"], attach)
        return device

    # -- VFIO_DEVICE_FEATURE -----------------------------------------------------
    def _feature(self, feature: int, direction: str, payload) -> bytearray:
        flags = uapi.CONSTANTS[f"VFIO_DEVICE_FEATURE_{direction}"] | feature
        body = payload.pack(*([0] * len(payload.fields))) if isinstance(payload, uapi.Struct) else payload
        buf = bytearray(uapi.feature_header.pack(uapi.feature_header.size + len(body), flags) + body)
        _kernel(self.calls.ioctl, self.fd, uapi.IOCTLS["VFIO_DEVICE_FEATURE"], buf)
        return buf[uapi.feature_header.size:]

    def migration_flags(self) -> int:
        """VFIO_DEVICE_FEATURE GET MIGRATION: the ``VFIO_MIGRATION_*`` flags."""
        data = self._feature(uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MIGRATION"], "GET", uapi.migration)
        return uapi.migration.unpack(data)[0]

    def get_state(self) -> int:
        """VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE: ``device_state``."""
        data = self._feature(uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"], "GET", uapi.mig_state)
        return uapi.mig_state.unpack(data)[0]

    def set_state(self, state: int) -> int | None:
        """VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE: the new ``data_fd``, or None."""
        body = uapi.mig_state.pack(state & 0xFFFFFFFF, -1)
        data = self._feature(uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"], "SET", body)
        fd = uapi.mig_state.unpack(data)[1]
        if fd < 0:
            return None
        self._data_fds.add(self._fds.add(fd))
        return fd

    def stop_copy_size(self) -> int:
        """VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE: ``stop_copy_length`` in bytes."""
        data = self._feature(uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MIG_DATA_SIZE"], "GET", uapi.mig_data_size)
        return uapi.mig_data_size.unpack(data)[0]

    def reset(self) -> None:
        """VFIO_DEVICE_RESET."""
        _kernel(self.calls.ioctl, self.fd, uapi.IOCTLS["VFIO_DEVICE_RESET"], 0)

    # -- data fds ----------------------------------------------------------------
    def _own(self, handle: int) -> int:
        if handle not in self._data_fds:
            raise DriverError("EBADF", f"{handle} is not a data_fd of this device")
        return handle

    def read(self, handle: int, size: int) -> bytes:
        """read() on a data fd (b"" = end of stream)."""
        return _kernel(self.calls.read, self._own(handle), size)

    def write(self, handle: int, data: bytes) -> int:
        """write() on a data fd: bytes accepted."""
        return _kernel(self.calls.write, self._own(handle), data)

    def precopy_info(self, handle: int) -> tuple[int, int]:
        """VFIO_MIG_GET_PRECOPY_INFO on a data fd: ``(initial_bytes, dirty_bytes)``."""
        buf = bytearray(uapi.precopy_info.pack(uapi.precopy_info.size, 0, 0, 0))
        _kernel(self.calls.ioctl, self._own(handle), uapi.IOCTLS["VFIO_MIG_GET_PRECOPY_INFO"], buf)
        _, _, initial, dirty = uapi.precopy_info.unpack(buf)
        return initial, dirty

    def close_handle(self, handle: int) -> None:
        """close() a data fd."""
        self._own(handle)
        self._data_fds.discard(handle)
        self._fds.opened.remove(handle)
        _kernel(self.calls.close, handle)

    def close(self) -> None:
        """Reset the device (back to RUNNING) and close every fd it opened.

        Raises:
            DriverError: the reset failed or the device is not RUNNING after
                it; the fds are closed anyway.
        """
        try:
            if self.fd >= 0:
                self.reset()
                state = self.get_state()
                if state != RUNNING:
                    raise DriverError("EIO", f"device_state {state} after the closing reset, not RUNNING")
        finally:
            self._data_fds.clear()
            self._fds.close_all()
            self.fd = -1


class LinuxV2Adapter:
    """Opens the named device, afresh for each test."""

    def __init__(self, target: Target, calls: OsCalls | None = None):
        self.target = target
        self.calls = calls

    def open(self, flags: int) -> LinuxV2Device:
        """The device (``flags`` is ignored: a real device has its own; suites for
        other flag sets skip)."""
        return LinuxV2Device(self.target, self.calls)


def factory(protocol: str, device: str | None = None, env=os.environ):
    """The adapter factory: ``"v2"`` -> :class:`LinuxV2Adapter` for ``device``
    (a ``--fsmcheck-device`` entry, :func:`target_from_spec`) or else for the
    device named in ``env``; None for other protocols. Opens nothing.

    Raises:
        DeviceRefused: no device is named (see :func:`target_from_env`), the
            entry is malformed, or ``env`` names the device while several
            pytest-xdist workers run (``PYTEST_XDIST_WORKER_COUNT`` > 1): they
            would all drive it.
    """
    if protocol != "v2":
        return None
    if device is not None:
        return LinuxV2Adapter(target_from_spec(device))
    workers = env.get("PYTEST_XDIST_WORKER_COUNT", "")
    if workers.isdigit() and int(workers) > 1:
        raise DeviceRefused(f"{workers} xdist workers and one device named in FSMCHECK_VFIO_*: they would all "
                            "drive it; name one device per worker with --fsmcheck-device (or --fsmcheck-devices FILE)")
    return LinuxV2Adapter(target_from_env(env))
