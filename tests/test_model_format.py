"""Model files (issue 25): ``extends`` (a variant states only its change),
diagnostics that do not cascade, a correspondence target by shipped name, and
``<<`` in a validity predicate on the z3 engine."""

from __future__ import annotations

import pytest

from fsmcheck.model import ModelError, load_model
from fsmcheck.model.extends import MATCH
from fsmcheck.verifier.verify import verify_model

from .conftest import MODELS

V2 = MODELS / "vfio_v2.toml"
VARIANTS = sorted((MODELS / "variants").glob("vfio_v2_*.toml"))
ORCHESTRATION_VARIANTS = sorted((MODELS / "variants").glob("qemu_orchestration_*.toml"))


def _write(tmp_path, text: str, name: str = "variant.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_entry_whose_match_key_is_a_table_matches_nothing(tmp_path):
    """A table where a match key's value belongs ({ a = 1 } as a state's name)
    is one schema diagnostic, not a TypeError inside the merge."""
    path = tmp_path / "v.toml"
    path.write_text('extends = "vfio_v2"\n[model]\nname = "v"\n[[states]]\nname = { a = 1 }\n')
    diagnostics = _diagnostics(path)
    assert diagnostics and all(d.path == str(path) for d in diagnostics[:1])


@pytest.mark.parametrize("path", ORCHESTRATION_VARIANTS, ids=lambda p: p.stem)
def test_orchestration_variants_state_only_their_change(path):
    """Each repair policy extends qemu_orchestration in at most 40 lines: its
    phases and runs merge into the base's by name, the rest is the base's."""
    from fsmcheck.orchestration.loader import load_orchestration

    assert "extends" in path.read_text() and len(path.read_text().splitlines()) <= 40
    variant, base = load_orchestration(path), load_orchestration(MODELS / "qemu_orchestration.toml")
    assert variant.name == path.stem != base.name
    assert set(base.phases) <= set(variant.phases) and [r.name for r in variant.runs] == [r.name for r in base.runs]
    assert variant.device.key == base.device.key  # device_model from the base's own directory


def _diagnostics(path) -> list:
    with pytest.raises(ModelError) as info:
        load_model(path)
    return info.value.diagnostics


# -- extends --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_shipped_variants_state_only_their_change(path):
    """Each shipped variant extends vfio_v2 in at most 40 lines, and what it
    does not state is vfio_v2's (states, walk, combination rule, map)."""
    assert "extends" in path.read_text() and len(path.read_text().splitlines()) <= 40
    variant, base = load_model(path), load_model(V2)
    assert variant.name == path.stem != base.name
    assert variant.state_names == base.state_names and variant.walk == base.walk
    assert variant.combination == base.combination and variant.groups == base.groups
    assert variant.correspondence.mapping == base.correspondence.mapping
    assert variant.correspondence.model is not None  # resolved from vfio_v2's own directory
    assert variant.key != base.key


def test_matching_entries_merge_in_place_and_others_append(tmp_path):
    path = _write(tmp_path, f'''extends = "{V2}"
[[states]]
name = "STOP"
doc = "changed"
[[arcs]]
from = "STOP"
to = "RUNNING_P2P"
needs = ["P2P"]
source = "changed source"
[[blocked]]
from = "RUNNING"
to = "RESUMING"
source = "new block"
''')
    base, model = load_model(V2), load_model(path)
    assert model.state_names == base.state_names  # STOP merged in place, no new state
    assert model.state("STOP").doc == "changed" and model.state("STOP").value == base.state("STOP").value
    changed = [a for a in model.arcs if (a.src, a.dst, a.needs) == ("STOP", "RUNNING_P2P", frozenset({"P2P"}))]
    assert [a.source for a in changed] == ["changed source"] and len(model.arcs) == len(base.arcs)
    assert (model.blocked[-1].src, model.blocked[-1].dst) == ("RUNNING", "RESUMING")
    assert len(model.blocked) == len(base.blocked) + 1


def test_removal_is_explicit(tmp_path):
    path = _write(tmp_path, f'''extends = "vfio_v2"
remove = ["walk", "properties"]
[[blocked]]
from = "STOP_COPY"
to = "PRE_COPY"
remove = true
''')
    model, base = load_model(path), load_model(V2)
    assert model.walk is None and model.properties is None
    assert [(b.src, b.dst) for b in model.blocked] == [(b.src, b.dst) for b in base.blocked[1:]]


def test_a_removal_that_matches_nothing_is_an_error_at_its_line(tmp_path):
    path = _write(tmp_path, 'extends = "vfio_v2"\n\n[[arcs]]\nfrom = "STOP"\nto = "ERROR"\nremove = true\n')
    (d,) = _diagnostics(path)
    assert (d.path, d.line, d.key) == (str(path), 3, "arcs[0]")
    assert "matches no arcs entry" in d.message and "from, to, needs" in d.message


def test_diagnostics_name_the_file_that_declared_the_key(tmp_path):
    """A variant's error is at the variant's line; an error the variant's
    change exposes in an inherited declaration is at the base file's line."""
    base = _write(tmp_path, V2.read_text(), "base.toml")
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    path = _write(tmp_path, 'extends = "base.toml"\n[[states]]\nname = "STOP"\nvalue = "two"\n')
    found = {(d.path, d.key): d for d in _diagnostics(path)}
    bad = found[(str(path), "states[1].value")]
    assert bad.line == 4 and "expected an integer" in bad.message
    # Dropping the state ERROR makes vfio_v2's own references to it unknown, at base.toml's lines.
    path.write_text('extends = "base.toml"\n[[states]]\nname = "ERROR"\nremove = true\n')
    where = {(d.path, d.key, d.line) for d in _diagnostics(path)}
    error_line = next(n for n, line in enumerate(base.read_text().splitlines(), 1) if line.startswith("error ="))
    assert (str(base), "device.error", error_line) in where


def test_a_counterexample_names_the_file_that_declared_its_key(tmp_path):
    """verify's text and JSON, SARIF, the ITF traces and the report locate a
    counterexample in the file declaring its key: the arc a variant adds at the
    variant's line, the 6.12 walk it inherits (two levels down, through
    vfio_v2_future_flag) at vfio_v2's line; the cancel run's failing phase
    (an orchestration variant) at qemu_orchestration's line."""
    import json

    from fsmcheck.ci.sarif import artifact_location

    from .conftest import cli

    path = _write(tmp_path, 'extends = "vfio_v2_future_flag"\n[model]\nname = "v"\n\n'
                            '[[arcs]]\nfrom = "ERROR"\nto = "RUNNING"\nsession = "none"\n')
    base, text = str(V2.resolve()), V2.read_text().splitlines()
    walk_row = next(n for n, line in enumerate(text, 1)
                    if n > text.index("[walk.next]") and line.startswith("STOP_COPY"))
    expected = {("walk-agrees", base, walk_row), ("error-exit", str(path), 5)}
    result = cli("verify", path, "--json", "--sarif", tmp_path / "out.sarif", "--trace-dir", tmp_path / "traces")
    cexes = [(r["property"], r["counterexample"]) for r in json.loads(result.output)["models"][0]["results"]
             if r["counterexample"]]
    assert expected <= {(p, c["file"], c["line"]) for p, c in cexes}
    assert {json.load(t.open())["#meta"]["file"] for t in (tmp_path / "traces").iterdir()} == {base, str(path)}
    sarif = json.loads((tmp_path / "out.sarif").read_text())["runs"][0]["results"]
    assert {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in sarif} >= {
        (p, artifact_location(f)["uri"], n) for p, f, n in expected}
    shown = cli("verify", path).output
    assert f"at {base}:{walk_row}\n" in shown and f"at {path}:5\n" in shown
    cli("report", "-q", path, "-o", tmp_path / "r.html")
    assert f"declared at <code>{base}:{walk_row}</code>" in (tmp_path / "r.html").read_text()

    cancel, base = MODELS / "qemu_orchestration_cancel.toml", (MODELS / "qemu_orchestration.toml").resolve()
    found = {(r["counterexample"]["file"], r["counterexample"]["line"])
             for r in json.loads(cli("verify", cancel, "--json").output)["models"][0]["results"]}
    assert {f for f, _ in found} == {str(base)}  # the cancel run fails in a phase the base declares
    assert all(base.read_text().splitlines()[n - 1] == "[[phases]]" for _, n in found)
    assert f"at {base}:" in cli("verify", cancel).output


def test_an_extends_cycle_is_an_error(tmp_path):
    a = _write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    _write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    (d,) = _diagnostics(a)
    assert d.key == "extends" and "cycle" in d.message
    (d,) = _diagnostics(_write(tmp_path, 'extends = "no_such_model"\n'))
    assert d.key == "extends" and "no shipped model 'no_such_model'" in d.message


def test_match_keys_are_the_issues():
    assert MATCH == {"states": ("name",), "arcs": ("from", "to", "needs"), "blocked": ("from", "to"),
                     "capabilities": ("name",)}


# -- correspondence target by shipped name -------------------------------------------------
def test_correspondence_target_by_shipped_name(tmp_path):
    path = _write(tmp_path, V2.read_text().replace('model = "vfio_v1.toml"', 'model = "vfio_v1"'), "v2.toml")
    model = load_model(path)
    assert model.correspondence.model.name == "vfio_v1"
    assert model.correspondence.model_path == (MODELS / "vfio_v1.toml").resolve()
    bad = _write(tmp_path, V2.read_text().replace('model = "vfio_v1.toml"', 'model = "vfio_v9"'), "v2b.toml")
    (d,) = _diagnostics(bad)
    assert d.key == "correspondence.model" and "no shipped model 'vfio_v9'" in d.message


# -- diagnostics do not cascade ------------------------------------------------------------
def test_one_bad_state_value_is_one_error(tmp_path):
    """STOP is referenced by arcs, groups, the walk and the map; its bad value
    is reported once, not once per reference."""
    text = V2.read_text().replace('name = "STOP"\nvalue = 1', 'name = "STOP"\nvalue = "one"')
    assert text != V2.read_text()
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    (d,) = _diagnostics(_write(tmp_path, text, "v2.toml"))
    assert d.key.endswith(".value") and "expected an integer" in d.message


def test_one_bad_flag_bit_is_one_error(tmp_path):
    text = V2.read_text().replace("P2P = 1,", "P2P = 99,")
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    (d,) = _diagnostics(_write(tmp_path, text, "v2.toml"))
    assert d.key == "flags.bits.P2P" and "0..63" in d.message


# -- << in a validity predicate (issue 23) ----------------------------------------------------
def test_shift_left_in_a_validity_predicate_on_both_engines(variant):
    """``b < 64`` was tested in Python on a z3 term: any ``<<`` made the z3
    instance an error. The v1 rule written with shifts holds on both engines."""
    path = variant("vfio_v1.toml", [('valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"',
                                     'valid = "(s & 0x4) == 0 or (s & 0x7) == (1 << 2)"')])
    (result,) = [r for r in verify_model(load_model(path)) if r.prop.name == "validity"]
    assert {n: v.status for n, v in result.verdicts.items()} == {"networkx": "holds", "z3": "holds"}
    broken = variant("vfio_v1.toml", [('valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"',
                                       'valid = "(s & 0x4) == 0 or (s & 0x7) == (1 << 1)"')])
    (result,) = [r for r in verify_model(load_model(broken)) if r.prop.name == "validity"]
    assert {n: v.status for n, v in result.verdicts.items()} == {"networkx": "fails", "z3": "fails"}


# -- the schema: structural checks (the format reference: test_inputs_schema) ---------------------------------
def test_structural_problems_come_from_the_schema_at_their_lines(tmp_path):
    text = V2.read_text().replace("value = 1\n", "value = 1.0\n", 1).replace('title = "', 'colour = "red"\ntitle = "')
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    path = _write(tmp_path, text, "v2.toml")
    found = {d.key: d for d in _diagnostics(path)}
    assert found["states[1].value"].message == "expected an integer, got a float 1.0"
    assert found["model.colour"].message.startswith("unknown key (expected one of: encoding, name, sources")
    assert found["model.colour"].line == next(n for n, line in enumerate(text.splitlines(), 1)
                                             if line.startswith("colour"))
