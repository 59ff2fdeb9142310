"""Composed multi-device models: QEMU's orchestration of N devices.

Both engines (explicit product, z3 BMC + k-induction) must agree; the
one-failure finding must come out with its shortest counterexample; seeded
defects (generated here from the shipped model by text edits) must fail;
bad orchestration files must exit 2 with file:line.
"""

from __future__ import annotations

import json
import shutil

import pytest

from fsmcheck.model import ModelError
from fsmcheck.orchestration import load_orchestration
from fsmcheck.orchestration.explicit import explore
from fsmcheck.orchestration.semantics import System, callback_outcomes
from fsmcheck.orchestration.symbolic import prove
from fsmcheck.orchestration.verify import verify_orchestration
from fsmcheck.semantics.combination import PATH, derive_table
from fsmcheck.semantics.p2p import quiesce_violations

from .conftest import MODELS, cli

ORCH = MODELS / "qemu_orchestration.toml"
ALL = frozenset({"STOP_COPY", "P2P", "PRE_COPY"})
NO_PRECOPY, NO_P2P = frozenset({"STOP_COPY", "P2P"}), frozenset({"STOP_COPY", "PRE_COPY"})


@pytest.fixture(scope="module")
def orch():
    return load_orchestration(ORCH)


run = cli


@pytest.fixture
def orch_variant(tmp_path):
    """``orch_variant([(old, new), ...])``: the shipped orchestration with each
    ``old`` (matching exactly once) replaced, beside a copy of vfio_v2.toml."""

    def make(edits, name="variant.toml"):
        shutil.copy(MODELS / "vfio_v2.toml", tmp_path / "vfio_v2.toml")
        shutil.copy(MODELS / "vfio_v1.toml", tmp_path / "vfio_v1.toml")
        text = ORCH.read_text()
        for old, new in edits:
            assert text.count(old) == 1, f"seeded edit must match once: {old!r}"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def _statuses(results):
    return {(r.prop.name, r.config.split(" ")[0]): r.status for r in results}


# -- semantics derived from the device model ---------------------------------------

def test_callback_outcomes_follow_the_derived_table(orch):
    """A failed request lands in the current state, along the derived path, or
    in ERROR -- exactly the states the device model's path gives."""
    device = orch.device
    config = next(c for c in device.configs() if c.flags == ALL)
    entry = derive_table(device, config)[("RUNNING", "STOP")]
    assert entry.outcome == PATH
    outs = callback_outcomes(device, ALL, "STOP", "ERROR", "RUNNING", False, 1)
    assert outs[0].state == "STOP" and not outs[0].error
    stories = [o.story for o in outs[1:]]
    landed = {s.split("(left ")[1].split(")")[0] for s in stories}
    assert landed == {"RUNNING", device.error, *entry.path[:-1]}
    assert all(o.state == device.reset and o.reset for o in outs[1:])
    # no budget: only success; a rejected request fails without using the budget
    assert len(callback_outcomes(device, ALL, "STOP", "ERROR", "RUNNING", False, 0)) == 1
    rejected = callback_outcomes(device, ALL, "RUNNING", "ERROR", "ERROR", False, 0)
    assert [(o.state, o.failures, o.error) for o in rejected] == [(device.reset, 0, True)]


def test_no_prepare_callback_without_p2p(orch):
    system = System(orch, orch.run("stop-cont"), (frozenset({"STOP_COPY"}),), 0)
    assert system.rule(0, frozenset({"STOP_COPY"}), "RUNNING") is None
    assert system.rule(0, ALL, "RUNNING").request == "RUNNING_P2P"


# -- both engines agree ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("devices,failures", [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)])
def test_engines_agree_on_the_shipped_model(orch, devices, failures):
    results = verify_orchestration(orch, devices=devices, failures=failures, timeout_ms=60000)
    assert all(r.status in ("holds", "fails") for r in results), [(r.config, r.status, r.detail) for r in results]
    for r in results:
        nx, z3 = r.verdicts["networkx"], r.verdicts["z3"]
        assert nx.status == z3.status, r.config
        if nx.counterexample is not None:
            # the same shortest length in steps (a step: a batch of identical callbacks)
            assert nx.evidence["length"] == z3.evidence["length"]
    statuses = _statuses(results)
    expected_p2p = "fails" if failures and devices > 1 else "holds"
    for run_name in ("migrate-source", "stop-cont", "migrate-destination"):
        assert statuses[("progress", run_name)] == "holds"
        assert statuses[("p2p-safety", run_name)] == expected_p2p


