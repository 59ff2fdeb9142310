"""Benchmark: the orchestration model on N devices -- explicit engine, z3, and SPIN's pan.

Run with ``make bench-orchestration`` (or ``python bench/bench_orchestration.py
[--devices 2,4,8,12,16,32] [--failures 0,1] [--max-devices-with-failures 16] [--pan-upto 8]
[--properties p2p-safety,progress]``).
For each N, the run ``migrate-source`` of ``models/qemu_orchestration.toml``
(every device STOP_COPY,P2P,PRE_COPY), each property is decided by

* the explicit engine (the counted product with partial-order reduction):
  verdict, counted states stored, time, peak memory;
* z3 (BMC + k-induction over the same counting abstraction): verdict, how,
  time, peak memory;
* SPIN's ``pan`` on fsmcheck's Promela export of the same system
  (:mod:`fsmcheck.export.orchestration_promela`; POR on, ``-O2``), for
  N <= ``--pan-upto``: verdict, states stored, its search time (the run of
  ``./pan``) and, apart, the compile time (``spin -a`` + ``cc``).

Each engine runs in its own Python process (its peak memory is its own:
``ru_maxrss`` of the child, in MB; pan's figure is the memory pan reports)
and is killed if it overruns ``--seconds`` by 30 s: every run ends. The
ratios ``pan/nx`` and ``pan/z3`` compare search times measured in the same
run (the machine is shared: compare ratios, not times). Both engines must
agree (verdict and counterexample length); a disagreement exits 3.
Deterministic: no randomness.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = ROOT / "models" / "qemu_orchestration.toml"
RUN = "migrate-source"


def _child(engine: str, n: int, failures: int, seconds: float, prop: str) -> dict:
    from fsmcheck.orchestration import load_orchestration
    from fsmcheck.orchestration.explicit import explore
    from fsmcheck.orchestration.semantics import System
    from fsmcheck.orchestration.symbolic import prove

    orch = load_orchestration(MODEL)
    system = System(orch, orch.run(RUN), (orch.default_flags,) * n, failures)
    start = time.perf_counter()
    if engine == "explicit":
        e = explore(system, time_limit=seconds)
        bad = {"p2p-safety": e.p2p_bad, "stopped-vm": e.vm_bad, "progress": (e.progress_bad or (None,))[0]}[prop]
        status = "fails" if bad is not None else ("holds" if e.complete else "unknown")
        out = {"status": status, "states": e.states, "how": e.stopped or "complete"}
        if bad is not None:
            out["length"] = e.length(bad)
    elif engine == "z3":
        p = prove(system, prop, timeout_ms=int(seconds * 1000))
        out = {"status": p.status, "how": p.note}
        if p.status == "fails":
            out["length"] = p.k
    else:
        from fsmcheck.export.orchestration_promela import pan_check

        r = pan_check(system, prop, timeout=seconds)
        out = {"status": r["status"], "states": r["states"], "how": f"compile {r['compile_s']:.1f} s",
               "compile_s": r["compile_s"], "pan_mb": r["mb"]}
        out["seconds"] = r["search_s"]
    out.setdefault("seconds", time.perf_counter() - start)
    out["mb"] = out.pop("pan_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def measure(engine: str, n: int, failures: int, seconds: float, prop: str) -> dict:
    """One engine in a fresh process, killed after ``seconds`` + 30 s."""
    cmd = [sys.executable, __file__, "--child", engine, str(n), str(failures), str(seconds), prop]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "seconds": seconds + 30, "mb": float("nan"), "how": "killed"}
    if done.returncode != 0:
        return {"status": "error", "seconds": 0.0, "mb": float("nan"), "how": done.stderr.strip()[-200:]}
    return json.loads(done.stdout)


def _cell(row: dict) -> str:
    text = row["status"] + (f"({row['length']})" if "length" in row else "")
    return f"{text:<10} {row['seconds']:>7.2f} {row['mb']:>6.0f}"


def run(devices: list[int], failures: int, seconds: float, pan_upto: int = 8,
        properties=("p2p-safety", "progress"), out=print) -> list[dict]:
    """Measure the engines for every N and property; print the table; return the rows."""
    rows = []
    load = os.getloadavg()
    out(f"orchestration benchmark: {MODEL.name} run {RUN}, F={failures}, bound {seconds:g} s per engine; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    out(f"{'N':>3} {'property':<11} {'nx states':>9} {'explicit':<10} {'s':>7} {'MB':>6} {'z3':<10} {'s':>7} "
        f"{'MB':>6} {'pan states':>10} {'pan':<10} {'search s':>8} {'MB':>6} {'cc s':>6} {'pan/nx':>7} {'pan/z3':>7}")
    for n in devices:
        for prop in properties:
            nx_row = measure("explicit", n, failures, seconds, prop)
            z3_row = measure("z3", n, failures, seconds, prop)
            pan_row = measure("pan", n, failures, max(seconds, 600), prop) if n <= pan_upto else None
            decided = {nx_row["status"], z3_row["status"]} <= {"holds", "fails"}
            agree = (not decided) or (nx_row["status"] == z3_row["status"]
                                      and nx_row.get("length") == z3_row.get("length"))
            if pan_row:
                ratio_nx = f"{pan_row['seconds'] / max(nx_row['seconds'], 1e-9):.1f}"
                ratio_z3 = f"{pan_row['seconds'] / max(z3_row['seconds'], 1e-9):.2f}"
                pan = (f"{pan_row.get('states', 0):>10} {pan_row['status']:<10} {pan_row['seconds']:>8.2f} "
                       f"{pan_row['mb']:>6.0f} {pan_row.get('compile_s', float('nan')):>6.0f}")
            else:
                ratio_nx = ratio_z3 = "-"
                pan = f"{'-':>10} {'not run':<10} {'-':>8} {'-':>6} {'-':>6}"
            out(f"{n:>3} {prop:<11} {nx_row.get('states', 0):>9} {_cell(nx_row)} {_cell(z3_row)} {pan} "
                f"{ratio_nx:>7} {ratio_z3:>7}" + ("" if agree else "  DISAGREE"))
            rows.append({"n": n, "failures": failures, "property": prop, "explicit": nx_row, "z3": z3_row,
                         "pan": pan_row, "agree": agree, "decided": decided})
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, n, failures, seconds, prop = sys.argv[2:7]
        print(json.dumps(_child(engine, int(n), int(failures), float(seconds), prop)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="2,4,8,16,32", help="comma-separated N values")
    parser.add_argument("--failures", default="0", help="comma-separated failure budgets F")
    parser.add_argument("--max-devices-with-failures", type=int, default=16,
                        help="for F > 0, only N up to this")
    parser.add_argument("--seconds", type=float, default=120.0, help="wall-time bound of each engine run")
    parser.add_argument("--pan-upto", type=int, default=8, help="run pan for N up to this (0: never)")
    parser.add_argument("--properties", default="p2p-safety,progress", help="comma-separated properties")
    parser.add_argument("--json", dest="json_path", help="also write the rows as JSON to this file")
    args = parser.parse_args()
    rows = []
    for failures in (int(x) for x in args.failures.split(",")):
        devices = [int(x) for x in args.devices.split(",")]
        if failures:
            devices = [n for n in devices if n <= args.max_devices_with_failures]
        rows += run(devices, failures, args.seconds, args.pan_upto, tuple(args.properties.split(",")))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2) + "\n")
    if not all(r["agree"] for r in rows):
        return 3
    return 0 if all(r["decided"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
