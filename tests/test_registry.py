"""One property registry (issue 25): the loader, both engines and the
verifier read the same entries; both engines are :class:`Engine` objects."""

from __future__ import annotations

import pytest

from fsmcheck.engines import explicit, symbolic
from fsmcheck.engines.protocol import Engine, implementations
from fsmcheck.model import KNOWN_PROPERTIES, ModelError, load_model
from fsmcheck.model.properties import PROPERTIES, Property
from fsmcheck.verifier.verify import ENGINES, verify_model

from .conftest import MODELS

ENGINE_OBJECTS = (explicit.Explicit(), symbolic.Symbolic())


def test_both_engines_are_engines_and_implement_every_registered_property():
    for engine in ENGINE_OBJECTS:
        assert isinstance(engine, Engine)
        missing = [p.name for p in PROPERTIES if not engine.implements(p.name)]
        assert not missing, f"{engine.name} lacks {missing}"
    assert tuple(e.name for e in ENGINE_OBJECTS) == ENGINES


def test_the_loader_knows_exactly_the_registered_names(tmp_path):
    assert set(KNOWN_PROPERTIES) == {p.name for p in PROPERTIES}
    path = tmp_path / "m.toml"
    path.write_text('extends = "vfio_v1"\n[properties]\ncheck = ["no-such-property"]\n')
    with pytest.raises(ModelError, match="unknown property 'no-such-property'"):
        load_model(path)


def test_a_registry_entry_is_all_a_new_property_needs(monkeypatch, tmp_path):
    """A new entry with one implementation function per engine is listed by
    the loader, decided by both engines and reported by the verifier."""
    import fsmcheck.model.loader as loader
    import fsmcheck.model.properties as registry

    extra = Property("initial-requestable", "config", "", lambda m: True,
                     lambda m, c: f"the state at open {m.initial} is requestable", "test")
    monkeypatch.setattr(registry, "PROPERTIES", registry.PROPERTIES + (extra,))
    monkeypatch.setattr(loader, "KNOWN_PROPERTIES", tuple(p.name for p in registry.PROPERTIES))

    def decide(model, config, *_):
        from fsmcheck.semantics.verdict import HOLDS, Verdict, fail

        return Verdict(HOLDS) if model.state(model.initial).requestable else fail("not requestable")

    monkeypatch.setitem(explicit._CHECKS, extra.name, decide)
    monkeypatch.setitem(symbolic._CHECKS, extra.name, lambda enc, timeout: decide(enc.model, enc.config))
    path = tmp_path / "m.toml"
    path.write_text('extends = "vfio_v1"\n[properties]\ncheck = ["reset", "initial-requestable"]\n')
    results = verify_model(load_model(path))
    assert [r.prop.name for r in results] == ["reset", "reset", "initial-requestable", "initial-requestable"]
    results = [r for r in results if r.prop is extra]
    assert {r.status for r in results} == {"holds"} and {*results[0].verdicts} == set(ENGINES)
    assert all(r.statement == "the state at open RUNNING is requestable" for r in results)


def test_implementations_are_found_by_the_registry_name():
    def _check_walk_agrees(model, config):
        return None

    found = implementations({"_check_walk_agrees": _check_walk_agrees, "_check_other": len}, "_check_")
    assert found == {"walk-agrees": _check_walk_agrees}
