"""The ``traces`` campaign: ``fsmcheck check-trace`` on mutated real traces (issue 23).

:func:`mutated_traces` draws one of the real QEMU 10 traces and QMP event
logs in tests/qemu_traces/ (and an ITF trace) and applies 1-4 mutations:
deleting, duplicating, swapping and truncating lines; replacing state and
device names with odd strings (markup, empty, 5,000 characters, U+2028);
JSON values replaced with other types, deep nesting and integers of 5,000
digits; single characters and bytes (NUL, CR, U+2028, bytes that are not
UTF-8) inserted anywhere; the ITF ``#meta.flags`` replaced.

Each input is checked as a file and (every ``pipe_every``-th input) through a
pipe (a FIFO written by a thread: the path a shell's ``<(...)`` gives), and
judged:

- ``exit_3`` / ``exception``: anything but exit 0, 1 or 2 (a traceback, an
  internal error);
- ``bad_line``: a finding or diagnostic whose line is outside the file;
- ``pipe_differs``: the pipe's verdict (exit code and findings) is not the
  file's.

Failing inputs are written by the harness (``fuzz/__main__.py``) under
``--out``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path

from hypothesis import strategies as st

__all__ = ["BASES", "mutated_traces", "campaign", "summary", "failures"]

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "tests" / "qemu_traces"


def _itf_base() -> str:
    states = [("RUNNING", "open"), ("RUNNING_P2P", "request"), ("STOP", "request"), ("RESUMING", "request"),
              ("STOP", "request"), ("RUNNING", "reset")]
    return json.dumps({"#meta": {"format": "ITF", "model": "vfio_v2", "property": "p", "configuration": "c",
                                 "flags": ["STOP_COPY", "P2P"]},
                       "states": [{"index": i, "state": s, "via": v} for i, (s, v) in enumerate(states)]},
                      indent=2) + "\n"


#: The traces mutations start from: name -> bytes.
BASES: dict[str, bytes] = {
    **{str(p.relative_to(TRACES)): p.read_bytes()
       for p in sorted([*TRACES.glob("**/*.trace"), *TRACES.glob("**/*.qmp.jsonl")])},
    "generated.itf.json": _itf_base().encode(),
}

_STATE = re.compile(rb"\b(RUNNING_P2P|PRE_COPY_P2P|RUNNING|STOP_COPY|STOP|RESUMING|PRE_COPY|ERROR|"
                    rb"running-p2p|pre-copy-p2p|running|stop-copy|stop|resuming|pre-copy)\b")
_DEVICE = re.compile(rb"\(([0-9a-f-]{36})\)|\"(mtty\d+)\"")
_JSON_VALUE = re.compile(rb'(:\s*)("(?:[^"\\\n]|\\.)*"|-?\d[\d.]*|true|false|null)')
_ODD = [b"", b"[/]", b"[red]x", b"\xe2\x80\xa8", b"x" * 5000, b"\x00", b"(", b")", b"ERROR", b"FOO",
        b"RUNNING,", b"1e999", b"-1", b"\xff\xfe", b"\r"]
_ODD_JSON = [b"5", b"null", b"[]", b"{}", b'["a"]', b"9" * 5000, b"1e999", b"true", b'"\\u2028"', b'"[/]"',
             b"[" * 3000 + b"]" * 3000, b"{\"a\":" * 500 + b"1" + b"}" * 500, b'"' + b"x" * 5000 + b'"']
_CHARS = [b"\n", b"\r", b"\x00", b"{", b"}", b"(", b")", b":", b"@", b" ", b"\xe2\x80\xa8", b"\xc2\x85",
          b"\xff", b"\xc3", b"\t", b"\xef\xbb\xbf", b"\"", b"\\"]


@st.composite
def _mutation(draw, text: bytes) -> bytes:
    lines = text.split(b"\n")
    kind = draw(st.integers(0, 8))
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if kind == 0 and len(lines) > 1:                       # delete a line
        del lines[i]
    elif kind == 1:                                        # duplicate a line
        lines.insert(i, lines[i])
    elif kind == 2 and len(lines) > 1:                     # swap two lines
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:                                        # truncate a line
        lines[i] = lines[i][:draw(st.integers(0, max(len(lines[i]), 0)))]
    elif kind == 4:                                        # a state name replaced
        found = list(_STATE.finditer(text))
        if found:
            m = draw(st.sampled_from(found))
            return text[:m.start()] + draw(st.sampled_from([*_ODD, b"STOP", b"PRE_COPY_P2P"])) + text[m.end():]
    elif kind == 5:                                        # a device name replaced
        found = list(_DEVICE.finditer(text))
        if found:
            m = draw(st.sampled_from(found))
            g = 1 if m.group(1) else 2
            return text[:m.start(g)] + draw(st.sampled_from(_ODD)) + text[m.end(g):]
    elif kind == 6:                                        # a JSON value replaced
        found = list(_JSON_VALUE.finditer(text))
        if found:
            m = draw(st.sampled_from(found))
            return text[:m.start(2)] + draw(st.sampled_from(_ODD_JSON)) + text[m.end(2):]
    elif kind == 7:                                        # a character inserted anywhere
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from(_CHARS)) + text[at:]
    else:                                                  # ITF flags replaced
        return re.sub(rb'"flags": \[[^\]]*\]', b'"flags": ' + draw(st.sampled_from(
            [b'["P2P"]', b"[1, 2]", b'"STOP_COPY"', b"[[]]", b"[]", b'["STOP_COPY", "PRE_COPY"]', b"null"])),
            text, count=1)
    return b"\n".join(lines)


@st.composite
def mutated_traces(draw) -> tuple[str, bytes]:
    """(base name, mutated bytes)."""
    name = draw(st.sampled_from(sorted(BASES)))
    text = BASES[name]
    for _ in range(draw(st.integers(1, 4))):
        text = draw(_mutation(text))
    return name, text


def _verdict(path: str) -> tuple[int, list, list, BaseException | None]:
    from click.testing import CliRunner

    from fsmcheck.cli import main

    result = CliRunner().invoke(main, ["check-trace", path, "--json", "--max-violations", "50"])
    findings, errors = [], []
    try:
        doc = json.loads(result.stdout)
        findings = [(v["rule"], v["line"]) for t in doc["traces"] for v in t["violations"]]
        errors = doc["errors"]
    except (ValueError, KeyError, TypeError):
        pass
    exc = result.exception if result.exception is not None and not isinstance(result.exception, SystemExit) \
        else None
    return result.exit_code, findings, errors, exc


def _through_fifo(data: bytes, folder: Path) -> tuple[int, list, list, BaseException | None]:
    fifo = folder / "fifo"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)

    def write():
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except OSError:  # the reader refused early and closed the pipe
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        return _verdict(str(fifo))
    finally:
        try:  # unblock a writer whose reader never opened the FIFO
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
        writer.join(10)
        fifo.unlink(missing_ok=True)


def campaign(args, stats, batch, save):
    """(body, strategy, cleanup) of one batch of the ``traces`` campaign
    (the harness's protocol); ``save(kind, files, info)`` keeps a failing input."""
    tmp = Path(tempfile.mkdtemp(prefix="fsmcheck-fuzz-traces-"))
    pipe_every = max(1, getattr(args, "pipe_every", 4))

    def body(drawn):
        stats["inputs"] += 1
        base, data = drawn
        name = Path(base).name
        path = tmp / name
        path.write_bytes(data)
        code, findings, errors, exc = _verdict(str(path))
        stats[f"exit_{code}"] += 1
        keep = {name: data.decode("utf-8", errors="backslashreplace")}
        if exc is not None or code not in (0, 1, 2):
            stats["exception" if exc is not None else "exit_other"] += 1
            save("trace-exception", keep, f"{base}: exit {code}: {type(exc).__name__ if exc else ''} {exc}"[:2000])
            return
        nlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        lines_out = [line for _, line in findings] + [int(m.group(1)) for e in errors
                                                     for m in [re.search(r":(\d+): ", e)] if m]
        if any(not 1 <= n <= max(nlines, 1) for n in lines_out):
            stats["bad_line"] += 1
            save("trace-bad-line", keep, f"{base}: lines {lines_out} of a file of {nlines} lines")
        if stats["inputs"] % pipe_every == 0:
            stats["piped"] += 1
            piped = _through_fifo(data, tmp)
            if (piped[0], piped[1]) != (code, findings):
                stats["pipe_differs"] += 1
                save("trace-pipe-differs", keep, f"{base}: file exit {code} {findings[:10]}; pipe exit "
                     f"{piped[0]} {piped[1][:10]}")

    import shutil

    return body, mutated_traces(), lambda: shutil.rmtree(tmp, ignore_errors=True)


def failures(f: dict) -> int:
    """The failing inputs among a run's figures."""
    return f.get("exception", 0) + f.get("exit_other", 0) + f.get("exit_3", 0) + f.get("bad_line", 0) + \
        f.get("pipe_differs", 0)


def summary(f: dict) -> str:
    """The campaign's one-line summary."""
    return (f"traces: {f.get('inputs', 0)} mutated traces in {f.get('seconds', 0)} s: exit 0/1/2 "
            f"{f.get('exit_0', 0)}/{f.get('exit_1', 0)}/{f.get('exit_2', 0)}, {f.get('exit_3', 0)} exit 3, "
            f"{f.get('exception', 0) + f.get('exit_other', 0)} exceptions, {f.get('bad_line', 0)} lines outside "
            f"the file; {f.get('piped', 0)} also through a pipe, {f.get('pipe_differs', 0)} with another verdict")
