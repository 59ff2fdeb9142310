"""``make vfio-user-e2e``: the v2 pack against libvfio-user, two revisions.

Builds libvfio-user at efd091b (upstream head) and 4d9f663 (the parent of
4f4fce4 "do not reset migration state on device reset (#844)") from the
unmodified tarballs in ``../shared/third_party/libvfio-user/`` with
``vfio-user/build.sh`` (under ``build/vfio-user/``), then runs ``fsmcheck
run-pack --vfio-user-server`` against fsmcheck's test device on each
revision and against libvfio-user's samples/server (patched: BAR1 a power of
two) at the head, the three runs at once, each with its committed errata file
``vfio-user/errata/<run>.toml``; prints the revision x rule x verdict table
and the measured figures (servers started, tests run, seconds).

Passes (exit 0) when every result is explained: each violation is an
erratum of the run's file (xfailed, verdict "erratum"), each server crash
matches a ``[[crash]]`` entry of it (signal and the source line in the
assertion), every entry names the vfio.h sentence it breaks (``vfio_h``) and
the upstream file:line (``upstream``), nothing hung, and the whole target
took under ``--bound`` seconds (180). Otherwise exit 1; missing input (no
../shared, a tarball whose sha256 is not the README's) exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "vfio-user"
sys.path.insert(0, str(ROOT))

from fsmcheck.pack.errata import ErrataError, read_errata  # noqa: E402
from fsmcheck.runpack.results import junit_cases, rule_outcomes  # noqa: E402

#: The archives' sha256, as ../shared/third_party/libvfio-user/README.md lists them.
REVISIONS = {
    "efd091b": "5f8ea6c4b5fe9d929675b1983147801a6fb0265d78f5a40914a467b5d4e625e2",
    "4d9f663": "faf49c313e4a345905c938be612d65bbd31203789b542232f9295ef07209a75a",
}
#: The runs: (name, revision, program in build/vfio-user/<rev>/bin).
RUNS = (("efd091b", "efd091b", "fsmcheck-vfu-device"), ("4d9f663", "4d9f663", "fsmcheck-vfu-device"),
        ("sample-efd091b", "efd091b", "server"))


def shared_dir() -> Path:
    return Path(os.environ.get("FSMCHECK_SHARED", ROOT.parent / "shared")) / "third_party" / "libvfio-user"


def build(rev: str, out: Path) -> None:
    tarball = shared_dir() / f"libvfio-user-{rev}.tar.gz"
    if not tarball.is_file():
        sys.exit(f"vfio-user-e2e: {tarball}: missing (the target needs ../shared/third_party/libvfio-user)")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != REVISIONS[rev]:
        print(f"vfio-user-e2e: {tarball}: sha256 {digest}, the README says {REVISIONS[rev]}", file=sys.stderr)
        sys.exit(2)
    subprocess.run([str(HERE / "build.sh"), str(tarball), str(out / rev)], check=True, stdout=subprocess.DEVNULL)


def load_errata(name: str) -> dict:
    """The run's errata file (the pack's format, :mod:`fsmcheck.pack.errata`), read with every
    entry's evidence required: its vfio.h sentence and an upstream file:line."""
    try:
        return read_errata(HERE / "errata" / f"{name}.toml", evidence=True)
    except ErrataError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


def unexplained_in_group(text: str, errata: dict) -> list[str]:
    """The failures of a hypothesis group ("found N distinct failures", one
    block each in the traceback text) that neither an erratum (its rule and a
    match string) nor a ``[[crash]]`` entry explains. The pack's errata hook
    explains a group only when every member is a violation; a crash in the
    group is the e2e target's to explain."""
    from fsmcheck.pack.v2_spec import RULES

    blocks = re.split(r"\n\s*\+-*\+? ?-+ \d+ -+\n", text)[1:]
    out = []
    for block in blocks:
        head = re.search(r"(ProtocolViolation|AdapterFault): (.*)", block)
        if head is None:
            out.append(block.strip().splitlines()[-1][:200] if block.strip() else "(empty)")
            continue
        if head.group(1) == "AdapterFault":
            if not any(c["signal"] in block and any(m in block for m in c["match"]) for c in errata.get("crash", [])):
                out.append(head.group(0)[:200])
            continue
        rule = re.search(r"rule: (.*)", block)
        # "rule: TEXT [v2.id]": the pack names the catalogue id after the rule's text
        rule_text = re.sub(r"\s*\[[\w.-]+\]$", "", rule.group(1).strip()) if rule else ""
        if not any(RULES.get(e["rule"]) == rule_text and any(m in block for m in e["match"])
                   for e in errata.get("erratum", [])):
            out.append(head.group(0)[:200])
    return out or ([] if blocks else ["a group of failures whose members could not be read"])


