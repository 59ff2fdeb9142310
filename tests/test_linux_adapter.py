"""The Linux adapter without a VM: its uAPI numbers and layouts against the
6.12 headers (compiled), errno names, and its safety rules against a fake
kernel."""

from __future__ import annotations

import errno
import shutil
import struct
import subprocess

import pytest

from fsmcheck.adapters import vfio_uapi as uapi
from fsmcheck.adapters.contract import DriverError, V2Device
from fsmcheck.adapters.linux import (
    DeviceRefused, LinuxV2Device, OsCalls, Target, errno_name, factory, target_from_env,
)

from .conftest import require_tool


def test_numbers_and_layouts_equal_the_6_12_headers(kernel_tree, tmp_path):
    """A C program built against include/uapi/linux/{vfio,iommufd}.h prints
    every ioctl number, constant, struct size and field offset."""
    require_tool(shutil.which("cc") is not None, "a C compiler", "apt-get install gcc")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <linux/vfio.h>',
             '#include <linux/iommufd.h>', 'int main(void) {']
    for name in list(uapi.IOCTLS) + list(uapi.CONSTANTS):
        lines.append(f'  printf("{name}=%llu\\n", (unsigned long long)({name}));')
    for c_name, s in uapi.STRUCTS.items():
        lines.append(f'  printf("sizeof {c_name}=%zu\\n", sizeof(struct {c_name}));')
        for f in s.fields:
            lines.append(f'  printf("offsetof {c_name}.{f}=%zu\\n", offsetof(struct {c_name}, {f}));')
    lines += ["  return 0;", "}"]
    (tmp_path / "probe.c").write_text("\n".join(lines) + "\n")
    # -D__user=: the exported headers have __user stripped by headers_install; the source tree has not.
    subprocess.run(["cc", "-D__user=", "-I", str(kernel_tree / "include" / "uapi"), "-o", str(tmp_path / "probe"),
                    str(tmp_path / "probe.c")], check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True).stdout
    headers = dict(line.split("=", 1) for line in out.splitlines())
    ours = {name: value for name, value in {**uapi.IOCTLS, **uapi.CONSTANTS}.items()}
    for c_name, s in uapi.STRUCTS.items():
        ours[f"sizeof {c_name}"] = s.size
        ours.update({f"offsetof {c_name}.{f}": off for f, off in s.offsets().items()})
    assert {k: int(v) for k, v in headers.items()} == ours


def test_errno_names():
    assert errno_name(errno.EINVAL) == "EINVAL" and errno_name(errno.ENODEV) == "ENODEV"
    assert errno_name(errno.ENOMSG) == "ENOMSG" and errno_name(4242) == "E4242"


# -- a fake kernel --------------------------------------------------------------
class FakeKernel(OsCalls):
    """Just enough of the group path and the v2 feature ioctls to exercise the
    adapter; records open fds and every request."""

    def __init__(self, *, group_busy=False, viable=True, device_busy=False, state_after_reset=2):
        self.fds, self.next_fd, self.calls = {}, 10, []
        self.group_busy, self.viable, self.device_busy = group_busy, viable, device_busy
        self.state_after_reset, self.state, self.reads = state_after_reset, 2, []

    def _new(self, what):
        fd = self.next_fd
        self.next_fd += 1
        self.fds[fd] = what
        return fd

    def open(self, path):
        if path.startswith("/dev/vfio/") and path != "/dev/vfio/vfio" and self.group_busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        return self._new(path)

    def close(self, fd):
        del self.fds[fd]

    def ioctl(self, fd, request, arg=0):
        name = next(k for k, v in uapi.IOCTLS.items() if v == request)
        self.calls.append(name)
        if name == "VFIO_GROUP_GET_STATUS":
            arg[:] = uapi.group_status.pack(8, uapi.CONSTANTS["VFIO_GROUP_FLAGS_VIABLE"] if self.viable else 0)
        elif name == "VFIO_CHECK_EXTENSION":
            return 1
        elif name == "VFIO_GROUP_GET_DEVICE_FD":
            assert bytes(arg).endswith(b"\0")
            if self.device_busy:
                raise OSError(errno.EBUSY, "busy")
            return self._new("device")
        elif name == "VFIO_DEVICE_RESET":
            self.state = self.state_after_reset
        elif name == "VFIO_DEVICE_FEATURE":
            argsz, flags = uapi.feature_header.unpack_from(arg)
            assert argsz == len(arg)
            feature = flags & uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MASK"]
            if feature == uapi.CONSTANTS["VFIO_DEVICE_FEATURE_MIGRATION"]:
                struct.pack_into("@Q", arg, 8, 7)
            elif flags & uapi.CONSTANTS["VFIO_DEVICE_FEATURE_GET"]:
                uapi.mig_state.pack_into(arg, 8, self.state, -1)
            else:
                requested, _ = uapi.mig_state.unpack_from(arg, 8)
                if requested == 0:
                    raise OSError(errno.EINVAL, "Invalid argument")
                fd = self._new("data") if requested == 3 else -1
                self.state = requested
                uapi.mig_state.pack_into(arg, 8, requested, fd)
        return 0

    def read(self, fd, size):
        self.reads.append(fd)
        if self.fds.get(fd) != "data":
            raise OSError(errno.EBADF, "bad fd")
        return b""


