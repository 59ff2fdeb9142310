"""Shared fixtures and helpers: paths of the shipped models, seeded-defect
variants, the CLI through click's runner (:func:`cli`), a pytest subprocess
(:func:`run_pytest`), and what to do when a tool or ``../shared`` is
missing (:func:`require_tool`, :func:`require_shared`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
TOY = Path(__file__).resolve().parent / "models" / "door.toml"


def pytest_collection_modifyitems(config, items):
    """Markers that follow from what a test uses (``make test-fast`` leaves
    them out; pyproject.toml declares them): ``kernel`` for a test that
    takes the unpacked linux-source-6.12 (the ``kernel_tree`` fixture),
    ``vm`` for the QEMU guest's tests (``tests/test_vm_*.py``). ``slow`` and
    ``browser`` are marked at the test."""
    for item in items:
        if "kernel_tree" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)
        if item.path.name.startswith("test_vm_"):
            item.add_marker(pytest.mark.vm)


@pytest.fixture
def variant(tmp_path):
    """``variant(name, [(old, new), ...])`` writes a copy of ``models/NAME``
    (with the other shipped models beside it) where each ``old`` text, which
    must occur exactly once, is replaced by ``new``; returns its path."""

    def make(name: str, edits: list[tuple[str, str]]) -> Path:
        for model in MODELS.glob("*.toml"):
            shutil.copy(model, tmp_path / model.name)
        target = tmp_path / name
        text = target.read_text()
        for old, new in edits:
            assert text.count(old) == 1, f"seeded edit must match once: {old!r}"
            text = text.replace(old, new)
        target.write_text(text)
        return target

    return make


@pytest.fixture(scope="session")
def kernel_tree(tmp_path_factory):
    """Root of the unpacked Debian linux-source-6.12 files the tests read."""
    from .kernel_source import unpack

    return unpack(tmp_path_factory.mktemp("linux"))


#: The project's shared folder, beside the checkout (seeds, SPEC.md, QEMU traces).
SHARED = ROOT.parent / "shared"
SEED_NVME = SHARED / "seeds"


@pytest.fixture
def nvme_seed():
    """../shared/seeds/004_*.txt: the NVMe RFC thread (beside the checkout in CI)."""
    found = sorted(SEED_NVME.glob("004_*.txt"))
    require_shared(bool(found), "seeds/004_*.txt (the NVMe RFC thread)")
    return found[0]


def require_shared(available: bool, what: str) -> None:
    """Skip, with the reason, a test that needs the project's ``../shared``
    folder when it is not beside the checkout (a fresh clone); fail instead
    when FSMCHECK_REQUIRE_TOOLS=1 (CI, which has it)."""
    if available:
        return
    message = f"../shared/{what} is missing: the project's shared folder must sit beside the checkout " \
              f"(as {SHARED}) for this test; CI has it"
    if os.environ.get("FSMCHECK_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def cli(*args, catch_exceptions: bool = True, **kwargs):
    """``fsmcheck ARGS...`` through click's runner (paths may be Path
    objects); returns click's ``Result``."""
    from click.testing import CliRunner

    from fsmcheck.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=catch_exceptions, **kwargs)


def progress_lines(*args) -> tuple[dict, list[str]]:
    """``fsmcheck ARGS... --json`` without and with ``--progress`` (stderr
    is not a terminal here): asserts both give the same exit code and a JSON
    document alone on stdout; returns the ``--progress`` run's document and
    the stderr lines ``--progress`` added (none without it)."""
    import json

    plain, shown = cli(*args, "--json"), cli(*args, "--json", "--progress")
    assert plain.exit_code == shown.exit_code, (plain.output, shown.output)
    json.loads(plain.stdout)
    return json.loads(shown.stdout), [line for line in shown.stderr.splitlines() if line not in plain.stderr]


def run_pytest(*args, timeout: float = 600, env: dict | None = None, cwd: Path = ROOT):
    """``python -m pytest -q -p no:cacheprovider ARGS...`` in a subprocess
    (from the checkout, outside any pytest-xdist worker of this run);
    returns the ``CompletedProcess`` with text output."""
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment)


#: Where tests keep artifacts worth looking at (the report's screenshot).
ARTIFACTS = ROOT / "artifacts"

#: Where `make setup` puts tools that come from registries other than PyPI
#: and Debian (the SARIF schema from npm).
TOOLS = ROOT / ".tools"


def require_tool(available: bool, what: str, install: str) -> None:
    """Skip when a system tool is missing -- or fail, when
    FSMCHECK_REQUIRE_TOOLS=1 (CI), so a missing install step cannot hide."""
    if available:
        return
    message = f"{what} is not installed ({install})"
    if os.environ.get("FSMCHECK_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


#: The seeded defects the cross-checks use (tests/test_defects.py has their
#: fsmcheck verdicts): v1 whose validity lets 101b through, and v2 without
#: the STOP -> RESUMING arc.
V1_LETS_101_THROUGH = ("vfio_v1.toml", [('valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"',
                                         'valid = "(s & 0x6) != 0x6"')])
V2_WITHOUT_STOP_TO_RESUMING = ("vfio_v2.toml", [('''[[arcs]]
from = "STOP"
to = "RESUMING"
session = "starts"
source = "vfio.h: STOP -> RESUMING returns a new data_fd"
''', "")])
