"""The CLI: exit codes, JSON shapes, messages."""

from __future__ import annotations

import json

import pytest

from .conftest import MODELS, TOY, cli

V1, V2 = str(MODELS / "vfio_v1.toml"), str(MODELS / "vfio_v2.toml")


run = cli


@pytest.mark.slow
def test_verify_all_hold_exits_0():
    result = run("verify", "--no-color", V1, V2)
    assert result.exit_code == 0, result.output
    assert "vfio_v1: 9 property instances: 9 holds" in result.output
    assert "vfio_v2: 44 property instances: 44 holds" in result.output  # 4 flag sets x 11 (p2p-quiesce added)
    assert "statements:" in result.output and "combination-table:" in result.output


def test_verify_json_shape():
    result = run("verify", "--json", V2)
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["exit_code"] == 0 and doc["errors"] == []
    [model] = doc["models"]
    assert model["model"] == "vfio_v2" and len(model["sha256"]) == 64
    first = model["results"][0]
    assert set(first) >= {"property", "configuration", "statement", "status", "engines", "counterexample"}
    assert set(first["engines"]) == {"networkx", "z3"}


@pytest.mark.slow
def test_verify_failing_property_exits_1_and_prints_counterexample(variant):
    path = variant("vfio_v2.toml", [('exits = ["ERROR"]    #', 'exits = []    #')])
    result = run("verify", "--no-color", str(path))
    assert result.exit_code == 1
    assert "FAILS walk-terminates [STOP_COPY|PRE_COPY]" in result.output
    assert "trace: STOP_COPY -> ERROR" in result.output
    assert f"at {path}:" in result.output


def test_verify_bad_input_exits_2_with_location(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\n[model]\nname = 'x'\n[device]\ninitial = 'A'\nreset = 'A'\n")
    result = run("verify", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:1: states: missing required key 'states'" in result.output


def test_verify_bad_input_among_good_models_still_verifies_the_rest(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")
    result = run("verify", "--json", str(bad), V1)
    assert result.exit_code == 2
    doc = json.loads(result.output[result.output.index("{"):])
    assert [m["model"] for m in doc["models"]] == ["vfio_v1"]


def test_verify_property_not_applicable_is_bad_input(tmp_path):
    text = (MODELS / "vfio_v1.toml").read_text().replace('"error-exit",', '"error-exit",\n  "walk-agrees",')
    path = tmp_path / "v1.toml"
    path.write_text(text)
    result = run("verify", str(path))
    assert result.exit_code == 2
    assert "properties.check: property 'walk-agrees' needs a [walk]" in result.output


def test_table_json_fixed_shape():
    result = run("table", V2, "--flags", "STOP_COPY,P2P,PRE_COPY", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["flags"] == ["STOP_COPY", "P2P", "PRE_COPY"]
    table = doc["table"]
    states = ["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"]
    assert sorted(table) == sorted(states)
    for cur in states:
        assert sorted(table[cur]) == sorted(states)
        for cell in table[cur].values():
            assert set(cell) == {"next", "path"}
    assert table["RUNNING"]["RUNNING"] == {"next": "RUNNING", "path": []}
    assert table["STOP_COPY"]["PRE_COPY"] == {"next": "EINVAL", "path": []}
    assert table["RUNNING"]["ERROR"] == {"next": "EINVAL", "path": []}
    assert table["RESUMING"]["PRE_COPY"] == {"next": "STOP", "path": ["STOP", "RUNNING_P2P", "RUNNING", "PRE_COPY"]}


def test_table_only_supported_rows():
    doc = json.loads(run("table", V2, "--flags", "1", "--json").output)
    assert doc["flags"] == ["STOP_COPY"]
    assert sorted(doc["table"]) == ["ERROR", "RESUMING", "RUNNING", "STOP", "STOP_COPY"]
    assert doc["table"]["RUNNING"]["RUNNING_P2P"]["next"] == "EINVAL"


def test_table_literal_rule_changes_pre_copy_to_stop_copy():
    doc = json.loads(run("table", V2, "--flags", "7", "--json", "--literal-rule").output)
    assert doc["table"]["PRE_COPY"]["STOP_COPY"]["path"] == ["RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY"]


def test_table_rejects_undefined_flag_set():
    result = run("table", V2, "--flags", "P2P")
    assert result.exit_code == 2
    assert "is not a defined flag set" in result.output


def test_table_text_output_for_toy_model():
    result = run("table", str(TOY), "--no-color")
    assert result.exit_code == 0
    assert "door [BASIC|HOLD]: derived combination table" in result.output


def test_help_lists_commands_and_exit_codes():
    result = run("--help")
    assert result.exit_code == 0
    assert "verify" in result.output and "table" in result.output and "Exit codes" in result.output
