"""SPIN re-checks the Promela export: its verdicts on no-invalid-entry and
reachability equal fsmcheck's, on the shipped models and on seeded defects
where both must find the violation."""

from __future__ import annotations

import shutil

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


def test_promela_is_deterministic_and_one_file_per_configuration():
    model = load_model(MODELS / "vfio_v2.toml")
    files = promela_all(model)
    assert len(files) == len(model.configs())
    assert files == promela_all(load_model(MODELS / "vfio_v2.toml"))
    text = promela(model, model.configs()[0])
    assert text.count("CHECK(REQUESTABLE(") == 6  # the six arcs of STOP_COPY alone
    assert "ltl reach_RESUMING" in text and "ltl back_ERROR" in text
