"""The mutation score: the reference drivers, then every mutant, against a pack.

By default a mutant's run stops at its first kill (pytest ``-x``): the score
needs one killing test, not all of them. A run that stopped on an error (an
adapter fault, which is no kill) is run again in full, so stopping early never
turns a kill into a survivor. ``full=True`` runs every test against every
mutant and gives the whole killing-suite table.

``jobs`` runs go at once: the references first, then the mutants, longest
first by the seconds recorded last time (:mod:`.order`). The results come
back in the fixed order of :func:`~.runs.all_mutants`, whatever the order in
which the runs completed.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

from . import order, pool, runs

__all__ = ["score"]

_REFERENCE = "fsmcheck.drivers.reference:factory"


def score(pack: Path, *, seed: int = 0, jobs: int = 2, full: bool = False, progress=None,
          cache_dir: Path | None = None, use_cache: bool = True,
          fork: bool = True) -> tuple[list[runs.MutantResult], list[runs.MutantResult]]:
    """Run the reference drivers and every mutant against ``pack``.

    Args:
        pack: the generated pack's directory.
        seed: the state machine's seed for every run.
        jobs: runs at once (>= 1).
        full: run every test against every mutant (the whole killing-suite
            table) instead of stopping each mutant at its first kill.
        progress: called with each mutant's :class:`~.runs.MutantResult` as
            it ends (in the order of completion).
        cache_dir: the killing-order file's directory (default
            :func:`~.order.default_cache_dir`).
        use_cache: read and write the killing-order file.
        fork: run in the process pool forked from a warm server (else a
            fresh process each).

    Returns:
        ``(reference results, mutant results)``, each in a fixed order (v2
        then v1; mutants as :func:`~.runs.all_mutants` lists them).
    """
    modules = {protocol: order.kill_order(sorted(pack.glob(f"test_vfio_{protocol}*.py"))) for protocol in ("v2", "v1")}
    order_path = (Path(cache_dir) if cache_dir is not None else order.default_cache_dir()) / order.ORDER_FILE
    key = order.order_key(pack, seed) if use_cache else ""
    recorded = order.read_order(order_path, key) if use_cache else {}

    tasks = [("reference", protocol, _REFERENCE, "the correct reference driver")
             for protocol in ("v2", "v1") if modules[protocol]]
    tasks += [(protocol, name, factory, doc) for protocol, name, factory, doc in runs.all_mutants()
              if modules[protocol]]

    def task_id(task) -> str:
        return f"{task[1]}:{task[0]}" if task[0] == "reference" else f"{task[0]}:{task[1]}"

    def one(task) -> runs.MutantResult:
        kind, name, factory, doc = task
        protocol = name if kind == "reference" else kind
        start = time.perf_counter()
        hint = (recorded.get(task_id(task)) or {}).get("first_kill") if kind != "reference" and not full else None
        r = None
        if hint:
            r = runs.run_pack(pack, modules[protocol], factory, seed, ["-x"], tests=[hint])
            r.hinted = r.killed
        if r is None or not r.killed:
            r = runs.run_pack(pack, modules[protocol], factory, seed, None if full or kind == "reference" else ["-x"])
            if kind != "reference" and not full and not r.killed and r.errors:
                r = runs.run_pack(pack, modules[protocol], factory, seed)  # stopped by an adapter fault, not a kill
        r.seconds = time.perf_counter() - start
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
    with pool.running(max(jobs, 1), fork), concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as threads:
        futures = {task_id(t): threads.submit(one, t) for t in schedule}
        done = {k: f.result() for k, f in futures.items()}
    ordered = [done[task_id(t)] for t in tasks]
    reference = [r for t, r in zip(tasks, ordered) if t[0] == "reference"]
    results = [r for t, r in zip(tasks, ordered) if t[0] != "reference"]
    if use_cache:
        kept = {}
        for t, r in zip(tasks, ordered):
            entry = {"seconds": round(r.seconds, 2)}
            if r.killed and r.first_kill:
                entry["first_kill"] = r.first_kill
            kept[task_id(t)] = entry
        if any("first_kill" in e for e in kept.values()):
            order.write_order(order_path, key, kept)
    return reference, results
