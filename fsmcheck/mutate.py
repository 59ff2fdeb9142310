"""Mutation score: run a conformance pack against every mutant driver.

Each run is a separate pytest process (a mutant must not leak state into the
next) with JUnit XML output; a mutant is *killed* when at least one test
fails, and the suites that killed it are the test functions that failed. The
reference drivers run first and must pass.

By default a mutant's run stops at its first kill (pytest ``-x``): the score
needs one killing test, not all of them. A run that stopped on an error (an
adapter fault, which is no kill) is run again in full, so stopping early never
turns a kill into a survivor. ``full=True`` runs every test against every
mutant and gives the whole killing-suite table.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .drivers import mutants_v1, mutants_v2

__all__ = ["MutantResult", "all_mutants", "run_pack", "score"]


@dataclass
class MutantResult:
    """The outcome of one pack run against one driver."""

    name: str
    protocol: str
    description: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    suites: dict = field(default_factory=dict)   # suite -> failures
    failures: list = field(default_factory=list)  # (test id, first line of the message)
    returncode: int = 0
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        """Killed by a protocol violation (adapter faults and errors do not count)."""
        return self.failed > 0


def all_mutants() -> list[tuple[str, str, str, str]]:
    """``(protocol, name, factory spec, description)`` of every mutant."""
    out = []
    for protocol, module in (("v2", mutants_v2), ("v1", mutants_v1)):
        for name, cls in module.MUTANTS.items():
            doc = (cls.__doc__ or "").strip().split("\n")[0]
            out.append((protocol, name, f"{module.__name__}:factory_{name}", doc))
    return out


def _suite(testcase) -> str:
    name = testcase.get("name", "")
    base = name.split("[", 1)[0]
    module = testcase.get("classname", "").split(".")[-1]
    return f"{module}::{base}" if base in ("runTest",) else base


def run_pack(pack: Path, modules: list[Path], factory: str, seed: int, extra: list[str] | None = None) -> MutantResult:
    """Run ``modules`` of ``pack`` with adapter ``factory``; parse the result."""
    import time

    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
               f"--fsmcheck-adapter={factory}", f"--fsmcheck-seed={seed}", "--rootdir", str(pack),
               *map(str, modules), *(extra or [])]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        result = MutantResult(factory, "", "", returncode=proc.returncode, seconds=time.perf_counter() - start)
        if not junit.is_file():
            result.failed = 1
            result.suites = {"(pytest did not run)": 1}
            result.description = (proc.stdout + proc.stderr)[-2000:]
            return result
        for case in ET.parse(junit).getroot().iter("testcase"):
            failure = case.find("failure")
            # An adapter fault is an error, not a kill: told by the exception in the
            # failure's message (its text holds the traceback, whose source lines may
            # mention AdapterFault without raising it).
            if case.find("error") is not None or (
                    failure is not None and "AdapterFault" in (failure.get("message") or "").split(":", 1)[0]):
                result.errors += 1
            elif failure is not None:
                result.failed += 1
                result.failures.append((case.get("name", ""), (failure.get("message") or "").split("\n")[0]))
                suite = _suite(case)
                result.suites[suite] = result.suites.get(suite, 0) + 1
            elif case.find("skipped") is not None:
                result.skipped += 1
            else:
                result.passed += 1
    return result


def score(pack: Path, *, seed: int = 0, jobs: int = 2, full: bool = False,
          progress=None) -> tuple[list[MutantResult], list[MutantResult]]:
    """Run the reference drivers and every mutant against ``pack``.

    Args:
        pack: the generated pack's directory.
        seed: the state machine's seed for every run.
        jobs: parallel pytest processes (>= 1).
        full: run every test against every mutant (the whole killing-suite
            table) instead of stopping each mutant at its first kill.
        progress: called with each mutant's :class:`MutantResult` as it ends.

    Returns ``(reference results, mutant results)``.
    """
    v2_modules = sorted(pack.glob("test_vfio_v2*.py"))
    v1_modules = sorted(pack.glob("test_vfio_v1*.py"))
    modules = {"v2": v2_modules, "v1": v1_modules}
    reference = []
    for protocol in ("v2", "v1"):
        if modules[protocol]:
            r = run_pack(pack, modules[protocol], "fsmcheck.drivers.reference:factory", seed)
            r.name, r.protocol, r.description = "reference", protocol, "the correct reference driver"
            reference.append(r)
    jobs_list = [m for m in all_mutants() if modules[m[0]]]

    def one(item):
        protocol, name, factory, doc = item
        r = run_pack(pack, modules[protocol], factory, seed, None if full else ["-x"])
        if not full and not r.killed and r.errors:  # stopped by an adapter fault, not a kill
            r = run_pack(pack, modules[protocol], factory, seed)
        r.name, r.protocol, r.description = name, protocol, doc
        if progress:
            progress(r)
        return r

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        results = list(pool.map(one, jobs_list))
    return reference, results
