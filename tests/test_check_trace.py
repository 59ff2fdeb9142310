"""fsmcheck check-trace: real QEMU traces pass; defects seeded into them by
program fail with their rule and line; QMP and ITF inputs; JSON and SARIF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fsmcheck.model import load_model
from fsmcheck.tracecheck import check_trace, open_trace
from fsmcheck.tracecheck.rules import RULES
from fsmcheck.semantics.combination import derive_table
from fsmcheck.model.schema import Config

from .conftest import MODELS, TOOLS, V2_WITHOUT_STOP_TO_RESUMING, cli, progress_lines, require_tool

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
    result = cli("check-trace", str(path), "--json", *args)
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


def _expected(trace: Path) -> set[str]:
    """The findings the scenario of a `make vm-qemu` log states it must get (its result.json)."""
    return set(json.loads((trace.parent / "result.json").read_text()).get("findings", {}).get(trace.name, ()))


@pytest.mark.parametrize("trace", VM_QEMU_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_vm_qemu_runs_get_their_scenarios_findings(trace):
    """Every trace and QMP log that ``make vm-qemu`` brought back (vm/qemu_guest.py's
    scenarios: arrivals, cancels, a paused source, load failures, multifd, the
    fault-injected mtty) gets exactly the findings its scenario states: none, but
    for a cancelled migration of a paused VM and the fault-injected run."""
    assert len(VM_QEMU_RUNS) >= 30
    code, _doc, found = _check(trace)
    want = _expected(trace)
    assert {r for r, _ in found} == want and code == (1 if want else 0)


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
    result = cli("check-trace", str(SOURCE), "--no-color")
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
    result = cli("verify", "-q", str(model), "--trace-dir", str(tmp_path / "itf"))
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
    result = cli("check-trace", str(path))
    assert result.exit_code == 2 and "an ITF trace of model vfio_v1" in result.output


# -- bad input, JSON shape, SARIF ---------------------------------------------------------------

def test_no_format_is_bad_input_naming_file_and_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n\nhello world, this is not a trace\n")
    result = cli("check-trace", str(path), str(SOURCE))
    assert result.exit_code == 2
    assert f"{path}:3: <trace>: fits no trace format" in result.output
    assert "1 trace(s) checked" in result.output  # the good trace is still checked


def test_unknown_flag_set_is_bad_input():
    result = cli("check-trace", str(SOURCE), "--flags", "P2P")
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


def test_progress_goes_to_stderr_never_into_the_json():
    doc, added = progress_lines("check-trace", SOURCE, DESTINATION)
    assert added == [f"checking {SOURCE}", f"checking {DESTINATION}"]
    assert len(doc["traces"]) == 2


def test_json_shape():
    _, doc, _ = _check(SOURCE)
    assert set(doc) == {"fsmcheck", "model", "model_path", "flags", "rules", "traces", "errors", "summary",
                        "exit_code"}
    assert set(doc["rules"]) == set(RULES)
    t = doc["traces"][0]
    assert set(t) == {"file", "format", "lines", "events", "other", "p2p", "devices", "violations",
                      "violations_total", "timeline", "timeline_total", "vm", "unclassified"}
    assert set(t["devices"][0]) == {"name", "first_line", "flags", "flags_from", "p2p", "states", "states_total",
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
    result = cli("check-trace", str(seeded), "--sarif", str(out))
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


def test_a_device_shown_without_p2p_beside_another_is_a_finding(tmp_path):
    """mtty1 stopped with the VM without its P2P prepare handler (its
    RUNNING_P2P / PRE_COPY_P2P requests and vfio_vmstate_change_prepare lines
    removed): the trace shows it lacks P2P, so --flags auto finds p2p-flag,
    once, at its first line."""
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    kept = [l for l in lines if not (f"({d2})" in l and ("_P2P" in l or ":vfio_vmstate_change_prepare " in l))]
    # Without P2P, QEMU's start-up request of RUNNING is a no-op: no record follows it.
    del kept[_find(kept, "vfio_migration_set_device_state", d2, "state RUNNING$")]
    first = _find(kept, "vfio_migration_set_state", d2) + 1
    code, doc, found = _check(_write(tmp_path, "nop2p.trace", kept))
    devices = {d["name"]: d for d in doc["traces"][0]["devices"]}
    assert devices[d2]["p2p"] == "lacks" and devices[d1]["p2p"] == "has"
    assert code == 1 and found.count(("p2p-flag", first)) == 1
    assert all(r != "p2p-flag" or l == first for r, l in found)


def test_absence_of_p2p_states_is_not_evidence(tmp_path):
    """Issue 22: a device never seen in a P2P state (a destination that stayed
    in RESUMING; QMP events, which carry no handler events) has P2P support
    'not determined': no p2p-flag finding."""
    events = [e for e in _qmp_from(_lines(SOURCE)) if not ('"mtty1"' in e and '-p2p"' in e)]
    code, doc, found = _check(_write(tmp_path, "nop2p.qmp", events))
    devices = {d["name"]: d for d in doc["traces"][0]["devices"]}
    assert devices["mtty1"]["flags"] == ["STOP_COPY", "PRE_COPY"] and devices["mtty1"]["p2p"] == "not determined"
    assert "p2p-flag" not in {r for r, _ in found}
    # A destination cut right after RESUMING (a cancelled or failed migration).
    lines = _lines(DESTINATION)
    cut = max(i for i, l in enumerate(lines) if "state RESUMING" in l) + 1
    code, doc, found = _check(_write(tmp_path, "resuming.trace", lines[:cut]))
    assert (code, found) == (0, [])
    assert {d["p2p"] for d in doc["traces"][0]["devices"]} == {"not determined"}


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


# -- issue 23: one read of the input, bounded memory, no traceback on hostile input -------------

FSMCHECK = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "fsmcheck"


def _cli() -> list[str]:
    import shutil
    import sys
    exe = FSMCHECK if FSMCHECK.exists() else shutil.which("fsmcheck")
    return [str(exe)] if exe else [sys.executable, "-c", "from fsmcheck.cli import main; main()"]


def _seeded_source(tmp_path: Path) -> Path:
    lines = _lines(SOURCE)
    d1, d2 = _devices(lines)
    return _write(tmp_path, "seeded.trace", _move_after(lines, _request_block(lines, d1, "PRE_COPY_P2P"),
                                                          _request_block(lines, d2, "STOP_COPY")))


def _verdict(stdout: str) -> tuple[int, list[tuple[str, int]]]:
    doc = json.loads(stdout)
    return doc["summary"]["violations"], [(v["rule"], v["line"]) for t in doc["traces"] for v in t["violations"]]


@pytest.mark.parametrize("how", ["pipe", "process-substitution"])
def test_a_pipe_gets_the_files_verdict(tmp_path, how):
    """`cat T | fsmcheck check-trace /dev/stdin` and `fsmcheck check-trace <(cat T)`
    read the trace once and give the file's verdict (they gave "0 lines, 0
    violations", exit 0, when every pass reopened the file). Real pipes, through bash."""
    import shlex
    import subprocess
    trace = _seeded_source(tmp_path)
    cli = " ".join(shlex.quote(c) for c in _cli())
    as_file = subprocess.run([*_cli(), "check-trace", str(trace), "--json"], capture_output=True, text=True)
    assert as_file.returncode == 1
    script = (f"cat {shlex.quote(str(trace))} | {cli} check-trace /dev/stdin --json" if how == "pipe"
              else f"{cli} check-trace <(cat {shlex.quote(str(trace))}) --json")
    piped = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert piped.returncode == 1, piped.stderr
    assert _verdict(piped.stdout) == _verdict(as_file.stdout) and _verdict(piped.stdout)[0] == 1
    doc = json.loads(piped.stdout)
    assert doc["traces"][0]["lines"] == len(_lines(trace)) and doc["traces"][0]["format"] == "qemu-log"
    assert not list(tmp_path.glob("tmp*"))  # the spool is an unlinked temporary file


