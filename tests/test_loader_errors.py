"""Malformed model files: every problem reported as file:line: key: message."""

from __future__ import annotations

import re

import pytest

from fsmcheck.model import ModelError, load_model

from .conftest import MODELS

LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<key>\S+): (?P<message>.+)$")


def _errors(tmp_path, text: str) -> list[dict]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ModelError) as info:
        load_model(path)
    out = []
    for line in str(info.value).splitlines():
        match = LINE.match(line)
        assert match, f"not file:line: key: message -> {line!r}"
        assert match["file"] == str(path)
        out.append({**match.groupdict(), "line": int(match["line"])})
    return out


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


MINIMAL = '''format = 1

[model]
name = "m"

[device]
initial = "A"
reset = "A"

[[states]]
name = "A"
value = 0

[[states]]
name = "B"
value = 1

[[arcs]]
from = "A"
to = "B"
'''


def test_minimal_model_loads(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(MINIMAL)
    model = load_model(path)
    assert model.state_names == ("A", "B") and len(model.arcs) == 1


def test_toml_syntax_error_names_line(tmp_path):
    text = MINIMAL.replace('to = "B"', 'to = "B')
    [err] = _errors(tmp_path, text)
    assert err["key"] == "<toml>" and "TOML syntax error" in err["message"]
    assert err["line"] == _line_of(text, 'to = "B')


def test_missing_required_keys(tmp_path):
    text = MINIMAL.replace('initial = "A"\n', "").replace('value = 1\n', "")
    errors = _errors(tmp_path, text)
    keys = {e["key"]: e for e in errors}
    assert "missing required key 'initial'" in keys["device"]["message"]
    assert keys["device"]["line"] == _line_of(text, "[device]")
    assert "missing required key 'value'" in keys["states[1]"]["message"]


def test_unknown_states_in_arcs_and_device(tmp_path):
    text = MINIMAL.replace('to = "B"', 'to = "C"').replace('reset = "A"', 'reset = "Z"')
    errors = {e["key"]: e for e in _errors(tmp_path, text)}
    assert errors["arcs[0].to"]["message"].startswith("unknown state 'C'")
    assert errors["arcs[0].to"]["line"] == _line_of(text, 'to = "C"')
    assert errors["device.reset"]["message"] == "unknown state 'Z'"


def test_duplicate_arcs_and_states(tmp_path):
    text = MINIMAL + '\n[[arcs]]\nfrom = "A"\nto = "B"\n\n[[states]]\nname = "A"\nvalue = 7\n'
    errors = _errors(tmp_path, text)
    messages = [e["message"] for e in errors]
    assert any(m.startswith("duplicate arc A -> B (first declared at line") for m in messages)
    assert any(m.startswith("duplicate state 'A'") for m in messages)
    dup = next(e for e in errors if e["message"].startswith("duplicate arc"))
    assert dup["key"] == "arcs[1]"
    assert dup["line"] == len(MINIMAL.splitlines()) + 2


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    text = MINIMAL.replace('to = "B"', 'to = "C"').replace("format = 1", "format = 9\nbogus = 1")
    errors = _errors(tmp_path, text)
    assert {e["key"] for e in errors} >= {"format", "arcs[0].to", "bogus"}


def test_bad_session_effect_and_flags(tmp_path):
    text = MINIMAL.replace('to = "B"', 'to = "B"\nsession = "begins"\nneeds = ["NOPE"]')
    errors = {e["key"]: e["message"] for e in _errors(tmp_path, text)}
    assert errors["arcs[0].session"] == 'expected "starts", "keeps", "ends" or "none", got a string \'begins\''
    assert errors["arcs[0].needs"].startswith("unknown flag 'NOPE'")


def test_bad_validity_predicate(tmp_path):
    text = (MODELS / "vfio_v1.toml").read_text().replace(
        'valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"', 'valid = "__import__(\'os\')"')
    errors = _errors(tmp_path, text)
    [err] = [e for e in errors if e["key"] == "encoding.valid"]
    assert "Call is not allowed" in err["message"] or "unknown name" in err["message"]
    assert err["line"] == _line_of(text, "valid = ")


def test_walk_missing_row_and_entry(tmp_path):
    v2 = (MODELS / "vfio_v2.toml").read_text()
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    row = next(line for line in v2.splitlines() if line.startswith("RESUMING = { STOP"))
    text = v2.replace(row + "\n", "").replace('STOP = { STOP = "STOP", RUNNING = "RUNNING_P2P", ', 'STOP = { ')
    errors = {(e["key"], e["message"]) for e in _errors(tmp_path, text)}
    assert ("walk.next", "missing row for current state 'RESUMING'") in errors
    assert ("walk.next.STOP", "missing entry for requested state 'RUNNING'") in errors
    assert ("walk.next.STOP", "missing entry for requested state 'STOP'") in errors


def test_missing_file(tmp_path):
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "nope.toml")
    assert "cannot read" in str(info.value)
