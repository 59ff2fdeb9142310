"""Issue 13, CLI: model text printed as it is, one-line diagnostics, bad
--flags numbers, file modes, reproducible reports, and a verify run that
always ends. Commands run as subprocesses where the terminal matters (stderr
is then a pipe, as in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsmcheck.generate.writer import write_file
from fuzz.strategies import chain_model

from .conftest import MODELS, ROOT, TOY, cli

FSMCHECK = [sys.executable, "-m", "fsmcheck.cli"]

MARKUP = '''format = 1
[model]
name = "markup"
[device]
initial = "[red]"
reset = "[red]"
[[states]]
name = "[red]"
value = 0
[[states]]
name = "[/]"
value = 1
[[states]]
name = ":100:"
value = 2
[[arcs]]
from = "[red]"
to = "[/]"
[[arcs]]
from = "[/]"
to = ":100:"
[combination]
no_interior = []
'''


def _run(args, env=None, **kw):
    return subprocess.run(FSMCHECK + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, **(env or {})}, **kw)


@pytest.mark.slow
def test_state_names_are_not_rich_markup(tmp_path):
    path = tmp_path / "markup.toml"
    path.write_text(MARKUP)
    result = _run(["verify", "--no-color", str(path)])
    # no arc leads back to [red]: combination-table fails (exit 1), with no traceback
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "accepted request [/] -> [red] has no admissible path" in result.stdout
    assert "reachable from [red]" in result.stdout
    table = _run(["table", "--no-color", str(path)])
    assert table.returncode == 0, table.stderr
    assert "[red]" in table.stdout and "[/]" in table.stdout and ":100:" in table.stdout
    assert "\U0001f4af" not in table.stdout


def test_diagnostics_are_one_line_each_with_no_emoji(tmp_path):
    deep = tmp_path / ("d" * 120) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "bad.toml"
    path.write_text(TOY.read_text().replace('initial = "LOCKED"', 'initial = ":100: and a long name ' + "x" * 80 + '"'))
    result = _run(["verify", "--no-color", str(path)])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith(f"{path}:") for line in lines[:-1] if "not a valid model" not in line), lines
    assert any(":100:" in line and "x" * 80 in line for line in lines)


@pytest.mark.parametrize("flags", ["15", "8", "99999999999999999999", "9" * 5000])
def test_flags_number_with_undefined_bits_is_bad_input(flags):
    result = cli("table", str(MODELS / "vfio_v2.toml"), "--flags", flags, "--json")
    assert result.exit_code == 2, result.output
    assert "defines no flag" in result.output


def test_flags_number_of_a_defined_set_still_works():
    result = cli("table", str(MODELS / "vfio_v2.toml"), "--flags", "7", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["flags"] == ["STOP_COPY", "P2P", "PRE_COPY"]


@pytest.mark.slow
def test_call_timeout_zero_is_rejected():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co",
                             "generated_tests/test_vfio_v1.py", "--fsmcheck-call-timeout=0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "--fsmcheck-call-timeout" in result.stderr and "> 0" in result.stderr


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_file(tmp_path / "sub" / "report.html", "<html></html>\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


@pytest.mark.slow
def test_report_is_reproducible_byte_for_byte(tmp_path):
    outputs = []
    for i in range(2):
        out = tmp_path / f"r{i}.html"
        result = _run(["report", str(TOY), "-o", str(out), "--quiet"], env={"SOURCE_DATE_EPOCH": "1700000000"})
        assert result.returncode in (0, 1), result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"2023-11-14 22:13 UTC" in outputs[0] and b" ms</span>" not in outputs[0]
    assert outputs[0].count(b"verified in") == 0


@pytest.mark.slow
def test_report_reproducible_flag_without_epoch(tmp_path):
    out = tmp_path / "r.html"
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    result = subprocess.run(FSMCHECK + ["report", str(TOY), "-o", str(out), "--quiet", "--reproducible"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert result.returncode in (0, 1), result.stderr
    assert b" ms</span>" not in out.read_bytes()


@pytest.mark.slow
def test_verify_deadline_ends_a_30000_state_run(tmp_path):
    # (10,000 states verify in about 2 s since issue 14: the chain is longer
    # and the deadline shorter than the run)
    path = tmp_path / "chain.toml"
    path.write_text(chain_model(30_000))
    result = _run(["verify", "--json", "--deadline", "1", str(path)])
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["exit_code"] == 1
    statuses = {r["status"] for r in doc["models"][0]["results"]}
    assert "unknown" in statuses and statuses <= {"holds", "fails", "unknown"}
    assert any("deadline" in v.get("note", "") for r in doc["models"][0]["results"] for v in r["engines"].values())


@pytest.mark.slow
def test_verify_prints_progress_without_a_terminal_only_when_asked(tmp_path):
    """Off a terminal, progress lines only with --progress (then a long run
    prints them; issue 24: one grammar)."""
    path = tmp_path / "chain.toml"
    path.write_text(chain_model(30_000))
    result = _run(["verify", "--no-color", "--progress", "--deadline", "4", str(path)])
    assert result.returncode == 1
    assert "verifying chain: " in result.stderr
    silent = _run(["verify", "--no-color", "--deadline", "4", str(path)])
    assert silent.returncode == 1 and "verifying" not in silent.stderr


def test_model_lookups_are_indexed():
    from fsmcheck.model import load_model

    model = load_model(MODELS / "vfio_v2.toml")
    # one dictionary built at load time, not one per call
    assert model.state("STOP") is model.state("STOP")
    assert isinstance(vars(model).get("_by_name"), dict) and len(vars(model)["_by_name"]) == len(model.states)