@pytest.mark.slow
def test_engines_agree_with_mixed_flag_sets(orch):
    """Symmetry reduction groups devices by flag set; mixed sets stay apart."""
    flags = [ALL, NO_PRECOPY, ALL]
    results = verify_orchestration(orch, devices=3, failures=1, flags=flags, timeout_ms=300000)  # loaded machines
    for r in results:
        assert r.verdicts["networkx"].status == r.verdicts["z3"].status, r.config


def test_a_device_without_p2p_breaks_p2p_safety(orch):
    results = verify_orchestration(orch, devices=2, flags=[ALL, NO_P2P], runs=["stop-cont"])
    [p2p] = [r for r in results if r.prop.name == "p2p-safety"]
    assert p2p.status == "fails" and "without P2P" in p2p.detail and "dev1" in p2p.detail


def test_orchestration_engines_are_engines_of_the_one_registry(orch):
    from fsmcheck.engines.protocol import Engine
    from fsmcheck.model.properties import ORCHESTRATION, requirement
    from fsmcheck.orchestration import explicit, loader, symbolic

    assert loader.PROPERTIES == tuple(p.name for p in ORCHESTRATION)
    for engine in (explicit.Explicit(), symbolic.Symbolic()):
        assert isinstance(engine, Engine) and all(engine.implements(p.name) for p in ORCHESTRATION)
    assert requirement("stopped-vm") in ORCHESTRATION and hash(orch) == hash(load_orchestration(ORCH))


def test_one_exploration_per_configuration_and_the_deadline_bounds_it(orch):
    from fsmcheck.orchestration import explicit

    explicit._explored.cache_clear()
    results = verify_orchestration(load_orchestration(MODELS / "qemu_orchestration_cancel.toml"), devices=2)
    assert len({r.prop.name for r in results}) == 3
    assert explicit._explored.cache_info().misses == len({r.config for r in results})
    late = verify_orchestration(orch, devices=2, deadline=1e-9)
    assert {v.note for r in late for v in r.verdicts.values()} == {"not decided before the deadline"}


# -- the finding --------------------------------------------------------------------

@pytest.mark.slow
def test_failed_prepare_resets_a_device_while_another_is_stopped(orch):
    results = verify_orchestration(orch, devices=2, failures=1, runs=["migrate-source"])
    [p2p] = [r for r in results if r.prop.name == "p2p-safety"]
    assert p2p.status == "fails"
    for engine in ("networkx", "z3"):
        # shortest: 6 steps (a step: a batch of identical callbacks) -- both setups, phase,
        # 2 prepares, phase, 1 main: 7 callbacks and phase moves in the explicit engine's trace
        assert p2p.verdicts[engine].evidence["length"] == 6
    for engine in ("networkx",):
        cex = p2p.verdicts[engine].counterexample
        steps = cex.data["steps"]
        assert len(steps) - 1 == 7
        events = [s["event"] for s in steps]
        failed = next(i for i, e in enumerate(events) if "vfio_vmstate_change_prepare" in e and "failed" in e)
        assert "recover ERROR: VFIO_DEVICE_RESET -> RUNNING" in events[failed]
        victim = steps[failed]["device"]
        assert events[-1].startswith(f"vfio_vmstate_change(dev{1 - victim}) (stop-main)")
        assert steps[-1]["states"][victim] == "RUNNING"
        assert steps[-1]["states"][1 - victim] in ("STOP", "STOP_COPY")
        assert cex.line == orch.phases["stop-main"].line


@pytest.mark.slow
def test_the_finding_is_minimal(orch):
    """No counterexample is shorter: z3 BMC to depth 5 finds none, and the
    explicit product's breadth-first first violation is at depth 6 (steps:
    batches of identical callbacks; here 7 callbacks and phase moves)."""
    system = System(orch, orch.run("migrate-source"), (ALL, ALL), 1)
    assert prove(system, "p2p-safety", max_k=6).status != "fails"
    assert prove(system, "p2p-safety", max_k=7).status == "fails"
    e = explore(system)
    assert e.length(e.p2p_bad) == 6
    assert len(e.trace(e.p2p_bad)) - 1 == 7
    # without PRE_COPY the setup phase calls no device: two steps fewer
    short = System(orch, orch.run("migrate-source"), (NO_PRECOPY, NO_PRECOPY), 1)
    assert prove(short, "p2p-safety").k == 5


def test_failure_free_orchestration_is_safe_by_k_induction_at_k1(orch):
    for n in (2, 4, 16):
        system = System(orch, orch.run("migrate-source"), (ALL,) * n, 0)
        proof = prove(system, "p2p-safety")
        assert proof.status == "holds" and proof.k == 1 and not proof.by_bmc, proof.note
        assert "closed at k=1" in proof.note and "symmetry" in proof.note


