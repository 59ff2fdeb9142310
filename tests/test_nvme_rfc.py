"""The NVMe RFC driver (seed 004), modelled from its description, fails the
generated pack on each of its defects."""

from __future__ import annotations

import pytest

from fsmcheck.mutate import run_pack

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
