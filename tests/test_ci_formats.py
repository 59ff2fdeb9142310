"""Machine formats for CI: SARIF 2.1.0, ITF-like traces, JSON on failure,
JUnit XML from the pack, --quiet and --no-color."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from fsmcheck.cli import main
from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model

from .conftest import MODELS, ROOT, TOOLS, V1_LETS_101_THROUGH, V2_WITHOUT_STOP_TO_RESUMING, cli, require_tool

SARIF_SCHEMA = TOOLS / "sarif-2.1.0-rtm.5.json"


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    require_tool(SARIF_SCHEMA.is_file(), f"the SARIF 2.1.0 schema ({SARIF_SCHEMA})",
                 "make setup fetches it from npm's @microsoft/jest-sarif")
    schema = json.loads(SARIF_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.slow
def test_sarif_validates_and_points_at_the_model_line(variant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = variant(*V2_WITHOUT_STOP_TO_RESUMING)
    out = tmp_path / "out.sarif"
    result = cli("verify", "-q", str(path), "--sarif", str(out))
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    validator = _validator()
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    failing = [r for r in verify_model(load_model(path)) if r.status != "holds"]
    results = doc["runs"][0]["results"]
    assert len(results) == len(failing) == 12
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    lines = path.read_text().splitlines()
    for r, want in zip(results, failing):
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"] == want.prop.name
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] == want.counterexample.line
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path.name
        if want.prop.name == "reachability":  # the state no arc reaches is declared there
            assert lines[region["startLine"] - 1] == "[[states]]" or "RESUMING" in lines[region["startLine"] - 1]
    # The validator does reject a broken log.
    results[0]["level"] = "fatal"
    assert any(validator.iter_errors(doc))


def test_sarif_of_a_clean_run_has_rules_and_no_results(tmp_path):
    out = tmp_path / "clean.sarif"
    result = cli("verify", "-q", str(MODELS / "vfio_v1.toml"), "--sarif", str(out))
    assert result.exit_code == 0
    doc = json.loads(out.read_text())
    assert list(_validator().iter_errors(doc)) == []
    assert doc["runs"][0]["results"] == [] and len(doc["runs"][0]["tool"]["driver"]["rules"]) == 5


def test_trace_dir_writes_one_itf_trace_per_counterexample(variant, tmp_path):
    path = variant(*V1_LETS_101_THROUGH)
    traces = tmp_path / "traces"
    result = cli("verify", "-q", str(path), "--trace-dir", str(traces))
    assert result.exit_code == 1
    results = verify_model(load_model(path))
    expected = sum(1 for r in results for v in r.verdicts.values() if v.counterexample is not None)
    files = sorted(traces.glob("*.itf.json"))
    assert len(files) == expected == 6  # three failing instances, two engines each
    doc = json.loads((traces / "vfio_v1.no-invalid-entry.lenient.z3.itf.json").read_text())
    assert doc["vars"] == ["device_state", "state", "via", "RUNNING", "SAVING", "RESUMING"]
    first, last = doc["states"][0], doc["states"][-1]
    assert (first["state"], first["via"], first["device_state"]) == ("RUNNING", "open", {"#bigint": "1"})
    assert (last["state"], last["device_state"]) == ("RESUMING|RUNNING", {"#bigint": "5"})
    assert (last["RUNNING"], last["SAVING"], last["RESUMING"]) == (True, False, True)
    assert all(set(s) - {"#meta"} == set(doc["vars"]) for s in doc["states"])
    # A trace file draws on the diagram.
    out = tmp_path / "trace.dot"
    drawn = cli("render", str(path), "--trace",
                                      str(traces / "vfio_v1.no-invalid-entry.lenient.z3.itf.json"), "-o", str(out))
    assert drawn.exit_code == 0, drawn.output
    assert "#e36209" in out.read_text() and "lenient" in drawn.output


def test_verify_json_on_a_failing_model(variant):
    """Regression: a failing combination-table verdict once put its derived
    table (tuple keys) into the counterexample and crashed --json."""
    path = variant(*V2_WITHOUT_STOP_TO_RESUMING)
    result = cli("verify", "--json", str(path))
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["exit_code"] == 1 and doc["models"][0]["results"]


def test_quiet_and_no_color():
    runner = CliRunner()
    quiet = runner.invoke(main, ["verify", "-q", str(MODELS / "vfio_v1.toml")], color=True)
    assert quiet.exit_code == 0 and quiet.output.strip().splitlines() == [
        quiet.output.strip()] and "9 property instances hold" in quiet.output
    plain = runner.invoke(main, ["verify", "--no-color", str(MODELS / "vfio_v1.toml")], color=True)
    assert "\x1b[" not in plain.output and "validity" in plain.output
    colored = runner.invoke(main, ["verify", str(MODELS / "vfio_v1.toml")], color=True,
                            env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert "\x1b[" in colored.output  # the flag above is what removed the colour


@pytest.mark.slow
def test_pack_junitxml_has_one_testcase_per_generated_test(tmp_path):
    module = ROOT / "generated_tests" / "test_vfio_v1.py"
    env = dict(os.environ, PYTHONHASHSEED="0")
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                str(module)], capture_output=True, text=True, env=env, cwd=ROOT)
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    xml = tmp_path / "pack.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                          str(module)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:]
    cases = ET.parse(xml).getroot().findall(".//testcase")
    assert len(cases) == len(ids) > 50
    assert len({(c.get("classname"), c.get("name")) for c in cases}) == len(cases)