@pytest.mark.slow
def test_plain_k_induction_does_not_close_quickly(orch):
    """The lemma matters: plain k-induction (no strengthening) does not close
    at k <= 3, and says so; with it the same query closes at k = 1."""
    system = System(orch, orch.run("migrate-source"), (ALL,) * 3, 0)
    plain = prove(system, "p2p-safety", strengthen=False, max_k=4)
    assert plain.status == "unknown" and "did not close" in plain.note


# -- seeded defects -----------------------------------------------------------------

MAIN_BEFORE_PREPARE = ('phases = ["stop-prepare", "stop-main", "start-prepare", "start-main"]',
                       'phases = ["stop-main", "stop-prepare", "start-prepare", "start-main"]')
PREPARE_ONLY_WITH_PRECOPY = ('  { needs = ["P2P"], request = "RUNNING_P2P", recover = "ERROR" },\n]\n'
                             'source = "hw/vfio/migration.c: vfio_vmstate_change_prepare() via',
                             '  { needs = ["P2P", "PRE_COPY"], request = "RUNNING_P2P", recover = "ERROR" },\n]\n'
                             'source = "hw/vfio/migration.c: vfio_vmstate_change_prepare() via')
START_WITHOUT_PREPARE = ('phases = ["stop-prepare", "stop-main", "start-prepare", "start-main"]',
                         'phases = ["stop-prepare", "stop-main", "start-main"]')


@pytest.mark.parametrize("edit,flags", [
    (MAIN_BEFORE_PREPARE, ALL),
    (PREPARE_ONLY_WITH_PRECOPY, NO_PRECOPY),
    (START_WITHOUT_PREPARE, ALL),
], ids=["main-before-prepare", "prepare-skipped-without-pre-copy", "start-running-before-all-p2p"])
def test_seeded_defects_fail_on_both_engines(orch_variant, edit, flags):
    path = orch_variant([edit])
    results = verify_orchestration(load_orchestration(path), devices=2, failures=0, flags=[flags], runs=["stop-cont"])
    [p2p] = [r for r in results if r.prop.name == "p2p-safety"]
    assert p2p.verdicts["networkx"].status == p2p.verdicts["z3"].status == "fails"
    last = p2p.counterexample.data["steps"][-1]["states"]
    assert quiesce_violations(load_orchestration(path).device, {f"d{i}": s for i, s in enumerate(last)})
    # and the shipped model holds for the same configuration
    shipped = verify_orchestration(load_orchestration(ORCH), devices=2, flags=[flags], runs=["stop-cont"])
    assert all(r.status == "holds" for r in shipped)


def test_start_defect_shows_a_running_device_next_to_a_stopped_one(orch_variant):
    path = orch_variant([START_WITHOUT_PREPARE])
    results = verify_orchestration(load_orchestration(path), devices=3, runs=["stop-cont"])
    [p2p] = [r for r in results if r.prop.name == "p2p-safety"]
    states = p2p.counterexample.data["steps"][-1]["states"]
    assert "RUNNING" in states and "STOP" in states and "RUNNING_P2P" not in states


# -- CLI ----------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_exit_codes_json_and_traces(tmp_path):
    ok = run("verify", "--no-color", str(ORCH), "--devices", "3")
    assert ok.exit_code == 0, ok.output
    assert "6 property instances: 6 holds" in ok.output
    traces, sarif = tmp_path / "traces", tmp_path / "out.sarif"
    bad = run("verify", "--json", str(ORCH), "--devices", "2", "--failures", "1", "--trace-dir", str(traces),
              "--sarif", str(sarif))
    assert bad.exit_code == 1, bad.output
    doc = json.loads(bad.output)
    [model] = doc["models"]
    failing = [r for r in model["results"] if r["status"] == "fails"]
    assert {r["property"] for r in failing} == {"p2p-safety"}
    assert "vfio_vmstate_change_prepare" in " ".join(failing[0]["counterexample"]["trace"])
    files = sorted(traces.glob("*.itf.json"))
    assert len(files) == 2 * len(failing)
    itf = json.loads(files[0].read_text())
    assert itf["vars"] == ["phase", "event", "dev0", "dev1"] and itf["states"][0]["event"] == "open"
    log = json.loads(sarif.read_text())
    assert len(log["runs"][0]["results"]) == len(failing)


