"""The shipped models and the toy model verify on both engines."""

from __future__ import annotations

import pytest

from fsmcheck.semantics.combination import derive_table
from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model

from .conftest import MODELS, TOY


@pytest.mark.parametrize("path", [MODELS / "vfio_v1.toml", MODELS / "vfio_v2.toml", TOY],
                         ids=["vfio_v1", "vfio_v2", "toy-door"])
def test_every_property_holds_on_both_engines(path):
    model = load_model(path)
    results = verify_model(model)
    assert results, "no property was checked"
    for r in results:
        assert r.status == "holds", (r.prop.name, r.config, r.detail, r.counterexample)
        assert {v.status for v in r.verdicts.values()} == {"holds"}


def test_v2_property_count_covers_every_flag_set():
    model = load_model(MODELS / "vfio_v2.toml")
    results = verify_model(model)
    configs = {r.config for r in results}
    assert configs == {"STOP_COPY", "STOP_COPY|P2P", "STOP_COPY|PRE_COPY", "STOP_COPY|P2P|PRE_COPY"}
    assert {r.prop.name for r in results} >= {"combination-table", "walk-terminates", "walk-agrees",
                                              "sessions", "correspondence", "rejections"}


def test_v1_checks_both_profiles_and_validity_once():
    results = verify_model(load_model(MODELS / "vfio_v1.toml"))
    assert [r.config for r in results if r.prop.name == "validity"] == ["all"]
    assert {r.config for r in results if r.prop.name == "reachability"} == {"strict", "lenient"}


def _path(model, flags, cur, req):
    config = next(c for c in model.configs() if c.flags == frozenset(flags))
    return derive_table(model, config)[(cur, req)]


def test_derived_paths_follow_the_kernel_comment():
    # vfio_main.c lists these combination paths for full support; the derivation
    # computes them from the arcs alone.
    model = load_model(MODELS / "vfio_v2.toml")
    full = ("STOP_COPY", "P2P", "PRE_COPY")
    assert _path(model, full, "PRE_COPY", "STOP_COPY").path == ("PRE_COPY_P2P", "STOP_COPY")
    assert _path(model, full, "RESUMING", "PRE_COPY").path == ("STOP", "RUNNING_P2P", "RUNNING", "PRE_COPY")
    assert _path(model, full, "STOP_COPY", "PRE_COPY").outcome == "rejected"
    assert _path(model, ("STOP_COPY",), "RUNNING", "STOP_COPY").path == ("STOP", "STOP_COPY")
    assert _path(model, ("STOP_COPY", "PRE_COPY"), "PRE_COPY", "STOP_COPY").path == ("STOP_COPY",)


def test_literal_prose_rule_differs_only_where_the_kernel_stays_in_the_saving_group():
    model = load_model(MODELS / "vfio_v2.toml")
    differences = {}
    for config in model.configs():
        rule = derive_table(model, config)
        literal = derive_table(model, config, within_group=False)
        differences.update({(config.label, k): (rule[k].path, literal[k].path)
                            for k in rule if rule[k] != literal[k]})
    assert differences == {
        ("STOP_COPY|P2P|PRE_COPY", ("PRE_COPY", "STOP_COPY")): (
            ("PRE_COPY_P2P", "STOP_COPY"), ("RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY")),
    }
