"""Fuzz campaigns for orchestration models (``models/qemu_orchestration*.toml``).

Two campaigns, seeded and bounded (``python -m fuzz.orchestration``):

* ``loader``: mutated orchestration files (the device-model mutations of
  :mod:`fuzz.mutations`, plus orchestration-specific ones: a rule key's
  value replaced by a number, table, array, nested array or odd string; a
  phase or run name changed) through :func:`fsmcheck.orchestration.load`
  (the read-once dispatch by kind). Pass: the file
  loads or the loader raises :class:`~fsmcheck.model.ModelError`; any other
  exception is a finding.
* ``engines``: every single-value edit of the shipped model that still
  loads (each state, group, flag, on_error and recover value of each rule
  and run replaced by each alternative) -- decided by both engines at N = 2,
  F = 0 and 1. A finding: an exception, a disagreement, or an engine that
  answers ``unknown`` (or takes longer than ``--slow`` seconds) where the other decides.

Findings go to ``--out`` (one TOML file each, with the reason as a comment
on its first line); the process exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The orchestration files mutations start from (every shipped one and its repair variants).
SOURCES = sorted([ROOT / "models" / "qemu_orchestration.toml",
                  *(ROOT / "models" / "variants").glob("qemu_orchestration_*.toml")])

_RULE_VALUE = re.compile(r'\b(in|needs|runstate|recover|request|on_error|target|abort_target|phases|abort'
                         r'|p2p_from|name|callback|closes_data_fd|default_flags|properties|device_model)'
                         r'(\s*=\s*)("(?:[^"\\\n]|\\.)*"|\[[^\]\n]*\]|true|false|-?\d+)')
_ODD = ["5", "-1", "true", "{}", "{ a = 1 }", "[1, 2]", "[[\"STOP\"]]", '["nope"]', '"nope"', "[]",
        '""', '"' + "x" * 3000 + '"', "99999999999999999999999", "1.5", "[{ a = 1 }]",
        "[" * 300 + "1" + "]" * 300, "{ a = " * 300 + "1" + " }" * 300]


def mutate(text: str, rnd: random.Random) -> str:
    """1-4 mutations of ``text``: orchestration-specific value edits or the
    generic line and character edits of :mod:`fuzz.mutations`."""
    from hypothesis import strategies as st  # noqa: F401  (the generic mutations are hypothesis-driven)

    for _ in range(rnd.randint(1, 4)):
        op = rnd.randint(0, 5)
        lines = text.split("\n")
        if op <= 2:
            spots = [(k, m) for k, line in enumerate(lines) for m in _RULE_VALUE.finditer(line)]
            if spots:
                k, m = rnd.choice(spots)
                lines[k] = lines[k][:m.start(3)] + rnd.choice(_ODD) + lines[k][m.end(3):]
        elif op == 3 and lines:
            i = rnd.randrange(len(lines))
            op2 = rnd.randint(0, 2)
            if op2 == 0:
                del lines[i]
            elif op2 == 1:
                lines.insert(i, lines[i])
            else:
                j = rnd.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
        elif op == 4:
            pos = rnd.randrange(len(text) + 1)
            return text[:pos] + rnd.choice(list("[]{}=\"',#\n") + ["\u2028", "\x00"]) + text[pos:]
        else:
            lines.insert(rnd.randrange(len(lines) + 1), rnd.choice([
                "[[phases]]", "[[runs]]", 'rules = [{ request = "STOP", in = 5 }]',
                'rules = [{ request = "STOP", recover = ["STOP"] }]', 'rules = [{ request = "STOP", needs = "P2P" }]',
                'rules = [{ request = "STOP", runstate = { a = 1 } }]', 'abort_from = { "nope" = 3 }',
                "[groups]\nx = 5", 'device_model = "../models/vfio_v1.toml"']))
        text = "\n".join(lines)
    return text


def _device_models(folder: Path) -> None:
    """The shipped device models beside the mutated file, as in models/."""
    for name in ("vfio_v1.toml", "vfio_v2.toml"):
        (folder / name).write_text((ROOT / "models" / name).read_text("utf-8"), "utf-8")


def _write(out: Path, kind: str, n: int, text: str, reason: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"orchestration-{kind}-{n}.toml"
    path.write_text("# " + reason.replace("\n", " | ")[:2000] + "\n" + text, encoding="utf-8")
    return path


def loader_campaign(seed: int, inputs: int, seconds: float, out: Path) -> dict:
    """Mutated orchestration files through the loader; returns the figures."""
    from fsmcheck.model import ModelError
    from fsmcheck.orchestration import load

    rnd = random.Random(seed)
    texts = {p: p.read_text(encoding="utf-8") for p in SOURCES}
    figures = {"inputs": 0, "loaded": 0, "ModelError": 0, "findings": 0}
    ends = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix="fsmcheck-fuzz-orch-") as tmp:
        # the device model sits beside the file, as in models/
        _device_models(Path(tmp))
        path = Path(tmp) / "m.toml"
        for n in range(inputs):
            if time.monotonic() > ends:
                break
            source = rnd.choice(SOURCES)
            text = mutate(texts[source], rnd)
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            figures["inputs"] += 1
            try:
                load(path)
                figures["loaded"] += 1
            except ModelError as exc:
                figures["ModelError"] += 1
                if any(d.line < 1 for d in exc.diagnostics):
                    figures["findings"] += 1
                    _write(out, "loader", n, text, f"diagnostic without a line: {exc}")
            except BaseException as exc:  # noqa: BLE001 -- every other exception is the finding
                if isinstance(exc, KeyboardInterrupt):
                    raise
                figures["findings"] += 1
                _write(out, "loader", n, text, "".join(traceback.format_exception_only(type(exc), exc)))
    return figures


def single_edits(text: str) -> list[tuple[str, str]]:
    """``(description, text)`` for every single-value edit of a rule's or
    run's state/flag/on_error/recover value (in file order; deterministic)."""
    from fsmcheck.model import load_model

    device = load_model(ROOT / "models" / "vfio_v2.toml")
    words = list(device.state_names) + ["precopy", "current"]
    flags = list(device.flag_order)
    out = []
    pattern = re.compile(r'"([A-Z_]+|precopy|current|abort|abort-now|continue)"')
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if line.lstrip().startswith("#") or "source" in line.split("=")[0] or "event" in line.split("=")[0]:
            continue
        for m in pattern.finditer(line):
            old = m.group(1)
            if old in ("abort", "abort-now", "continue"):
                choices = [c for c in ("abort", "abort-now", "continue") if c != old]
            elif old in flags:
                choices = [f for f in flags if f != old]
            else:
                choices = [w for w in words if w != old]
            for new in choices:
                edited = lines[:k] + [line[:m.start(1)] + new + line[m.end(1):]] + lines[k + 1:]
                out.append((f"line {k + 1}: {old} -> {new}", "\n".join(edited)))
    return out