@pytest.mark.slow
def test_cli_flags_per_device_and_bad_flags():
    mixed = run("verify", "-q", "--no-color", str(ORCH), "--flags", "STOP_COPY,P2P,PRE_COPY", "--flags", "STOP_COPY")
    assert mixed.exit_code == 1 and "without P2P" in mixed.output
    unknown = run("verify", str(ORCH), "--flags", "STOP_COPY,BOGUS")
    assert unknown.exit_code == 2 and "unknown flag" in unknown.output
    too_many = run("verify", str(ORCH), "--devices", "1", "--flags", "3", "--flags", "7")
    assert too_many.exit_code == 2 and "2 flag sets given for 1 device" in too_many.output


def test_cli_disagreement_exits_3(monkeypatch):
    from fsmcheck.orchestration import symbolic

    monkeypatch.setattr(symbolic, "prove", lambda *a, **k: symbolic.Proof("holds", 1, note="forced"))
    result = run("verify", "--no-color", str(ORCH), "--failures", "1")
    assert result.exit_code == 3 and "disagree" in result.output


@pytest.mark.parametrize("edit,key,message", [
    (('phases = ["stop-prepare", "stop-main", "start-prepare", "start-main"]',
      'phases = ["stop-prepare", "stop-mian", "start-prepare", "start-main"]'),
     "runs[1].phases", "unknown phase 'stop-mian'"),
    (('rules = [{ request = "RUNNING", recover = "ERROR" }]\nsource = "hw/vfio/migration.c: vfio_vmstate_change(running=true)',
      'rules = [{ request = "RUNING", recover = "ERROR" }]\nsource = "hw/vfio/migration.c: vfio_vmstate_change(running=true)'),
     "phases[6].rules", "request must name a state"),
    (('on_error = "abort"\n', 'on_error = "explode"\n'), "phases[2].on_error", "expected \"abort\""),
    (('device_model = "vfio_v2.toml"', 'device_model = "nope.toml"'), "orchestration.device_model",
     "does not load"),
])
def test_bad_orchestration_files_exit_2_with_file_line(orch_variant, edit, key, message):
    path = orch_variant([edit])
    result = run("verify", str(path))
    assert result.exit_code == 2, result.output
    lines = path.read_text().splitlines()
    prefix = f"{path}:"
    hit = next(line for line in result.output.splitlines() if line.startswith(prefix) and message in line)
    number, got_key = hit[len(prefix):].split(": ")[:2]
    assert got_key == key
    assert edit[1].split("\n")[0].strip()[:12] in lines[int(number) - 1] or key.startswith("phases[6]")
    with pytest.raises(ModelError):
        load_orchestration(path)


def test_toml_syntax_error_exits_2(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[orchestration]\nname = "x"\ndevice_model = \n')
    result = run("verify", str(path))
    assert result.exit_code == 2


# -- the single-device property -------------------------------------------------------

def test_p2p_quiesce_is_listed_for_vfio_v2_and_holds_on_both_engines():
    result = run("verify", "--json", str(MODELS / "vfio_v2.toml"))
    doc = json.loads(result.output)
    rows = [r for r in doc["models"][0]["results"] if r["property"] == "p2p-quiesce"]
    assert len(rows) == 4 and all(r["status"] == "holds" for r in rows)
    assert all("vacuous" in r["engines"][e]["note"] for r in rows for e in ("networkx", "z3"))


# -- the benchmark, bounded -----------------------------------------------------------

@pytest.mark.slow
def test_bench_bounded_form():
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_orchestration", ROOT / "bench" / "bench_orchestration.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = []
    rows = bench.run([2, 4], 0, 30.0, pan_upto=0, properties=("p2p-safety",), out=lines.append)
    assert [r["n"] for r in rows] == [2, 4] and all(r["agree"] and r["decided"] for r in rows)
    assert rows[1]["explicit"]["states"] > rows[0]["explicit"]["states"]
    assert all(r["z3"]["status"] == "holds" and "closed at k=1" in r["z3"]["how"] for r in rows)
    assert any("pan/nx" in line for line in lines) and "load average" in lines[0]


# -- the report section ---------------------------------------------------------------

@pytest.mark.slow
def test_report_section_has_the_table_and_sequence_charts():
    from fsmcheck.orchestration.report import orchestration_section
    from fsmcheck.review.report import report_html

    title, section, results = orchestration_section(str(ORCH), failure_budgets=(1,))
    assert title.startswith("qemu_orchestration: ")
    failing = [r for r in results if r.status == "fails"]
    assert section.count("<table class='chart'>") == len(failing) == 3
    assert section.count("class='violation'") == len(failing)
    assert "vfio_vmstate_change_prepare(dev" in section and "VFIO_DEVICE_RESET" in section
    page = report_html([], [("orch0", title, section)])
    assert f"<a href='#orch0'>{title}</a>" in page and f"<section id='orch0'><h2>{title}</h2>{section}</section>" in page
