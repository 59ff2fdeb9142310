"""Memory as a tested property (issue 23): the combination table of a chain
of N states has N^2 cells, and verifying it must not take memory that grows
with N^3 (a 500-state chain took 2.3 GB here, 3.6 GB in the issue: z3's
datalog program kept a cumulative "reached up to k" copy per layer)."""

from __future__ import annotations

import pytest

from fsmcheck.engines.z3_encoding import Encoding
from fsmcheck.engines.z3_relations import Relations
from fsmcheck.model import load_model
from fsmcheck.semantics.combination import derive_table
from fuzz.strategies import chain_model

from .conftest import MODELS
from .robust_util import assert_clean, fsmcheck

COMBINATION = '[combination]\npath = "shortest"\n'


def test_500_state_chain_verifies_under_1_gb(tmp_path):
    path = tmp_path / "chain500.toml"
    path.write_text(chain_model(500) + COMBINATION)
    # --timeout-ms: the machine may be loaded; memory, not speed, is under test
    run = fsmcheck("verify", "-q", "--timeout-ms", "120000", path, timeout=400)
    assert_clean(run, 1)  # the chain has no way back: combination-table fails
    assert "S1 -> S0 has no admissible path" in run.text
    assert run.maxrss_kb < 1024 * 1024, f"peak RSS {run.maxrss_kb / 1024:.0f} MiB"


@pytest.mark.parametrize("n", [3, 12, 40])
def test_layered_datalog_table_equals_the_explicit_table_on_chains(tmp_path, n):
    # one direction, and both (the layer rules negate every earlier layer)
    for both in (False, True):
        text = chain_model(n)
        if both:
            text += "".join(f'[[arcs]]\nfrom = "S{i + 1}"\nto = "S{i}"\n' for i in range(n - 1))
        path = tmp_path / f"c{n}{both}.toml"
        path.write_text(text + COMBINATION)
        model = load_model(path)
        config = model.configs()[0]
        mine = Relations(Encoding(model, config), timeout_ms=120000).table()
        assert mine == {k: (e.outcome, e.alternatives) for k, e in derive_table(model, config).items()}


def test_a_50_mb_string_in_a_model_is_read_in_bounded_memory(tmp_path):
    # the nesting pre-scan needed ~125 bytes per byte of a long string (50 MB: 6.2 GB)
    text = (MODELS / "vfio_v1.toml").read_text()
    path = tmp_path / "long.toml"
    path.write_text(text.replace('title = "', 'title = "' + "a" * 50_000_000, 1))
    run = fsmcheck("verify", "-q", path, timeout=120)
    assert_clean(run, 0)
    assert run.maxrss_kb < 800 * 1024, f"peak RSS {run.maxrss_kb / 1024:.0f} MiB for a 50 MB file"