def engines_campaign(seed: int, inputs: int, seconds: float, out: Path, *, slow: float = 10.0,
                     timeout_ms: int = 30000) -> dict:
    """Single-value edits of the shipped model through both engines (N = 2, F = 0 and 1)."""
    from fsmcheck.model import ModelError
    from fsmcheck.orchestration import load_orchestration
    from fsmcheck.orchestration.explicit import explore
    from fsmcheck.orchestration.semantics import System
    from fsmcheck.orchestration.symbolic import prove

    rnd = random.Random(seed)
    edits = single_edits((ROOT / "models" / "qemu_orchestration.toml").read_text("utf-8"))
    rnd.shuffle(edits)
    figures = {"edits": len(edits), "inputs": 0, "loaded": 0, "instances": 0, "findings": 0}
    ends = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix="fsmcheck-fuzz-orch-") as tmp:
        _device_models(Path(tmp))
        path = Path(tmp) / "m.toml"
        for n, (what, text) in enumerate(edits[:inputs]):
            if time.monotonic() > ends:
                break
            figures["inputs"] += 1
            path.write_text(text, encoding="utf-8")
            try:
                orch = load_orchestration(path)
            except ModelError:
                continue
            figures["loaded"] += 1
            for run in orch.runs:
                for failures in (0, 1):
                    system = System(orch, run, (orch.default_flags,) * 2, failures)
                    try:
                        t0 = time.perf_counter()
                        e = explore(system, time_limit=slow * 3)
                        t1 = time.perf_counter()
                        for prop in orch.properties:
                            figures["instances"] += 1
                            t2 = time.perf_counter()
                            p = prove(system, prop, timeout_ms=timeout_ms)
                            z3_s = time.perf_counter() - t2
                            bad = {"p2p-safety": e.p2p_bad, "stopped-vm": e.vm_bad,
                                   "progress": (e.progress_bad or (None,))[0]}[prop]
                            nx = "fails" if bad is not None else ("holds" if e.complete else "unknown")
                            nx_len = e.length(bad) if bad is not None else None
                            z3_len = p.k if p.status == "fails" else None
                            problem = ""
                            if nx != p.status or nx_len != z3_len:
                                problem = f"networkx {nx} ({nx_len}) vs z3 {p.status} ({z3_len}): {p.note}"
                            elif max(t1 - t0, z3_s) > slow:
                                problem = f"slow: networkx {t1 - t0:.1f} s, z3 {z3_s:.1f} s ({p.note})"
                            if problem:
                                figures["findings"] += 1
                                _write(out, "engines", n, text,
                                       f"{what}; {run.name} F={failures} {prop}: {problem}")
                    except Exception as exc:  # noqa: BLE001
                        figures["findings"] += 1
                        _write(out, "engines", n, text, f"{what}; {run.name} F={failures}: "
                               + "".join(traceback.format_exception_only(type(exc), exc)))
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.orchestration", description=__doc__.splitlines()[0])
    parser.add_argument("campaign", choices=["loader", "engines", "all"])
    parser.add_argument("--seed", type=int, default=None, help="Seed (default: random, printed).")
    parser.add_argument("--inputs", type=int, default=12_000, help="Mutated files (loader) / edits (engines).")
    parser.add_argument("--seconds", type=float, default=3600, help="Time budget per campaign.")
    parser.add_argument("--slow", type=float, default=10.0, help="Engines: an instance slower than this is a finding.")
    parser.add_argument("--out", default="fuzz-failures", help="Folder for failing inputs.")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzz.orchestration: seed {seed} (replay with --seed {seed})", flush=True)
    findings = 0
    if args.campaign in ("loader", "all"):
        f = loader_campaign(seed, args.inputs, args.seconds, Path(args.out))
        print(f"orchestration loader: {f['inputs']} inputs, {f['loaded']} loaded, {f['ModelError']} ModelError, "
              f"{f['findings']} findings", flush=True)
        findings += f["findings"]
    if args.campaign in ("engines", "all"):
        f = engines_campaign(seed, args.inputs, args.seconds, Path(args.out), slow=args.slow)
        print(f"orchestration engines: {f['inputs']} of {f['edits']} single edits, {f['loaded']} loaded, "
              f"{f['instances']} instances, {f['findings']} findings", flush=True)
        findings += f["findings"]
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
