"""The input front end (fsmcheck.inputs): one pass, one diagnostic, bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from fsmcheck.inputs import (
    MAX_NESTING, InputError, open_lines, parse_json, parse_json_line, parse_toml, read_text,
)
from fsmcheck.model import ModelError, load_model


def _only(exc: InputError):
    assert len(exc.diagnostics) == 1
    return exc.diagnostics[0]


def _pipe_of(data: bytes) -> str:
    """A /dev/fd path of the read end of a pipe that a thread fills with ``data``."""
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as f:
            f.write(data)

    threading.Thread(target=feed, daemon=True).start()
    return f"/dev/fd/{r}"


def test_read_text_from_a_pipe_is_the_file(tmp_path):
    data = "line one\nline two\n".encode() * 50_000  # more than a pipe buffer
    f = tmp_path / "t"
    f.write_bytes(data)
    path = _pipe_of(data)
    try:
        piped = read_text(path)
    finally:
        os.close(int(path.rsplit("/", 1)[1]))
    assert piped.data == read_text(f).data
    assert piped.sha256 == read_text(f).sha256


def test_stdin_dash_reads_standard_input(tmp_path):
    code = "from fsmcheck.inputs import read_text; t = read_text('-'); print(t.path, len(t.text))"
    out = subprocess.run([sys.executable, "-c", code], input=b"abc\n", capture_output=True, check=True)
    assert out.stdout.decode().split() == ["<stdin>", "4"]


def test_size_bound_reads_no_further(tmp_path):
    f = tmp_path / "big"
    f.write_bytes(b"x" * 1001)
    with pytest.raises(InputError) as exc:
        read_text(f, max_bytes=1000)
    d = _only(exc.value)
    assert (d.path, d.line, d.key) == (str(f), 1, "<file>") and "larger than 1,000 bytes" in d.message
    assert read_text(f, max_bytes=1001).data == b"x" * 1001


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_unreadable_is_one_diagnostic(tmp_path, what):
    path = tmp_path / "nope" if what == "missing" else tmp_path
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert _only(exc.value).message.startswith("cannot read: ")


def test_bad_utf8_names_line_and_column(tmp_path):
    f = tmp_path / "m.toml"
    f.write_bytes(b"a = 1\nb = \"ok\"\nc = \"\xff\"\n")
    with pytest.raises(InputError) as exc:
        read_text(f)
    d = _only(exc.value)
    assert (d.line, d.key) == (3, "<file>") and "0xff at column 6" in d.message


def test_line_numbers_count_lf_only(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"a": "x\u2028y\u0085z\u2029",\n "b": [1,\n 2,, 3]}\n')
    with pytest.raises(InputError) as exc:
        parse_json(read_text(f))
    assert _only(exc.value).line == 3


@pytest.mark.parametrize("kind", ["toml", "json"])
def test_nesting_guard_at_its_line(tmp_path, kind):
    deep = MAX_NESTING + 5
    if kind == "toml":
        body = "a = 1\nb = " + "[" * deep + "]" * deep + "\n"
        parse = parse_toml
    else:
        body = '{"a": 1,\n"b": ' + "[" * deep + "]" * deep + "}\n"
        parse = parse_json
    f = tmp_path / f"deep.{kind}"
    f.write_text(body)
    with pytest.raises(InputError) as exc:
        parse(read_text(f))
    d = _only(exc.value)
    assert d.line == 2 and f"more than {MAX_NESTING} levels" in d.message


def test_brackets_in_strings_and_comments_do_not_nest(tmp_path):
    f = tmp_path / "ok.toml"
    f.write_text('a = "' + "[" * 500 + '"  # ' + "{" * 500 + "\nb = '''\n" + "[" * 500 + "'''\n")
    assert parse_toml(read_text(f))["a"] == "[" * 500


@pytest.mark.parametrize("kind", ["toml", "json"])
def test_integer_over_the_digit_limit(tmp_path, kind):
    digits = "9" * 5000
    f = tmp_path / f"n.{kind}"
    f.write_text(f"a = 1\nb = {digits}\n" if kind == "toml" else f'{{"a": 1,\n"b": {digits}}}')
    with pytest.raises(InputError) as exc:
        (parse_toml if kind == "toml" else parse_json)(read_text(f))
    d = _only(exc.value)
    assert d.line == 2 and "digits" in d.message


def test_json_rejects_nan():
    with pytest.raises(InputError) as exc:
        parse_json_line("q.log", 7, '{"a": NaN}')
    d = _only(exc.value)
    assert (d.path, d.line) == ("q.log", 7) and "NaN" in d.message


def test_toml_syntax_error_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("a = 1\n\nb = = 2\n")
    with pytest.raises(InputError) as exc:
        parse_toml(read_text(f))
    d = _only(exc.value)
    assert (d.line, d.key) == (3, "<toml>") and d.message.startswith("TOML syntax error")


def test_lines_head_then_iterate_reads_once(tmp_path):
    data = b"".join(b"%d\r\n" % i for i in range(1, 2001))
    path = _pipe_of(data)
    with open_lines(path) as src:
        head = src.head(3)
        assert head == [(1, "1"), (2, "2"), (3, "3")]
        lines = list(src)
    assert lines[:3] == head and lines[-1] == (2000, "2000") and src.lines_read == 2000


def test_lines_head_then_whole_document(tmp_path):
    data = b'{"#meta": {},\n "states": []}\n'
    with open_lines(_pipe_of(data)) as src:
        assert src.head(1) == [(1, '{"#meta": {},')]
        doc = src.read_rest()
    assert doc.data == data and parse_json(doc) == {"#meta": {}, "states": []}


def test_a_long_line_is_refused_at_its_line(tmp_path):
    f = tmp_path / "t"
    f.write_bytes(b"short\n" + b"x" * 5000 + b"\nafter\n")
    with open_lines(f, max_line_bytes=4096) as src:
        with pytest.raises(InputError) as exc:
            list(src)
    d = _only(exc.value)
    assert (d.line, d.key) == (2, "<line>") and "longer than 4,096 bytes" in d.message


def test_a_bad_byte_in_a_streamed_line(tmp_path):
    f = tmp_path / "t"
    f.write_bytes(b"a\nb\n\xc3(\n")
    with open_lines(f) as src, pytest.raises(InputError) as exc:
        list(src)
    assert _only(exc.value).line == 3


def test_model_errors_are_input_errors(tmp_path):
    f = tmp_path / "m.toml"
    f.write_bytes(b"format = 1\n[model]\ntitle = \"\xfe\"\n")
    with pytest.raises(ModelError) as exc:
        load_model(f)
    assert isinstance(exc.value, InputError) and _only(exc.value).line == 3


@pytest.mark.slow
def test_long_strings_scan_in_bounded_memory(tmp_path):
    """The nesting scan must not cost a multiple of a long string's size."""
    code = textwrap.dedent('''
        import resource
        from fsmcheck.inputs import Text, parse_toml
        body = 'a = "' + 'x' * 40_000_000 + '"\\nb = ' + '"' * 3 + 'y' * 10_000_000 + '"' * 3 + '\\n'
        doc = Text("big.toml", b"", body)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        parse_toml(doc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    grown_mb = int(out.stdout.strip())
    # tomllib itself keeps a copy of each string (50 MB); the scan must add little.
    assert grown_mb < 400, f"parse of a 50 MB document grew the peak by {grown_mb} MB"


def test_json_error_at_the_end_is_on_the_last_line(tmp_path):
    f = tmp_path / "cut.json"
    f.write_text('{"a": 1,\n "b": [1, 2\n')
    with pytest.raises(InputError) as exc:
        parse_json(read_text(f))
    d = _only(exc.value)
    assert d.line == 2 and d.message.endswith("(at end of file)")
