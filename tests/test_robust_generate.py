"""generate and diff on models the verifier accepts but the pack writers
assumed away (issue 23): a v2 model whose STOP_COPY state has another name,
and a v1 model (reachability not among its checked properties) with a valid
state no strict arc reaches."""

from __future__ import annotations

import re
import shutil

from fsmcheck.generate.v2_pack import v2_pack_data
from fsmcheck.model import load_model

from .conftest import MODELS
from .robust_util import assert_clean, fsmcheck

_WALK_ROW = re.compile(r"^(STOP|RUNNING|PRE_COPY|PRE_COPY_P2P|STOP_COPY|RESUMING|RUNNING_P2P|ERROR) = [{\[]")


def _renamed_v2(tmp_path, new="SAVE_ALL"):
    """models/vfio_v2.toml with the state STOP_COPY called ``new`` (the flag
    keeps its name: flag lists inside [walk.requires] are left alone)."""
    out = []
    for line in (MODELS / "vfio_v2.toml").read_text().splitlines():
        if re.match(r'(name|from|to) = "STOP_COPY"', line) or line.startswith("saving = "):
            line = line.replace('"STOP_COPY"', f'"{new}"')
        elif line.startswith("map = ") or (_WALK_ROW.match(line) and "{" in line):
            line = re.sub(r"\bSTOP_COPY = ", f"{new} = ", line).replace('"STOP_COPY"', f'"{new}"')
        elif line.startswith("STOP_COPY = ["):
            line = new + line[len("STOP_COPY"):]
        out.append(line)
    shutil.copy(MODELS / "vfio_v1.toml", tmp_path / "vfio_v1.toml")  # its correspondence
    path = tmp_path / "v2_renamed.toml"
    path.write_text("\n".join(out).replace('name = "vfio_v2"', 'name = "v2_renamed"') + "\n")
    return path


def test_v2_with_stop_copy_renamed_generates_and_diffs(tmp_path):
    path = _renamed_v2(tmp_path)
    assert_clean(fsmcheck("verify", "-q", path), 0)
    run = fsmcheck("generate", path, "-o", tmp_path / "pack")
    assert_clean(run, 0)
    assert len(list((tmp_path / "pack").glob("test_v2_renamed_*.py"))) == 4
    shutil.copy(MODELS / "vfio_v2.toml", tmp_path / "vfio_v2.toml")
    run = fsmcheck("diff", tmp_path / "vfio_v2.toml", path)
    assert_clean(run, 1)
    assert "test_pair[STOP->SAVE_ALL]" in run.text
    # the pre-copy paths are the shipped ones, renamed: derived, not named
    old, new = load_model(MODELS / "vfio_v2.toml"), load_model(path)
    for a, b in zip(old.configs(), new.configs()):
        renamed = [[s.replace("SAVE_ALL", "STOP_COPY") for s in p] for p in v2_pack_data(new, b)["precopy_paths"]]
        assert renamed == v2_pack_data(old, a)["precopy_paths"]
    assert any(v2_pack_data(new, c)["precopy_paths"] for c in new.configs())


def test_v1_with_an_unreachable_state_is_refused_with_its_line(tmp_path):
    text = (MODELS / "vfio_v1.toml").read_text()
    for src, dst in (("STOP", "STOP"), ("RUNNING", "SAVING")):  # no arc into RESUMING
        arc = f'[[arcs]]\nfrom = "{src}"\nto = "RESUMING"'
        assert text.count(arc) == 1
        text = text.replace(arc, f'[[arcs]]\nfrom = "RESUMING"\nto = "{dst}"')
    assert text.count('  "reachability",\n') == 1
    text = text.replace('  "reachability",\n', "")
    path = tmp_path / "v1_unreach.toml"
    path.write_text(text)
    run = fsmcheck("generate", path, "-o", tmp_path / "pack")
    assert_clean(run, 2)
    line = load_model(path).state("RESUMING").line
    assert f"v1_unreach.toml:{line}: states: RESUMING is a valid state but no path" in run.text
    assert not (tmp_path / "pack").exists()


def test_bit_encoded_model_without_a_lenient_profile_is_refused_by_generate_and_diff(tmp_path):
    # found by `python -m fuzz diff` (KeyError: 'strict'): the v1 pack tells its
    # profiles by their kind of arcs, and says which it needs
    text = (MODELS / "vfio_v1.toml").read_text()
    old = 'arcs = "all-requestable"'
    assert text.count(old) == 1
    path = tmp_path / "v1_two_declared.toml"
    path.write_text(text.replace(old, 'arcs = "declared"').replace('name = "vfio_v1"', 'name = "v1x"'))
    shutil.copy(MODELS / "vfio_v2.toml", tmp_path / "vfio_v2.toml")
    expected = f'{path}:{load_model(path).line_of("profiles")}: profiles: the v1 pack needs one profile with arcs = "declared"'
    run = fsmcheck("generate", "--no-verify", path, "-o", tmp_path / "pack")
    assert_clean(run, 2)
    assert expected in run.text
    run = fsmcheck("diff", "--quiet", MODELS / "vfio_v1.toml", path)
    assert_clean(run, 2)
    assert expected in run.text


def test_table_and_diff_of_a_predicate_reading_reserved_bits_end_cleanly(tmp_path):
    # found by `python -m fuzz diff` (UndecidedError): the explicit table of a
    # validity predicate that reads bits outside the mask is not derived
    text = (MODELS / "vfio_v1.toml").read_text()
    old = 'valid = "(s & 0x4) == 0 or (s & 0x7) == 0x4"'
    assert text.count(old) == 1
    path = tmp_path / "v1_reserved.toml"
    path.write_text(text.replace(old, 'valid = "((s & 0x4) == 0 or (s & 0x7) == 0x4) and (s & 0x8) == 0"'))
    shutil.copy(MODELS / "vfio_v2.toml", tmp_path / "vfio_v2.toml")
    with_rule = tmp_path / "v1_reserved_rule.toml"
    with_rule.write_text(path.read_text() + '[combination]\npath = "shortest"\n')
    run = fsmcheck("table", with_rule, "--profile", "lenient")
    assert_clean(run, 1)
    assert "unknown: the table of lenient is not derived: validity predicate reads bits 0x8 outside the mask" in run.text
    run = fsmcheck("diff", "--quiet", MODELS / "vfio_v1.toml", path)
    assert_clean(run, 2)
    assert "error: validity predicate reads bits 0x8 outside the mask 0x7" in run.text
