"""The P2P quiesce rule: read from the model's [p2p] table and its groups."""

from __future__ import annotations

import itertools

import pytest

from fsmcheck.model import ModelError, load_model
from fsmcheck.semantics.p2p import lacks_p2p, quiesce_violations

from .conftest import MODELS


@pytest.fixture(scope="module")
def v2():
    return load_model(MODELS / "vfio_v2.toml")


def test_rule_follows_the_groups(v2):
    """A pair of devices is unsafe exactly when one is in the initiating group
    and the other outside the accepting group (vfio.h, P2P quiescent state)."""
    init = set(v2.groups[v2.p2p.initiating])
    acc = set(v2.groups[v2.p2p.accepting])
    assert init == {"RUNNING", "PRE_COPY"}
    assert set(v2.state_names) - acc == {"STOP", "STOP_COPY", "RESUMING", "ERROR"}
    for a, b in itertools.product(v2.state_names, repeat=2):
        found = quiesce_violations(v2, {"d0": a, "d1": b})
        expected = [(x, y) for x, sx, y, sy in (("d0", a, "d1", b), ("d1", b, "d0", a))
                    if sx in init and sy not in acc]
        assert [(v.initiator, v.blocked) for v in found] == expected, (a, b)


def test_single_device_is_vacuous(v2):
    for s in v2.state_names:
        assert quiesce_violations(v2, {"only": s}) == []


def test_device_without_p2p_is_a_finding(v2):
    flags = {"a": ["STOP_COPY", "P2P"], "b": ["STOP_COPY", "PRE_COPY"]}
    assert lacks_p2p(v2, flags) == ["b"]
    assert lacks_p2p(v2, {"b": ["STOP_COPY"]}) == []


def test_unknown_group_is_a_model_error(tmp_path):
    text = (MODELS / "vfio_v2.toml").read_text().replace('initiating = "p2p_initiating"', 'initiating = "nope"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ModelError) as info:
        load_model(path)
    line = next(n for n, l in enumerate(text.splitlines(), 1) if l.startswith('initiating = "nope"'))
    assert f"{path}:{line}: p2p.initiating: unknown group 'nope'" in str(info.value)
