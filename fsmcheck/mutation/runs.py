"""One run of a pack against one driver, and what its JUnit XML says."""

from __future__ import annotations

import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..drivers import mutants_v1, mutants_v2
from . import pool

__all__ = ["MutantResult", "all_mutants", "run_pack"]


@dataclass
class MutantResult:
    """The outcome of one pack run against one driver.

    ``first_kill`` is the pack-relative id (``module.py::test[...]``) of the
    first test that killed it, in run order; ``hinted`` is True when that
    test came from the killing-order file and was run alone (then ``passed``
    and ``failed`` count that one test).
    """

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
    first_kill: str = ""
    hinted: bool = False

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


def _test_id(pack: Path, testcase) -> str:
    """The pack-relative node id of a JUnit ``testcase`` (``module.py::Class::name``):
    the longest prefix of its dotted class name that is a module file of the pack
    is the module, the rest are classes."""
    parts = testcase.get("classname", "").split(".")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        if (pack / module).is_file():
            return "::".join([module, *parts[cut:], testcase.get("name", "")])
    return ""


def run_pack(pack: Path, modules: list[Path], factory: str, seed: int, extra: list[str] | None = None,
             *, tests: list[str] | None = None) -> MutantResult:
    """Run ``modules`` of ``pack`` with adapter ``factory``; parse the result.

    Args:
        pack: the pack's directory (pytest's rootdir).
        modules: the pack modules to run.
        factory: the adapter factory (``module:function``).
        seed: ``--fsmcheck-seed``.
        extra: more pytest arguments (``-x``, ``-k``...).
        tests: pack-relative test ids to run instead of ``modules``.

    Returns: the counts, the failing suites and tests, and the first killing test.
    The run is a process of the pool :func:`fsmcheck.mutation.pool.running` opened
    (inside :func:`~fsmcheck.mutation.score`), else a fresh ``python -m pytest``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        targets = [str(pack / t) for t in tests] if tests else [str(m) for m in modules]
        args = ["-q", "-p", "no:cacheprovider", f"--junitxml={junit}", f"--fsmcheck-adapter={factory}",
                f"--fsmcheck-seed={seed}", "--rootdir", str(pack), *targets, *(extra or [])]
        start = time.perf_counter()
        returncode, output = pool.pytest(args, Path(tmp) / "log")
        result = MutantResult(factory, "", "", returncode=returncode, seconds=time.perf_counter() - start)
        if not junit.is_file():
            result.failed = 1
            result.suites = {"(pytest did not run)": 1}
            result.description = output[-2000:]
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
                if not result.first_kill:
                    result.first_kill = _test_id(pack, case)
            elif case.find("skipped") is not None:
                result.skipped += 1
            else:
                result.passed += 1
    return result
