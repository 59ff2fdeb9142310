"""Fuzz campaigns of the surfaces added after the verifier core (issue 23):
``diff`` pairs, errata files and the command line's options.

Each campaign is ``(body, strategy, cleanup)`` for :mod:`fuzz.__main__`'s
batch runner (hypothesis-driven, seeded, bounded by a count and a time
budget). What counts as a failure, each saved under ``--out``:

- ``diff``: pairs of models -- a shipped model and a mutated copy of it
  (:func:`fuzz.mutations.mutated_models`), or two random valid models
  (:func:`fuzz.strategies.model_files`) -- through
  :func:`fsmcheck.diff.compare.diff_models`. Failures: any exception but
  ``ModelError``, ``ValueError`` and ``UndecidedError`` (the command's exit 2), an
  engine disagreement or error, a pair past the watchdog.
- ``errata``: mutated errata files (line and value mutations, bytes that are
  not UTF-8, deep nesting) through :func:`fsmcheck.pack.errata.load_errata`.
  Failures: any exception but ``ErrataError``, a diagnostic whose line is
  outside the file.
- ``cli``: command lines of ``verify``, ``table``, ``export``, ``render``,
  ``generate``, ``check-trace``, ``rules`` and ``models`` with option values
  drawn from odd numbers (huge, negative, ``inf``, ``nan``), odd strings and
  paths (missing, a directory, under a regular file, ``/dev/null``), run
  in-process by click's ``CliRunner``. Failures: an exception (a
  traceback), an exit code other than 0, 1 or 2, a run past the watchdog.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from hypothesis import strategies as st

from .mutations import ROOT, SHIPPED, _mutate, mutated_models
from .strategies import model_files

__all__ = ["CAMPAIGNS"]

WATCHDOG_S = 60


class _Watchdog(BaseException):
    """An input took longer than :data:`WATCHDOG_S` (a hang)."""


def _alarm(signum, frame):
    raise _Watchdog()


def _saver(out: Path, batch: int, stats):
    def save(kind: str, files: dict, info: str) -> None:
        folder = Path(out) / f"{kind}-b{batch}-{stats['inputs']}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        (folder / "INFO.txt").write_text(info + "\n", encoding="utf-8")
    return save


# -- diff pairs --------------------------------------------------------------------------------
@st.composite
def _diff_pairs(draw):
    """``(old files, new files)``: ``{"m.toml": text, ...}`` each."""
    if draw(st.booleans()):
        name, text = draw(mutated_models())
        old, new = {"m.toml": SHIPPED[name]}, {"m.toml": text}
        if draw(st.booleans()):
            old, new = new, old
        return old, new
    return draw(model_files()), draw(model_files())


def _diff(args, stats, batch):
    from fsmcheck.diff.compare import diff_models
    from fsmcheck.model import ModelError, load_model
    from fsmcheck.semantics.graphs import UndecidedError
    from fsmcheck.verifier.verify import DISAGREE, ERROR

    save = _saver(args.out, batch, stats)
    tmp = Path(tempfile.mkdtemp(prefix="fsmcheck-fuzz-diff-"))
    signal.signal(signal.SIGALRM, _alarm)

    def body(pair):
        stats["inputs"] += 1
        old_files, new_files = pair
        models = []
        for side, files in (("old", old_files), ("new", new_files)):
            folder = tmp / side
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for name, text in SHIPPED.items():  # correspondence targets beside the input
                (folder / name).write_text(text, encoding="utf-8")
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8", newline="")
            try:
                models.append(load_model(folder / "m.toml"))
            except ModelError:
                stats["model_error"] += 1
                return
        flat = {f"old.{k}": v for k, v in old_files.items()} | {f"new.{k}": v for k, v in new_files.items()}
        started = time.monotonic()
        signal.alarm(WATCHDOG_S)
        try:
            result = diff_models(*models, timeout_ms=2000)
        except _Watchdog:
            stats["hangs"] += 1
            save("diff-hang", flat, f"diff_models did not return in {WATCHDOG_S} s")
            return
        except (ValueError, UndecidedError):  # the command's exit 2 (fsmcheck.diff.command)
            stats["refused"] += 1
            return
        except RecursionError as exc:
            stats["other_exception"] += 1
            save("diff-exception", flat, repr(exc)[:500])
            return
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything else
            stats["other_exception"] += 1
            save("diff-exception", flat, f"{type(exc).__name__}: {exc}"[:2000])
            return
        finally:
            signal.alarm(0)
        stats["seconds_max"] = max(stats["seconds_max"], time.monotonic() - started)
        stats["observable" if result.observable else "same"] += 1
        broken = [f"{r.prop.name} [{r.config}]: {r.status}: {r.detail}"
                  for results in (result.old_results, result.new_results) for r in results
                  if r.status in (DISAGREE, ERROR)]
        if broken:
            stats["engine_problems"] += 1
            save("diff-engines", flat, "\n".join(broken))

    return body, _diff_pairs(), lambda: shutil.rmtree(tmp, ignore_errors=True)


# -- errata files -------------------------------------------------------------------------------
_ERRATA = """\
# known deviations of a driver under test
[[erratum]]
id = "zeros-taken"
protocol = "v2"
rule = "resume-validate"
match = ["accepted a zeros stream", "tail"]
reason = "the driver does not validate the stream header"

