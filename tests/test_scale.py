"""The engines at scale (issue 14): the z3 engine's datalog relations, the
scale model of the benchmark, and the pack writer's fast path.

No timings here (they are in ``bench/bench_scale.py``): these tests pin what
the fast paths must give -- the same verdicts and tables as the general ones.
"""

from __future__ import annotations

import pprint
import re

import pytest

from fsmcheck.engines import explicit, symbolic
from fsmcheck.engines.z3_encoding import Encoding
from fsmcheck.engines.z3_relations import Relations, _low_level_tuples
from fsmcheck.generate.render import _data
from fsmcheck.generate.v2_pack import v2_pack_data
from fsmcheck.model import load_model
from fsmcheck.semantics.combination import derive_table
from fsmcheck.model.properties import applicable
from fsmcheck.verifier.verify import verify_model
from fuzz.strategies import scale_model


def _model(tmp_path, text, name="m.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_model(path)


def _statuses(results):
    return {(r.prop.name, r.config): r.status for r in results}


def test_scale_model_holds_on_both_engines(tmp_path):
    model = _model(tmp_path, scale_model(24))
    results = verify_model(model)
    assert {r.prop.name for r in results} == {p.name for p in applicable(model)}
    assert {r.status for r in results} == {"holds"}, [(r.prop.name, r.detail) for r in results if r.status != "holds"]


def test_datalog_table_equals_the_explicit_table(tmp_path):
    model = _model(tmp_path, scale_model(20))
    config = model.configs()[0]
    mine = Relations(Encoding(model, config)).table()
    theirs = {k: (e.outcome, e.alternatives) for k, e in derive_table(model, config).items()}
    assert mine == theirs
    assert mine[("S1", "S19")] == ("path", (tuple(f"S{i}" for i in range(2, 20)),))


def test_shipped_v2_tables_agree_per_flag_set():
    model = load_model("models/vfio_v2.toml")
    for config in model.configs():
        mine = Relations(Encoding(model, config)).table()
        assert mine == {k: (e.outcome, e.alternatives) for k, e in derive_table(model, config).items()}


def _broken_walk(text: str, cur: str, req: str, nxt: str) -> str:
    """The scale model with walk.next[cur][req] = nxt."""
    def fix(match):
        return re.sub(rf'\b{req} = "[^"]*"', f'{req} = "{nxt}"', match.group(0))
    return re.sub(rf'^{cur} = {{.*}}$', fix, text, count=1, flags=re.M)


@pytest.mark.parametrize("cur, req, nxt, failing", [
    # S5 -> S9 steps back to S4, whose walk goes forward again: a step loop
    ("S5", "S9", "S4", {"walk-terminates", "walk-agrees"}),
    # S3 -> S1 jumps straight to S1: the walk ends, but off the derived path
    ("S3", "S1", "S1", {"walk-agrees"}),
    # S6 -> S6 on the diagonal to ERROR changes nothing (cur == req ends the walk)
    ("S6", "S6", "ERROR", set()),
])
@pytest.mark.slow
def test_broken_walks_fail_the_same_on_both_engines(tmp_path, cur, req, nxt, failing):
    model = _model(tmp_path, _broken_walk(scale_model(16), cur, req, nxt))
    assert model.walk.next[(cur, req)] == nxt
    results = verify_model(model)
    statuses = {r.prop.name: r.status for r in results}
    assert {name for name, status in statuses.items() if status == "fails"} == failing, statuses
    assert "disagree" not in statuses.values()
    relations = Relations(Encoding(model, model.configs()[0]))
    loops = relations.walk_loops()
    assert (("S5", "S9") in loops) == ("walk-terminates" in failing)
    if "walk-agrees" in failing:
        assert (cur, req) in relations.walk_disagreements()


def test_ambiguous_table_takes_the_general_path_and_agrees(tmp_path):
    # a diamond S1 -> {S2, S3} -> S4: two least paths S1 -> S4
    text = "\n".join([
        "format = 1", "[model]", 'name = "diamond"', "[device]", 'initial = "S1"', 'reset = "S1"',
        *[line for i in range(1, 5) for line in ("[[states]]", f'name = "S{i}"', f"value = {i}")],
        *[line for a, b in [(1, 2), (1, 3), (2, 4), (3, 4), (4, 1)]
          for line in ("[[arcs]]", f'from = "S{a}"', f'to = "S{b}"')],
        "[combination]", 'path = "shortest"', "no_interior = []", "within_group = false", ""])
    model = _model(tmp_path, text)
    config = model.configs()[0]
    relations = Relations(Encoding(model, config))
    assert not relations.unambiguous()
    assert relations.table()[("S1", "S4")] == ("path", (("S2", "S4"), ("S3", "S4")))
    for name in ("combination-table", "sessions"):
        assert symbolic.check(name, model, config).status == explicit.check(name, model, config).status


def test_datalog_answers_name_arguments_in_reverse_variable_order():
    # (:var 0) is the last argument: A(1, 2) and A(2, 3), in z3's low-level print mode
    answer = "\n".join([
        "#1 := (:var 0 bv[4])", "#2 := (:var 1 bv[4])", "#3 := (= #1 bv[2:4])", "#4 := (= #2 bv[1:4])",
        "#5 := (and #3 #4)", "#6 := (and (= #2 bv[2:4]) (= #1 bv[3:4]))", "(or #5 #6)"])
    assert _low_level_tuples(answer, 2) == [(1, 2), (2, 3)]
    assert _low_level_tuples("(= (:var 0 bv[4]) bv[7:4])", 1) == [(7,)]
    assert _low_level_tuples("false", 2) == []
    with pytest.raises(ValueError, match="ground tuples"):
        _low_level_tuples("#1 := (:var 0 bv[4])\n(or (and (= #1 bv[2:4])) (and (= #1 bv[2:4]) (= (:var 1 bv[4]) bv[3:4])))", 2)
    with pytest.raises(ValueError, match="ground tuples"):
        _low_level_tuples("(or (bvule (:var 0 bv[4]) bv[3:4]))", 1)


def test_pack_writer_prints_what_pprint_prints(tmp_path):
    model = _model(tmp_path, scale_model(12))
    data = v2_pack_data(model, model.configs()[0])
    for key, value in data.items():
        assert _data(value) == pprint.pformat(value, width=100, sort_dicts=False), key
    for value in [[1, 2], ["x" * 97, "y"], ["x" * 98, "y" * 3], [["a", 1]] * 40, ["a" * 96], []]:
        assert _data(value) == pprint.pformat(value, width=100, sort_dicts=False)
