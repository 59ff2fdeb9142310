"""The repair table of docs/orchestration.md, from the tool's own verdicts.

Runs ``fsmcheck verify MODEL --devices N --failures F --json`` for the shipped
orchestration model and each repair variant (models/variants/qemu_orchestration_*.toml)
and prints one Markdown row per policy: the command, each run's verdict per
property (both engines; a split verdict shows each engine's), and for every
P2P-safety counterexample the callback that failed and the step after which
P2P quiesce is broken. Usage: ``python bench/orchestration_repairs.py
[--devices 2] [--failures 1]``. Exit 0 (the table is the output).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = [
    ("none (QEMU 10 as is)", "qemu_orchestration"),
    ("R1 rollback: a failed prepare aborts vm_stop, the prepared devices return to their pre-change state",
     "qemu_orchestration_rollback"),
    ("R2 recover the failed device to its peers' prepared state", "qemu_orchestration_recover_prepared"),
    ("R3 a failed prepare fails vm_state_notify; the vm_start sequence restarts the devices",
     "qemu_orchestration_fail_notify"),
]


def row(title: str, name: str, devices: int, failures: int) -> str:
    cmd = ["fsmcheck", "verify", name, "--devices", str(devices), "--failures", str(failures), "--timeout-ms", "60000"]
    done = subprocess.run([sys.executable, "-m", "fsmcheck.cli", *cmd[1:], "--json"], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    results = json.loads(done.stdout)["models"][0]["results"]

    def verdict(prop: str) -> str:
        out = []
        for r in results:
            if r["property"] == prop:
                engines = {v["status"] for v in r["engines"].values()}
                split = "" if len(engines) == 1 else " (" + "/".join(f"{k} {v['status']}"
                                                                     for k, v in r["engines"].items()) + ")"
                out.append(f"{r['configuration'].split()[0]}: {r['status']}{split}")
        return "; ".join(out)

    where = []
    for r in results:
        if r["property"] != "p2p-safety" or r["status"] != "fails":
            continue
        c = r["counterexample"]
        failed = next((t.split(" | ")[0] for t in c["trace"] if " failed" in t), "?")
        what = failed.split(": ", 1)[1].split(";")[0] if ": " in failed else failed
        after = c["summary"].split(": ", 1)[0].replace("P2P quiesce broken ", "")
        where.append(f"{r['configuration'].split()[0]}: {failed.split(':')[0]} -- {what}; broken {after}")
    return (f"| {title} | `{' '.join(cmd)}` (exit {done.returncode}) | {verdict('p2p-safety')} | "
            f"{verdict('progress')} | {'; '.join(where)} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--failures", type=int, default=1)
    args = parser.parse_args()
    print("| policy | command | p2p-safety | progress | failed callback; where P2P quiesce breaks |")
    print("|---|---|---|---|---|")
    for title, name in POLICIES:
        print(row(title, name, args.devices, args.failures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
