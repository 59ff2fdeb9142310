"""Mutation score: run a conformance pack against every mutant driver.

Each run is a separate pytest process (a mutant must not leak state into the
next) with JUnit XML output; a mutant is *killed* when at least one test
fails, and the suites that killed it are the test functions that failed. The
reference drivers must pass.

By default a mutant's run stops at its first kill (pytest ``-x``): the score
needs one killing test, not all of them. A run that stopped on an error (an
adapter fault, which is no kill) is run again in full, so stopping early never
turns a kill into a survivor. ``full=True`` runs every test against every
mutant and gives the whole killing-suite table.

Making the zoo fast (issue 14):

- **Fork server.** The runs are forked from a server process that has
  already imported pytest, hypothesis, networkx and fsmcheck (one server per
  job), so a run costs its collection and its tests, not an interpreter
  start and a hundred modules compiled. Each run is still its own process,
  forked from the same pristine server. Where ``os.fork`` does not exist, or a
  server fails, a run is a fresh ``python -m pytest``.
- **Most likely to kill first.** A first-kill run takes the pack's modules
  in :func:`kill_order`: the flag set with the most flags first (every
  state and arc is there, so a mutant's fault is observable there whatever
  state it is in).
- **Killing-order file.** Every run records, per mutant, the test that killed
  it first (``mutate-kills.json`` in the cache directory,
  ``$XDG_CACHE_HOME/fsmcheck`` by default). The next run tries that test alone
  first, and only if it does not kill runs the pack with ``-x``. The file is
  keyed by a digest of the pack, the seed, the fsmcheck sources, the shipped
  models and the pytest and hypothesis versions; a file with another key is
  stale and ignored (and replaced at the end of the run). The recorded test
  is the first killing test in pack order, so a run with the file reports
  the same killing suite as a run without it.
- **Jobs.** ``jobs`` runs go at once: the reference runs first, then the
  mutants, longest first by the seconds recorded last time. The results are
  returned in the fixed order of :func:`all_mutants`, whatever the order in
  which the runs completed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .drivers import mutants_v1, mutants_v2

__all__ = ["MutantResult", "all_mutants", "run_pack", "score", "default_cache_dir", "order_key",
           "kill_order", "ORDER_FILE"]

#: The killing-order file's name in the cache directory.
ORDER_FILE = "mutate-kills.json"
_ORDER_VERSION = 1
_REFERENCE = "fsmcheck.drivers.reference:factory"


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


# -- running pytest: a fresh process, or a fork of a warm server -----------------------------
_LOCAL = threading.local()   # .servers: the _Servers of the score() this thread works for


def _subprocess_run(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout + proc.stderr


def _preload() -> None:
    """Import what every pack run imports (the fork server's warm state)."""
    import importlib
    from importlib.metadata import entry_points

    import pytest  # noqa: F401
    from _pytest.config import default_plugins

    for name in default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            pass
    for entry in entry_points(group="pytest11"):
        try:
            importlib.import_module(entry.value.split(":")[0])
        except Exception:  # noqa: BLE001 -- a broken plugin fails the run itself, not the server
            pass
    import hypothesis.stateful  # noqa: F401

    from .pack import plugin, precopy_reinit, v1_checks, v2_checks, v2_machine  # noqa: F401


def _fork_server() -> None:
    """The fork server's main loop (run as ``python -c``; not an API).

    Reads one JSON request a line on stdin -- ``{"args": [...], "log": PATH}``
    --, forks a child that runs ``pytest.main(args)`` with stdin on
    /dev/null and stdout and stderr in ``log``, waits for it, and answers
    ``{"returncode": N}`` on stdout. Ends at the end of stdin. The server
    itself never starts a thread, so forking it is safe.
    """
    _preload()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one pytest run, then _exit (no atexit of the server's)
            code = 3
            try:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.close(null)
                os.close(log)
                import pytest

                code = int(pytest.main(request["args"]))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 3
            except BaseException:  # noqa: BLE001 -- reported in the log, exit 3
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


class _ForkServer:
    """One fork-server process (see :func:`_fork_server`)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from fsmcheck.mutate import _fork_server; _fork_server()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if not self._reply().get("ready"):
            self.close()
            raise OSError("the fork server did not start")

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    def run(self, args: list[str], log: Path) -> int | None:
        """Run ``pytest args`` in a fork; its exit code, or None if the server failed."""
        try:
            self.proc.stdin.write(json.dumps({"args": args, "log": str(log)}) + "\n")
            self.proc.stdin.flush()
            return int(self._reply()["returncode"])
        except (OSError, ValueError, KeyError):
            return None

    def close(self) -> None:
        """End the server (it ends at the end of its stdin) and wait for it."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class _Servers:
    """At most ``size`` fork servers, started when first needed and lent to one
    run at a time; ``fork=False`` (or no ``os.fork``) runs fresh processes."""

    def __init__(self, size: int, fork: bool = True):
        self.fork = fork and hasattr(os, "fork")
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._all: list[_ForkServer] = []
        self._size, self._lock = size, threading.Lock()

    def run(self, args: list[str], log: Path) -> tuple[int, str]:
        """``(exit code, output)`` of ``pytest args``."""
        server = self._take() if self.fork else None
        if server is not None:
            try:
                code = server.run([*args, "-W", "ignore::pytest.PytestAssertRewriteWarning"], log)
            finally:
                self._idle.put(server)
            if code is not None:
                return code, log.read_text(errors="replace") if log.is_file() else ""
            self.fork = False  # the server broke: fresh processes from now on
        return _subprocess_run(args)

    def _take(self) -> _ForkServer | None:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._all) < self._size:
                try:
                    server = _ForkServer()
                except OSError:
                    self.fork = False
                    return None
                self._all.append(server)
                return server
        return self._idle.get()

    def close(self) -> None:
        """End every server."""
        for server in self._all:
            server.close()
        self._all.clear()


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
    Inside :func:`score` the run is forked from a warm server; otherwise it is a
    fresh ``python -m pytest`` process.
    """
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        targets = [str(pack / t) for t in tests] if tests else [str(m) for m in modules]
        args = ["-q", "-p", "no:cacheprovider", f"--junitxml={junit}", f"--fsmcheck-adapter={factory}",
                f"--fsmcheck-seed={seed}", "--rootdir", str(pack), *targets, *(extra or [])]
        servers = getattr(_LOCAL, "servers", None)
        start = time.perf_counter()
        returncode, output = servers.run(args, Path(tmp) / "log") if servers else _subprocess_run(args)
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


def _flag_count(module: Path) -> int:
    """How many migration flags the flag set of a pack module has (its
    ``SPEC``'s ``flags``, read with ``ast`` -- the module is not imported);
    0 when it has none or cannot be read."""
    import ast

    try:
        tree = ast.parse(module.read_text())
    except (OSError, SyntaxError, ValueError):
        return 0
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPEC" for t in node.targets)
                and isinstance(node.value, ast.Call) and node.value.args
                and isinstance(node.value.args[0], ast.Dict)):
            for key, value in zip(node.value.args[0].keys, node.value.args[0].values):
                if isinstance(key, ast.Constant) and key.value == "flags" and isinstance(value, ast.List):
                    return len(value.elts)
    return 0


def kill_order(modules: list[Path]) -> list[Path]:
    """The order a first-kill run takes ``modules`` in: the flag set with the
    most flags first (it supports every state and arc the others do, so a
    fault in any of them is observable there), then by name."""
    return sorted(modules, key=lambda m: (-_flag_count(m), m.name))


# -- the killing-order file ---------------------------------------------------------------------
def default_cache_dir() -> Path:
    """Where the killing-order file is kept: ``$XDG_CACHE_HOME/fsmcheck``
    (``~/.cache/fsmcheck`` when XDG_CACHE_HOME is not set)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fsmcheck"


def order_key(pack: Path, seed: int) -> str:
    """The digest a killing-order file must carry to be used for ``pack`` and
    ``seed``: SHA-256 over the pack's modules, the seed, every fsmcheck source
    file, the shipped models and the pytest and hypothesis versions (what
    decides which test kills a mutant first)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    digest = hashlib.sha256(f"fsmcheck-kills {_ORDER_VERSION} {__version__} seed {seed}\n".encode())
    for dist in ("pytest", "hypothesis"):
        try:
            digest.update(f"{dist} {version(dist)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{dist} -\n".encode())
    root = Path(__file__).resolve().parent
    files = [("pack", p) for p in sorted(pack.glob("test_*.py"))]
    files += [("src", p) for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts]
    try:
        from .model.shipped import shipped_model_path

        files += [("model", shipped_model_path(name)) for name in ("vfio_v1", "vfio_v2")]
    except Exception:  # noqa: BLE001 -- no shipped models: the sources still key the file
        pass
    for kind, path in files:
        name = path.name if kind != "src" else path.relative_to(root).as_posix()
        digest.update(f"{kind} {name} ".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _read_order(path: Path, key: str) -> dict:
    """The entries of the killing-order file at ``path`` if it carries ``key``;
    {} when it is missing, unreadable, malformed or stale."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != _ORDER_VERSION or doc.get("key") != key:
        return {}
    runs = doc.get("runs")
    return {k: v for k, v in runs.items() if isinstance(v, dict)} if isinstance(runs, dict) else {}


def _write_order(path: Path, key: str, runs: dict) -> None:
    """Write the killing-order file atomically (deterministic content, mode
    0666 less the umask); a cache that cannot be written is skipped silently."""
    from .outputs import write_file

    text = json.dumps({"version": _ORDER_VERSION, "key": key, "runs": runs}, indent=1, sort_keys=True) + "\n"
    try:
        write_file(path, text)
    except OSError:
        pass


# -- the score ---------------------------------------------------------------------------------
def score(pack: Path, *, seed: int = 0, jobs: int = 2, full: bool = False, progress=None,
          cache_dir: Path | None = None, use_cache: bool = True,
          fork: bool = True) -> tuple[list[MutantResult], list[MutantResult]]:
    """Run the reference drivers and every mutant against ``pack``.

    Args:
        pack: the generated pack's directory.
        seed: the state machine's seed for every run.
        jobs: runs at once (>= 1).
        full: run every test against every mutant (the whole killing-suite
            table) instead of stopping each mutant at its first kill.
        progress: called with each mutant's :class:`MutantResult` as it ends
            (in the order of completion).
        cache_dir: the killing-order file's directory (default
            :func:`default_cache_dir`).
        use_cache: read and write the killing-order file.
        fork: fork the runs from warm servers (else a fresh process each).

    Returns:
        ``(reference results, mutant results)``, each in a fixed order (v2
        then v1; mutants as :func:`all_mutants` lists them).
    """
    modules = {protocol: kill_order(sorted(pack.glob(f"test_vfio_{protocol}*.py"))) for protocol in ("v2", "v1")}
    order_path = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / ORDER_FILE
    key = order_key(pack, seed) if use_cache else ""
    recorded = _read_order(order_path, key) if use_cache else {}

    tasks = [("reference", protocol, _REFERENCE, "the correct reference driver")
             for protocol in ("v2", "v1") if modules[protocol]]
    tasks += [(protocol, name, factory, doc) for protocol, name, factory, doc in all_mutants() if modules[protocol]]

    def task_id(task) -> str:
        return f"{task[1]}:{task[0]}" if task[0] == "reference" else f"{task[0]}:{task[1]}"

    def one(task) -> MutantResult:
        kind, name, factory, doc = task
        protocol = name if kind == "reference" else kind
        _LOCAL.servers = servers
        try:
            start = time.perf_counter()
            hint = (recorded.get(task_id(task)) or {}).get("first_kill") if kind != "reference" and not full else None
            r = None
            if hint:
                r = run_pack(pack, modules[protocol], factory, seed, ["-x"], tests=[hint])
                r.hinted = r.killed
            if r is None or not r.killed:
                r = run_pack(pack, modules[protocol], factory, seed, None if full or kind == "reference" else ["-x"])
                if kind != "reference" and not full and not r.killed and r.errors:
                    r = run_pack(pack, modules[protocol], factory, seed)  # stopped by an adapter fault, not a kill
            r.seconds = time.perf_counter() - start
        finally:
            _LOCAL.servers = None
        r.name, r.protocol, r.description = ("reference" if kind == "reference" else name), protocol, doc
        if progress and kind != "reference":
            progress(r)
        return r

    def expected_seconds(task) -> float:
        seconds = (recorded.get(task_id(task)) or {}).get("seconds")
        return seconds if isinstance(seconds, (int, float)) else float("inf")

    # The references, then the mutants longest first (by last time's seconds;
    # unknown ones first); ties in the fixed order.
    index = {task_id(t): i for i, t in enumerate(tasks)}
    schedule = sorted(tasks, key=lambda t: (t[0] != "reference", -expected_seconds(t), index[task_id(t)]))
    servers = _Servers(max(jobs, 1), fork)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            futures = {task_id(t): pool.submit(one, t) for t in schedule}
            done = {k: f.result() for k, f in futures.items()}
    finally:
        servers.close()
    ordered = [done[task_id(t)] for t in tasks]
    reference = [r for t, r in zip(tasks, ordered) if t[0] == "reference"]
    results = [r for t, r in zip(tasks, ordered) if t[0] != "reference"]
    if use_cache:
        runs = {}
        for t, r in zip(tasks, ordered):
            entry = {"seconds": round(r.seconds, 2)}
            if r.killed and r.first_kill:
                entry["first_kill"] = r.first_kill
            runs[task_id(t)] = entry
        if any("first_kill" in e for e in runs.values()):
            _write_order(order_path, key, runs)
    return reference, results