[[erratum]]
id = "v1-reset"
protocol = "v1"
rule = "reset"
match = ["reset"]
reason = "known"
"""

_BAD_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80"])


@st.composite
def _errata_files(draw) -> bytes:
    text = _ERRATA
    for _ in range(draw(st.integers(1, 4))):
        text = draw(_mutate(text))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(_BAD_BYTES) + data[pos:]
    return data


def _errata(args, stats, batch):
    from fsmcheck.pack.errata import ErrataError, load_errata

    save = _saver(args.out, batch, stats)
    tmp = Path(tempfile.mkdtemp(prefix="fsmcheck-fuzz-errata-"))

    def body(data):
        stats["inputs"] += 1
        path = tmp / "errata.toml"
        path.write_bytes(data)
        try:
            load_errata(path)
            stats["loaded"] += 1
        except ErrataError as exc:
            stats["errata_error"] += 1
            nlines = data.count(b"\n") + 1
            if any(not 1 <= d.line <= nlines for d in exc.diagnostics):
                stats["bad_line"] += 1
                save("errata-bad-line", {"errata.toml": data}, f"{exc} (the file has {nlines} lines)")
        except RecursionError as exc:
            stats["other_exception"] += 1
            save("errata-exception", {"errata.toml": data}, repr(exc)[:500])
        except Exception as exc:  # noqa: BLE001
            stats["other_exception"] += 1
            save("errata-exception", {"errata.toml": data}, f"{type(exc).__name__}: {exc}"[:2000])

    return body, _errata_files(), lambda: shutil.rmtree(tmp, ignore_errors=True)


# -- the command line's options -------------------------------------------------------------------
_NUMBERS = ["0", "1", "2", "3", "-1", "1025", "1000000000", str(10**30), "1e300", "inf", "-inf", "nan", "x", "",
            "0x10", "1_000"]
_SECONDS = ["0", "-1", "0.5", "3", "inf", "nan", "1e300", "x", ""]  # never a long run
_FLAGS = ["STOP_COPY", "STOP_COPY,P2P", "3", "7", "P2P", "NOPE", "", "99999999999999999999999", ",", "STOP_COPY,,"]
_PATHS = ["MODEL", "missing.toml", "dir", "file/below", "/dev/null", "out.x", "-", "dir/", "\u2028.toml"]
_OUT = ["out.svg", "out.json", "out.html", "dir", "file/below", "file", "out", "/dev/null", "new/dir/out.dot"]
_MODELS = {"v1": ROOT / "models" / "vfio_v1.toml", "door": ROOT / "tests" / "models" / "door.toml",
           "orch": ROOT / "models" / "qemu_orchestration.toml", "v2": ROOT / "models" / "vfio_v2.toml"}
_TRACE = ROOT / "tests" / "qemu_traces" / "source.trace"

#: command -> (positional choices, {option: values}); "MODEL" is replaced by a model path.
_COMMANDS = {
    "verify": (["v1", "door", "orch"], {"--deadline": _SECONDS, "--timeout-ms": _NUMBERS, "--devices": _NUMBERS,
                                        "--failures": ["0", "1", "-1", "x", str(10**30)], "--flags": _FLAGS,
                                        "--sarif": _OUT, "--trace-dir": _OUT, "--json": None, "-q": None}),
    "table": (["v1", "v2", "door"], {"--flags": _FLAGS, "--json": None}),
    "export": (["v1", "door", "v2"], {"--format": ["json", "dot", "promela", "svg", ""], "-o": _OUT,
                                      "--flags": _FLAGS, "--profile": ["strict", "lenient", "x", ""]}),
    "render": (["v1", "door"], {"-o": _OUT, "--flags": _FLAGS, "--profile": ["strict", "x"], "--trace": _PATHS}),
    "generate": (["v1", "door"], {"-o": _OUT, "--no-verify": None, "--check": None}),
    "check-trace": (["TRACE"], {"--model": _PATHS, "--flags": _FLAGS + ["auto"], "--max-rows": _NUMBERS,
                                "--context": _NUMBERS, "--max-violations": _NUMBERS, "--sarif": _OUT, "--json": None}),
    "rules": ([], {"--pack": _PATHS + [str(ROOT / "generated_tests")], "--protocol": ["v1", "v2", "x"],
                   "--json": None}),
    "models": ([], {"--json": None}),
}


@st.composite
def _command_lines(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(_COMMANDS)))
    positionals, options = _COMMANDS[command]
    argv = [command]
    if positionals:
        choice = draw(st.sampled_from(positionals))
        argv.append(str(_TRACE) if choice == "TRACE" else str(_MODELS[choice]))
    if command == "verify":
        argv += ["--deadline", "5"]
    for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        values = options[option]
        if values is None:
            argv.append(option)
        else:
            value = draw(st.sampled_from(values))
            argv += [option, str(_MODELS["v1"]) if value == "MODEL" else value]
    if draw(st.integers(0, 9)) == 0:  # an unknown option or a stray argument
        argv.append(draw(st.sampled_from(["--nope", "extra", "-", "--"])))
    return argv


def _cli(args, stats, batch):
    from click.testing import CliRunner

    from fsmcheck.cli import main

    save = _saver(args.out, batch, stats)
    tmp = Path(tempfile.mkdtemp(prefix="fsmcheck-fuzz-cli-"))
    signal.signal(signal.SIGALRM, _alarm)
    runner = CliRunner()

    def body(argv):
        stats["inputs"] += 1
        work = tmp / "w"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / "dir").mkdir()
        (work / "file").write_text("a regular file\n")
        here = os.getcwd()
        os.chdir(work)
        started = time.monotonic()
        signal.alarm(WATCHDOG_S)
        try:
            result = runner.invoke(main, argv, catch_exceptions=True)
        except _Watchdog:
            stats["hangs"] += 1
            save("cli-hang", {}, " ".join(argv))
            return
        finally:
            signal.alarm(0)
            os.chdir(here)
        stats["seconds_max"] = max(stats["seconds_max"], time.monotonic() - started)
        code = result.exit_code
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stats["tracebacks"] += 1
            exc = result.exception
            save("cli-exception", {}, f"fsmcheck {' '.join(argv)}\n{type(exc).__name__}: {exc}"[:3000])
        elif code not in (0, 1, 2):
            stats["bad_exit"] += 1
            save("cli-exit", {}, f"fsmcheck {' '.join(argv)}\nexit {code}\n{result.output[-2000:]}")
        else:
            stats[f"exit_{code}"] += 1

    return body, _command_lines(), lambda: shutil.rmtree(tmp, ignore_errors=True)


#: name -> campaign factory, and the failure counters of each (the exit status).
CAMPAIGNS = {"diff": _diff, "errata": _errata, "cli": _cli}
FAILURES = {"diff": ("other_exception", "engine_problems", "hangs"),
            "errata": ("other_exception", "bad_line"),
            "cli": ("tracebacks", "bad_exit", "hangs")}


def summary(name: str, f: dict) -> str:
    """The one-line result of campaign ``name`` (figures ``f``)."""
    if name == "diff":
        return (f"diff: {f.get('inputs', 0)} model pairs in {f['seconds']} s: {f.get('observable', 0)} observable, "
                f"{f.get('same', 0)} same, {f.get('model_error', 0)} ModelError, {f.get('refused', 0)} refused "
                f"(ValueError, exit 2), {f.get('other_exception', 0)} other exceptions, "
                f"{f.get('engine_problems', 0)} engine problems, {f.get('hangs', 0)} hangs "
                f"(slowest pair {f.get('seconds_max', 0)} s)")
    if name == "errata":
        return (f"errata: {f.get('inputs', 0)} mutated errata files in {f['seconds']} s: {f.get('loaded', 0)} "
                f"loaded, {f.get('errata_error', 0)} ErrataError, {f.get('other_exception', 0)} other exceptions, "
                f"{f.get('bad_line', 0)} diagnostics outside the file")
    return (f"cli: {f.get('inputs', 0)} command lines in {f['seconds']} s: exit 0/1/2 "
            f"{f.get('exit_0', 0)}/{f.get('exit_1', 0)}/{f.get('exit_2', 0)}, {f.get('tracebacks', 0)} tracebacks, "
            f"{f.get('bad_exit', 0)} other exit codes, {f.get('hangs', 0)} hangs "
            f"(slowest {f.get('seconds_max', 0)} s)")
