"""The VFIO uAPI as Python: ioctl numbers, constants and struct layouts.

Written from ``include/uapi/linux/vfio.h`` and ``include/uapi/linux/iommufd.h``
of Linux 6.12 (Debian's linux-source-6.12); the tests compile a C program
against those headers and compare every value and layout here with what the
compiler says (``tests/test_linux_adapter.py``).

Every VFIO ioctl is ``_IO(VFIO_TYPE, VFIO_BASE + n)``: no direction or size
bits, the argument is a pointer (or a plain int for ``VFIO_CHECK_EXTENSION``
and ``VFIO_SET_IOMMU``) and the structure's own ``argsz`` says its size.
Structs are packed with :mod:`struct` in native byte order; each ``Struct``
below lists its C fields in order.
"""

from __future__ import annotations

import struct

__all__ = [
    "IOCTLS", "CONSTANTS", "STRUCTS", "io",
    "feature_header", "mig_state", "migration", "mig_data_size", "precopy_info", "group_status",
    "bind_iommufd", "attach_iommufd_pt", "ioas_alloc",
]


def io(type_char: str, nr: int) -> int:
    """``_IO(type, nr)`` of ``include/uapi/asm-generic/ioctl.h``: direction
    and size 0, so ``(type << 8) | nr``."""
    return (ord(type_char) << 8) | nr


VFIO_TYPE, VFIO_BASE = ";", 100
IOMMUFD_TYPE = ";"

#: ioctl request numbers (vfio.h, iommufd.h).
IOCTLS = {
    "VFIO_GET_API_VERSION": io(VFIO_TYPE, VFIO_BASE + 0),
    "VFIO_CHECK_EXTENSION": io(VFIO_TYPE, VFIO_BASE + 1),
    "VFIO_SET_IOMMU": io(VFIO_TYPE, VFIO_BASE + 2),
    "VFIO_GROUP_GET_STATUS": io(VFIO_TYPE, VFIO_BASE + 3),
    "VFIO_GROUP_SET_CONTAINER": io(VFIO_TYPE, VFIO_BASE + 4),
    "VFIO_GROUP_UNSET_CONTAINER": io(VFIO_TYPE, VFIO_BASE + 5),
    "VFIO_GROUP_GET_DEVICE_FD": io(VFIO_TYPE, VFIO_BASE + 6),
    "VFIO_DEVICE_RESET": io(VFIO_TYPE, VFIO_BASE + 11),
    "VFIO_DEVICE_FEATURE": io(VFIO_TYPE, VFIO_BASE + 17),
    "VFIO_DEVICE_BIND_IOMMUFD": io(VFIO_TYPE, VFIO_BASE + 18),
    "VFIO_DEVICE_ATTACH_IOMMUFD_PT": io(VFIO_TYPE, VFIO_BASE + 19),
    "VFIO_MIG_GET_PRECOPY_INFO": io(VFIO_TYPE, VFIO_BASE + 21),
    "IOMMU_IOAS_ALLOC": io(IOMMUFD_TYPE, 0x81),
}

#: Constants (vfio.h).
CONSTANTS = {
    "VFIO_API_VERSION": 0,
    "VFIO_TYPE1_IOMMU": 1,
    "VFIO_TYPE1v2_IOMMU": 3,
    "VFIO_GROUP_FLAGS_VIABLE": 1 << 0,
    "VFIO_GROUP_FLAGS_CONTAINER_SET": 1 << 1,
    "VFIO_DEVICE_FEATURE_MASK": 0xFFFF,
    "VFIO_DEVICE_FEATURE_GET": 1 << 16,
    "VFIO_DEVICE_FEATURE_SET": 1 << 17,
    "VFIO_DEVICE_FEATURE_PROBE": 1 << 18,
    "VFIO_DEVICE_FEATURE_MIGRATION": 1,
    "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE": 2,
    "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE": 9,
    "VFIO_MIGRATION_STOP_COPY": 1 << 0,
    "VFIO_MIGRATION_P2P": 1 << 1,
    "VFIO_MIGRATION_PRE_COPY": 1 << 2,
}


class Struct(struct.Struct):
    """A C struct: :class:`struct.Struct` plus its field names, in order."""

    def __init__(self, c_name: str, fmt: str, fields: tuple[str, ...]):
        super().__init__(fmt)
        self.c_name = c_name
        self.fields = fields

    def offsets(self) -> dict[str, int]:
        """Field name -> byte offset, from the format (native alignment)."""
        out, codes = {}, [c for c in self.format.lstrip("@=<>!") if not c.isdigit()]
        for i, name in enumerate(self.fields):
            out[name] = struct.calcsize("@" + "".join(codes[:i]) + codes[i]) - struct.calcsize("@" + codes[i])
        return out


# ``@`` = native order and alignment, as the kernel ABI on the same machine.
feature_header = Struct("vfio_device_feature", "@II", ("argsz", "flags"))
migration = Struct("vfio_device_feature_migration", "@Q", ("flags",))
mig_state = Struct("vfio_device_feature_mig_state", "@Ii", ("device_state", "data_fd"))
mig_data_size = Struct("vfio_device_feature_mig_data_size", "@Q", ("stop_copy_length",))
precopy_info = Struct("vfio_precopy_info", "@IIQQ", ("argsz", "flags", "initial_bytes", "dirty_bytes"))
group_status = Struct("vfio_group_status", "@II", ("argsz", "flags"))
bind_iommufd = Struct("vfio_device_bind_iommufd", "@IIiI", ("argsz", "flags", "iommufd", "out_devid"))
attach_iommufd_pt = Struct("vfio_device_attach_iommufd_pt", "@III", ("argsz", "flags", "pt_id"))
ioas_alloc = Struct("iommu_ioas_alloc", "@III", ("size", "flags", "out_ioas_id"))

#: Every struct above, by C name.
STRUCTS = {s.c_name: s for s in (feature_header, migration, mig_state, mig_data_size, precopy_info,
                                 group_status, bind_iommufd, attach_iommufd_pt, ioas_alloc)}
