"""Differential test: on random small models, networkx and z3 agree on every
property (verdict and derived evidence). Hypothesis prints the seed of a
failing run; replay it with ``pytest --hypothesis-seed=N``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmcheck.model import load_model
from fsmcheck.verifier.verify import verify_model

FLAGS = ["F0", "F1"]
EFFECTS = ["starts", "keeps", "ends", "none"]


def _toml_list(items) -> str:
    return json.dumps(list(items))


@st.composite
def models(draw) -> str:
    """TOML text of a random enum model of 2 to 5 states."""
    n = draw(st.integers(2, 5))
    names = [f"S{i}" for i in range(n)]
    has_error = draw(st.booleans())
    error = names[-1] if has_error else None
    needs = {name: [] if name in (names[0], error) else draw(st.lists(st.sampled_from(FLAGS), unique=True, max_size=2))
             for name in names}
    flag_sets = draw(st.lists(st.lists(st.sampled_from(FLAGS), unique=True).map(sorted), min_size=1, max_size=3,
                              unique_by=lambda s: tuple(s)))
    pairs = [(a, b) for a in names for b in names if a != b]
    arcs = draw(st.lists(st.tuples(st.sampled_from(pairs), st.lists(st.sampled_from(FLAGS), unique=True, max_size=1),
                                   st.sampled_from(EFFECTS)), max_size=10, unique_by=lambda a: a[0]))
    group = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    blocked = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2))
    within = draw(st.booleans())
    lines = ["format = 1", "[model]", 'name = "random"', 'encoding = "enum"', "width = 8", "[device]",
             f'initial = "{names[0]}"', f'reset = "{names[0]}"']
    if error:
        lines.append(f'error = "{error}"')
    lines += ["[flags]", "bits = { F0 = 0, F1 = 1 }", f"sets = {_toml_list(flag_sets)}"]
    for i, name in enumerate(names):
        lines += ["[[states]]", f'name = "{name}"', f"value = {i}", f"needs = {_toml_list(needs[name])}"]
        if name == error:
            lines.append("requestable = false")
    lines += ["[groups]", f"g = {_toml_list(group)}", "[sessions]", 'groups = ["g"]']
    for (a, b), need, effect in arcs:
        lines += ["[[arcs]]", f'from = "{a}"', f'to = "{b}"', f"needs = {_toml_list(need)}",
                  f'session = "{effect}"']
    for a, b in blocked:
        lines += ["[[blocked]]", f'from = "{a}"', f'to = "{b}"']
    lines += ["[combination]", 'no_interior = ["g"]', f"within_group = {str(within).lower()}"]
    exits = draw(st.lists(st.sampled_from(names), unique=True, max_size=1))
    checks = draw(st.tuples(st.booleans(), st.booleans()))
    lines += ["[walk]", f"exits = {_toml_list(exits)}", f"reject = {_toml_list(exits)}",
              f"check_current = {str(checks[0]).lower()}", f"check_requested = {str(checks[1]).lower()}",
              "[walk.requires]"]
    for name in names:
        req = ["*"] if name == error else needs[name]
        lines.append(f"{name} = {_toml_list(req)}")
    lines.append("[walk.next]")
    for cur in names:
        row = ", ".join(f'{req} = "{draw(st.sampled_from([req, cur] + names))}"' for req in names)
        lines.append(f"{cur} = {{ {row} }}")
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_engines_agree_on_random_models(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.toml"
        path.write_text(text)
        model = load_model(path)
        for r in verify_model(model):
            statuses = {name: v.status for name, v in r.verdicts.items()}
            assert r.status not in ("disagree", "error"), (r.prop.name, r.config, statuses, r.detail, text)
            decided = {s for s in statuses.values() if s != "unknown"}
            assert len(decided) <= 1, (r.prop.name, statuses)
