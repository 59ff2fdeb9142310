"""One CLI grammar across commands (issue 24, point 5): -q/--quiet, --json,
-o/--output, --flags only where it chooses something, one exit-code table,
progress only on a terminal or with --progress; every command in its
package's command.py (issue 25, point 5)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from fsmcheck.cli import LAZY_SUBCOMMANDS, main
from fsmcheck.options import EXIT_CODES, PYTEST_EXIT

from .conftest import MODELS, ROOT, cli

V2 = MODELS / "vfio_v2.toml"

BROKEN = "format = 1\n[model]\nname = 'x'\nwidth = [\n"


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in main.list_commands(ctx)}


def test_every_command_lives_in_its_packages_command_module():
    assert set(LAZY_SUBCOMMANDS) == set(_commands()), "cli.py defines no command itself"
    for name, (target, _) in LAZY_SUBCOMMANDS.items():
        module = target.partition(":")[0]
        assert module.startswith("fsmcheck.") and module.endswith(".command"), (name, module)
    assert not list((ROOT / "fsmcheck").glob("*/commands.py"))


def test_shared_options_are_spelled_alike():
    """Where a command has quiet, JSON, output or progress, it is the same
    option: -q/--quiet, --json, -o/--output, --progress."""
    spelled = {"quiet": ["--quiet", "-q"], "as_json": ["--json"], "progress": ["--progress"],
               "no_color": ["--no-color"]}
    for name, command in _commands().items():
        for param in command.params:
            if param.name in spelled:
                assert sorted(param.opts) == sorted(spelled[param.name]), (name, param.opts)
            if "--output" in param.opts:
                assert sorted(param.opts) == ["--output", "-o"], (name, param.opts)
            assert "--html" not in param.opts or param.hidden, (name, "--html is diff's former -o")
    quiet = {name for name, c in _commands().items() if any(p.name == "quiet" for p in c.params)}
    assert {"verify", "report", "render", "check-trace", "diff", "generate", "mutate", "run-pack"} <= quiet


def test_the_exit_code_table_is_the_four_codes_and_maps_every_pytest_code():
    assert [code for code, _ in EXIT_CODES] == [0, 1, 2, 3]
    assert {int(code) for code in pytest.ExitCode} <= set(PYTEST_EXIT)
    assert set(PYTEST_EXIT.values()) <= {0, 1, 2, 3}
    assert PYTEST_EXIT[int(pytest.ExitCode.INTERRUPTED)] == 3, "interrupted is not bad input (2)"
    assert PYTEST_EXIT[int(pytest.ExitCode.USAGE_ERROR)] == 2


@pytest.mark.parametrize("args", [
    ["verify", "vfio_v2", "--flags", "7"],                     # a protocol model: every flag set is checked
    ["export", "vfio_v2", "--format", "json", "--flags", "3"],  # json exports every configuration
])
def test_flags_that_choose_nothing_exit_2(args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "--flags" in result.output


def test_diff_quiet_still_says_why_a_model_is_bad(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN)
    result = cli("diff", "--quiet", bad, V2)
    assert result.exit_code == 2
    assert f"{bad}:" in result.output, "--quiet must not hide the load error"


def test_diff_json_with_a_broken_model_is_a_json_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN)
    result = cli("diff", "--json", V2, bad)
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2 and doc["error"] and doc["diagnostics"]
    assert all(d.startswith(f"{bad}:") for d in doc["diagnostics"])


@pytest.mark.slow
def test_diff_prints_no_progress_off_a_terminal_unless_asked(tmp_path):
    quiet = cli("diff", V2, V2)
    assert quiet.exit_code == 0, quiet.output
    assert "[diff]" not in quiet.stderr
    shown = cli("diff", "--progress", V2, V2)
    assert shown.exit_code == 0 and "[diff]" in shown.stderr


@pytest.mark.slow
def test_diff_writes_its_html_with_o(tmp_path):
    out = tmp_path / "diff.html"
    result = cli("diff", "-q", V2, V2, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") or "<html" in out.read_text()[:500]


def test_run_pack_help_names_only_options_it_accepts():
    text = cli("run-pack", "--help").output
    assert "-n N" not in text and "--reference" in text and "--fleet" in text


@pytest.mark.slow
def test_run_pack_reference_runs_the_whole_flow(tmp_path):
    out = tmp_path / "results"
    result = cli("run-pack", "--reference", "-q", "--seed", "0", "-o", out)
    assert result.exit_code == 0, result.output
    for name in ("junit.xml", "coverage.txt", "pytest.log", "results.html"):
        assert (out / name).is_file(), name
    assert "0 failed" in result.stderr
    assert "passed" in (out / "pytest.log").read_text()
    assert "passed" not in result.stdout, "-q leaves pytest's output in pytest.log"


def test_run_pack_reference_names_no_other_device(tmp_path):
    result = cli("run-pack", "--reference", "--vfio-cdev", "/dev/null", "-o", tmp_path)
    assert result.exit_code == 2 and "--reference" in result.output


@pytest.mark.slow
def test_rules_work_without_a_pack_directory(tmp_path, monkeypatch):
    """From anywhere (an installed wheel has no generated_tests/): the rules
    of the shipped models' pack, derived in memory, equal the committed
    pack's."""
    monkeypatch.chdir(tmp_path)
    shipped = cli("rules", "--json")
    assert shipped.exit_code == 0, shipped.output
    committed = cli("rules", "--json", "--pack", ROOT / "generated_tests")
    rows = json.loads(shipped.stdout)["rules"]
    assert rows == json.loads(committed.stdout)["rules"]
    assert any(r["killing_tests"] for r in rows)
    assert not Path("generated_tests").exists()


