"""The pack as a CI gate (issue 12) and its run hygiene (issue 13): a run
that matched no suite fails, a hung adapter ends the run within its budget,
threads and fds come back, every defect class has a killing test, and
conforming-but-different drivers pass (advisories where the sources leave
behaviour open)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from fsmcheck.drivers.reference import ReferenceV2Adapter
from fsmcheck.drivers.v2_device import ReferenceV2Device
from fsmcheck.mutation import run_pack
from fsmcheck.pack import v2_checks
from fsmcheck.pack.harness import LOST, AdapterFault, Harness

from . import conforming_drivers
from .conftest import ROOT, SHARED, cli, require_shared, run_pytest

PACK = ROOT / "generated_tests"


def _pytest(*args, timeout=600):
    start = time.monotonic()
    proc = run_pytest(*args, timeout=timeout)
    return proc, time.monotonic() - start


def _spec(module: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"pack_{module}", PACK / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- undefined flag sets -----------------------------------------------------------
@pytest.mark.slow
def test_undefined_flags_fail_the_run():
    """PRE_COPY|P2P without STOP_COPY: every suite skips, but the flags test
    fails and the run exits 1 (it exited 0 before)."""
    proc, _ = _pytest(*map(str, sorted(PACK.glob("test_vfio_v2*.py"))),
                      "--fsmcheck-adapter=fsmcheck.drivers.mutants_v2:factory_UndefinedFlags", "--fsmcheck-examples=2")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "the device reports migration flags 0x6, not a defined flag set" in proc.stdout
    assert "no suite of this run matched the device: it reports migration flags 0x6" in proc.stdout


@pytest.mark.slow
def test_a_run_without_any_driver_is_an_error():
    proc, _ = _pytest(str(PACK / "test_vfio_v2_stop_copy.py"), str(PACK / "test_vfio_v1.py"),
                      "--fsmcheck-adapter=tests.conforming_drivers:nothing")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "has no driver for the pack's protocols" in proc.stdout


# -- a spinning adapter ends its run ----------------------------------------------------
@pytest.mark.parametrize("options, budget", [
    (["--fsmcheck-call-timeout=0.5"], 60),                              # each hang gives up the adapter
    (["--fsmcheck-call-timeout=1000", "--fsmcheck-budget=8"], 8),       # the run budget ends it
])
@pytest.mark.slow
def test_a_spinning_adapter_ends_its_run(options, budget):
    """A SET that spins forever, without -x: the hung call fails its test, the
    adapter is given up and the run stops; the pytest process exits (it used
    to wait for the spinning worker forever), exit 1, within the stated
    budget plus start-up."""
    slack = 60  # interpreter and pack start-up on a loaded machine
    proc, seconds = _pytest(str(PACK / "test_vfio_v2_stop_copy.py"), "--fsmcheck-adapter=tests.conforming_drivers:spins",
                            "--fsmcheck-examples=2", *options, timeout=budget + slack)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert seconds < budget + slack
    out = proc.stdout
    assert "the adapter hung in SET" in out or "the run budget (--fsmcheck-budget) ran out in SET" in out
    assert "the adapter was given up (" in out and "the run stops here" in out
    if "--fsmcheck-budget=8" in options:
        assert "the run budget ran out during SET" in out


def test_a_timed_out_call_leaves_at_most_one_thread_per_adapter():
    """513 calls into a hung device: one abandoned (daemon) thread, not 513
    (one per call before); later calls and later tests of the adapter fail
    at once without calling it."""
    release = threading.Event()

    class Blocks(ReferenceV2Device):
        def get_state(self):
            release.wait()
            return super().get_state()

    adapter = ReferenceV2Adapter(Blocks)
    spec = _spec("test_vfio_v2_stop_copy").SPEC
    before = set(threading.enumerate())
    try:
        h = Harness(adapter.open(1), spec.names, timeout=0.05, adapter=adapter, label=spec.label)
        with pytest.raises(AdapterFault, match="the adapter hung in GET"):
            h.get()
        start = time.monotonic()
        for _ in range(512):
            with pytest.raises(AdapterFault, match="not sent: the device was given up"):
                h.get()
        assert time.monotonic() - start < 5  # no call waited for its timeout
        with pytest.raises(AdapterFault, match="given up after an earlier call hung"):
            v2_checks.check_fresh_handles(adapter, spec)
        assert len(set(threading.enumerate()) - before) <= 1
        assert all(t.daemon for t in threading.enumerate() if t.name == "fsmcheck-adapter")
    finally:
        release.set()
        LOST.clear()


def test_workers_stop_when_their_devices_close():
    adapter = ReferenceV2Adapter()
    spec = _spec("test_vfio_v2_stop_copy").SPEC
    before = set(threading.enumerate())  # a thread of an earlier test may end meanwhile: compare sets
    for _ in range(20):
        v2_checks.check_fresh_handles(adapter, spec)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(threading.enumerate()) - before


# -- close_handle: the fd count returns --------------------------------------------------
def test_the_pack_closes_every_handle_it_was_given():
    """Handles that are real fds (closed only by close_handle): after pairs,
    W-method sequences and the round trips, the process has the fds it had
    (it grew by one per session before)."""
    module = _spec("test_vfio_v2_stop_copy_p2p_pre_copy")
    adapter = conforming_drivers.fd_handles("v2")
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    v2_checks.saved_stream(adapter, module.SPEC)  # the cached stream's own session is closed too
    before = fds()
    for current, requested in module.PAIRS:
        v2_checks.check_pair(adapter, module.SPEC, current, requested)
    for inputs in module.SEQUENCES[:200]:
        v2_checks.check_sequence(adapter, module.SPEC, inputs)
    for path in module.PRECOPY_PATHS:
        v2_checks.check_precopy_round_trip(adapter, module.SPEC, path)
    v2_checks.check_round_trip(adapter, module.SPEC, 7)
    assert fds() == before


# -- defects no test killed, and what kills them now ---------------------------------------
@pytest.mark.parametrize("protocol, mutant, module, suite, text", [
    ("v2", "MissingTailAccepted", "test_vfio_v2_stop_copy.py", "test_bad_resume_stream",
     "RESUMING -> STOP accepted a tail stream"),
    ("v2", "LosesPreCopyChanges", "test_vfio_v2_stop_copy_p2p_pre_copy.py", "test_precopy_round_trip",
     "does not hold the source's final state"),
    ("v2", "EarlyEndOfStream", "test_vfio_v2_stop_copy.py", "test_end_of_stream_in_stop_copy",
     "the saving device signalled end of stream after"),
    ("v2", "ChangesInStop", "test_vfio_v2_stop_copy.py", "test_end_of_stream_in_stop_copy",
     "two saves from STOP differ"),
    ("v2", "NegativeHandle", "test_vfio_v2_stop_copy.py", "test_pair", "SET returned handle -"),
    ("v1", "ResumeIgnored", "test_vfio_v1.py", "test_saving_and_resuming",
     "a resumed device, saved again, does not give the stream it was resumed from"),
    # issue 21: the regression and the data-path rules that had no killing test
    ("v2", "EndedResumeFdWritable", "test_vfio_v2_stop_copy.py", "test_pair",
     "still works after its session ended: write() succeeded"),
    ("v2", "ReadOverrun", "test_vfio_v2_stop_copy_pre_copy.py", "test_pair", "more than asked"),
    ("v2", "WriteOverclaims", "test_vfio_v2_stop_copy.py", "test_round_trip", "bytes taken"),
    ("v2", "StaleStopCopyStream", "test_vfio_v2_stop_copy.py", "test_stream_current",
     "the second STOP_COPY session gave the first session's bytes again"),
    ("v2", "InitialBytesGrow", "test_vfio_v2_stop_copy_pre_copy.py", "test_precopy_info",
     "initial_bytes grew from"),
])
@pytest.mark.slow
def test_each_new_defect_class_is_killed(protocol, mutant, module, suite, text):
    result = run_pack(PACK, [PACK / module], f"fsmcheck.drivers.mutants_{protocol}:factory_{mutant}", seed=0,
                      extra=["-k", suite, "--fsmcheck-examples=2"])
    assert result.killed and result.errors == 0, result.failures[:3]
    assert suite in result.suites, result.suites
    assert any(text in message for _, message in result.failures), result.failures[:3]


@pytest.mark.slow
def test_early_end_of_stream_blames_the_saving_side():
    proc, _ = _pytest(str(PACK / "test_vfio_v2_stop_copy.py"), "-k", "test_round_trip",
                      "--fsmcheck-adapter=fsmcheck.drivers.mutants_v2:factory_EarlyEndOfStream")
    assert proc.returncode == 1
    assert "its end of stream is not final (the saving side is at fault, not RESUMING)" in proc.stdout
    assert "accepted a" not in proc.stdout and "RESUMING -> STOP failed" not in proc.stdout


# -- conforming-but-different drivers pass ----------------------------------------------------
@pytest.mark.parametrize("factory, module, advisory", [
    ("short_writes", "test_vfio_v2_stop_copy_pre_copy.py", None),
    ("ended_fd_einval", "test_vfio_v2_stop_copy_pre_copy.py",
     "I/O on an ended session's FD fails with EINVAL, not ENODEV (left open: vfio.h names no errno"),
    ("forced_eof", "test_vfio_v2_stop_copy_pre_copy.py",
     "an ended session's FD reads end of stream (left open: seed 002: the driver 'should piggy back the force EOF'"),
    ("error_in_error_ok", "test_vfio_v2_stop_copy_pre_copy.py",
     "SET ERROR in ERROR succeeded (left open: vfio.h: 'ERROR cannot be specified as a device state'"),
    ("small_data_area", "test_vfio_v1.py", None),
    ("reserved_bits_ignored", "test_vfio_v1.py",
     "read back as 0x0 (left open: seed 001: 'undefined bits are ignored, and may or may not preserved')"),
    # issue 21: devices that live, and the freedoms vfio.h leaves
    ("works_while_running_v1", "test_vfio_v1.py",
     "compared [v1]: resumed devices not compared: the device does not declare still_when_idle"),
    ("works_while_running_v2", "test_vfio_v2_stop_copy_p2p_pre_copy.py", None),
    ("dirty_tracking", "test_vfio_v2_stop_copy_p2p_pre_copy.py", None),
    ("own_stream_format", "test_vfio_v2_stop_copy_p2p_pre_copy.py", "compared [STOP_COPY|P2P|PRE_COPY]: state_digest()"),
    ("rejects_with_eperm", "test_vfio_v2_stop_copy_p2p.py", "a rejected SET fails with EPERM, not EINVAL (left open"),
    ("ended_resume_fd_ebadf", "test_vfio_v2_stop_copy.py", "I/O on an ended session's FD fails with EBADF, not ENODEV"),
])
@pytest.mark.slow
def test_a_conforming_driver_passes(factory, module, advisory):
    proc, _ = _pytest(str(PACK / module), f"--fsmcheck-adapter=tests.conforming_drivers:{factory}",
                      "--fsmcheck-seed=1", "--fsmcheck-examples=10")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1]
    if advisory:
        assert advisory in proc.stdout


def test_call_timeout_and_budget_must_be_positive():
    proc, _ = _pytest(str(PACK / "test_vfio_v2_stop_copy.py"), "--fsmcheck-call-timeout=0", "--co")
    assert proc.returncode == 4 and "expected a number of seconds > 0" in proc.stderr


# -- the rule catalogue --------------------------------------------------------------------------
def test_rules_command_lists_every_must_with_its_killing_tests():
    result = cli("rules", "--pack", str(PACK), "--json")
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.output)
    by_id = {r["id"]: r for r in doc["rules"]}
    assert doc["uncovered_musts"] == []
    assert "test_vfio_v2_stop_copy.py::test_migration_flags_defined" in by_id["v2.flags-defined"]["killing_tests"]
    assert any(t.endswith("::test_precopy_round_trip") for t in by_id["v2.stream-complete"]["killing_tests"])
    assert by_id["v2.ended-fd-forced-eof"]["status"] == "advisory"
    assert by_id["v2.p2p-no-new-dma"]["status"] == "unobservable"
    text = cli("rules", "--pack", str(PACK), "--protocol", "v1")
    assert "v1.invalid-states  MUST  [checked]  seed 000" in text.output


def test_the_killing_tests_follow_the_checks(tmp_path):
    """Derived, not listed: a pack without the round-trip tests leaves the
    round-trip rules without killing tests, and `rules` exits 1."""
    for path in PACK.glob("test_*.py"):
        text = path.read_text()
        text = text.replace("check.check_precopy_round_trip(", "pass  # (").replace("check.check_round_trip(", "pass  # (")
        text = text.replace("check.check_bad_resume(", "pass  # (")
        (tmp_path / path.name).write_text(text)
    result = cli("rules", "--pack", str(tmp_path), "--json")
    import json

    doc = json.loads(result.output)
    assert result.exit_code == 1
    assert "v2.any-segmentation" in doc["uncovered_musts"]


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def test_every_sentence_is_quoted_from_its_source(kernel_tree):
    """Each catalogue sentence occurs in its source (vfio.h of Linux 6.12, the
    seeds, SPEC.md), punctuation and comment markers aside."""
    from fsmcheck.rules import load_catalogue

    shared = SHARED
    require_shared((shared / "seeds").is_dir() and (shared / "SPEC.md").is_file(), "seeds/ and SPEC.md")
    vfio_h = next(kernel_tree.rglob("include/uapi/linux/vfio.h"), None)
    if vfio_h is None:
        pytest.skip("vfio.h not in the unpacked kernel tree")
    sources = {"vfio.h": vfio_h.read_text(errors="replace"), "SPEC.md": (shared / "SPEC.md").read_text()}
    for seed in sorted((shared / "seeds").glob("00*.txt")):
        sources[f"seed {seed.name[:3]}"] = seed.read_text(errors="replace")
    normal = {k: _normal(v) for k, v in sources.items()}
    missing = [r.id for r in load_catalogue() if _normal(r.sentence) not in normal[r.source]]
    assert missing == []


def test_a_v1_data_section_smaller_than_4k_is_resumed_chunk_by_chunk():
    """512-byte data section, 5,000-byte state: the saved stream is many
    chunks of at most 512 bytes, and the pack resumes each with the size it
    was saved with (it re-cut the stream into 4096-byte writes before)."""
    from fsmcheck.pack import v1_checks

    module = _spec("test_vfio_v1")
    adapter = conforming_drivers.small_data_area("v1")
    chunks = v1_checks.saved_stream_v1(adapter, module.SPEC)
    assert len(chunks) > 8 and max(map(len, chunks)) == 512
    v1_checks.check_saving_and_resuming(adapter, module.SPEC)
    for kind in ("empty", "truncated", "tail", "corrupted"):
        v1_checks.check_bad_resume(adapter, module.SPEC, kind)


def test_the_report_section_lists_the_catalogue():
    from fsmcheck.model import load_model
    from fsmcheck.rules.html import rules_section

    page = rules_section([load_model(ROOT / "models" / "vfio_v2.toml")])
    assert page.startswith("<section id='rules'>") and "v2.resume-validate" in page
    assert "test_bad_resume_stream" in page and "v1." not in page  # only the reported models' protocols


# -- issue 21: stillness, and the pack's own freedoms ---------------------------------------------
def test_a_device_that_works_while_running_failed_the_old_comparison():
    """The v1 conforming driver that works while running does change between
    the saves the old check compared: two resumed devices re-save different
    streams (so the comparison it no longer makes would fail it), while the
    reference device, which declares still_when_idle, re-saves equal ones."""
    from fsmcheck.pack import v1_checks

    module = _spec("test_vfio_v1")
    v = module.SPEC["values"]
    adapters = [(conforming_drivers.works_while_running_v1("v1"), False),
                (conforming_drivers._v1(conforming_drivers.ReferenceV1Device)("v1"), True)]
    for adapter, equal in adapters:
        stream = v1_checks.saved_stream_v1(adapter, module.SPEC)
        saved = []
        for _ in range(2):
            with v1_checks.open_v1(adapter, module.SPEC) as h:
                v1_checks._walk(h, module.SPEC, [v["RESUMING"]], None)
                v1_checks._resume(h, module.SPEC, stream)
                v1_checks._walk(h, module.SPEC, [v["RUNNING"], v["SAVING"]], None)
                saved.append(b"".join(v1_checks._drain(h, module.SPEC)))
        assert (saved[0] == saved[1]) is equal


def test_every_cited_rule_names_one_catalogue_rule_that_lists_it():
    from fsmcheck.pack.v1_checks import RULES as V1
    from fsmcheck.pack.v2_spec import RULES as V2
    from fsmcheck.rules import load_catalogue

    catalogue = {r.id: r for r in load_catalogue()}
    for protocol, rules in (("v1", V1), ("v2", V2)):
        for key, cited in rules.items():
            assert cited.id.startswith(protocol + "."), key
            assert key in catalogue[cited.id].pack_rules, (key, cited.id)


def test_a_violation_names_its_rule_and_folds_runs_of_steps():
    from fsmcheck.pack.harness import sequence_lines
    from fsmcheck.pack.v2_spec import RULES

    log = ["open", *["write(3, 1 bytes) -> ok"] * 5, "write(3, 1 bytes) -> ENOSPC", "GET -> STOP", "GET -> STOP"]
    assert sequence_lines(log) == ["    1. open", "    2-6. write(3, 1 bytes) -> ok  (x5)",
                                   "    7. write(3, 1 bytes) -> ENOSPC", "    8. GET -> STOP", "    9. GET -> STOP"]
    h = Harness(object(), {}, log=log)
    violation = h.violation("x", expected="a", observed="b", rule=RULES["resume-take"])
    assert violation.rule_id == "v2.resuming-loads"
    assert "  rule: vfio.h: RESUMING - the device is loading" in str(violation)
    assert str(violation).count("\n") == 4 + 5


def test_results_blame_only_the_rule_a_failure_names(tmp_path):
    """A failing test_pair whose violation names v2.get marks v2.get failed and
    no other rule test_pair can kill (it marked all of them before)."""
    from fsmcheck.runpack import junit_cases, rule_outcomes

    junit = tmp_path / "junit.xml"
    junit.write_text(
        "<testsuite><testcase classname='pack.test_vfio_v2_stop_copy' name='test_pair[STOP-&gt;RUNNING]'>"
        "<failure message='ProtocolViolation: device_state is STOP, expected RUNNING&#10;  rule: vfio.h: GET "
        "returns the current device_state [v2.get]'>steps</failure></testcase>"
        "<testcase classname='pack.test_vfio_v2_stop_copy' name='test_pair[RUNNING-&gt;STOP]'/></testsuite>")
    outcomes = {o.rule.id: o for o in rule_outcomes(PACK, junit_cases(junit))}
    assert [r for r, o in outcomes.items() if o.verdict == "failed"] == ["v2.get"]
    assert outcomes["v2.set-complete"].verdict == "held"
