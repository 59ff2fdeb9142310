"""Benchmark: the orchestration model on N devices, explicit product vs z3.

Run with ``make bench-orchestration`` (or ``python bench/bench_orchestration.py
[--devices 2,4,8,16,32] [--explicit-seconds 60] [--failures 0]``). For each N,
the run ``migrate-source`` of ``models/qemu_orchestration.toml`` (every device
STOP_COPY,P2P,PRE_COPY) and the property P2P safety are decided by

* the explicit product (networkx), bounded by ``--explicit-seconds`` of wall
  time and ``--max-states`` global states: its state count, whether it
  finished, and where it stopped;
* z3 (BMC + k-induction with symmetry reduction): its verdict and the k
  that closed the induction.

Each measurement runs in its own Python process (so its peak memory is its
own: ``ru_maxrss`` growth during the engine call, in MB) and is killed if it
overruns its bound by 30 s: every run ends. The baseline of the ratios is
the explicit product in the same run; ``nx/z3`` is explicit time over z3
time (``>`` when the explicit search did not finish: its bound over z3's
time). Deterministic: no randomness.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = ROOT / "models" / "qemu_orchestration.toml"
RUN = "migrate-source"


def _child(engine: str, n: int, failures: int, seconds: float, max_states: int) -> dict:
    from fsmcheck.orchestration import load_orchestration
    from fsmcheck.orchestration.explicit import explore
    from fsmcheck.orchestration.semantics import System
    from fsmcheck.orchestration.symbolic import prove

    orch = load_orchestration(MODEL)
    system = System(orch, orch.run(RUN), (orch.default_flags,) * n, failures)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if engine == "networkx":
        e = explore(system, time_limit=seconds, max_states=max_states)
        status = "fails" if e.p2p_bad is not None else ("holds" if e.complete else "unknown")
        out = {"status": status, "states": e.states, "complete": e.complete, "stopped": e.stopped}
        if e.p2p_bad is not None:
            out["length"] = len(e.trace(e.p2p_bad)) - 1
    else:
        p = prove(system, "p2p-safety", timeout_ms=int(seconds * 1000))
        out = {"status": p.status, "k": p.k, "note": p.note}
        if p.status == "fails":
            out["length"] = p.k
    out["seconds"] = time.perf_counter() - start
    out["mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return out


def measure(engine: str, n: int, failures: int, seconds: float, max_states: int) -> dict:
    """One engine on N devices in a fresh process, killed after ``seconds`` + 30 s."""
    cmd = [sys.executable, __file__, "--child", engine, str(n), str(failures), str(seconds), str(max_states)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "seconds": seconds + 30, "mb": float("nan"), "stopped": "killed"}
    if done.returncode != 0:
        return {"status": "error", "seconds": 0.0, "mb": float("nan"), "stopped": done.stderr.strip()[-200:]}
    return json.loads(done.stdout)


def run(devices: list[int], failures: int, seconds: float, max_states: int, out=print) -> list[dict]:
    """Measure both engines for every N; print the table; return the rows."""
    rows = []
    out(f"orchestration benchmark: {MODEL.name} run {RUN}, P2P safety, F={failures}, "
        f"explicit bound {seconds:g} s / {max_states} states")
    out(f"{'N':>3} {'nx states':>10} {'nx s':>8} {'nx MB':>7} {'nx result':<34} {'z3 s':>7} {'z3 MB':>6} "
        f"{'z3 result':<22} {'nx/z3':>8}")
    for n in devices:
        nx_row = measure("networkx", n, failures, seconds, max_states)
        z3_row = measure("z3", n, failures, seconds, max_states)
        if nx_row.get("complete") or nx_row["status"] == "fails":
            nx_text = nx_row["status"] + (f" (cex {nx_row['length']})" if "length" in nx_row else "")
            ratio = f"{nx_row['seconds'] / max(z3_row['seconds'], 1e-9):.2f}"
        else:
            nx_text = f"stopped: {nx_row.get('stopped', nx_row['status'])}"
            ratio = f">{nx_row['seconds'] / max(z3_row['seconds'], 1e-9):.1f}"
        if z3_row["status"] == "holds":
            z3_text = f"holds (k={z3_row['k']})"
        elif z3_row["status"] == "fails":
            z3_text = f"fails (cex {z3_row['length']})"
        else:
            z3_text = z3_row["status"]
        agree = (nx_row["status"] not in ("holds", "fails") or z3_row["status"] not in ("holds", "fails")
                 or (nx_row["status"] == z3_row["status"] and nx_row.get("length") == z3_row.get("length")))
        out(f"{n:>3} {nx_row.get('states', 0):>10} {nx_row['seconds']:>8.2f} {nx_row['mb']:>7.0f} {nx_text:<34} "
            f"{z3_row['seconds']:>7.2f} {z3_row['mb']:>6.0f} {z3_text:<22} {ratio:>8}" + ("" if agree else "  DISAGREE"))
        rows.append({"n": n, "networkx": nx_row, "z3": z3_row, "agree": agree})
    goal = [r for r in rows if r["n"] >= 16]
    if goal and failures == 0:
        met = all(r["z3"]["status"] == "holds" and r["z3"]["seconds"] < 60 and not r["networkx"].get("complete")
                  for r in goal)
        out(f"goal (z3 proves P2P safety for N >= 16 in < 60 s, explicit product unfinished): "
            f"{'met' if met else 'NOT met'}")
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, n, failures, seconds, max_states = sys.argv[2:7]
        print(json.dumps(_child(engine, int(n), int(failures), float(seconds), int(max_states))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="2,4,8,16,32", help="comma-separated N values")
    parser.add_argument("--failures", type=int, default=0, help="failure budget F")
    parser.add_argument("--explicit-seconds", type=float, default=60.0, help="wall-time bound of each run")
    parser.add_argument("--max-states", type=int, default=250_000, help="state bound of the explicit search")
    parser.add_argument("--json", dest="json_path", help="also write the rows as JSON to this file")
    args = parser.parse_args()
    rows = run([int(x) for x in args.devices.split(",")], args.failures, args.explicit_seconds, args.max_states)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2) + "\n")
    return 3 if not all(r["agree"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