@pytest.mark.parametrize("flags", ["auto", "STOP_COPY,P2P,PRE_COPY"])
def test_pipe_and_file_agree_in_process(tmp_path, flags):
    """The same through a FIFO inside the test process (no shell): one read, both --flags forms."""
    import os
    import threading
    trace = _seeded_source(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(trace.read_bytes()))
    writer.start()
    try:
        code, _doc, found = _check(fifo, "--flags", flags)
    finally:
        writer.join(30)
    assert (code, found) == _check(trace, "--flags", flags)[::2] and found


def _bad(tmp_path: Path, name: str, text: str, *args: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = cli("check-trace", str(path), *args)
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception,
                                                                                      SystemExit)
    return result.exit_code, result.output


QMP_OK = _qmp_from(_lines(SOURCE))


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_json_is_a_finding_or_bad_input(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    # A QMP log whose second event nests deeply: that line is an event-format finding.
    code, out = _bad(tmp_path, "deep.qmp", "\n".join([QMP_OK[0], '{"event": "X", "data": ' + deep + "}",
                                                       *QMP_OK[1:]]) + "\n")
    assert code == 1 and "deep.qmp:2: event-format: arrays or tables nested more than 100 levels deep" in out
    # A document that nests deeply is not an ITF trace: bad input at its first line.
    code, out = _bad(tmp_path, "deep.itf.json", '{"#meta": ' + deep + "}\n")
    assert code == 2 and "deep.itf.json:1: <json>: arrays or tables nested more than 100 levels deep" in out


def test_integers_over_the_digit_limit(tmp_path):
    huge = "9" * 5000
    code, out = _bad(tmp_path, "huge.qmp", "\n".join([QMP_OK[0], '{"event": "X", "n": ' + huge + "}",
                                                      *QMP_OK[1:]]) + "\n")
    assert code == 1 and "huge.qmp:2: event-format" in out
    code, out = _bad(tmp_path, "huge.itf.json", '{"#meta": {"format": "ITF"}, "n": ' + huge + ', "states": []}\n')
    assert code == 2 and "huge.itf.json:1:" in out
    doc = json.dumps({"#meta": {"format": "ITF", "model": "vfio_v2"},
                      "states": [{"index": 0, "state": "RUNNING", "via": "open"}]}, indent=2)
    code, out = _bad(tmp_path, "index.itf.json", doc.replace('"index": 0', '"index": 0' + "0" * 5000))
    assert code in (0, 2) and "Traceback" not in out


@pytest.mark.parametrize("device_id", [5, None, ["mtty0"], {"a": 1}, "", True])
def test_qmp_device_id_not_a_string(tmp_path, device_id):
    events = list(QMP_OK)
    doc = json.loads(events[2])
    doc["data"]["device-id"] = device_id
    doc["data"].pop("qom-path")
    events[2] = json.dumps(doc)
    code, out = _bad(tmp_path, "id.qmp", "\n".join(events) + "\n")
    assert code == 1 and "id.qmp:3: event-format" in out


def _itf(meta: dict, states=None) -> str:
    states = states or [{"index": 0, "state": "RUNNING", "via": "open"},
                        {"index": 1, "state": "STOP", "via": "request"}]
    return json.dumps({"#meta": {"format": "ITF", "model": "vfio_v2", **meta}, "states": states}, indent=2,
                      ensure_ascii=False) + "\n"


@pytest.mark.parametrize("flags", [[1, 2], [None], ["STOP_COPY", ["P2P"]], "STOP_COPY", {"a": 1}])
def test_itf_flags_not_strings_are_bad_input(tmp_path, flags):
    text = _itf({"flags": flags})
    code, out = _bad(tmp_path, "f.itf.json", text)
    line = next(n for n, l in enumerate(text.splitlines(), 1) if '"flags"' in l)
    assert code == 2 and f"f.itf.json:{line}: #meta.flags: #meta.flags must be a list" in out


def test_itf_undefined_flag_set_is_bad_input_like_the_option(tmp_path):
    code, out = _bad(tmp_path, "u.itf.json", _itf({"flags": ["P2P"]}))
    assert code == 2 and "is not a defined flag set" in out
    assert _bad(tmp_path, "x.trace", SOURCE.read_text(), "--flags", "P2P")[0] == 2  # the same set, as --flags


def test_u2028_in_an_itf_string_keeps_line_numbers(tmp_path):
    states = [{"index": 0, "state": "RUNNING", "via": "open"}, {"index": 1, "state": "RUNNING_P2P", "via": "request"}]
    plain = _bad(tmp_path, "a.itf.json", _itf({"flags": ["STOP_COPY"], "property": "p"}, states))
    odd = _bad(tmp_path, "a.itf.json", _itf({"flags": ["STOP_COPY"], "property": "p\u2028q\u2029r\x85s"}, states))
    text = _itf({"flags": ["STOP_COPY"], "property": "p"}, states)
    line = next(n for n, l in enumerate(text.split("\n"), 1) if '"index": 1' in l)
    assert "\u2028" in (tmp_path / "a.itf.json").read_text(encoding="utf-8")
    assert plain[0] == odd[0] == 1
    assert f"a.itf.json:{line}: request-accepted" in plain[1] and f"a.itf.json:{line}: request-accepted" in odd[1]


def _many_devices(n: int) -> list[str]:
    """The real source migration's requests and records, phase by phase
    (QEMU's order: every device takes a step before the next step), for ``n`` devices."""
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    own = [l for l in lines if f"({d1})" in l and ("set_state " in l or "set_device_state " in l)]
    out = []
    for k in range(0, len(own), 2):
        for i in range(n):
            out += [l.replace(d1, f"dev{i}") for l in own[k:k + 2]]
    return out


def test_time_is_at_most_quadratic_in_devices(tmp_path):
    """1,000 devices took 224 s (cubic: the P2P rule re-evaluated over every
    pair at every record); now each record costs O(devices)."""
    import time
    times = {}
    for n in (250, 1000):
        path = _write(tmp_path, f"n{n}.trace", _many_devices(n))
        start = time.perf_counter()
        with open_trace(path) as source:
            report = check_trace(V2, source, None)
        times[n] = time.perf_counter() - start
        assert report.violations_total == 0 and len(report.devices) == n
    assert times[1000] < 60
    assert times[1000] / max(times[250], 0.05) < 4 ** 2 * 2.5  # quadratic with slack; cubic is 64


def _peak_rss_mb(args: list[str]) -> tuple[int, str, float]:
    import subprocess
    import sys
    probe = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True, "
             "text=True); print(json.dumps([r.returncode, r.stdout + r.stderr, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300)
    code, out, rss = json.loads(done.stdout)
    return code, out, rss


def test_a_300_mb_line_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "long.trace"
    with open(path, "wb") as f:
        f.write(b"vfio_migration_set_state  (d) new state STOP, recover state ERROR ")
        f.truncate(300 << 20)  # one 300 MB line (sparse: the rest reads as NUL bytes)
    code, out, rss = _peak_rss_mb([*_cli(), "check-trace", str(path)])
    assert code == 2 and f"{path}:1: <line>: line longer than" in out and "Traceback" not in out
    assert rss < 250, f"peak RSS {rss:.0f} MB"


def test_a_500_mb_file_starting_with_a_brace_is_not_read_whole(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.write(b'{"#meta": {"format": "ITF"},\n')
        f.truncate(500 << 20)
    code, out, rss = _peak_rss_mb([*_cli(), "check-trace", str(path)])
    # Refused at its second line (500 MB without a line end), or whole as over the document bound.
    assert code == 2 and (f"{path}:2: <line>: line longer than" in out or "larger than" in out)
    assert "Traceback" not in out
    assert rss < 250, f"peak RSS {rss:.0f} MB"


# -- issue 22: every QEMU 10.0 vfio event checked or deliberately ignored -----------------------

QEMU10 = Path(__file__).resolve().parent.parent / "build" / "vm" / "qemu10" / "root" / "usr" / "bin" / \
    "qemu-system-x86_64"
TRACE_EVENTS_10 = TRACES / "qemu-10.0.2-vfio-trace-events.txt"


def test_every_qemu_10_vfio_event_is_checked_or_ignored():
    """The list (QEMU 10.0.2's `-trace help`, copied in tests/qemu_traces/) is the
    module's, and each event is checked or ignored, never both; every migration
    event (hw/vfio/migration*.c) is classified by name, with a reason."""
    from fsmcheck.tracecheck.qemu_events import MIGRATION_PREFIXES, VFIO_EVENTS
    from fsmcheck.tracecheck.qemu_log import _MIGRATION_IGNORED, CHECKED, IGNORED
    listed = set(TRACE_EVENTS_10.read_text().split())
    assert VFIO_EVENTS == listed and len(listed) == 183
    assert CHECKED | set(IGNORED) == listed and not CHECKED & set(IGNORED)
    migration = {e for e in listed if e.startswith(MIGRATION_PREFIXES)}
    assert migration == CHECKED | set(_MIGRATION_IGNORED) and all(_MIGRATION_IGNORED.values())
    assert {"vfio_load_state_device_buffer_load_start", "vfio_save_complete_precopy_thread_end"} <= CHECKED


def test_the_list_is_qemu_10s_own():
    """Against the QEMU 10.0.2 binary `make vm-qemu` runs, when it is here."""
    import subprocess
    if not QEMU10.exists():
        pytest.skip(f"{QEMU10} is fetched by make vm-qemu")
    out = subprocess.run([str(QEMU10), "-trace", "help"], capture_output=True, text=True, timeout=60).stdout
    names = {n for n in out.split() if re.match(r"(vfio|iommufd)_", n)}
    assert names == set(TRACE_EVENTS_10.read_text().split())


@pytest.mark.parametrize("trace", VM_QEMU_RUNS + [SOURCE, DESTINATION], ids=lambda p: p.name if p.parent == TRACES
                         else f"{p.parent.name}/{p.name}")
def test_real_traces_have_no_event_of_neither_kind(trace):
    """Every vfio event of every real trace is checked or ignored: a trace with an
    event of neither kind fails here (and check-trace counts it, `unclassified`)."""
    from fsmcheck.tracecheck.qemu_log import CHECKED, IGNORED
    names = set(re.findall(r"^(?:\d+@[\d.]+:)?(vfio_\w+)", trace.read_text(), re.M))
    assert names <= CHECKED | set(IGNORED), sorted(names - CHECKED - set(IGNORED))
    _code, doc, _found = _check(trace)
    assert doc["traces"][0]["unclassified"] == {}


def test_an_event_of_neither_kind_is_counted(tmp_path):
    lines = _lines(SOURCE)
    d1 = _devices(lines)[0]
    seeded = lines[:3] + [f"1@1.0:vfio_migration_new_thing  ({d1}) x 1"] * 2 + lines[3:]
    code, doc, found = _check(_write(tmp_path, "new.trace", seeded))
    assert (code, found) == (0, []) and doc["traces"][0]["unclassified"] == {"vfio_migration_new_thing": 2}
    result = cli("check-trace", str(tmp_path / "new.trace"), "-q")
    assert "vfio_migration_new_thing (2)" in result.output


# -- issue 22: the new real traces, and defects seeded into them --------------------------------

def _dev_lines(lines: list[str], event: str, device: str, args: str = "") -> list[int]:
    """0-based indices of every ``event`` line of ``device`` whose arguments contain ``args``."""
    return [i for i, l in enumerate(lines) if f":{event} " in l and f"({device})" in l and args in l]


def test_multifd_buffer_loaded_after_running_is_caught(tmp_path):
    """QEMU 10's multifd load thread writes device-state buffers
    (vfio_load_state_device_buffer_load_start/_end); one written after the
    device is RUNNING (outside RESUMING) is a data-session finding at its line
    (it passed when those events were 'other')."""
    trace = TRACES / "multifd" / "destination.trace"
    lines = _lines(trace)
    code, _, found = _check(trace)
    assert (code, found) == (0, [])
    dev = _devices(lines)[0]
    loads = _dev_lines(lines, "vfio_load_state_device_buffer_load_start", dev)
    loads += _dev_lines(lines, "vfio_load_state_device_buffer_load_end", dev)
    assert loads
    running = _find(lines, "vfio_migration_set_device_state", dev, "state RUNNING$")
    moved = [l for i, l in enumerate(lines) if i not in loads]
    at = moved.index(lines[running]) + 1
    moved[at:at] = [lines[i] for i in sorted(loads)]
    code, _, found = _check(_write(tmp_path, "late.trace", moved))
    assert code == 1 and found == [("data-session", at + 1 + k) for k in range(len(loads))]


def test_paused_source_then_a_device_running_is_caught(tmp_path):
    """The paused source's real trace passes; a device moved to RUNNING after
    `stop` (a request and its record seeded after the VM stopped) is a
    vm-stopped finding at the record."""
    trace = TRACES / "paused" / "source.trace"
    lines = _lines(trace)
    assert _check(trace)[::2] == (0, [])
    stop = next(i for i, l in enumerate(lines) if ":vm_state_notify running 0" in l)
    dev = _devices(lines)[0]
    after = _find(lines, "vfio_migration_set_device_state", dev, "state STOP$", stop)
    prefix = lines[after].split(":", 1)[0]
    seeded = lines[:after + 1] + [f"{prefix}:vfio_migration_set_state  ({dev}) new state RUNNING, recover state ERROR",
                                  f"{prefix}:vfio_migration_set_device_state  ({dev}) state RUNNING"] + lines[after + 1:]
    code, _, found = _check(_write(tmp_path, "run.trace", seeded))
    assert code == 1 and ("vm-stopped", after + 3) in found


def test_fault_injected_run_is_flagged_where_the_model_says():
    """The orchestration model's counterexample (models/qemu_orchestration.toml,
    --failures 1, migrate-source): dev1's PRE_COPY -> PRE_COPY_P2P prepare fails,
    QEMU resets it to RUNNING, then vfio_vmstate_change(dev0) takes dev0 to
    STOP_COPY while dev1 is RUNNING. In the real trace of the fault-injected mtty
    check-trace flags p2p-quiesce at that STOP_COPY record (and vm-stopped at the reset)."""
    trace = TRACES / "fault-p2p" / "source.trace"
    lines = _lines(trace)
    failed = next(d for d in _devices(lines)
                  if _dev_lines(lines, "vfio_migration_set_state", d, "new state PRE_COPY_P2P, recover state ERROR")
                  and not _dev_lines(lines, "vfio_migration_set_device_state", d, "state PRE_COPY_P2P"))
    peer = next(d for d in _devices(lines) if d != failed)
    request = _dev_lines(lines, "vfio_migration_set_state", failed, "new state PRE_COPY_P2P")[0]
    reset = _find(lines, "vfio_migration_set_device_state", failed, "state RUNNING$", request)
    step4 = _find(lines, "vfio_migration_set_device_state", peer, "state STOP_COPY$", reset)
    code, doc, found = _check(trace)
    assert code == 1 and sorted(found) == sorted([("p2p-quiesce", step4 + 1), ("vm-stopped", reset + 1)])
    quiesce = next(v for v in doc["traces"][0]["violations"] if v["rule"] == "p2p-quiesce")
    assert f"{failed} is RUNNING" in quiesce["message"] and f"{peer} is STOP_COPY" in quiesce["message"]


def test_cancelled_migration_of_a_paused_vm_runs_devices_while_it_is_stopped():
    """Issue 22's real finding: `stop`, `migrate`, `migrate_cancel`: QEMU's migration
    notifier (MIG_EVENT_PRECOPY_FAILED, `vfio_migration_state_notifier ... state 2`)
    moves each device to RUNNING, one at a time, while the VM stays paused:
    p2p-quiesce at the first (its peer is STOP) and vm-stopped at both, with the
    QEMU source that causes it. The QMP log shows the same from the STOP event."""
    trace = TRACES / "cancel-paused" / "source.trace"
    lines = _lines(trace)
    stop = next(i for i, l in enumerate(lines) if ":vm_state_notify running 0" in l)
    runs = [i for i, l in enumerate(lines) if i > stop and ":vfio_migration_set_device_state " in l
            and l.endswith("state RUNNING")]
    assert len(runs) == 2 and all(":vfio_migration_state_notifier " in lines[i - 2] and
                                  lines[i - 2].endswith("state 2") for i in runs)
    code, doc, found = _check(trace)
    assert code == 1 and sorted(found) == sorted([("vm-stopped", runs[0] + 1), ("p2p-quiesce", runs[0] + 1),
                                                  ("vm-stopped", runs[1] + 1)])
    stopped = [v for v in doc["traces"][0]["violations"] if v["rule"] == "vm-stopped"]
    assert all("vfio_migration_state_notifier()" in v["message"] and f"since line {stop + 1}" in v["message"]
               for v in stopped)
    qmp = TRACES / "cancel-paused" / "source.qmp.jsonl"
    events = _lines(qmp)
    stop_event = next(i for i, e in enumerate(events) if json.loads(e).get("event") == "STOP")
    running = [i for i, e in enumerate(events) if i > stop_event and '"device-state": "running"' in e]
    code, _, found = _check(qmp)
    assert code == 1 and {("vm-stopped", i + 1) for i in running} <= set(found)
    assert ("p2p-quiesce", running[0] + 1) in found


@pytest.mark.parametrize("scenario", ["cancel-precopy", "cancel-paused", "load-failure", "load-failure-return-path"])
def test_destinations_left_in_resuming_are_not_judged_without_p2p(scenario):
    """Issue 22's false alarm, on the real destinations that never reached RUNNING_P2P
    (cancelled or failed): P2P support 'not determined', no p2p-flag finding."""
    trace = TRACES / scenario / "destination.trace"
    code, doc, found = _check(trace)
    devices = doc["traces"][0]["devices"]
    assert (code, found) == (0, []) and len(devices) == 2
    assert all(d["p2p"] == "not determined" and "RUNNING_P2P" not in d["states"] for d in devices)


def test_the_vm_rule_runs_only_when_the_trace_shows_the_run_state():
    assert _check(SOURCE)[1]["traces"][0]["vm"].startswith("not run: the trace shows no VM run state")
    assert _check(TRACES / "unix" / "source.trace")[1]["traces"][0]["vm"] == "checked"
    assert _check(TRACES / "unix" / "source.qmp.jsonl")[1]["traces"][0]["vm"] == "checked"


def test_the_traces_fuzz_campaign_runs_bounded(tmp_path, capsys):
    """`python -m fuzz traces` (make fuzz / fuzz-ci): a few seeded inputs, every
    2nd through a pipe; none fails, and the figures are printed."""
    from fuzz.__main__ import main as fuzz_main
    code = fuzz_main(["traces", "--seed", "5", "--traces", "24", "--batch", "12", "--seconds", "120",
                      "--pipe-every", "2", "--out", str(tmp_path / "failures")])
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])["traces"]
    assert code == 0 and figures["inputs"] == 24 and figures["piped"] == 12 and "pipe_differs" not in figures
    assert sum(figures.get(f"exit_{c}", 0) for c in (0, 1, 2)) == 24 and not (tmp_path / "failures").exists()


def test_no_prepare_event_logged_at_all_is_not_evidence(tmp_path):
    """With `vfio_vmstate_change_prepare` not enabled (no device logs it), a stop
    without it shows nothing about P2P: not determined, no p2p-flag."""
    lines = [l for l in _lines(SOURCE) if ":vfio_vmstate_change_prepare " not in l
             and not (f"({_devices(_lines(SOURCE))[1]})" in l and "_P2P" in l)]
    code, doc, found = _check(_write(tmp_path, "noprep.trace", lines))
    assert "p2p-flag" not in {r for r, _ in found}
    assert {d["p2p"] for d in doc["traces"][0]["devices"]} == {"has", "not determined"}