TARGET = Target(group="/dev/vfio/7", device="83b8f4f2-509f-382f-3c1e-e6bfe0fa1001")


def test_opens_resets_and_leaves_everything_closed_and_running():
    kernel = FakeKernel()
    device = LinuxV2Device(TARGET, kernel)
    assert isinstance(device, V2Device)
    assert kernel.calls[:6] == ["VFIO_GET_API_VERSION", "VFIO_GROUP_GET_STATUS", "VFIO_GROUP_SET_CONTAINER",
                                "VFIO_CHECK_EXTENSION", "VFIO_SET_IOMMU", "VFIO_GROUP_GET_DEVICE_FD"]
    assert kernel.calls[6] == "VFIO_DEVICE_RESET"  # reset before the first test step
    assert device.migration_flags() == 7
    assert device.set_state(1) is None
    handle = device.set_state(3)
    assert handle is not None and device.read(handle, 16) == b""
    with pytest.raises(DriverError) as caught:
        device.set_state(0)
    assert caught.value.errno == "EINVAL"
    device.close()
    assert kernel.calls[-2:] == ["VFIO_DEVICE_RESET", "VFIO_DEVICE_FEATURE"]  # reset, then GET: RUNNING
    assert kernel.state == 2 and kernel.fds == {}


def test_io_only_on_its_own_data_fds():
    kernel = FakeKernel()
    device = LinuxV2Device(TARGET, kernel)
    with pytest.raises(DriverError) as caught:
        device.read(0, 16)  # stdin: not a data_fd of this device
    assert caught.value.errno == "EBADF" and kernel.reads == []
    device.close()


@pytest.mark.parametrize("kernel, reason", [
    (FakeKernel(group_busy=True), "in use (EBUSY)"),
    (FakeKernel(device_busy=True), "in use (EBUSY)"),
    (FakeKernel(viable=False), "not viable"),
    (FakeKernel(state_after_reset=1), "not RUNNING"),
])
def test_refuses_and_closes_what_it_opened(kernel, reason):
    with pytest.raises(DeviceRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        LinuxV2Device(TARGET, kernel)
    assert kernel.fds == {}


def test_runs_only_on_a_device_named_explicitly():
    with pytest.raises(DeviceRefused, match="FSMCHECK_VFIO_GROUP"):
        target_from_env({})
    with pytest.raises(DeviceRefused, match="FSMCHECK_VFIO_GROUP"):
        target_from_env({"FSMCHECK_VFIO_GROUP": "7"})  # half a name
    with pytest.raises(DeviceRefused, match="not both"):
        target_from_env({"FSMCHECK_VFIO_CDEV": "/dev/vfio/devices/vfio0", "FSMCHECK_VFIO_GROUP": "7",
                         "FSMCHECK_VFIO_DEVICE": "x"})
    assert target_from_env({"FSMCHECK_VFIO_GROUP": "7", "FSMCHECK_VFIO_DEVICE": "x"}) == \
        Target(group="/dev/vfio/7", device="x")
    assert factory("v1") is None


def test_struct_packing_of_a_set_request():
    body = uapi.mig_state.pack(3, -1)
    header = uapi.feature_header.pack(uapi.feature_header.size + len(body),
                                      uapi.CONSTANTS["VFIO_DEVICE_FEATURE_SET"] | 2)
    assert header + body == struct.pack("=IIIi", 16, (1 << 17) | 2, 3, -1)
