"""Seeded-defect variants of the shipped models fail the right property with
the expected minimal counterexample, on both engines."""

from __future__ import annotations

import pytest

from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model


def _results(path):
    return {(r.prop.name, r.config): r for r in verify_model(load_model(path))}


def _failing(results):
    return {key for key, r in results.items() if r.status != "holds"}


def _both(r):
    """The two engines' counterexamples (both must exist)."""
    cex = {name: v.counterexample for name, v in r.verdicts.items()}
    assert all(c is not None for c in cex.values()), cex
    return cex


def test_v1_validity_that_lets_101_through(variant):
    path = variant("vfio_v1.toml", [('valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"',
                                     'valid = "(s & 0x6) != 0x6"')])
    results = _results(path)
    # The strict profile has no arc into 101b, so there the defect shows as an
    # accepted value no arc reaches.
    assert _failing(results) == {("validity", "all"), ("no-invalid-entry", "lenient"),
                                 ("reachability", "strict")}
    for engine, cex in _both(results[("reachability", "strict")]).items():
        assert cex.summary.startswith("RESUMING|RUNNING (101b) is accepted but no path"), engine
    for engine, cex in _both(results[("validity", "all")]).items():
        assert "RESUMING|RUNNING (101b)" in cex.summary, engine
    for engine, cex in _both(results[("no-invalid-entry", "lenient")]).items():
        # The shortest trace: straight from the state at open into 101b.
        assert cex.trace[0] == "RUNNING (001b)", engine
        assert len(cex.trace) == 2 and cex.trace[1].startswith("RESUMING|RUNNING (101b)"), (engine, cex.trace)


def test_v1_reset_to_000(variant):
    path = variant("vfio_v1.toml", [('reset = "RUNNING"              #', 'reset = "STOP"              #')])
    results = _results(path)
    assert _failing(results) == {("reset", "strict"), ("reset", "lenient")}
    for engine, cex in _both(results[("reset", "strict")]).items():
        assert "gives STOP (000b), not the state at open RUNNING (001b)" in cex.summary, engine
        assert cex.trace[-1] == "STOP (000b) [reset]"
        reset_line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                          if text.startswith("reset ="))
        assert cex.line == reset_line  # the [device] reset line of the model file


@pytest.mark.slow
def test_v2_missing_required_arc(variant):
    path = variant("vfio_v2.toml", [('''[[arcs]]
from = "STOP"
to = "RESUMING"
session = "starts"
source = "vfio.h: STOP -> RESUMING returns a new data_fd"
''', "")])
    results = _results(path)
    failing = _failing(results)
    for flags in ("STOP_COPY", "STOP_COPY|P2P", "STOP_COPY|PRE_COPY", "STOP_COPY|P2P|PRE_COPY"):
        assert ("reachability", flags) in failing
        assert ("combination-table", flags) in failing
        assert ("walk-agrees", flags) in failing
        for engine, cex in _both(results[("reachability", flags)]).items():
            assert cex.summary == "RESUMING is accepted but no path of arcs reaches it from RUNNING", engine
        for engine, cex in _both(results[("combination-table", flags)]).items():
            assert cex.summary == "accepted request STOP -> RESUMING has no admissible path", engine
    assert all(r.status in ("holds", "fails") for r in results.values())


@pytest.mark.slow
def test_v2_extra_arc_makes_a_path_ambiguous(variant):
    extra = '''[[arcs]]
from = "RUNNING"
to = "RESUMING"
needs = ["P2P"]
session = "starts"
source = "seeded defect"

# Requests that fail'''
    path = variant("vfio_v2.toml", [("# Requests that fail", extra)])
    results = _results(path)
    r = results[("combination-table", "STOP_COPY|P2P")]
    assert r.status == "fails"
    for engine, cex in _both(r).items():
        assert cex.summary.startswith("ambiguous combination transition RUNNING -> STOP: "), engine
        assert cex.data["paths"] == [["RESUMING", "STOP"], ["RUNNING_P2P", "STOP"]], engine
    assert results[("combination-table", "STOP_COPY")].status == "holds"


@pytest.mark.slow
def test_v2_walk_whose_skip_loop_never_exits_on_error(variant):
    path = variant("vfio_v2.toml", [('exits = ["ERROR"]    #', 'exits = []    #')])
    results = _results(path)
    assert _failing(results) == {
        ("walk-terminates", "STOP_COPY|PRE_COPY"), ("walk-agrees", "STOP_COPY|PRE_COPY"),
        ("walk-terminates", "STOP_COPY|P2P|PRE_COPY"), ("walk-agrees", "STOP_COPY|P2P|PRE_COPY"),
    }
    expected_pairs = {
        "STOP_COPY|PRE_COPY": [["STOP_COPY", "PRE_COPY"]],
        "STOP_COPY|P2P|PRE_COPY": [["STOP_COPY", "PRE_COPY"], ["STOP_COPY", "PRE_COPY_P2P"]],
    }
    for flags, pairs in expected_pairs.items():
        for engine, cex in _both(results[("walk-terminates", flags)]).items():
            assert cex.data["pairs"] == pairs, engine
            assert cex.data["cycle"] == ["ERROR"] and cex.data["loop"] == "skip-loop", engine
            assert cex.summary.startswith("the walk does not terminate for STOP_COPY -> PRE_COPY: "
                                          "its skip loop cycles ERROR -> ERROR")


@pytest.mark.slow
def test_v2_walk_table_entry_changed(variant):
    # RUNNING -> STOP through RUNNING_P2P changed to go straight to STOP: with
    # P2P the driver would be asked for an arc it does not have.
    path = variant("vfio_v2.toml", [('RUNNING = { STOP = "RUNNING_P2P", RUNNING = "RUNNING",',
                                     'RUNNING = { STOP = "STOP", RUNNING = "RUNNING",')])
    results = _results(path)
    assert _failing(results) == {("walk-agrees", "STOP_COPY|P2P"), ("walk-agrees", "STOP_COPY|P2P|PRE_COPY")}
    for engine, cex in _both(results[("walk-agrees", "STOP_COPY|P2P")]).items():
        assert cex.summary == ("for RUNNING -> STOP the walk gives RUNNING -> STOP; "
                               "the derived table gives RUNNING -> RUNNING_P2P -> STOP"), engine


@pytest.mark.slow
def test_v2_session_effect_wrong(variant):
    path = variant("vfio_v2.toml", [('''to = "PRE_COPY_P2P"
needs = ["P2P", "PRE_COPY"]
session = "keeps"''', '''to = "PRE_COPY_P2P"
needs = ["P2P", "PRE_COPY"]
session = "starts"''')])
    results = _results(path)
    r = results[("sessions", "STOP_COPY|P2P|PRE_COPY")]
    assert r.status == "fails"
    for engine, cex in _both(r).items():
        assert cex.summary.startswith("arc PRE_COPY -> PRE_COPY_P2P declares session effect 'starts'; its groups say 'keeps'"), engine


@pytest.mark.slow
def test_v2_arc_out_of_error(variant):
    extra = '''[[arcs]]
from = "ERROR"
to = "RUNNING"
source = "seeded defect"

# Requests that fail'''
    results = _results(variant("vfio_v2.toml", [("# Requests that fail", extra)]))
    r = results[("error-exit", "STOP_COPY")]
    assert r.status == "fails"
    for engine, cex in _both(r).items():
        assert cex.summary == "an arc leaves the error state: ERROR -> RUNNING", engine
        assert cex.trace == ("RUNNING", "ERROR [failure]", "RUNNING"), (engine, cex.trace)
