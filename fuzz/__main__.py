"""``python -m fuzz``: the verifier core under fuzzing (``make fuzz``).

Campaigns driven by hypothesis, seeded, and bounded by a count and a time
budget (whichever comes first); ``diff``, ``errata`` and ``cli`` are in
:mod:`fuzz.robust`:

- ``engines``: random *valid* models (:mod:`fuzz.strategies`) verified on
  both engines with a deadline per model. Counted: disagreements (a
  ``disagree`` result), engine errors (an ``error`` result: an exception in an
  engine, or premises z3 found contradictory), hangs (an instance left
  ``unknown`` by the deadline, or a model past the watchdog), and models the
  loader refused (the strategy must only draw valid ones).
- ``loader``: mutated shipped models (:mod:`fuzz.mutations`). Counted: inputs
  that raised anything but ``ModelError``, and diagnostics whose line is
  outside the file.

Inputs are drawn in batches of ``--batch``; batch ``i`` uses hypothesis seed
``seed * 100003 + i``, so ``--seed S`` replays a run exactly (the time budget
only decides how many batches run). The seed is printed first; failing
inputs are written under ``--out`` (one folder each) and the exit status is 1
when any was found, else 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from fsmcheck.model import ModelError, load_model
from fsmcheck.verifier.verify import verify_model

from . import robust
from .mutations import SHIPPED, mutated_models
from .strategies import model_files


class _Watchdog(BaseException):
    """A model took longer than the watchdog allows (a hang)."""


def _alarm(signum, frame):
    raise _Watchdog()


def _run_batch(job):
    """Run one batch in this process: ``(campaign, args, batch index, start
    time)`` -> Counter of figures ({} when the time budget is already spent)."""
    campaign, args, batch, started = job
    if time.time() - started >= args.seconds:
        return collections.Counter()
    stats = collections.Counter()
    body, strategy, cleanup = _CAMPAIGNS[campaign](args, stats, batch)
    n = min(args.batch, args.count - batch * args.batch)
    test = seed(args.seed * 100003 + batch)(settings(
        max_examples=n, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck))(given(strategy)(body)))
    try:
        test()
    finally:
        cleanup()
    if args.progress:
        print(f"  ... batch {batch}: {stats['inputs']} inputs, {time.time() - started:.0f} s",
              file=sys.stderr, flush=True)
    return stats


def _batches(campaign: str, args) -> collections.Counter:
    """Every batch of ``campaign`` (``--jobs`` processes), until the count or
    the time budget is reached; the summed figures."""
    import multiprocessing

    jobs = [(campaign, args, b, time.time()) for b in range(args.start_batch, -(-args.count // args.batch))]
    total = collections.Counter()
    if args.jobs == 1:
        results = map(_run_batch, jobs)
    else:
        pool = multiprocessing.get_context("fork").Pool(args.jobs)
        results = pool.imap(_run_batch, jobs)
    for stats in results:
        for key, value in stats.items():
            total[key] = max(total[key], value) if key == "seconds_max" else total[key] + value
    if args.jobs != 1:
        pool.close()
        pool.join()
    return total


def _save(out: Path, kind: str, files: dict, info: str, batch: int, stats) -> None:
    folder = out / f"{kind}-b{batch}-{stats['inputs']}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "INFO.txt").write_text(info + "\n", encoding="utf-8")


def _engines(args, stats, batch):
    """(body, strategy) of the engines campaign for one batch."""
    out = Path(args.out)
    signal.signal(signal.SIGALRM, _alarm)

    def save(kind, files, info):
        _save(out, kind, files, info, batch, stats)

    def body(files):
        stats["inputs"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                Path(tmp, name).write_text(text, encoding="utf-8")
            try:
                model = load_model(Path(tmp, "m.toml"))
            except ModelError as exc:
                stats["refused"] += 1
                save("refused", files, str(exc))
                return
            started = time.monotonic()
            signal.alarm(int(args.deadline * 2) + 5)
            try:
                results = verify_model(model, deadline=args.deadline)
            except _Watchdog:
                stats["hangs"] += 1
                save("hang", files, "watchdog: verify_model did not return")
                return
            finally:
                signal.alarm(0)
            stats["models"] += 1
            stats["seconds_max"] = max(stats["seconds_max"], time.monotonic() - started)
            for r in results:
                stats[f"instances_{r.status}"] += 1
                notes = " ".join(v.note for v in r.verdicts.values())
                if r.status == "disagree":
                    stats["disagreements"] += 1
                    save("disagree", files, f"{r.prop.name} [{r.config}]: {r.detail}")
                elif r.status == "error":
                    stats["errors"] += 1
                    save("error", files, f"{r.prop.name} [{r.config}]: {r.detail}")
                elif "deadline" in notes:
                    stats["hangs"] += 1
                    save("hang", files, f"{r.prop.name} [{r.config}]: {notes}")

    return body, model_files(), lambda: None


def _loader(args, stats, batch):
    """(body, strategy) of the loader campaign for one batch."""
    out = Path(args.out)
    tmp = Path(tempfile.mkdtemp(prefix="fsmcheck-fuzz-"))
    for name, text in SHIPPED.items():  # correspondence targets beside the input
        (tmp / name).write_text(text, encoding="utf-8")

    def save(kind, files, info):
        _save(out, kind, files, info, batch, stats)

    def body(drawn):
        stats["inputs"] += 1
        base, text = drawn
        path = tmp / f"input-{base}"
        path.write_text(text, encoding="utf-8", newline="")
        try:
            load_model(path)
            stats["loaded"] += 1
        except ModelError as exc:
            stats["model_error"] += 1
            nlines = text.count("\n") + 1  # TOML ends lines at LF only
            for d in exc.diagnostics:
                if not 1 <= d.line <= max(nlines, 1):
                    stats["bad_line"] += 1
                    save("bad-line", {base: text}, f"{d} (the file has {nlines} lines)")
                    break
        except RecursionError as exc:  # counted apart: the stack is unwound by now
            stats["other_exception"] += 1
            save("exception", {base: text}, repr(exc)[:500])
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything else
            stats["other_exception"] += 1
            save("exception", {base: text}, f"{type(exc).__name__}: {exc}"[:2000])

    import shutil

    return body, mutated_models(), lambda: shutil.rmtree(tmp, ignore_errors=True)


def _traces(args, stats, batch):
    """(body, strategy, cleanup) of the check-trace campaign (fuzz/tracecheck.py)."""
    from . import tracecheck

    return tracecheck.campaign(args, stats, batch,
                               lambda kind, files, info: _save(Path(args.out), kind, files, info, batch, stats))


_CAMPAIGNS = {"engines": _engines, "loader": _loader, "traces": _traces, **robust.CAMPAIGNS}


def _campaign(name: str, args) -> dict:
    start = time.monotonic()
    stats = _batches(name, args)
    stats = dict(stats)
    stats["seconds"] = round(time.monotonic() - start, 1)
    if "seconds_max" in stats:
        stats["seconds_max"] = round(stats["seconds_max"], 2)
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", choices=["engines", "loader", "traces", *robust.CAMPAIGNS, "all"])
    parser.add_argument("--seed", type=int, default=None, help="Seed (default: random, printed).")
    parser.add_argument("--models", type=int, default=10_000, help="Random valid models (engines).")
    parser.add_argument("--inputs", type=int, default=100_000, help="Mutated model files (loader).")
    parser.add_argument("--traces", type=int, default=20_000, help="Mutated traces (check-trace).")
    parser.add_argument("--pipe-every", type=int, default=4, help="Every Nth trace also through a pipe.")
    parser.add_argument("--pairs", type=int, default=1_000, help="Model pairs (diff).")
    parser.add_argument("--errata", type=int, default=20_000, help="Mutated errata files (errata).")
    parser.add_argument("--command-lines", type=int, default=5_000, help="Command lines (cli).")
    parser.add_argument("--seconds", type=float, default=3600, help="Time budget per campaign.")
    parser.add_argument("--deadline", type=float, default=60, help="verify deadline per model (s).")
    parser.add_argument("--batch", type=int, default=200, help="Inputs per hypothesis seed.")
    parser.add_argument("--out", default="fuzz-failures", help="Folder for failing inputs.")
    parser.add_argument("--progress", action="store_true", help="A line on stderr after each batch.")
    parser.add_argument("--jobs", type=int, default=1, help="Worker processes (results do not depend on it).")
    parser.add_argument("--start-batch", type=int, default=0,
                        help="Skip the batches before this one (resume a run cut short by --seconds).")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    print(f"fuzz: seed {args.seed} (replay with --seed {args.seed})", flush=True)
    figures, bad = {}, 0
    if args.campaign in ("engines", "all"):
        args.count = args.models
        figures["engines"] = f = _campaign("engines", args)
        bad += f.get("disagreements", 0) + f.get("errors", 0) + f.get("hangs", 0) + f.get("refused", 0)
        print(f"engines: {f['inputs']} random valid models in {f['seconds']} s: {f.get('disagreements', 0)} "
              f"disagreements, {f.get('errors', 0)} engine errors, {f.get('hangs', 0)} hangs, "
              f"{f.get('refused', 0)} refused by the loader (slowest model {f['seconds_max']} s)", flush=True)
    if args.campaign in ("loader", "all"):
        args.count = args.inputs
        figures["loader"] = f = _campaign("loader", args)
        bad += f.get("other_exception", 0) + f.get("bad_line", 0)
        print(f"loader: {f['inputs']} mutated model files in {f['seconds']} s: {f.get('model_error', 0)} "
              f"ModelError, {f.get('loaded', 0)} loaded, {f.get('other_exception', 0)} other exceptions, "
              f"{f.get('bad_line', 0)} diagnostics outside the file", flush=True)
    if args.campaign in ("traces", "all"):
        from . import tracecheck

        args.count = args.traces
        figures["traces"] = f = _campaign("traces", args)
        bad += tracecheck.failures(f)
        print(tracecheck.summary(f), flush=True)
    for name, count in (("diff", args.pairs), ("errata", args.errata), ("cli", args.command_lines)):
        if args.campaign in (name, "all"):
            args.count = count
            figures[name] = f = _campaign(name, args)
            bad += sum(f.get(k, 0) for k in robust.FAILURES[name])
            print(robust.summary(name, f), flush=True)
    print(json.dumps({"seed": args.seed, **figures}, sort_keys=True))
    if bad:
        print(f"fuzz: {bad} failing input(s) written to {args.out}/", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
