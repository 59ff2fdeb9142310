"""The host side of `make vm-e2e` without a VM: reading results back from
the serial console."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import subprocess
import sys

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
    assert "--fsmcheck-devices=/tmp/fleet.txt" in script and "--fsmcheck-seed=5" in script
    assert "--fsmcheck-errata=/pack/mtty-errata.toml" in script and "poweroff -f" in script


def test_the_init_script_makes_one_mdev_per_worker_and_runs_xdist_only_for_several(tmp_path):
    """The worker count comes from the kernel command line (fsmcheck.workers=N,
    so one initramfs serves every count); each worker's mdev is listed as
    GROUP:UUID for the Linux adapter; -n N only when N > 1."""
    import re
    import subprocess

    script = e2e._init_script(seed=5, select="test_pair")
    assert e2e.MTTY_UUIDS[0] == e2e.MTTY_UUID and len(set(e2e.MTTY_UUIDS)) == e2e.MAX_WORKERS
    assert " ".join(e2e.MTTY_UUIDS) in script and 'echo "/dev/vfio/$group:$uuid" >> /tmp/fleet.txt' in script
    assert '[ $workers -gt 1 ] && dist="-p xdist.plugin -n $workers"' in script
    assert "-k 'test_pair'" in script
    assert "--assert=plain" in script
    # the shell part that reads the count and picks the mdevs, run with sh (sysfs and /dev stubbed out)
    loop = script[script.index("workers=1"):script.index("cd /pack")]
    loop = (loop.replace("$(cat /proc/cmdline)", "$CMDLINE")
                .replace("echo $uuid > $types/$type/create", "true")
                .replace("$(basename $(readlink /sys/bus/mdev/devices/$uuid/iommu_group))", "$((n + 10))")
                .replace("[ -c /dev/vfio/$group ]", "true")
                .replace("$(grep -c ^processor /proc/cpuinfo)", "2")
                .replace("/tmp/fleet.txt", str(tmp_path / "fleet.txt")))
    for cmdline, n in (("quiet fsmcheck.workers=3 x", 3), ("quiet", 1)):
        out = subprocess.run(["sh", "-c", 'fail() { echo "FAIL $*"; exit 9; }\n' + loop + f"cat {tmp_path / 'fleet.txt'}\n"
                              'echo "dist=$dist"'], env={"CMDLINE": cmdline, "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True)
        fleet = re.findall(r"^/dev/vfio/\d+:\S+$", out.stdout, re.M)
        assert fleet == [f"/dev/vfio/{11 + k}:{e2e.MTTY_UUIDS[k]}" for k in range(n)], out.stdout + out.stderr
        assert out.stdout.rstrip().endswith(f"dist=-p xdist.plugin -n {n}" if n > 1 else "dist=")


def test_the_packed_imports_cover_reading_the_errata():
    """The guest has only the packages PACK_IMPORTS load (vmimage packs their
    top-level packages from .venv): what the pack does at start-up beyond its
    imports -- reading the errata, checked by their JSON Schema, whose library
    is imported only then -- must need no other package (a CI run's guest
    once ended in ModuleNotFoundError: jsonschema)."""
    code = ("import importlib, json, os, sys, sysconfig\n"
            "site = sysconfig.get_paths()['purelib'] + os.sep\n"
            "def tops():\n"
            "    return {n.split('.')[0] for n, m in list(sys.modules.items())\n"
            "            if (getattr(m, '__file__', None) or '').startswith(site)}\n"
            "sys.path.insert(0, 'generated_tests')\n"
            "for name in json.loads(sys.argv[1]): importlib.import_module(name)\n"
            "before = tops()\n"
            "from fsmcheck.pack.errata import load_errata\n"
            "assert load_errata(sys.argv[2])\n"
            "print(json.dumps(sorted(tops() - before)))\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(e2e.PACK_IMPORTS), str(e2e.ERRATA)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], f"packages the guest lacks: {out.stdout}"
