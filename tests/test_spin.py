"""SPIN re-checks the Promela export: its verdicts on no-invalid-entry and
reachability equal fsmcheck's, on the shipped models and on seeded defects
where both must find the violation."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fsmcheck.export.promela import promela, promela_all
from fsmcheck.export.spin import check
from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model

from .conftest import MODELS, V1_LETS_101_THROUGH, V2_WITHOUT_STOP_TO_RESUMING, require_tool

CASES = {
    "v1": None,
    "v2": None,
    "v1-lets-101-through": V1_LETS_101_THROUGH,
    "v2-without-STOP-to-RESUMING": V2_WITHOUT_STOP_TO_RESUMING,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_spin_agrees_with_fsmcheck(case, variant):
    require_tool(shutil.which("spin") is not None and shutil.which("cc") is not None,
                 "SPIN and a C compiler", "apt-get install spin gcc")
    edit = CASES[case]
    path = variant(*edit) if edit else MODELS / f"vfio_{case}.toml"
    model = load_model(path)
    ours = {(r.prop.name, r.config): r.status for r in verify_model(model)}
    failures = 0
    for config in model.configs():
        spin = check(model, config)
        assert spin.no_invalid_entry == ours[("no-invalid-entry", config.label)], (config.label, spin)
        assert spin.reachability == ours[("reachability", config.label)], (config.label, spin)
        failures += (spin.no_invalid_entry, spin.reachability).count("fails")
    if edit:
        assert failures > 0, "the seeded defect must be found by both"
    else:
        assert failures == 0


@pytest.mark.slow
def test_spin_names_the_state_it_cannot_reach(variant):
    require_tool(shutil.which("spin") is not None, "SPIN", "apt-get install spin gcc")
    model = load_model(variant(*V2_WITHOUT_STOP_TO_RESUMING))
    result = check(model, model.configs()[0])
    assert result.unreached == ["RESUMING"] and result.stuck == []


def test_sigterm_while_pan_runs_leaves_no_directory_and_no_process(tmp_path):
    """SIGTERM to a process in check() while pan runs: exit 3 (an interrupted
    run), pan's process group killed, the work directory removed. The real
    spin writes pan.c; a stand-in cc "compiles" a pan that writes its pid
    and sleeps, so the signal comes while pan runs."""
    require_tool(shutil.which("spin") is not None, "SPIN", "apt-get install spin")
    bin_dir, pid_file = tmp_path / "bin", tmp_path / "pan.pid"
    bin_dir.mkdir()
    cc = bin_dir / "cc"
    cc.write_text(f"#!/bin/sh\nfor pan in pan_safety pan_ltl; do\n"
                  f"  printf '#!/bin/sh\\necho $$ > {pid_file}\\nexec sleep 600\\n' > $pan; chmod +x $pan\ndone\n")
    cc.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    script = ("from fsmcheck.export.spin import check; from fsmcheck.model import load_model; "
              f"m = load_model({str(MODELS / 'vfio_v2.toml')!r}); check(m, m.configs()[0])")
    with subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text().strip()) and proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("pan never started")
            time.sleep(0.05)
        pan = int(pid_file.read_text())
        assert list(tmp_path.glob("fsmcheck-spin-*")), "pan runs in the work directory"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    left = _running(pan)
    if left:  # the test leaves nothing behind either
        os.kill(pan, signal.SIGKILL)
    assert proc.returncode == 3, stderr
    assert not list(tmp_path.glob("fsmcheck-spin-*"))
    assert not left, "pan still runs"


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return False


def test_promela_is_deterministic_and_one_file_per_configuration():
    model = load_model(MODELS / "vfio_v2.toml")
    files = promela_all(model)
    assert len(files) == len(model.configs())
    assert files == promela_all(load_model(MODELS / "vfio_v2.toml"))
    text = promela(model, model.configs()[0])
    assert text.count("CHECK(REQUESTABLE(") == 6  # the six arcs of STOP_COPY alone
    assert "ltl reach_RESUMING" in text and "ltl back_ERROR" in text
