"""The vfio-user adapter against libvfio-user (issue 20): fsmcheck's test
device built at both revisions, and the patched samples/server. Needs
../shared/third_party/libvfio-user and meson/ninja/libjson-c-dev (skips
without them; fails instead under FSMCHECK_REQUIRE_TOOLS=1, as in CI). The
builds are vfio-user/build.sh's, under build/vfio-user (shared with make
vfio-user-e2e; rebuilt only when an input changed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from fsmcheck.adapters.contract import DriverError
from fsmcheck.adapters.vfio_user import DeviceCrashed, factory

from .conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FSMCHECK_SHARED", ROOT.parent / "shared")) / "third_party" / "libvfio-user"
OUT = ROOT / "build" / "vfio-user"
STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY = 1, 2, 3, 4, 6
#: What 4f4fce4 changed, as the errata state it (vfio-user/errata/<rev>.toml).
ERRATA = ROOT / "vfio-user" / "errata"


@pytest.fixture(scope="module")
def builds():
    have = all((SHARED / f"libvfio-user-{rev}.tar.gz").is_file() for rev in ("efd091b", "4d9f663"))
    require_tool(have, f"libvfio-user's tarballs in {SHARED}", "../shared must sit beside the checkout")
    require_tool(bool(shutil.which("meson") or shutil.which("gcc")) and
                 subprocess.run(["pkg-config", "--exists", "json-c"]).returncode == 0,
                 "meson/gcc and libjson-c-dev", "make setup")
    for rev in ("efd091b", "4d9f663"):
        subprocess.run([str(ROOT / "vfio-user" / "build.sh"), str(SHARED / f"libvfio-user-{rev}.tar.gz"),
                        str(OUT / rev)], check=True, stdout=subprocess.DEVNULL, timeout=600)
    return OUT


def _device(builds, rev: str, program: str = "fsmcheck-vfu-device"):
    adapter = factory("v2", device=f"{builds / rev / 'bin' / program} {{socket}}")
    return adapter, adapter.open(5)


@pytest.mark.parametrize("rev", ["efd091b", "4d9f663"])
def test_the_test_device_migrates_on_libvfio_user(builds, rev):
    adapter, source = _device(builds, rev)
    try:
        assert source.migration_flags() == 5  # STOP_COPY | PRE_COPY: libvfio-user's fixed answer
        source.set_state(STOP)
        handle = source.set_state(STOP_COPY)
        stream = b""
        while chunk := source.read(handle, 4096):
            stream += chunk
        assert stream[:4] == b"FSMV"
    finally:
        source.close()
    target = adapter.open(5)
    try:
        target.set_state(STOP)
        resume = target.set_state(RESUMING)
        target.write(resume, stream[:-1])
        with pytest.raises(DriverError, match="EINVAL"):  # the device validates: an incomplete stream fails
            target.set_state(STOP)
        assert target.get_state() == RESUMING
        target.write(resume, stream[-1:])  # the missing byte: now the stream is complete
        target.set_state(STOP)
        again = target.set_state(STOP_COPY)
        copy = b""
        while chunk := target.read(again, 4096):
            copy += chunk
        assert copy == stream  # the resumed device holds the saved image
    finally:
        target.close()
        adapter.close()


@pytest.mark.parametrize("rev", ["efd091b", "4d9f663"])
def test_reset_is_refused_while_stopped_on_both_revisions(builds, rev):
    adapter, device = _device(builds, rev)
    try:
        device.set_state(STOP)
        with pytest.raises(DriverError) as refused:
            device.reset()
        assert refused.value.errno == "EINVAL"
        assert device.get_state() == STOP
    finally:
        device.close()
        adapter.close()


@pytest.mark.parametrize("rev, after", [("efd091b", PRE_COPY), ("4d9f663", RUNNING)])
def test_reset_from_pre_copy_differs_between_the_revisions(builds, rev, after):
    """4f4fce4 "do not reset migration state on device reset (#844)": before
    it, VFIO_USER_DEVICE_RESET took device_state back to RUNNING (vfio.h);
    since, it stays where it was."""
    adapter, device = _device(builds, rev)
    try:
        device.set_state(PRE_COPY)
        device.reset()
        assert device.get_state() == after
    finally:
        device.close()
        adapter.close()
    listed = {e["id"] for e in tomllib.loads((ERRATA / f"{rev}.toml").read_text())["erratum"]}
    assert ("libvfio-user-reset-keeps-migration-state" in listed) == (after != RUNNING)


def test_the_sample_crash_names_the_request_and_the_assertion(builds):
    adapter, device = _device(builds, "efd091b", "server")
    try:
        device.set_state(STOP)
        device.set_state(STOP_COPY)
        with pytest.raises(DeviceCrashed) as crashed:  # leaving STOP_COPY before the stream was read
            device.set_state(STOP)
        text = str(crashed.value)
        assert text.startswith("device crashed: SIGABRT, last request SET STOP")
        assert "samples/server.c:329" in text
    finally:
        device.close()
        adapter.close()
