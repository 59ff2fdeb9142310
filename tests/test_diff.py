"""fsmcheck diff (issue 15): two proposed variants of the v2 model, the pack's
test ids against pytest's collection, and the PRECOPY_INFO_REINIT suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fsmcheck.diff.pack_tests import pack_tests
from fsmcheck.generate.pack import pack_files
from fsmcheck.generate.writer import write_files
from fsmcheck.model import ModelError, load_model
from fsmcheck.semantics.combination import derive_table

from .conftest import MODELS, cli

ROOT = Path(__file__).resolve().parent.parent
V2 = MODELS / "vfio_v2.toml"
FUTURE = MODELS / "variants" / "vfio_v2_future_flag.toml"
REINIT = MODELS / "variants" / "vfio_v2_precopy_reinit.toml"


def _diff(*args):
    return cli("diff", "--quiet", *args)


@pytest.fixture(scope="module")
def future(tmp_path_factory):
    html = tmp_path_factory.mktemp("diff") / "diff.html"
    result = _diff("--json", "--html", html, V2, FUTURE)
    return result, json.loads(result.output), html


@pytest.fixture(scope="module")
def reinit():
    result = _diff("--json", V2, REINIT)
    return result, json.loads(result.output)


@pytest.mark.slow
def test_future_flag_changes_exactly_the_reserved_entries(future):
    result, doc, _ = future
    assert result.exit_code == 1 and doc["exit_code"] == 1 and doc["observable"]
    # Every changed entry is one of vfio.h's two reserved requests, in a flag
    # set with the new flag, compared with the set it extends.
    changed = {(e["config"], e["baseline"], e["current"], e["requested"]): (e["old"]["outcome"], e["new"]["path"])
               for e in doc["table"]}
    assert changed == {
        ("STOP_COPY|PRE_COPY|PRE_COPY_REENTRY", "STOP_COPY|PRE_COPY", "STOP_COPY", "PRE_COPY"):
            ("rejected", ["PRE_COPY"]),
        ("STOP_COPY|P2P|PRE_COPY|PRE_COPY_REENTRY", "STOP_COPY|P2P|PRE_COPY", "STOP_COPY", "PRE_COPY"):
            ("rejected", ["PRE_COPY_P2P", "PRE_COPY"]),
        ("STOP_COPY|P2P|PRE_COPY|PRE_COPY_REENTRY", "STOP_COPY|P2P|PRE_COPY", "STOP_COPY", "PRE_COPY_P2P"):
            ("rejected", ["PRE_COPY_P2P"]),
    }
    # The flag sets the old model has are unchanged (the blocks still apply there).
    new = load_model(FUTURE)
    for config in load_model(V2).configs():
        same = next(c for c in new.configs() if c.flags == config.flags)
        assert derive_table(load_model(V2), config) == derive_table(new, same)


@pytest.mark.slow
def test_future_flag_structure_verdicts_and_lines(future):
    _, doc, _ = future
    keys = {(c["change"], c["kind"], c["key"]) for c in doc["structure"]}
    assert ("added", "flag", "PRE_COPY_REENTRY") in keys
    assert ("changed", "blocked", "STOP_COPY -> PRE_COPY") in keys
    assert ("added", "arc", "STOP_COPY -> PRE_COPY [needs PRE_COPY,PRE_COPY_REENTRY; unless P2P]") in keys
    lines = FUTURE.read_text().splitlines()
    for c in doc["structure"]:
        if c["kind"] == "arc":
            assert lines[c["new_line"] - 1] == "[[arcs]]"
            assert c["old_line"] == 0
    # The 6.12 kernel's walk (kept in the variant) rejects the new arcs.
    assert [(v["property"], v["config"], v["old"], v["new"]) for v in doc["verdicts"]] == [
        ("walk-agrees", "STOP_COPY|PRE_COPY|PRE_COPY_REENTRY", "holds", "fails"),
        ("walk-agrees", "STOP_COPY|P2P|PRE_COPY|PRE_COPY_REENTRY", "holds", "fails")]
    assert doc["highlighted_arcs"] == {
        "STOP_COPY|PRE_COPY|PRE_COPY_REENTRY": [{"from": "STOP_COPY", "to": "PRE_COPY", "change": "added"}],
        "STOP_COPY|P2P|PRE_COPY|PRE_COPY_REENTRY": [{"from": "STOP_COPY", "to": "PRE_COPY_P2P", "change": "added"}]}


def test_future_flag_pack_tests(future):
    _, doc, _ = future
    by_module = {m["module"]: m for m in doc["pack"]}
    m = by_module["test_vfio_v2_future_flag_stop_copy_p2p_pre_copy_pre_copy_reentry.py"]
    assert m["baseline"] == "test_vfio_v2_stop_copy_p2p_pre_copy.py"
    assert {"test_pair[STOP_COPY->PRE_COPY]", "test_pair[STOP_COPY->PRE_COPY_P2P]"} <= set(m["appear"])
    assert {"test_rejected[STOP_COPY->6]", "test_rejected[STOP_COPY->7]"} <= set(m["disappear"])
    assert "test_arc_tour" in {c["test"] for c in m["changed"]}
    # Modules of the flag sets both models share do not change.
    assert set(by_module) == {"test_vfio_v2_future_flag_stop_copy_pre_copy_pre_copy_reentry.py",
                              "test_vfio_v2_future_flag_stop_copy_p2p_pre_copy_pre_copy_reentry.py"}


def test_future_flag_html_highlights_the_new_arcs(future):
    _, _, html = future
    page = html.read_text()
    assert "<section id='diff'>" in page and "href='#diff'" in page
    assert page.count('data-kind="diff"') == 6
    assert page.count('data-highlighted="1"') == 2
    assert "#8250df" in page       # the highlight colour of diagram.py


@pytest.mark.slow
def test_reinit_adds_only_the_capability_and_its_tests(reinit):
    result, doc = reinit
    assert result.exit_code == 1
    assert [(c["change"], c["kind"], c["key"]) for c in doc["structure"]] == [
        ("added", "capability", "PRECOPY_INFO_REINIT")]
    assert doc["table"] == [] and doc["verdicts"] == []
    assert {m["module"]: (m["appear"], m["disappear"], m["changed"]) for m in doc["pack"]} == {
        "test_vfio_v2_precopy_reinit_stop_copy_pre_copy.py": (["test_precopy_info_reinit[PRE_COPY]"], [], []),
        "test_vfio_v2_precopy_reinit_stop_copy_p2p_pre_copy.py": (
            ["test_precopy_info_reinit[PRE_COPY]", "test_precopy_info_reinit[PRE_COPY_P2P]"], [], []),
    }


@pytest.mark.slow
def test_nothing_observable_exits_0(tmp_path):
    copy = tmp_path / "vfio_v2.toml"
    copy.write_text("# a comment only\n" + V2.read_text().replace('source = "vfio.h: RUNNING -> RUNNING_P2P"',
                                                                    'source = "reworded"'))
    (tmp_path / "vfio_v1.toml").write_text((MODELS / "vfio_v1.toml").read_text())
    result = _diff("--json", V2, copy)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert not doc["observable"] and doc["structure"] == doc["table"] == doc["verdicts"] == doc["pack"] == []
    text = _diff(V2, copy)
    assert text.exit_code == 0 and "nothing observable changes" in text.output


def test_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(V2.read_text().replace('unless = ["P2P"]\nsession = "none"\nsource = "vfio_main.c comment: '
                                          'without P2P and precopy', 'unless = ["NOPE"]\nsession = "none"\n'
                                          'source = "vfio_main.c comment: without P2P and precopy', 1))
    result = cli("diff", str(V2), str(bad))
    assert result.exit_code == 2
    assert "unknown flag 'NOPE'" in result.output
    assert cli("diff", str(V2), str(tmp_path / "missing.toml")).exit_code == 2


def test_loader_checks_blocked_unless_and_capabilities(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text(REINIT.read_text().replace('states = ["PRE_COPY", "PRE_COPY_P2P"]', 'states = ["PRE_COPY", "LATER"]')
                   .replace("feature = 12 ", "feature = -1 ")
                   + '\n[[blocked]]\nfrom = "STOP_COPY"\nto = "PRE_COPY"\nunless = ["FUTURE"]\n')
    with pytest.raises(ModelError) as info:
        load_model(bad)
    text = str(info.value)
    assert "capabilities[0].states: unknown state 'LATER'" in text
    assert "capabilities[0].feature: expected an integer >= 0, got an integer -1" in text
    assert "unknown flag 'FUTURE'" in text


@pytest.mark.slow
def test_pack_test_ids_are_what_pytest_collects(tmp_path):
    """pack_tests() reads ids from the compiled source; pytest must agree."""
    model = load_model(REINIT)
    write_files(tmp_path, pack_files(model))
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:]
    collected = {line.split("::", 1)[1].replace("::", ".") for line in proc.stdout.splitlines() if "::" in line}
    ours = {f"{tid}" for tests in pack_tests(model).values() for tid in tests}
    # pytest lists the state machine's single test as TestStateMachine.runTest
    collected = {c.split(".")[0] if c.startswith("TestStateMachine") else c for c in collected}
    assert collected == ours


@pytest.fixture(scope="module")
def reinit_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("reinit_pack")
    write_files(out, pack_files(load_model(REINIT)))
    return out / "test_vfio_v2_precopy_reinit_stop_copy_p2p_pre_copy.py"


def _run_reinit(module, factory):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module),
                           "-k", "test_precopy_info_reinit", f"--fsmcheck-adapter={factory}", "-rs"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.parametrize("factory, passes, says", [
    ("tests.reinit_adapter:factory", True, "2 passed"),
    ("fsmcheck.drivers.reference:factory", True, "no precopy_info_v2"),
    ("tests.reinit_adapter:silent_factory", False, "without VFIO_PRECOPY_INFO_REINIT"),
    ("tests.reinit_adapter:dropping_factory", False, "the data_fd was disabled after VFIO_PRECOPY_INFO_REINIT"),
], ids=["conforming", "no-capability-skips", "silent-reinit", "dropped-session"])
@pytest.mark.slow
def test_reinit_suite(reinit_module, factory, passes, says):
    proc = _run_reinit(reinit_module, factory)
    assert (proc.returncode == 0) == passes, proc.stdout[-3000:]
    assert says in proc.stdout, proc.stdout[-3000:]