@pytest.mark.slow
def test_a_per_flag_set_svg_names_its_flag_set(tmp_path):
    """render --flags and report --diagrams: the caption of a one-configuration
    diagram carries the configuration's label."""
    from fsmcheck.model import load_model

    model = load_model(V2)
    config = model.configs()[1]
    drawn = cli("render", V2, "--flags", ",".join(sorted(config.flags)), "-o", tmp_path / "one.svg")
    assert drawn.exit_code == 0, drawn.output
    assert f"vfio_v2 [{config.label}]".replace("&", "&amp;") in (tmp_path / "one.svg").read_text()
    report = cli("report", "-q", V2, "-o", tmp_path / "r.html", "--diagrams", tmp_path / "svg")
    assert report.exit_code == 0, report.output
    for c in model.configs():
        name = "".join(ch if ch.isalnum() else "_" for ch in c.label).strip("_")
        assert f"vfio_v2 [{c.label}]" in (tmp_path / "svg" / f"vfio_v2.{name}.svg").read_text(), c.label


@pytest.mark.slow
def test_the_pack_under_xunit2_writes_valid_junit_and_warns_nothing(tmp_path):
    """pytest's default JUnit family is xunit2, whose test cases have no
    properties: the v1 pack's recorded observations (unspecified arcs) go
    to the test suite's properties, and no record_property warning."""
    import xml.etree.ElementTree as ET

    from .conftest import run_pytest

    xml = tmp_path / "junit.xml"
    proc = run_pytest(ROOT / "generated_tests" / "test_vfio_v1.py", "-k", "unspecified", f"--junitxml={xml}",
                      "-W", "error::pytest.PytestWarning")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "record_property" not in proc.stdout
    root = ET.parse(xml).getroot()
    cases = list(root.iter("testcase"))
    assert cases and all(case.find("properties") is None for case in cases)
    recorded = [p for p in root.iter("property") if p.get("name") == "unspecified_arc"]
    assert len(recorded) == len(cases)
    assert all("test_unspecified_arc_recorded[" in p.get("value") for p in recorded)


@pytest.mark.slow
def test_run_pack_refuses_a_bad_errata_file_before_running(tmp_path):
    """A malformed errata file is bad input (2) with its file:line, found before
    the pack is written or run (pytest's own usage code maps to 2 as well:
    test_the_exit_code_table_is_the_four_codes_and_maps_every_pytest_code)."""
    errata = tmp_path / "errata.toml"
    errata.write_text("[[erratum]]\nid = 5\n")
    result = cli("run-pack", "--vfio-cdev", "/dev/null", "--adapter", "fsmcheck.drivers.reference:factory",
                 "--errata", errata, "-q", "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{errata}:2: erratum[0].id: expected a non-empty string, got an integer 5" in result.stderr
    assert not (tmp_path / "out" / "junit.xml").exists()
