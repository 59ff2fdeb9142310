"""Issue 13, loader: whatever a model file holds, load_model raises only
ModelError, at the right file:line (each case raised something else, or
named the wrong line, before)."""

from __future__ import annotations

import shutil

import pytest

from fsmcheck.model import ModelError, load_model

from .conftest import MODELS, TOY, cli


def _error(path):
    with pytest.raises(ModelError) as info:
        load_model(path)
    return info.value.diagnostics


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


def _toy(tmp_path, edit) -> tuple:
    text = edit(TOY.read_text())
    path = tmp_path / "door.toml"
    path.write_text(text, encoding="utf-8")
    return path, text


def _v2(tmp_path, old: str, new: str):
    for model in MODELS.glob("*.toml"):
        shutil.copy(model, tmp_path / model.name)
    path = tmp_path / "vfio_v2.toml"
    text = path.read_text()
    assert text.count(old) == 1
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path, text


@pytest.mark.parametrize("cell", ['["STOP"]', '{ a = "STOP" }'])
def test_walk_next_cell_that_is_not_a_name(tmp_path, cell):
    path, text = _v2(tmp_path, 'STOP = { STOP = "STOP", RUNNING = "RUNNING_P2P"',
                     f'STOP = {{ STOP = {cell}, RUNNING = "RUNNING_P2P"')
    [d] = _error(path)
    assert d.key == "walk.next.STOP.STOP" and d.message.startswith("expected a string, got ")
    assert d.line == _line_of(text, "STOP = { STOP = ")


@pytest.mark.parametrize("value", ["[" * 5000 + "1" + "]" * 5000, "{ a = " * 3000 + "1" + " }" * 3000])
def test_deeply_nested_toml(tmp_path, value):
    path, text = _toy(tmp_path, lambda t: t.replace('title = "', f"deep = {value}\ntitle = \"", 1))
    [d] = _error(path)
    assert d.key == "<toml>" and "nested" in d.message
    assert d.line == _line_of(text, "deep = ")


@pytest.mark.parametrize("expr", ["(" * 300 + "s" + ")" * 300, "not " * 5000 + "s",
                                  " + ".join(["s"] * 50000) + " == 0"])
def test_deeply_nested_or_huge_predicates(tmp_path, expr):
    text = (MODELS / "vfio_v1.toml").read_text()
    old = 'valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"'
    path = tmp_path / "v1.toml"
    path.write_text(text.replace(old, f'valid = "{expr}"'))
    [d] = _error(path)
    assert d.key == "encoding.valid" and d.line == _line_of(text, "valid = ")


def test_huge_shift_in_a_predicate_evaluates_like_z3():
    from fsmcheck.model.expr import parse_predicate

    pred = parse_predicate("(1 << 0xFFFFFFFFFFFFFFFF) == 0 and (s << 64) == 0", 64)
    assert pred(5) is True


@pytest.mark.parametrize("name", ["vfio_v1.toml\\u0000", "y" * 5000])
def test_correspondence_model_name_unusable(tmp_path, name):
    path, text = _v2(tmp_path, 'model = "vfio_v1.toml"', f'model = "{name}"')
    [d] = _error(path)
    assert d.key == "correspondence.model" and d.line == _line_of(text, 'model = "')


@pytest.mark.parametrize("old,new,key", [
    ("bits = { RUNNING = 0, SAVING = 1, RESUMING = 2 }", "bits = { RUNNING = -1, SAVING = 1, RESUMING = 2 }",
     "encoding.bits.RUNNING"),
    ("mask = 0x7", "mask = -1", "encoding.mask"),
])
def test_negative_bits_and_mask(tmp_path, old, new, key):
    text = (MODELS / "vfio_v1.toml").read_text().replace(old, new)
    path = tmp_path / "v1.toml"
    path.write_text(text)
    keys = {d.key: d for d in _error(path)}
    assert key in keys and keys[key].line == _line_of(text, new.split(" = ")[0] + " = " + new.split(" = ")[1][:2])


@pytest.mark.parametrize("old,new,key,says", [
    ('STOP_COPY = "SAVING"', 'STOP_COPY = "SAVED"', "correspondence.map.STOP_COPY", "no state 'SAVED'"),
    ('profile = "lenient"', 'profile = "lax"', "correspondence.profile", "no profile 'lax'"),
])
def test_correspondence_checked_against_the_other_model(tmp_path, old, new, key, says):
    path, text = _v2(tmp_path, old, new)
    [d] = _error(path)
    assert d.key == key and says in d.message and d.line == _line_of(text, new)
    result = cli("verify", "--no-color", str(path))
    assert result.exit_code == 2, result.output  # bad input, not "internal error"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_line_numbers_count_only_toml_newlines(tmp_path, separator):
    def edit(t):
        t = t.replace("# A toy protocol", f"# A toy{separator}protocol", 1)
        return t.replace('initial = "LOCKED"', 'initial = "NOPE"')

    path, text = _toy(tmp_path, edit)
    [d] = _error(path)
    assert d.key == "device.initial" and d.line == _line_of(text, 'initial = "NOPE"')


def test_syntax_error_at_end_of_file(tmp_path):
    path, text = _toy(tmp_path, lambda t: t.rstrip("\n") + "\n\nbroken = ")
    [d] = _error(path)
    assert d.key == "<toml>" and "end of file" in d.message
    assert d.line == len(text.split("\n")) == _line_of(text, "broken = ")


def test_conflicting_duplicate_arcs_name_both_lines(tmp_path):
    extra = '\n[[arcs]]\nfrom = "LOCKED"\nto = "CLOSED"\nneeds = ["HOLD"]\nsession = "starts"\n'
    path, text = _toy(tmp_path, lambda t: t + extra)
    first = next(n for n, line in enumerate(text.split("\n"), 1)
                 if line == "[[arcs]]" and text.split("\n")[n] == 'from = "LOCKED"' and text.split("\n")[n + 1] == 'to = "CLOSED"')
    last = len(text.split("\n")) - 5
    [d] = _error(path)
    assert "conflicting arcs LOCKED -> CLOSED" in d.message
    assert d.line == last and f"line {first}" in d.message and f"line {last}" in d.message


def test_same_step_declared_twice_under_other_flags_is_not_a_conflict(tmp_path):
    extra = '\n[[arcs]]\nfrom = "LOCKED"\nto = "CLOSED"\nneeds = ["HOLD"]\n'
    path, _ = _toy(tmp_path, lambda t: t.replace('from = "LOCKED"\nto = "CLOSED"\n',
                                                  'from = "LOCKED"\nto = "CLOSED"\nunless = ["HOLD"]\n', 1) + extra)
    assert load_model(path).name == "door"
