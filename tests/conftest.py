"""Shared fixtures: paths of the shipped models and seeded-defect variants."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
TOY = Path(__file__).resolve().parent / "models" / "door.toml"


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


SEED_NVME = ROOT.parent / "shared" / "seeds"


@pytest.fixture
def nvme_seed():
    """../shared/seeds/004_*.txt: the NVMe RFC thread (beside the checkout in CI)."""
    found = sorted(SEED_NVME.glob("004_*.txt"))
    if not found:
        require_tool(False, "seed 004", f"{SEED_NVME} is missing: ../shared must sit beside the checkout")
    return found[0]


#: Where tests keep artifacts worth looking at (the report's screenshot).
ARTIFACTS = ROOT / "artifacts"

#: Where `make setup` puts tools that come from registries other than PyPI
#: and Debian (the SARIF schema from npm).
TOOLS = ROOT / ".tools"


def require_tool(available: bool, what: str, install: str) -> None:
    """Skip when a system tool is missing -- or fail, when
    FSMCHECK_REQUIRE_TOOLS=1 (CI), so a missing install step cannot hide."""
    import os

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