def run_pack(name: str, program: Path, out: Path, seed: int, timeout: float) -> dict:
    results = out / "results" / name
    shutil.rmtree(results, ignore_errors=True)  # a fresh run: no earlier pack, junit or hypothesis database
    results.mkdir(parents=True)
    tally = out / "results" / f"{name}.servers"
    tally.parent.mkdir(parents=True, exist_ok=True)
    tally.unlink(missing_ok=True)
    # --tb=line: the pack's failures are read from junit.xml; long tracebacks only cost time
    env = dict(os.environ, FSMCHECK_VFU_TALLY=str(tally), PYTEST_ADDOPTS="--tb=line")
    cmd = [str(Path(sys.executable).parent / "fsmcheck"), "run-pack", "--vfio-user-server", f"{shlex.quote(str(program))} {{socket}}",
           "-o", str(results), "--errata", str(HERE / "errata" / f"{name}.toml"), "--seed", str(seed)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, cwd=results)
        code, log = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        code, log = "timeout", (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    servers = len(tally.read_text().splitlines()) if tally.is_file() else 0
    return {"name": name, "code": code, "log": log, "seconds": time.monotonic() - started, "results": results,
            "servers": servers}


def judge(run: dict, errata: dict) -> tuple[list, list[str]]:
    """(rule outcomes, problems): every failure explained, every crash listed."""
    problems = []
    junit = run["results"] / "junit.xml"
    if run["code"] == "timeout":
        return [], [f"{run['name']}: the run did not finish in time (a hang?)"]
    if not junit.is_file():
        return [], [f"{run['name']}: no junit.xml (exit {run['code']}): " + run["log"].strip()[-400:]]
    cases = junit_cases(junit)
    outcomes = rule_outcomes(run["results"] / "pack", cases)
    crashes = errata.get("crash", [])
    for case in cases:
        if case.outcome == "failed" and case.message.startswith("ExceptionGroup"):
            problems += [f"{run['name']}: {case.name}: unexplained, in a group of failures: {p}"
                         for p in unexplained_in_group(case.text, errata)]
        elif case.outcome == "failed":
            problems.append(f"{run['name']}: {case.name}: unexplained failure: {case.message.splitlines()[0]}")
        elif case.outcome == "error":
            text = case.message + "\n" + case.text
            if "device crashed:" not in text:
                problems.append(f"{run['name']}: {case.name}: adapter error that is no crash: "
                                f"{case.message.splitlines()[0][:300]}")
                continue
            if not any(c["signal"] in text and any(m in text for m in c["match"]) for c in crashes):
                problems.append(f"{run['name']}: {case.name}: unexplained crash: {case.message.splitlines()[0][:300]}")
    return outcomes, problems


def violations(run: dict, errata: dict) -> dict[str, str]:
    """pack rule key (of fsmcheck.pack.v2_spec.RULES, as the errata name it) ->
    "N by K errata" for the run's explained violations; "(crash)" -> "N SIGNAL"."""
    tags = {e["id"]: e["rule"] for e in errata.get("erratum", [])}
    counts: dict[str, dict[str, int]] = {}
    junit = run["results"] / "junit.xml"
    for case in junit_cases(junit) if junit.is_file() else []:
        if case.outcome == "xfailed" and (m := re.match(r"erratum (\S+):", case.message)):
            rule = tags.get(m.group(1), "?")
            counts.setdefault(rule, {}).setdefault(m.group(1), 0)
            counts[rule][m.group(1)] += 1
        elif case.outcome == "error" and (m := re.search(r"device crashed: (\S+),", case.message + case.text)):
            counts.setdefault("(crash)", {}).setdefault(m.group(1), 0)
            counts["(crash)"][m.group(1)] += 1
    return {rule: (" ".join(f"{n} {sig}" for sig, n in sorted(ids.items())) if rule == "(crash)"
                   else f"{sum(ids.values())} by {len(ids)} errat{'a' if len(ids) > 1 else 'um'}")
            for rule, ids in counts.items()}


def crash_hits(run: dict, errata: dict) -> dict[str, int]:
    hits = {c["id"]: 0 for c in errata.get("crash", [])}
    junit = run["results"] / "junit.xml"
    if junit.is_file():
        for case in junit_cases(junit):
            if case.outcome == "error":
                text = case.message + "\n" + case.text
                for c in errata.get("crash", []):
                    if c["signal"] in text and any(m in text for m in c["match"]):
                        hits[c["id"]] += 1
                        break
    return hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "vfio-user"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", type=float, default=180.0, help="seconds the whole target may take")
    args = parser.parse_args()
    began = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not shared_dir().is_dir():
        print(f"vfio-user-e2e: {shared_dir()}: missing; the target needs ../shared/third_party/libvfio-user",
              file=sys.stderr)
        return 2
    for rev in REVISIONS:
        build(rev, out)
    built = time.monotonic() - began
    print(f"vfio-user-e2e: built libvfio-user {', '.join(REVISIONS)} with fsmcheck's test device and the patched "
          f"samples/server in {built:.1f} s")
    errata = {name: load_errata(name) for name, _, _ in RUNS}
    left = args.bound - built - 15  # what is left for the runs, with time to judge them
    with ThreadPoolExecutor(len(RUNS)) as pool:
        runs = list(pool.map(lambda r: run_pack(r[0], out / r[1] / "bin" / r[2], out, args.seed, left), RUNS))
    table: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    tags: dict[str, str] = {}  # erratum id -> E1, E2, ... (the legend under the table)
    for run in runs:
        outcomes, found = judge(run, errata[run["name"]])
        problems += found
        data = errata[run["name"]]
        for o in outcomes:
            verdict = o.verdict
            if verdict == "failed" and all(f.message.startswith("ExceptionGroup") and
                                           not unexplained_in_group(f.text, data) for f in o.failures):
                verdict = "explained*"  # a hypothesis group of errata and listed crashes
            if verdict == "erratum":
                ids = sorted({m.group(1) for f in o.failures if (m := re.match(r"erratum (\S+):", f.message))})
                verdict += " " + ",".join(tags.setdefault(i, f"E{len(tags) + 1}") for i in ids)
            table.setdefault(o.rule.id, {})[run["name"]] = verdict
    names = [r["name"] for r in runs]
    width = max([len(r) for r in table] + [4])
    print(f"\n{'rule':{width}}  " + "  ".join(f"{n:16}" for n in names))
    for rule in sorted(table):
        print(f"{rule:{width}}  " + "  ".join(f"{table[rule].get(n, '-'):16}" for n in names))
    print("(a rule's verdict comes from every test that can kill it: a W-method sequence that resets cites several;"
          "\n explained*: failed only in the state machine's group of failures, each an erratum or a listed crash)")
    for erratum_id, tag in tags.items():
        print(f"{tag} = {erratum_id}")
    print("\nviolations by the pack rule they cite (tests), and crashes:")
    cited = {name: violations(run, errata[name]) for name, run in zip(names, runs)}
    rows = sorted({rule for found in cited.values() for rule in found})
    for rule in rows:
        print(f"{rule:{width}}  " + "  ".join(f"{cited[n].get(rule, '-'):16}" for n in names))
    print()
    for run in runs:
        junit = run["results"] / "junit.xml"
        cases = junit_cases(junit) if junit.is_file() else []
        ran = [c for c in cases if c.outcome != "skipped"]
        counts = {k: sum(1 for c in cases if c.outcome == k) for k in ("passed", "xfailed", "failed", "error", "skipped")}
        print(f"{run['name']}: {run['servers']} servers started, {len(ran)} tests run "
              f"({', '.join(f'{v} {k}' for k, v in counts.items() if v)}), {run['seconds']:.1f} s, "
              f"results in {run['results']}")
        data = errata[run["name"]]
        hits = re.findall(r"^erratum (\S+): (.*)$", run["log"], re.M)
        for erratum_id, said in hits:
            print(f"  erratum {erratum_id}: {said}")
        for crash_id, n in crash_hits(run, data).items():
            print(f"  crash {crash_id}: " + (f"hit by {n} test(s)" if n else "not hit in this run"))
    total = time.monotonic() - began
    if total > args.bound:
        problems.append(f"the target took {total:.1f} s, over its bound of {args.bound:g} s")
    print(f"vfio-user-e2e: {total:.1f} s in all (bound {args.bound:g} s)")
    if problems:
        print("\nvfio-user-e2e: FAILED: results no errata file explains:", file=sys.stderr)
        for p in problems[:40]:
            print(f"  {p}", file=sys.stderr)
        if len(problems) > 40:
            print(f"  ... and {len(problems) - 40} more", file=sys.stderr)
        return 1
    print("vfio-user-e2e: every result is explained (errata: vfio-user/errata/*.toml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
