"""Issue 13, engines: networkx and z3 agree on valid models that found
disagreements, errors or hangs before (bit encodings with reserved bits,
all-requestable profiles, odd state names), and z3 never proves a property
from contradictory premises."""

from __future__ import annotations

import dataclasses

import pytest

from fsmcheck.engines import explicit, symbolic
from fsmcheck.model import load_model
from fsmcheck.semantics.graphs import arc_graph
from fsmcheck.verifier.verify import verify_model

BITS = '''format = 1
[model]
name = "bits"
encoding = "bits"
width = 32
[encoding]
mask = 0x3
valid = "VALID"
[device]
initial = "A"
reset = "A"
[[states]]
name = "A"
value = 0
[[states]]
name = "B"
value = 1
[[states]]
name = "C"
value = 2
[[states]]
name = "D"
value = 3
requestable = false
[groups]
g = ["B", "C"]
[sessions]
groups = ["g"]
[[arcs]]
from = "A"
to = "B"
session = "starts"
[[arcs]]
from = "B"
to = "C"
session = "keeps"
[[arcs]]
from = "C"
to = "B"
session = "keeps"
[[arcs]]
from = "C"
to = "A"
session = "ends"
[[arcs]]
from = "D"
to = "A"
[combination]
no_interior = []
'''

LOOPING_WALK = '''[walk]
[walk.next]
A = { A = "A", B = "B", C = "B", D = "D" }
B = { A = "A", B = "B", C = "A", D = "D" }
C = { A = "A", B = "B", C = "C", D = "D" }
D = { A = "A", B = "B", C = "C", D = "D" }
'''

LENIENT = '''[profiles.strict]
arcs = "declared"
[profiles.lenient]
arcs = "all-requestable"
'''


def _model(tmp_path, text, name="m.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_model(path)


def _results(model, **kw):
    results = verify_model(model, **kw)
    for r in results:
        statuses = {n: v.status for n, v in r.verdicts.items()}
        assert r.status not in ("disagree", "error"), (r.prop.name, r.config, statuses, r.detail)
    return {(r.prop.name, r.config): r for r in results}


def test_bit_encoding_with_reserved_bits_sessions_and_paths_agree(tmp_path):
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) != 0x3"))
    got = _results(model)
    # z3 once failed sessions on values with reserved bits set, and counted
    # A -> B -> C once per reserved-bit variant of B (a false ambiguity).
    assert got[("sessions", "spec")].status == "holds"
    assert got[("combination-table", "spec")].status == "holds"
    assert got[("rejections", "spec")].status == "holds"


def test_bit_encoding_rejections_follow_the_validity_predicate_in_both(tmp_path):
    # The predicate accepts D, which is not requestable: validity fails, and
    # both engines derive the same table (D accepted), so rejections fails in both.
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) <= 3"))
    got = _results(model)
    assert got[("validity", "all")].status == "fails"
    rej = got[("rejections", "spec")]
    assert {v.status for v in rej.verdicts.values()} == {"fails"}
    assert all("D" in v.counterexample.summary for v in rej.verdicts.values())


def test_looping_walk_on_a_bit_encoding_ends(tmp_path):
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) != 0x3") + LOOPING_WALK)
    got = _results(model, deadline=120)  # z3 once enumerated every reserved-bit variant (2^30 each)
    r = got[("walk-terminates", "spec")]
    assert {v.status for v in r.verdicts.values()} == {"fails"}
    pairs = {tuple(p) for p in r.verdicts["z3"].counterexample.data["pairs"]}
    assert pairs == {tuple(p) for p in r.verdicts["networkx"].counterexample.data["pairs"]}
    assert ("A", "C") in pairs


def test_all_requestable_profile_keeps_declared_session_effects(tmp_path):
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) != 0x3") + LENIENT)
    lenient = next(c for c in model.configs() if c.profile == "lenient")
    graph = arc_graph(model, lenient)
    assert graph.edges["A", "B"]["session"] == "starts"  # declared
    assert graph.edges["B", "A"]["session"] == "none"  # no arc declares B -> A
    got = _results(model)
    r = got[("sessions", "lenient")]
    assert {v.status for v in r.verdicts.values()} == {"fails"}


def test_vacuous_premises_are_an_error_never_holds(tmp_path):
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) != 0x3").replace(
        'from = "A"\nto = "B"\nsession = "starts"', 'from = "A"\nto = "B"\nsession = "ends"'))
    config = model.configs()[0]
    assert symbolic.check("sessions", model, config).status == "fails"  # a plainly wrong effect
    # Bypass the loader (which rejects both values): D encoded like B but
    # outside B's session group, so z3's group function gets two values at 1.
    states = tuple(dataclasses.replace(s, value=1) if s.name == "D" else s for s in model.states)
    bad = dataclasses.replace(model, states=states)
    verdict = symbolic.check("sessions", bad, config)
    assert verdict.status == "error" and "vacuous" in verdict.note


ODD = ["", "[/]", "s0", "<null>", ":100:", "s1"]


def _odd_model() -> str:
    q = lambda s: '"' + s + '"'  # noqa: E731 - none of ODD needs escaping
    lines = ["format = 1", "[model]", 'name = "odd"', "[device]", f"initial = {q(ODD[0])}", f"reset = {q(ODD[0])}",
             f"error = {q(ODD[-1])}"]
    for i, s in enumerate(ODD):
        lines += ["[[states]]", f"name = {q(s)}", f"value = {i}"] + (["requestable = false"] if s == ODD[-1] else [])
    lines += ["[groups]", f"g = [{q(ODD[2])}, {q(ODD[3])}]", "[sessions]", 'groups = ["g"]']
    chain = ODD[:-1]
    for a, b in zip(chain, chain[1:] + chain[:1]):
        effect = {(ODD[1], ODD[2]): "starts", (ODD[3], ODD[4]): "ends"}.get((a, b), "keeps" if a == ODD[2] else "none")
        lines += ["[[arcs]]", f"from = {q(a)}", f"to = {q(b)}", f'session = "{effect}"']
    lines += ["[combination]", "no_interior = []", "[walk]", "[walk.next]"]
    for cur in ODD:
        lines.append(f"{q(cur)} = {{ " + ", ".join(f"{q(r)} = {q(r)}" for r in ODD) + " }")
    return "\n".join(lines) + "\n"


def test_odd_state_names_are_encoded_by_index(tmp_path):
    model = _model(tmp_path, _odd_model())
    assert model.state_names == tuple(ODD)
    got = _results(model)
    assert got[("combination-table", "spec")].status == "holds"
    walk = got[("walk-agrees", "spec")]
    assert {v.status for v in walk.verdicts.values()} == {"fails"}  # a one-step walk skips arcs
    for v in walk.verdicts.values():
        assert set(v.counterexample.data["pair"]) <= set(ODD)


@pytest.mark.parametrize("name", ["validity", "rejections", "sessions"])
def test_explicit_and_symbolic_check_directly(tmp_path, name):
    model = _model(tmp_path, BITS.replace("VALID", "(s & 0x3) != 0x3"))
    config = model.configs()[0]
    assert explicit.check(name, model, config).status == symbolic.check(name, model, config).status == "holds"
