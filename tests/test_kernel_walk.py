"""fsmcheck kernel-walk on the real vfio_main.c of Linux 6.12 and on variants."""

from __future__ import annotations

import json

import pytest

from fsmcheck.csource.kernel_walk import read_kernel_walk
from fsmcheck.csource.walk_check import check_walk
from fsmcheck.model import load_model

from .conftest import MODELS, cli, progress_lines

FULL = "STOP_COPY|P2P|PRE_COPY"


@pytest.fixture(scope="module")
def model():
    return load_model(MODELS / "vfio_v2.toml")


@pytest.fixture
def main_c(kernel_tree):
    return kernel_tree / "drivers" / "vfio" / "vfio_main.c"


def _variant(tmp_path, main_c, old, new):
    text = main_c.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "vfio_main.c"
    path.write_text(text.replace(old, new))
    return path


def _line(path, needle):
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_real_walk_parses_to_the_models_transcription(model, main_c):
    kw = read_kernel_walk(main_c, model)
    assert kw.walk.next == model.walk.next
    assert kw.walk.requires == model.walk.requires
    assert kw.walk.exits == {"ERROR"} and kw.walk.reject == {"ERROR"}
    assert kw.walk.check_current and kw.walk.check_requested
    assert kw.notes == []
    assert kw.line_of(("STOP_COPY", "PRE_COPY")) == _line(main_c, "[VFIO_DEVICE_STATE_PRE_COPY] = VFIO_DEVICE_STATE_ERROR")


def test_real_walk_terminates_and_equals_the_model_on_all_flag_sets(model, main_c):
    result = cli("kernel-walk", "--json", str(main_c), "--model", str(MODELS / "vfio_v2.toml"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert len(doc["flag_sets"]) == 4
    for fs in doc["flag_sets"]:
        assert fs["differences"] == []
        for prop in fs["properties"].values():
            assert prop["status"] == "holds" and set(prop["engines"].values()) == {"holds"}


def test_progress_goes_to_stderr_never_into_the_json(model, main_c):
    doc, added = progress_lines("kernel-walk", main_c, "--model", MODELS / "vfio_v2.toml")
    instances = [f"checking {model.name}: {p} [{c.label}]" for p in ("walk-terminates", "walk-agrees")
                 for c in model.configs()]
    assert added == [f"reading vfio_mig_get_next_state() in {main_c}"] + instances
    assert doc["exit_code"] == 0 and len(doc["flag_sets"]) == len(model.configs())


@pytest.mark.slow
def test_loop_without_error_exit_loops_on_exactly_the_blocked_pre_copy_pairs(model, main_c, tmp_path):
    path = _variant(tmp_path, main_c, "while (*next_fsm != VFIO_DEVICE_STATE_ERROR &&\n\t       (state_flags_table",
                    "while ((state_flags_table")
    reports = {r.config.label: r for r in check_walk(read_kernel_walk(path, model), model)}
    looping = {label: sorted((d.current, d.requested) for d in r.differences if d.kind == "does not terminate")
               for label, r in reports.items()}
    assert looping == {
        "STOP_COPY": [], "STOP_COPY|P2P": [],
        "STOP_COPY|PRE_COPY": [("STOP_COPY", "PRE_COPY")],
        FULL: [("STOP_COPY", "PRE_COPY"), ("STOP_COPY", "PRE_COPY_P2P")],
    }
    for label in ("STOP_COPY|PRE_COPY", FULL):
        terminates = next(r for r in reports[label].results if r.prop.name == "walk-terminates")
        assert {v.status for v in terminates.verdicts.values()} == {"fails"}
        cex = terminates.counterexample
        assert cex.data["cycle"] == ["ERROR"]
    result = cli("kernel-walk", str(path), "--model", str(MODELS / "vfio_v2.toml"))
    assert result.exit_code == 1
    assert f"at {path}:{_line(path, '[VFIO_DEVICE_STATE_PRE_COPY] = VFIO_DEVICE_STATE_ERROR')}" in result.output


def test_changed_table_entry_is_reported_pair_by_pair(model, main_c, tmp_path):
    # RUNNING -> STOP_COPY goes through RUNNING_P2P; make it jump to STOP.
    old = ("[VFIO_DEVICE_STATE_RUNNING] = {\n\t\t\t[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_RUNNING_P2P,")
    path = _variant(tmp_path, main_c, old, old.replace("RUNNING_P2P,", "STOP,"))
    reports = {r.config.label: r for r in check_walk(read_kernel_walk(path, model), model)}
    assert reports["STOP_COPY"].differences == []
    diffs = reports["STOP_COPY|P2P"].differences
    assert [(d.current, d.requested, d.walk, d.model) for d in diffs] == [
        ("RUNNING", "STOP", "RUNNING -> STOP", "RUNNING -> RUNNING_P2P -> STOP"),
    ]
    # The changed entry is the first line of the RUNNING row.
    assert diffs[0].line == _line(path, "\t\t[VFIO_DEVICE_STATE_RUNNING] = {") + 1


@pytest.mark.slow
def test_missing_row_defaults_to_error_and_is_reported(model, main_c, tmp_path):
    text = main_c.read_text()
    start = text.index("\t\t[VFIO_DEVICE_STATE_RESUMING] = {")
    end = text.index("},\n", start) + 3
    path = tmp_path / "vfio_main.c"
    path.write_text(text[:start] + text[end:])
    kw = read_kernel_walk(path, model)
    assert any("no row for RESUMING: every entry is 0 (ERROR)" in n for n in kw.notes)
    reports = {r.config.label: r for r in check_walk(kw, model)}
    for label, rep in reports.items():
        rejected = {(d.current, d.requested) for d in rep.differences}
        assert ("RESUMING", "STOP") in rejected, label
        assert all(d.current == "RESUMING" and d.kind == "rejects a valid request" for d in rep.differences)
