"""fsmcheck run-pack (issue 16). No VFIO device here: the command runs with
its hidden --adapter override against the reference drivers (behind a
factory that checks the Linux adapter reads the device named on the command
line from the environment) and against a mutant; one pack module only, to
keep it short."""

from __future__ import annotations

import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest


from .conftest import cli
import fsmcheck.generate.pack as pack_module
from fsmcheck.runpack.command import coverage_lines

MODULE = "test_vfio_v2_stop_copy.py"


@pytest.fixture
def one_module(monkeypatch, tmp_path):
    full = pack_module.pack_files
    monkeypatch.setattr(pack_module, "pack_files", lambda model: {MODULE: full(model)[MODULE]})
    # A factory that checks what fsmcheck.adapters.linux reads from the environment, then drives the
    # reference driver (no device here).
    (tmp_path / "envcheck_adapter.py").write_text(textwrap.dedent("""
        from fsmcheck.adapters.linux import Target, target_from_env
        from fsmcheck.drivers import reference

        def factory(protocol):
            assert target_from_env() == Target(group="/dev/vfio/7", device="0000:01:00.0"), target_from_env()
            return reference.factory(protocol)
    """))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("FSMCHECK_VFIO_CDEV", "/dev/vfio/devices/stale")  # must not leak into the run
    return tmp_path


def run(*args):
    return cli("run-pack", *args, catch_exceptions=False)


@pytest.mark.parametrize("args", [[], ["--vfio-group", "7"], ["--device", "x"],
                                  ["--vfio-cdev", "/dev/vfio/devices/vfio0", "--vfio-group", "7", "--device", "x"]])
def test_the_device_must_be_named_once(args, tmp_path):
    result = cli("run-pack", *args, "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_conforming_device_passes_with_junit_coverage_and_results(one_module):
    out = one_module / "out"
    result = run("--vfio-group", "/dev/vfio/7", "--device", "0000:01:00.0", "-o", str(out), "--seed", "3",
                 "--adapter", "envcheck_adapter:factory")
    assert result.exit_code == 0, result.output
    cases = list(ET.parse(out / "junit.xml").getroot().iter("testcase"))
    assert cases and not any(c.find("failure") is not None for c in cases)
    coverage = (out / "coverage.txt").read_text()
    assert coverage.startswith("STOP_COPY: states 5/5, arcs 6/6") and "passed" not in coverage
    page = (out / "results.html").read_text()
    assert "<section id='results'>" in page and "0000:01:00.0" in page
    assert "class='held'" in page and "class='failed'" not in page


@pytest.mark.slow
def test_a_defective_driver_fails_with_its_reproductions(one_module):
    out = one_module / "out"
    result = run("--vfio-cdev", "/dev/vfio/devices/vfio3", "-o", str(out), "--seed", "3",
                 "--adapter", "fsmcheck.drivers.mutants_v2:factory_AcceptsError")
    assert result.exit_code == 1
    page = (out / "results.html").read_text()
    assert "class='failed'" in page and "<details>" in page and "/dev/vfio/devices/vfio3" in page
    assert (out / "coverage.txt").read_text().startswith("STOP_COPY:")


def test_coverage_lines_stop_at_the_pytest_summary():
    log = "x\n---- fsmcheck coverage ----\nSTOP_COPY: states 5/5\nadapter a; seed 1\n3 failed, 2 passed in 1.0s\n"
    assert coverage_lines(log) == ["STOP_COPY: states 5/5", "adapter a; seed 1"]
    assert coverage_lines("no coverage\n") == []


def test_a_device_file_that_does_not_exist_runs_nothing(tmp_path):
    out = tmp_path / "out"
    result = cli("run-pack", "--vfio-group", str(tmp_path / "no-group"), "--device", "x",
                                       "-o", str(out))
    assert result.exit_code == 2
    assert "no such device file(s): " in result.output and str(tmp_path / "no-group") in result.output
    assert "nothing was run" in result.output
    assert not out.exists()


def test_an_adapter_fault_is_not_a_driver_failure(tmp_path):
    from pathlib import Path

    from fsmcheck.runpack import junit_cases, rule_outcomes

    junit = tmp_path / "junit.xml"
    junit.write_text(
        "<testsuites><testsuite>"
        "<testcase classname='pack.test_vfio_v2_stop_copy' name='test_migration_flags_defined'>"
        "<failure message='fsmcheck.pack.harness.AdapterFault: open raised DeviceRefused'>tb</failure></testcase>"
        "<testcase classname='pack.test_vfio_v2_stop_copy' name='test_pair[STOP-&gt;RUNNING]'>"
        "<failure message='VFIO v2 violation: STOP -&gt; RUNNING ended in STOP'>steps</failure></testcase>"
        "</testsuite></testsuites>")
    cases = junit_cases(junit)
    assert [c.outcome for c in cases] == ["error", "failed"]
    assert cases[1].test == "test_vfio_v2_stop_copy.py::test_pair" and cases[1].text == "steps"
    pack = Path(__file__).resolve().parents[1] / "generated_tests"
    verdicts = {o.rule.id: o.verdict for o in rule_outcomes(pack, cases)}
    assert verdicts["v2.flags-defined"] == "adapter error"
    assert "failed" in verdicts.values()
    assert "held" not in verdicts.values()  # nothing else ran


@pytest.mark.slow
def test_errata_reach_the_run_and_explained_violations_are_errata(one_module, tmp_path):
    from fsmcheck.runpack import junit_cases

    errata = tmp_path / "errata.toml"
    errata.write_text('[[erratum]]\nid = "zeros-taken"\nprotocol = "v2"\nrule = "resume-validate"\n'
                      'match = ["accepted a zeros stream"]\nreason = "known"\n')
    out = one_module / "out"
    result = run("--vfio-group", "7", "--device", "0000:01:00.0", "-o", str(out), "--seed", "3",
                 "--errata", str(errata), "--adapter", "envcheck_adapter:factory")
    assert result.exit_code == 0, result.output
    assert "erratum zeros-taken: not hit in this run" in (out / "pytest.log").read_text()
    junit = tmp_path / "x.xml"
    junit.write_text("<testsuite><testcase classname='p.test_vfio_v2_stop_copy' name='test_resume_zeros'>"
                     "<skipped type='pytest.xfail' message='erratum zeros-taken: known'/></testcase></testsuite>")
    assert [c.outcome for c in junit_cases(junit)] == ["xfailed"]
