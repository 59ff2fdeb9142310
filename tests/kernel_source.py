"""Access to Debian's linux-source-6.12 for the tests that read kernel C.

The tarball is unpacked once per test session (only the files the tests
read). Without the package the tests are skipped with the reason, unless
FSMCHECK_REQUIRE_KERNEL_SOURCE=1 (set by .ci/run), which makes its absence
an error: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
PREFIX = "linux-source-6.12/"
MEMBERS = (
    "include/uapi/linux/vfio.h",
    "include/uapi/linux/iommufd.h",
    "drivers/vfio/vfio_main.c",
    "samples/vfio-mdev/mtty.c",
    "drivers/vfio/pci/mlx5/",
    "drivers/vfio/pci/hisilicon/",
    "drivers/vfio/pci/pds/",
    "drivers/vfio/pci/qat/",
)


def unpack(dest: Path) -> Path:
    """Unpack the files the tests read into ``dest``; return the tree root."""
    if not TARBALL.is_file():
        message = f"{TARBALL} is missing: apt-get install linux-source-6.12 (make setup does)"
        if os.environ.get("FSMCHECK_REQUIRE_KERNEL_SOURCE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    wanted = tuple(PREFIX + m for m in MEMBERS)
    with tarfile.open(TARBALL) as tar:
        members = [m for m in tar if m.name.startswith(wanted)]
        tar.extractall(dest, members=members, filter="data")
    return dest / PREFIX.rstrip("/")
