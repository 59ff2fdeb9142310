"""The host side of `make vm-e2e` without a VM: reading results back from
the serial console."""

from __future__ import annotations

import base64
import gzip
import importlib.util

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("vm_e2e", ROOT / "vm" / "e2e.py")
e2e = importlib.util.module_from_spec(spec)
spec.loader.exec_module(e2e)


def test_junit_and_exit_code_come_back_over_the_console():
    junit = b"<testsuites><testsuite tests='1' failures='0'/></testsuites>"
    payload = base64.b64encode(gzip.compress(junit)).decode()
    lines = ["noise", "fsmcheck-vm: junit begin", payload[:40], payload[40:], "fsmcheck-vm: junit end",
             "fsmcheck-vm: pytest exit 0"]
    assert e2e.collect(lines) == (0, junit)


def test_a_vm_that_gives_nothing_back_fails():
    assert e2e.collect(["Kernel panic - not syncing"]) == (1, None)
    broken = ["fsmcheck-vm: junit begin", "!!!", "fsmcheck-vm: junit end", "fsmcheck-vm: pytest exit 1"]
    assert e2e.collect(broken) == (1, None)


def test_the_init_script_names_the_device_and_the_errata():
    script = e2e._init_script(seed=5, select=None)
    assert script.startswith("#!/bin/busybox sh")
    assert f"FSMCHECK_VFIO_DEVICE={e2e.MTTY_UUID}" in script and "--fsmcheck-seed=5" in script
    assert "--fsmcheck-errata=/pack/mtty-errata.toml" in script and "poweroff -f" in script
