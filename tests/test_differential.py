"""Differential test: on random valid models, networkx and z3 agree on every
property (verdict and derived evidence), and each run ends.

The models come from :func:`fuzz.strategies.model_files` (the strategy
``make fuzz`` uses): enum sorts and bit encodings with reserved bits, flag
sets, profiles (declared, tagged, all-requestable), walks, a correspondence
to a second model, and odd state names. Hypothesis prints the seed of a
failing run; replay it with ``pytest --hypothesis-seed=N``. The long form is
``make fuzz``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model
from fuzz.strategies import model_files


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model_files())
def test_engines_agree_on_random_models(files):
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        model = load_model(Path(tmp) / "m.toml")
        for r in verify_model(model, deadline=120):
            statuses = {name: v.status for name, v in r.verdicts.items()}
            notes = " ".join(v.note for v in r.verdicts.values())
            assert r.status not in ("disagree", "error"), (r.prop.name, r.config, statuses, r.detail, files)
            assert "deadline" not in notes, (r.prop.name, r.config, files)
            decided = {s for s in statuses.values() if s != "unknown"}
            assert len(decided) <= 1, (r.prop.name, statuses)
