"""Errata files, render traces and pack modules that are not what they should
be (issue 23): each is one diagnostic ``file:line: key: message``, exit 2
(pytest's usage error, exit 4, when the pack is run by pytest itself),
before anything is written or run -- never a traceback or INTERNALERROR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import MODELS, ROOT
from .robust_util import assert_clean, fsmcheck

PACK = ROOT / "generated_tests"
V2 = MODELS / "vfio_v2.toml"
GOOD = '[[erratum]]\nid = "x"\nprotocol = "v2"\nrule = "resume-validate"\nmatch = ["y"]\nreason = "z"\n'

ERRATA = {
    "bad UTF-8": (b'[[erratum]]\nid = "\xff"\n', '2: <file>: not UTF-8'),
    "deep nesting": (("x = " + "[" * 5000 + "]" * 5000 + "\n").encode(), "1: <toml>: arrays or tables nested"),
    "erratum = 5": (b"erratum = 5\n", "1: erratum: expected an array of tables, got an integer 5"),
    'protocol = ["v2"]': (GOOD.replace('"v2"', '["v2"]').encode(), "3: erratum[0].protocol: expected \"v1\" or \"v2\", got an array ['v2']"),
    "rule a list": (GOOD.replace('"resume-validate"', '["a"]').encode(), "4: erratum[0].rule: expected a non-empty string, got an array"),
    "unknown rule": (GOOD.replace("resume-validate", "nope").encode(), "4: erratum[0].rule: 'nope' is not one of"),
    "a missing key": (GOOD.replace("reason", "raeson").encode(), "1: erratum[0]: missing required key 'reason'"),
    "an integer of 5000 digits": (GOOD.replace('"z"', "1" * 5000).encode(), "6: <toml>: an integer of more than"),
    "not TOML": (b"[[erratum\n", "1: <toml>:"),
}


@pytest.mark.parametrize("case", sorted(ERRATA))
def test_bad_errata_file_stops_run_pack_before_anything_is_written(tmp_path, case):
    data, expected = ERRATA[case]
    errata = tmp_path / "errata.toml"
    errata.write_bytes(data)
    run = fsmcheck("run-pack", "--vfio-cdev", os.devnull, "--adapter", "fsmcheck.drivers.reference:factory",
                   "--seed", "0", "-o", tmp_path / "out", "--errata", errata)
    assert_clean(run, 2)
    assert f"{errata}:{expected}" in run.err, run.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["bad UTF-8", 'protocol = ["v2"]', "erratum = 5"])
def test_bad_errata_file_is_a_usage_error_of_the_pack_run(tmp_path, case):
    data, expected = ERRATA[case]
    errata = tmp_path / "errata.toml"
    errata.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(PACK / "test_vfio_v2_stop_copy.py"), "-k", "test_reset",
                           f"--fsmcheck-errata={errata}"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"--fsmcheck-errata: {errata}:{expected}" in proc.stderr, proc.stderr
    assert "INTERNALERROR" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


TRACES = {
    "bad UTF-8": (b'{"states": [{"state": "\xff"}]}', "1: <file>: not UTF-8"),
    "deep JSON": (("[" * 5000 + "]" * 5000).encode(), "1: <json>: arrays or tables nested"),
    "#meta a list": (b'{"#meta": [1],\n "states": []}', "1: #meta: must be an object"),
    "configuration a number": (b'{"#meta": {"configuration": 5}, "states": []}', "1: configuration: must be a string"),
    "states not objects": (b'{\n"states": [1, 2]}', "2: states: must be a list of objects"),
    "an unknown state": (b'["RUNNING", "NOPE"]', "1: <trace>: trace step 1 'NOPE' names no state"),
    "not JSON": (b"{", "1: <json>:"),
}


@pytest.mark.parametrize("case", sorted(TRACES))
def test_render_trace_that_is_not_a_trace_is_one_diagnostic(tmp_path, case):
    data, expected = TRACES[case]
    trace = tmp_path / "t.json"
    trace.write_bytes(data)
    run = fsmcheck("render", V2, "-o", tmp_path / "out.svg", "--trace", trace)
    assert_clean(run, 2)
    assert f"{trace}:{expected}" in run.err, run.err
    assert not (tmp_path / "out.svg").exists()


@pytest.mark.parametrize("data, expected", [
    (b'x = "\xff"\n', "1: <file>: not UTF-8"),
    (b"x = 1\ndef f(:\n    pass\n", "2: <python>: not Python: invalid syntax"),
    (b"x = 1\x00\n", "1: <python>: not Python"),
    (("x = " + "(" * 10000 + ")" * 10000 + "\n").encode(), "1: <python>: not Python"),
], ids=["bad UTF-8", "syntax", "NUL", "deep"])
def test_rules_on_a_pack_with_an_unreadable_module_is_one_diagnostic(tmp_path, data, expected):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns("__pycache__"))
    (pack / "test_zz_bad.py").write_bytes(data)
    for args in ([], ["--json"]):
        run = fsmcheck("rules", "--pack", pack, *args)
        assert_clean(run, 2)
        assert f"{pack / 'test_zz_bad.py'}:{expected}" in run.err, run.err
