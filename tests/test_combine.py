"""How engine verdicts combine, and what the CLI does with the result:
unknown is never holds; a disagreement is an internal error (exit 3)."""

from __future__ import annotations

import pytest

from fsmcheck.engines import explicit, symbolic
from fsmcheck.engines.z3_encoding import UnknownResult
from fsmcheck.semantics.verdict import FAILS, HOLDS, UNKNOWN, Verdict
from fsmcheck.verifier.verify import combine

from .conftest import MODELS, cli

V1 = str(MODELS / "vfio_v1.toml")


@pytest.mark.parametrize("a, b, want", [
    (HOLDS, HOLDS, HOLDS),
    (FAILS, FAILS, FAILS),
    (HOLDS, FAILS, "disagree"),
    (FAILS, HOLDS, "disagree"),
    (HOLDS, UNKNOWN, UNKNOWN),
    (UNKNOWN, FAILS, FAILS),
    (UNKNOWN, UNKNOWN, UNKNOWN),
    ("error", HOLDS, "error"),
])
def test_combine_table(a, b, want):
    assert combine({"networkx": Verdict(a), "z3": Verdict(b)})[0] == want


def test_different_evidence_is_a_disagreement_even_when_both_hold():
    status, detail = combine({"networkx": Verdict(HOLDS, evidence={("A", "B"): 1}),
                              "z3": Verdict(HOLDS, evidence={("A", "B"): 2})})
    assert status == "disagree" and "('A', 'B')" in detail


def test_z3_timeout_is_unknown_and_exits_1(monkeypatch):
    def timeout(*_args, **_kw):
        raise UnknownResult("timeout")

    monkeypatch.setattr("fsmcheck.engines.symbolic.solve", timeout)
    assert symbolic.check("validity", *_v1()).status == UNKNOWN
    result = cli("verify", "--no-color", V1)
    assert result.exit_code == 1
    assert "UNKNOWN validity [all]" in result.output and "z3: timeout" in result.output


def test_engine_disagreement_exits_3(monkeypatch):
    real = explicit.check

    def lying(name, model, config):
        verdict = real(name, model, config)
        return Verdict(FAILS) if name == "reset" else verdict

    monkeypatch.setattr("fsmcheck.verifier.verify.explicit.check", lying)
    result = cli("verify", "--no-color", V1)
    assert result.exit_code == 3
    assert "engines disagree: networkx says fails, z3 says holds" in result.output


def test_engine_crash_is_an_internal_error_not_a_traceback(monkeypatch):
    def broken(name, model, config):
        raise RuntimeError("boom")

    monkeypatch.setattr("fsmcheck.verifier.verify.explicit.check", broken)
    result = cli("verify", "--no-color", V1)
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output


def _v1():
    from fsmcheck.model import load_model

    model = load_model(V1)
    return model, model.configs()[0]
