"""The README and the manual (issue 24, point 4): the README fits a screen
and opens with the two commands; every command it prints runs as printed;
`make docs` builds the site in strict mode with the CLI reference from the
click commands, the model format from the loader's JSON Schema, and the exit
codes from fsmcheck.options."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT / "tools"))
import docs_gen  # noqa: E402


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of a Markdown text: (language, lines)."""
    return [(lang, body.splitlines()) for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def _commands(lines: list[str]) -> list[str]:
    return [line.split("  #", 1)[0].strip() for line in lines if line.strip() and not line.startswith("#")]


def test_readme_fits_and_opens_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    lang, first = _blocks(text)[0]
    assert text.startswith("```") and lang == "sh"
    assert _commands(first) == ["make main", "make test"]


def test_readme_links_point_at_pages_that_exist():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).is_file(), target


#: README commands the test does not run itself, and where they are run instead.
ELSEWHERE = {
    ".venv/bin/python -m build": "make wheel-check (CI) builds the wheel",
    "pipx install": "make wheel-check (CI) pipx-installs the wheel",
}


@pytest.mark.slow
def test_every_readme_command_runs_as_printed(tmp_path):
    """Each `sh` block's commands, from a directory that has the checkout's
    files (so relative paths resolve) and takes what the commands write:
    `fsmcheck ...` runs (exit 0, or 1 for diff, whose example changes
    something), `make TARGET` must name a target (`make -n`). `text` blocks
    are not commands (a device is needed)."""
    for entry in ("models", "tests", "generated_tests", "Makefile", "pyproject.toml", "fsmcheck"):
        (tmp_path / entry).symlink_to(ROOT / entry)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    ran = []
    for lang, lines in _blocks(README.read_text()):
        if lang != "sh":
            continue
        for command in _commands(lines):
            if any(command.startswith(prefix) for prefix in ELSEWHERE):
                continue
            argv = shlex.split(command)
            if argv[0] == "make":
                proc = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                                      timeout=60, env=env)
                assert proc.returncode == 0, (command, proc.stderr)
                continue
            assert argv[0] == "fsmcheck", f"README command of unknown kind: {command}"
            proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
            allowed = (0, 1) if argv[1] == "diff" else (0,)
            assert proc.returncode in allowed, (command, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
            ran.append(argv[1])
    assert {"run-pack", "check-trace", "verify", "diff", "report"} <= set(ran)
    assert (tmp_path / "results" / "results.html").is_file() and (tmp_path / "report.html").is_file()


def test_benchmarks_page_shows_the_bench_output_files(tmp_path):
    assert "No measurements" in docs_gen.benchmarks_page(tmp_path)
    (tmp_path / "bench_startup.txt").write_text("$ python bench/bench_startup.py\nfsmcheck --help 55 ms (2.5x)\n")
    (tmp_path / "bench_verify.txt").write_text("$ python bench/bench_verify.py\nverify v1 320 ms\n")
    page = docs_gen.benchmarks_page(tmp_path)
    assert "fsmcheck --help 55 ms (2.5x)" in page and "verify v1 320 ms" in page
    assert page.index("bench_verify") < page.index("bench_startup"), "in the order make bench runs them"


def test_bench_record_keeps_the_output(tmp_path):
    script = tmp_path / "bench_demo.py"
    script.write_text("print('figure 42 ms (1.5x)')\n")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "record.py"), str(tmp_path / "out"), str(script)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    kept = (tmp_path / "out" / "bench_demo.txt").read_text()
    assert "figure 42 ms (1.5x)" in kept and kept.startswith("$ python ")


@pytest.mark.slow
def test_make_docs_builds_strict_with_generated_references(tmp_path):
    if shutil.which("mkdocs", path=str(BIN)) is None:
        pytest.skip("mkdocs is not installed (make setup installs it)")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr
    reference = (site / "cli-reference.html").read_text()
    from fsmcheck.cli import LAZY_SUBCOMMANDS

    for name in LAZY_SUBCOMMANDS:
        assert f">{name}<" in reference or f"fsmcheck {name}" in reference, name
    assert "--reference" in reference
    commands = (site / "commands.html").read_text()
    assert "internal error" in commands and "INTERRUPTED" in commands
    reference = (site / "model-format-reference.html").read_text()
    from fsmcheck.model import SCHEMA

    assert all(f"<code>{table}</code>" in reference for table in SCHEMA["properties"])
    assert (site / "benchmarks.html").is_file()


def test_a_missing_shared_folder_skips_with_its_reason_and_fails_in_ci(monkeypatch):
    from .conftest import require_shared

    monkeypatch.delenv("FSMCHECK_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"\.\./shared/seeds/x is missing.*beside the checkout"):
        require_shared(False, "seeds/x")
    monkeypatch.setenv("FSMCHECK_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="CI has it"):
        require_shared(False, "seeds/x")
    require_shared(True, "seeds/x")
