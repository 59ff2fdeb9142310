"""fsmcheck check-trace: real QEMU traces pass; defects seeded into them by
program fail with their rule and line; QMP and ITF inputs; JSON and SARIF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsmcheck.cli import main
from fsmcheck.model import load_model
from fsmcheck.tracecheck import check_trace, open_trace
from fsmcheck.tracecheck.rules import RULES
from fsmcheck.semantics.combination import derive_table
from fsmcheck.model.schema import Config

from .conftest import MODELS, TOOLS, V2_WITHOUT_STOP_TO_RESUMING, require_tool

TRACES = Path(__file__).resolve().parent / "qemu_traces"
SOURCE, DESTINATION = TRACES / "source.trace", TRACES / "destination.trace"
V2 = load_model(MODELS / "vfio_v2.toml")


# -- helpers: the seeded defects are edits computed from the real lines -----------------------

def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _devices(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        m = re.search(r":vfio_migration_set_state +\(([^)]+)\)", line)
        if m and m.group(1) not in found:
            found.append(m.group(1))
    return found


def _find(lines: list[str], event: str, device: str, args: str = "", after: int = 0) -> int:
    """0-based index of the first line at or after ``after`` of ``event`` for
    ``device`` whose arguments contain ``args`` (end with it, if it ends with ``$``)."""
    exact = args.endswith("$")
    args = args.rstrip("$")
    for i in range(after, len(lines)):
        head, _, rest = lines[i].partition(f":{event} ")
        if rest and f"({device})" in rest and (rest.endswith(args) if exact else args in rest):
            return i
    raise AssertionError(f"no {event} ({device}) {args!r} in the trace")


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _check(path: Path, *args: str):
    result = CliRunner().invoke(main, ["check-trace", str(path), "--json", *args])
    doc = json.loads(result.output)
    found = [(v["rule"], v["line"]) for t in doc["traces"] for v in t["violations"]]
    return result.exit_code, doc, found


def _request_block(lines: list[str], device: str, state: str, after: int = 0) -> tuple[int, int]:
    """[start, end) of a device's set_state STATE line and the lines of the
    same device that follow it up to its next set_state."""
    start = _find(lines, "vfio_migration_set_state", device, f"new state {state},", after)
    end = start + 1
    while end < len(lines) and f"({device})" in lines[end] and ":vfio_migration_set_state " not in lines[end]:
        end += 1
    return start, end


def _move_after(lines: list[str], block: tuple[int, int], anchor: tuple[int, int]) -> list[str]:
    """``lines`` with the lines of ``block`` moved to just after those of ``anchor`` (anchor after block)."""
    (b0, b1), (a0, a1) = block, anchor
    assert b1 <= a0
    return lines[:b0] + lines[b1:a1] + lines[b0:b1] + lines[a1:]


# -- the real traces ----------------------------------------------------------------------------

@pytest.mark.parametrize("trace", [SOURCE, DESTINATION], ids=["source", "destination"])
def test_real_traces_pass_with_no_violation(trace):
    code, doc, found = _check(trace)
    assert (code, found) == (0, [])
    t = doc["traces"][0]
    assert t["format"] == "qemu-log" and t["p2p"] == "checked"
    assert [d["name"] for d in t["devices"]] == _devices(_lines(trace))
    for d in t["devices"]:
        assert d["requests_total"] == sum(":vfio_migration_set_state " in l and f"({d['name']})" in l
                                          for l in _lines(trace))


VM_QEMU_RUNS = sorted(p for p in TRACES.glob("*/*") if p.suffix == ".trace" or p.name.endswith(".qmp.jsonl"))


@pytest.mark.parametrize("trace", VM_QEMU_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_vm_qemu_runs_pass_with_no_violation(trace):
    """Every trace and QMP log that ``make vm-qemu`` brought back (file:, live unix:, and the
    default-options run whose migration fails) passes the checker with no finding."""
    assert len(VM_QEMU_RUNS) >= 10
    code, _doc, found = _check(trace)
    assert (code, found) == (0, [])


def test_real_sequences_and_derived_kernel_paths():
    _, src, _ = _check(SOURCE)
    _, dst, _ = _check(DESTINATION)
    for d in src["traces"][0]["devices"]:
        assert d["states"] == ["RUNNING_P2P", "RUNNING", "PRE_COPY", "PRE_COPY_P2P", "STOP_COPY", "STOP"]
        assert d["flags"] == ["STOP_COPY", "P2P", "PRE_COPY"] and d["flags_from"] == "auto"
    for d in dst["traces"][0]["devices"]:
        assert d["states"][:3] == ["RESUMING", "RUNNING_P2P", "RUNNING"]
        assert d["flags"] == ["STOP_COPY", "P2P"]  # the smallest defined set holding what was seen
        table = derive_table(V2, Config(frozenset(d["flags"]), "spec", V2.flag_order))
        for r in d["requests"]:
            want = table[(r["current"], r["requested"])]
            assert r["path"] == list(want.path) and r["accepted"]
    # Both devices reach PRE_COPY_P2P before either enters STOP_COPY (issue 10's expected order).
    timeline = src["traces"][0]["timeline"]
    first_stop_copy = min(i for i, e in enumerate(timeline) if e["state"] == "STOP_COPY")
    assert {e["device"] for e in timeline[:first_stop_copy] if e["state"] == "PRE_COPY_P2P"} == \
        set(_devices(_lines(SOURCE)))


def test_text_output_shows_tables_and_sequences():
    result = CliRunner().invoke(main, ["check-trace", str(SOURCE), "--no-color"])
    assert result.exit_code == 0
    assert "RUNNING_P2P -> RUNNING -> PRE_COPY -> PRE_COPY_P2P -> STOP_COPY -> STOP" in result.output
    assert "kernel path" in result.output and "recorded states, in trace order" in result.output
    assert "0 violation(s)" in result.output


# -- seeded defects -----------------------------------------------------------------------------

def test_device_stopped_while_another_is_pre_copy(tmp_path):
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    # d1 enters PRE_COPY_P2P only after d2 has entered STOP_COPY.
    block = _request_block(lines, d1, "PRE_COPY_P2P")
    anchor = _request_block(lines, d2, "STOP_COPY")
    seeded = _move_after(lines, block, anchor)
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    stop_copy = _find(seeded, "vfio_migration_set_device_state", d2, "state STOP_COPY") + 1
    assert code == 1 and found[0] == ("p2p-quiesce", stop_copy)
    v = doc["traces"][0]["violations"][0]
    assert d1 in v["message"] and "PRE_COPY" in v["message"] and "STOP_COPY" in v["message"]
    assert v["source"] == V2.p2p.source  # the model's own [p2p] source


def test_device_stopped_while_another_is_running(tmp_path):
    lines = _lines(DESTINATION)
    d1, d2 = _devices(lines)
    # At shutdown, d1 leaves RUNNING only after d2 has stopped.
    shutdown = _find(lines, "vfio_migration_set_state", d2, "new state RUNNING_P2P,",
                     _find(lines, "vfio_load_cleanup", d2))
    block = _request_block(lines, d1, "RUNNING_P2P", shutdown)
    anchor = _request_block(lines, d2, "STOP", shutdown)
    seeded = _move_after(lines, block, anchor)
    code, doc, found = _check(_write(tmp_path, "destination.trace", seeded))
    stop = _find(seeded, "vfio_migration_set_device_state", d2, "state STOP$", shutdown) + 1
    assert code == 1 and found == [("p2p-quiesce", stop)]
    assert f"{d1} is RUNNING" in doc["traces"][0]["violations"][0]["message"]


def test_request_the_model_rejects(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    # d1 asks STOP_COPY -> PRE_COPY instead of STOP_COPY -> STOP (and the device takes it).
    i = _find(lines, "vfio_migration_set_state", d1, "new state STOP,")
    j = _find(lines, "vfio_migration_set_device_state", d1, "state STOP$", i)
    seeded = list(lines)
    seeded[i] = lines[i].replace("new state STOP,", "new state PRE_COPY,")
    seeded[j] = lines[j].replace("state STOP", "state PRE_COPY")
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    assert code == 1 and found[0] == ("request-accepted", i + 1)
    assert "not permitted" in doc["traces"][0]["violations"][0]["source"]
    assert "STOP_COPY -> PRE_COPY" in doc["traces"][0]["violations"][0]["message"]


def test_request_from_error(tmp_path):
    lines = _lines(DESTINATION)
    d1 = _devices(lines)[0]
    # The device is recorded in ERROR after RESUMING -> RUNNING_P2P; QEMU then asks RUNNING of it.
    i = _find(lines, "vfio_migration_set_device_state", d1, "state RUNNING_P2P")
    seeded = list(lines)
    seeded[i] = lines[i].replace("state RUNNING_P2P", "state ERROR")
    nxt = _find(seeded, "vfio_migration_set_state", d1, "", i)
    code, doc, found = _check(_write(tmp_path, "destination.trace", seeded))
    assert code == 1
    assert ("recorded-state", i + 1) in found  # QEMU never records ERROR
    assert ("error-exit", nxt + 1) in found
    assert found.index(("error-exit", nxt + 1)) == 1


def test_save_data_after_the_session_ended(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    block = _find(lines, "vfio_save_block", d1, "", _find(lines, "vfio_save_complete_precopy_start", d1))
    cleanup = _find(lines, "vfio_save_cleanup", d1)
    seeded = lines[:cleanup + 1] + [lines[block]] + lines[cleanup + 1:]
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    assert code == 1 and found == [("data-session", cleanup + 2)]
    message = doc["traces"][0]["violations"][0]["message"]
    assert "save data" in message and "ended at line" in message


def test_load_data_outside_resuming(tmp_path):
    lines = _lines(DESTINATION)
    d1 = _devices(lines)[0]
    data = _find(lines, "vfio_load_state_device_data", d1)
    running = _find(lines, "vfio_migration_set_device_state", d1, "state RUNNING_P2P")
    seeded = lines[:running + 1] + [lines[data]] + lines[running + 1:]
    code, doc, found = _check(_write(tmp_path, "destination.trace", seeded))
    assert code == 1 and found == [("data-session", running + 2)]
    assert "RUNNING_P2P, outside the resuming group" in doc["traces"][0]["violations"][0]["message"]


def test_truncated_line(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    i = _find(lines, "vfio_migration_set_state", d1, "new state PRE_COPY_P2P,")
    seeded = list(lines)
    seeded[i] = lines[i][: lines[i].index("PRE_COPY_P2P") + 6]  # "... new state PRE_CO"
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    assert code == 1 and found[0] == ("event-format", i + 1)
    v = doc["traces"][0]["violations"][0]
    assert [c["line"] for c in v["context"]] == [i - 1, i, i + 1, i + 2, i + 3]
    # The set_device_state that follows has no request left before it.
    assert ("recorded-state", i + 2) in found


def test_truncated_last_line(tmp_path):
    lines = _lines(DESTINATION)
    path = tmp_path / "destination.trace"
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:12])  # cut inside the PID@SEC.USEC: prefix
    code, _, found = _check(path)
    assert code == 1 and found[0] == ("event-format", len(lines))


# -- QMP and ITF input --------------------------------------------------------------------------

def _qmp_from(lines: list[str]) -> list[str]:
    """The QMP VFIO_MIGRATION events QEMU sent alongside ``lines`` (one per
    vfio_migration_set_device_state), after a greeting and a command reply."""
    ids = {d: f"mtty{i}" for i, d in enumerate(_devices(lines))}
    out = [json.dumps({"QMP": {"version": {"qemu": {"major": 10, "minor": 0, "micro": 2}}, "capabilities": []}}),
           json.dumps({"return": {}})]
    for line in lines:
        m = re.search(r"@(\d+)\.(\d+):vfio_migration_set_device_state +\(([^)]+)\) state (\S+)", line)
        if m:
            out.append(json.dumps({"timestamp": {"seconds": int(m.group(1)), "microseconds": int(m.group(2))},
                                   "event": "VFIO_MIGRATION",
                                   "data": {"device-id": ids[m.group(3)],
                                            "qom-path": f"/machine/peripheral/{ids[m.group(3)]}",
                                            "device-state": m.group(4).lower().replace("_", "-")}}))
    return out


def test_qmp_events_pass_and_fail(tmp_path):
    code, doc, found = _check(_write(tmp_path, "source.qmp", _qmp_from(_lines(SOURCE))))
    assert (code, found) == (0, [])
    t = doc["traces"][0]
    assert t["format"] == "qmp" and [d["name"] for d in t["devices"]] == ["mtty0", "mtty1"]
    assert t["devices"][0]["states"] == ["RUNNING_P2P", "RUNNING", "PRE_COPY", "PRE_COPY_P2P", "STOP_COPY", "STOP"]
    # The same P2P defect, seeded into the log and carried into the QMP events.
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    seeded = _qmp_from(_move_after(lines, _request_block(lines, d1, "PRE_COPY_P2P"),
                                   _request_block(lines, d2, "STOP_COPY")))
    at = next(i for i, l in enumerate(seeded) if '"mtty1"' in l and '"stop-copy"' in l) + 1
    code, _, found = _check(_write(tmp_path, "seeded.qmp", seeded))
    assert code == 1 and found == [("p2p-quiesce", at)]


def test_qmp_truncated_line(tmp_path):
    events = _qmp_from(_lines(DESTINATION))
    events[5] = events[5][:30]
    code, _, found = _check(_write(tmp_path, "dst.qmp", events))
    assert code == 1 and found[0] == ("event-format", 6)


@pytest.fixture
def itf_traces(variant, tmp_path):
    """ITF traces ``verify --trace-dir`` writes for v2 without STOP -> RESUMING."""
    model = variant(*V2_WITHOUT_STOP_TO_RESUMING)
    result = CliRunner().invoke(main, ["verify", "-q", str(model), "--trace-dir", str(tmp_path / "itf")])
    assert result.exit_code == 1
    return model, sorted((tmp_path / "itf").glob("vfio_v2.walk-agrees.*.networkx.itf.json"))


@pytest.mark.slow
def test_itf_input(itf_traces, tmp_path):
    model, traces = itf_traces
    assert len(traces) == 4
    for trace in traces:
        doc = json.loads(trace.read_text())
        # Against the shipped model the counterexample's STOP -> RESUMING is a legal request...
        code, out, found = _check(trace)
        assert (code, found) == (0, [])
        dev = out["traces"][0]["devices"][0]
        assert out["traces"][0]["format"] == "itf" and dev["flags_from"] == "trace"
        assert dev["flags"] == doc["#meta"]["flags"]
        assert dev["states"] == [s["state"] for s in doc["states"]]
        # ...against the model that lacks the arc it is rejected, at the line of that state.
        code, out, found = _check(trace, "--model", str(model))
        index_line = next(n for n, l in enumerate(trace.read_text().splitlines(), 1)
                          if re.search(r'"index": 1\b', l))
        assert code == 1 and found == [("request-accepted", index_line)]


def test_itf_of_another_model_is_bad_input(tmp_path):
    doc = {"#meta": {"format": "ITF", "model": "vfio_v1"}, "states": [{"state": "RUNNING", "via": "open"}]}
    path = tmp_path / "v1.itf.json"
    path.write_text(json.dumps(doc, indent=2))
    result = CliRunner().invoke(main, ["check-trace", str(path)])
    assert result.exit_code == 2 and "an ITF trace of model vfio_v1" in result.output


# -- bad input, JSON shape, SARIF ---------------------------------------------------------------

def test_no_format_is_bad_input_naming_file_and_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n\nhello world, this is not a trace\n")
    result = CliRunner().invoke(main, ["check-trace", str(path), str(SOURCE)])
    assert result.exit_code == 2
    assert f"{path}:3: fits no trace format" in result.output
    assert "1 trace(s) checked" in result.output  # the good trace is still checked


def test_unknown_flag_set_is_bad_input():
    result = CliRunner().invoke(main, ["check-trace", str(SOURCE), "--flags", "P2P"])
    assert result.exit_code == 2 and "not a defined flag set" in result.output


def test_given_flags_reject_the_unsupported_states():
    code, doc, found = _check(SOURCE, "--flags", "STOP_COPY,P2P")
    assert code == 1 and {r for r, _ in found} >= {"request-accepted"}
    assert all(d["flags_from"] == "given" for d in doc["traces"][0]["devices"])


def test_unknown_events_are_kept_and_ignored(tmp_path):
    lines = _lines(SOURCE)
    seeded = [lines[0], "some other log output", lines[1].split(":", 1)[0] + ":vfio_region_mmap  (x) 0x0"]
    seeded += lines[1:]
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    _, plain, _ = _check(SOURCE)
    assert (code, found) == (0, [])
    assert doc["traces"][0]["other"] == plain["traces"][0]["other"] + 2
    assert doc["traces"][0]["events"] == plain["traces"][0]["events"]


def test_json_shape():
    _, doc, _ = _check(SOURCE)
    assert set(doc) == {"fsmcheck", "model", "model_path", "flags", "rules", "traces", "errors", "summary",
                        "exit_code"}
    assert set(doc["rules"]) == set(RULES)
    t = doc["traces"][0]
    assert set(t) == {"file", "format", "lines", "events", "other", "p2p", "devices", "violations",
                      "violations_total", "timeline", "timeline_total"}
    assert set(t["devices"][0]) == {"name", "first_line", "flags", "flags_from", "states", "states_total",
                                    "requests", "requests_total"}
    assert set(t["devices"][0]["requests"][0]) == {"line", "current", "requested", "recover", "outcome",
                                                   "recorded", "accepted", "path"}
    assert doc["summary"] == {"traces": 1, "violations": 0} and doc["exit_code"] == 0


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = TOOLS / "sarif-2.1.0-rtm.5.json"
    require_tool(schema_path.is_file(), f"the SARIF 2.1.0 schema ({schema_path})",
                 "make setup fetches it from npm's @microsoft/jest-sarif")
    schema = json.loads(schema_path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_sarif_validates_and_points_into_the_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    seeded = _write(tmp_path, "source.trace", _move_after(lines, _request_block(lines, d1, "PRE_COPY_P2P"),
                                                          _request_block(lines, d2, "STOP_COPY")))
    out = tmp_path / "trace.sarif"
    result = CliRunner().invoke(main, ["check-trace", str(seeded), "--sarif", str(out)])
    assert result.exit_code == 1
    doc = json.loads(out.read_text())
    validator = _validator()
    assert [e.message for e in validator.iter_errors(doc)] == []
    (res,) = doc["runs"][0]["results"]
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "source.trace", "uriBaseId": "%SRCROOT%"}
    line = loc["region"]["startLine"]
    assert res["ruleId"] == "p2p-quiesce" and seeded.read_text().splitlines()[line - 1] == loc["region"]["snippet"]["text"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules[res["ruleIndex"]]["id"] == "p2p-quiesce"
    res["level"] = "fatal"
    assert any(validator.iter_errors(doc))


def test_streaming_keeps_bounded_state(tmp_path):
    """A long trace (the real migration repeated) keeps at most max_rows rows
    and max_violations findings while counting all of them."""
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    seeded = _move_after(lines, _request_block(lines, d1, "PRE_COPY_P2P"), _request_block(lines, d2, "STOP_COPY"))
    # Repeat the whole seeded migration: each copy starts with the devices in STOP, from which
    # the model accepts the RUNNING_P2P request the copy begins with; each copy has one finding.
    body = [l for l in seeded if "vfio_migration_realize" not in l]
    path = _write(tmp_path, "long.trace", body * 50)
    report = check_trace(V2, open_trace(path), None, max_rows=10, max_violations=5)
    assert report.lines == len(body) * 50
    assert len(report.violations) == 5 and report.violations_total == 50
    assert all(len(d.requests) == 10 and d.requests_total == 7 * 50 for d in report.devices)


# -- failures and recoveries --------------------------------------------------------------------

def test_failed_request_without_a_recovery(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    # d1's PRE_COPY -> PRE_COPY_P2P has no set_device_state after it: it failed, and no recovery follows.
    i = _find(lines, "vfio_migration_set_state", d1, "new state PRE_COPY_P2P,")
    j = _find(lines, "vfio_migration_set_device_state", d1, "state PRE_COPY_P2P", i)
    seeded = lines[:j] + lines[j + 1:]
    code, doc, found = _check(_write(tmp_path, "source.trace", seeded))
    assert code == 1 and ("recovery", i + 1) in found
    v = next(v for v in doc["traces"][0]["violations"] if v["rule"] == "recovery")
    assert "no state was recorded after it" in v["message"] and v["context"][0]["line"] == i + 1


def _fallback(lines: list[str], d1_fails: bool) -> list[str]:
    """The source side of a failed migration (issue 10: without the dirty-tracking
    options the source returns to RUNNING), written from the real lines: both
    devices go to PRE_COPY, then vfio_save_cleanup and a request of RUNNING each.
    With ``d1_fails`` d1's RUNNING -> PRE_COPY (recover RUNNING) fails: QEMU
    records the recover state, skips vfio_save_setup, and its later request of
    RUNNING is a no-op (no record)."""
    d1, d2 = _devices(lines)
    upto = _find(lines, "vfio_save_setup", d2) + 1
    head = list(lines[:upto])
    if d1_fails:
        k = _find(head, "vfio_migration_set_device_state", d1, "state PRE_COPY$")
        head[k] = head[k].replace("state PRE_COPY", "state RUNNING")
        del head[_find(head, "vfio_save_setup", d1)]
    tail = []
    for d in (d1, d2):
        request = lines[_find(lines, "vfio_migration_set_state", d, "new state STOP,")]
        record = lines[_find(lines, "vfio_migration_set_device_state", d, "state STOP$")]
        tail += [lines[_find(lines, "vfio_save_cleanup", d)], request.replace("new state STOP,", "new state RUNNING,")]
        if not (d1_fails and d == d1):
            tail.append(record.replace("state STOP", "state RUNNING"))
    return head + tail


def test_a_migration_that_falls_back_to_running_passes(tmp_path):
    code, doc, found = _check(_write(tmp_path, "failed.trace", _fallback(_lines(SOURCE), False)))
    assert (code, found) == (0, [])
    for dev in doc["traces"][0]["devices"]:
        assert dev["states"][-2:] == ["PRE_COPY", "RUNNING"]
        assert dev["requests"][-1]["path"] == ["RUNNING"]


def test_failed_request_with_a_legal_recovery_passes(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    seeded = _fallback(lines, True)
    code, doc, found = _check(_write(tmp_path, "failed.trace", seeded))
    assert (code, found) == (0, [])
    rows = doc["traces"][0]["devices"][0]["requests"]
    failed = _find(seeded, "vfio_migration_set_state", d1, "new state PRE_COPY,") + 1
    (row,) = [r for r in rows if r["line"] == failed]
    assert (row["outcome"], row["recorded"], row["recover"]) == ("recovered", "RUNNING", "RUNNING")
    assert rows[-1]["outcome"] == "noop"


def test_log_without_the_timestamp_prefix(tmp_path):
    """The same log as QEMU writes it without -msg timestamp=on."""
    lines = [re.sub(r"^\d+@\d+\.\d+:", "", l) for l in _lines(SOURCE)]
    assert not any("@" in l.split(" ")[0] for l in lines)
    code, doc, found = _check(_write(tmp_path, "plain.trace", lines))
    _, real, _ = _check(SOURCE)
    assert (code, found) == (0, [])
    assert doc["traces"][0]["devices"] == real["traces"][0]["devices"]
    # ...and a defect seeded into it is found at the same line as in the prefixed log.
    d1, d2 = _devices(_lines(SOURCE))
    moved = _move_after(_lines(SOURCE), _request_block(_lines(SOURCE), d1, "PRE_COPY_P2P"),
                        _request_block(_lines(SOURCE), d2, "STOP_COPY"))
    _, _, with_prefix = _check(_write(tmp_path, "a.trace", moved))
    _, _, without = _check(_write(tmp_path, "b.trace", [re.sub(r"^\d+@\d+\.\d+:", "", l) for l in moved]))
    assert with_prefix == without == [("p2p-quiesce", with_prefix[0][1])]


def test_a_device_without_p2p_beside_another_is_a_finding(tmp_path):
    """mtty1's QMP events without its P2P states: --flags auto judges it a
    device without P2P, which cannot be quiesced beside mtty0."""
    events = [e for e in _qmp_from(_lines(SOURCE))
              if not ('"mtty1"' in e and '-p2p"' in e)]
    first = next(i for i, e in enumerate(events, 1) if '"mtty1"' in e)
    code, doc, found = _check(_write(tmp_path, "nop2p.qmp", events))
    devices = {d["name"]: d for d in doc["traces"][0]["devices"]}
    assert devices["mtty1"]["flags"] == ["STOP_COPY", "PRE_COPY"]
    assert code == 1 and ("p2p-flag", first) in found
    assert found.count(("p2p-flag", first)) == 1 and all(r != "p2p-flag" or l == first for r, l in found)


def test_qemu_9_set_state_format(tmp_path):
    """QEMU before 9.1 logged `vfio_migration_set_state (DEV) state S` after a
    successful ioctl only, and no set_device_state: read as implied requests."""
    old = []
    for line in _lines(SOURCE):
        if ":vfio_migration_set_device_state " in line:
            old.append(line.replace(":vfio_migration_set_device_state ", ":vfio_migration_set_state "))
        elif ":vfio_migration_set_state " not in line:
            old.append(line)
    code, doc, found = _check(_write(tmp_path, "qemu9.trace", old))
    assert (code, found) == (0, [])
    assert doc["traces"][0]["devices"][0]["states"] == \
        ["RUNNING_P2P", "RUNNING", "PRE_COPY", "PRE_COPY_P2P", "STOP_COPY", "STOP"]
