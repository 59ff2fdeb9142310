"""The NVMe RFC driver (seed 004), modelled from its description, fails the
generated pack on each of its defects."""

from __future__ import annotations

import pytest

from fsmcheck.mutation import run_pack

from .conftest import ROOT

PACK = ROOT / "generated_tests"


#: Every test here reads one run of the pack against the RFC driver (the
#: module fixture): slow as a whole.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rfc_run():
    return run_pack(PACK, [PACK / "test_vfio_v2_stop_copy.py"], "fsmcheck.drivers.nvme_rfc:factory", seed=0)


def _failed(run, test_id):
    return next((msg for name, msg in run.failures if name == test_id), None)


def test_stop_to_running_ignoring_a_failed_resume_is_caught(rfc_run):
    msg = _failed(rfc_run, "test_failure_path[STOP->RUNNING@0]")
    assert msg and "SET RUNNING from STOP succeeded although step STOP -> RUNNING failed" in msg


def test_missing_error_state_is_caught(rfc_run):
    msg = _failed(rfc_run, "test_failure_path[RUNNING->STOP@0!]")
    assert msg and "the failure was into ERROR but GET does not say ERROR" in msg


def test_resume_cap_below_the_saved_stream_is_caught(rfc_run):
    msg = _failed(rfc_run, "test_round_trip[4096]")
    assert msg and "write to the resuming handle failed with ENOSPC" in msg


def test_its_six_arcs_work_and_only_the_resume_cap_breaks_the_tour(rfc_run):
    assert _failed(rfc_run, "test_arc_tour") is not None  # the tour resumes its own (too big) stream
    assert all(_failed(rfc_run, f"test_pair[{p}]") is None for p in ("RUNNING->STOP", "STOP->STOP_COPY",
                                                                     "STOP_COPY->STOP", "STOP->RUNNING"))
    assert rfc_run.errors == 0


# -- issue 24: run-pack blames exactly the three defects' rules, with small artifacts -----------------
#: The RFC's three defects and the catalogue rule each breaks.
DEFECT_RULES = {
    "v2.set-complete",    # STOP -> RUNNING reports success although the resume step failed
    "v2.get",             # no ERROR state: GET does not say ERROR after a failure into it
    "v2.resuming-loads",  # resume data capped at 256 KiB: RESUMING refuses its own stream
}


@pytest.fixture(scope="module")
def rfc_run_pack(tmp_path_factory):
    from click.testing import CliRunner

    from fsmcheck.cli import main

    out = tmp_path_factory.mktemp("nvme") / "out"
    result = CliRunner().invoke(main, ["run-pack", "--vfio-cdev", "/dev/vfio/devices/nvme", "-o", str(out),
                                       "--seed", "0", "--adapter", "fsmcheck.drivers.nvme_rfc:factory"],
                                catch_exceptions=False)
    return result, out


def test_run_pack_marks_exactly_the_three_defects_rules_failed(rfc_run_pack):
    from fsmcheck.runpack import junit_cases, rule_outcomes
    from fsmcheck.runpack.results import blamed_rule

    result, out = rfc_run_pack
    assert result.exit_code == 1
    outcomes = rule_outcomes(out / "pack", junit_cases(out / "junit.xml"))
    assert {o.rule.id for o in outcomes if o.verdict == "failed"} == DEFECT_RULES
    failed = [c for c in junit_cases(out / "junit.xml") if c.outcome == "failed"]
    assert failed and all(blamed_rule(c) in DEFECT_RULES for c in failed)  # every failure names one of them
    page = (out / "results.html").read_text()
    assert page.count("<tr class='failed'>") == 3


def test_run_pack_artifacts_stay_small(rfc_run_pack):
    """The console log was 17 MB, junit.xml 19 MB, results.html 34 MB: every
    artifact is now under 1 MB, and the 1-byte round trip's 262,148 identical
    writes are one line."""
    _, out = rfc_run_pack
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    assert set(sizes) >= {"junit.xml", "pytest.log", "results.html", "coverage.txt"}
    assert max(sizes.values()) < 1 << 20, sizes
    log = (out / "pytest.log").read_text()
    assert "write(" in log and "bytes) -> ok  (x" in log
