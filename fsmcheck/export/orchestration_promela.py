"""Promela export of an orchestration model (one run, N devices, budget F), and SPIN's verdict.

:func:`orchestration_promela` writes the concrete product of
:class:`fsmcheck.orchestration.semantics.System` as a SPIN model: globals
``st[N]`` (each device's ``device_state``), ``called[N]``, ``fd[N]`` (QEMU
holds a data_fd), ``pc`` (the phase), ``err`` (an error was reported) and
``f`` (failures used); one process ``vmm`` whose loop offers, as atomic
steps, each pending device's callback (one option per device: vm_state_notify's
order is left free) and, once every device was called, the move to the next
phase. Each callback's outcomes are those of
:func:`~fsmcheck.orchestration.semantics.callback_outcomes` (derived from the
device model), guarded by the failure budget, so the states SPIN stores
between atomic steps are the states of fsmcheck's product. The properties
(one per compile, ``-DCHECK_P2P``, ``-DCHECK_VM``, ``-DCHECK_PROGRESS``):
P2P safety and stopped-vm as a monitor process asserting the invariant in
every state; progress as an assertion at the end of the run plus pan's
invalid-end-state check.

:func:`pan_check` compiles and runs it (``spin -a``, ``cc``, ``./pan``) and
reads back the verdict, the states stored and the search and compile times.
It needs ``spin`` and a C compiler (Debian: ``apt-get install spin gcc``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..orchestration.semantics import System

__all__ = ["orchestration_promela", "pan_check", "PROPERTY_MACROS"]

#: Property name -> the -D macro that compiles its check in.
PROPERTY_MACROS = {"p2p-safety": "CHECK_P2P", "stopped-vm": "CHECK_VM", "progress": "CHECK_PROGRESS"}


def _any(n: int, pred: str) -> str:
    return "(" + " || ".join(pred.format(i=i) for i in range(n)) + ")"


def orchestration_promela(system: System) -> str:
    """The Promela model of ``system`` (see the module docstring); deterministic text."""
    sysm, dev = system, system.device
    n, F = sysm.n, sysm.budget
    names = list(dev.state_names)
    sid = {s: k for k, s in enumerate(names)}
    classes = list(dict.fromkeys(sysm.flags))
    cid = {c: k for k, c in enumerate(classes)}
    initiating = set(dev.groups[dev.p2p.initiating])
    accepting = set(dev.groups[dev.p2p.accepting])
    sessions = sysm.session_states()

    def in_set(var: str, states) -> str:
        states = sorted(states, key=lambda x: names.index(x) if isinstance(x, str) else x)
        return "(" + (" || ".join(f"{var} == {s}" for s in states) or "false") + ")"

    out = [f"/* fsmcheck export: orchestration {sysm.orch.name}, run {sysm.run.name}, N = {n}, F = {F} */",
           f"#define N {n}", f"#define F {F}"]
    out += [f"#define {s} {k}" for s, k in sid.items()]
    out += [f"#define END_OK {sysm.end_ok}", f"#define END_ABORT {sysm.end_abort}",
            f"byte st[N]; bool called[N]; bool fd[N]; byte pc; bool err; byte f;",
            f"hidden byte cls[N];  /* flag-set class per device: constant */",
            "hidden byte i;  /* the device being called (not part of the state) */"]
    for c, k in cid.items():
        out.append(f"/* class {k}: {','.join(x for x in dev.flag_order if x in c)} */")
    out.append(f"#define INIT(s) {in_set('s', initiating)}")
    out.append(f"#define BLOCKS(s) (!{in_set('s', accepting)})")
    # properties
    checked = [pc for pc in range(sysm.end_abort + 1) if sysm.p2p_checked(pc)]
    count = lambda pred: " + ".join(f"({pred.format(i=i)} -> 1 : 0)" for i in range(n))  # noqa: E731
    out.append(f"#define NI ({count('INIT(st[{i}])')})")
    out.append(f"#define NB ({count('BLOCKS(st[{i}])')})")
    out.append(f"#define NIB ({count('(INIT(st[{i}]) && BLOCKS(st[{i}]))')})")
    out.append(f"#define P2P_BAD ({in_set('pc', checked) if checked else 'false'} && NI >= 1 && NB >= 1 "
               f"&& !(NI == 1 && NB == 1 && NIB == 1))")
    stopped = [pc for pc in range(sysm.end_abort + 1) if sysm.vm_stopped(pc)]
    out.append(f"#define VM_BAD ({in_set('pc', stopped) if stopped else 'false'} && NI >= 1)")
    ends = []
    for end in (sysm.end_ok, sysm.end_abort):
        allowed = sysm.allowed_end(end)
        if allowed is None:
            ends.append(f"pc == {end}")
            continue
        each = " && ".join(f"({in_set(f'st[{i}]', allowed)} && !fd[{i}] && !{in_set(f'st[{i}]', sessions)})"
                           for i in range(n))
        ends.append(f"(pc == {end} && {each})")
    out.append(f"#define PROGRESS_OK ({' || '.join(ends)})")
    # no rule applies (the device is not called) in phase pc, per class
    for pc in range(sysm.end_ok):
        for c, k in cid.items():
            skip = [s for s in dev.supported(c) if sysm.rule(pc, c, s) is None]
            out.append(f"#define SKIP_{pc}_{k}(s) {in_set('s', skip)}")
    for pc in range(sysm.end_ok, sysm.end_abort + 1):
        for k in cid.values():
            out.append(f"#define SKIP_{pc}_{k}(s) true")
    # entering a phase: called = no rule applies; closing phases drop the data_fd
    for dest in range(sysm.end_abort + 1):
        for close in (False, True):
            body = []
            for i in range(n):
                conds = " || ".join(f"(cls[{i}] == {k} && SKIP_{dest}_{k}(st[{i}]))" for k in cid.values())
                body.append(f"  called[{i}] = ({conds});")
                if close:
                    body.append(f"  fd[{i}] = false;")
            out.append(f"inline enter_{dest}_{int(close)}() {{\n" + "\n".join(body) + "\n}")
    # one device's callback
    out.append("inline call() {\n  if")
    for pc in range(sysm.end_ok):
        phase = sysm.phases[pc]
        abort_now = phase.on_error == "abort-now" and not sysm.in_abort[pc]
        for c, k in cid.items():
            for s in dev.supported(c):
                for fdv in (False, True):
                    outs = sysm.outcomes(pc, c, s, fdv, F)
                    if not outs:
                        continue
                    out.append(f"  :: pc == {pc} && cls[i] == {k} && st[i] == {s} && fd[i] == {int(fdv)} ->")
                    out.append("     if")
                    for o in outs:
                        acts = [f"st[i] = {o.state}", "called[i] = true"]
                        if o.opens_fd:
                            acts.append("fd[i] = true")
                        if o.error:
                            acts.append("err = true")
                        if o.failures:
                            acts.append(f"f = f + {o.failures}")
                        if o.error and abort_now:
                            dest = sysm.abort_start[pc]
                            acts += [f"pc = {dest}", f"enter_{dest}_{int(phase.closes_data_fd)}()"]
                        guard = f"f + {o.failures} <= F" if o.failures else "true"
                        out.append(f"     :: {guard} -> {'; '.join(acts)}  /* {o.story} */")
                    out.append("     fi")
    out.append("  fi\n}")
    # the phase move
    out.append("inline move() {\n  if")
    for pc in range(sysm.end_ok):
        close = int(sysm.phases[pc].closes_data_fd)
        ok, er = sysm.next_ok[pc], sysm.next_err[pc]
        out.append(f"  :: pc == {pc} && !err -> pc = {ok}; enter_{ok}_{close}()")
        out.append(f"  :: pc == {pc} && err -> pc = {er}; enter_{er}_{close}()")
    out.append("  fi\n}")
    init = sysm.initial()
    setup = [f"  cls[{i}] = {cid[fl]}; st[{i}] = {init.devices[i].state};" for i, fl in enumerate(sysm.flags)]
    allcalled = " && ".join(f"called[{i}]" for i in range(n))
    options = [f"  :: atomic {{ pc < END_OK && !called[{i}] -> i = {i}; call() }}" for i in range(n)]
    out.append("active proctype vmm() {\n  atomic {\n" + "\n".join(setup) + "\n  pc = 0; enter_0_0() }\n  do\n"
               + "\n".join(options)
               + f"\n  :: atomic {{ pc < END_OK && {allcalled} -> move() }}\n  :: pc >= END_OK -> break\n  od;\n"
               + "#ifdef CHECK_PROGRESS\n  assert(PROGRESS_OK)\n#endif\n}")
    out.append("#ifdef CHECK_P2P\nactive proctype monitor() { atomic { P2P_BAD -> assert(false) } }\n#endif")
    out.append("#ifdef CHECK_VM\nactive proctype monitor() { atomic { VM_BAD -> assert(false) } }\n#endif")
    return "\n".join(out) + "\n"


def _run(cmd, cwd: Path, timeout: float) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 and "errors:" not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stdout[-400:]}{proc.stderr[-400:]}")
    return proc.stdout, time.perf_counter() - start


def pan_check(system: System, prop: str, *, timeout: float = 600.0, reduce: bool = True) -> dict:
    """Decide ``prop`` of ``system`` with SPIN's ``pan`` (exhaustive, partial-order reduction on).

    Returns:
        ``{"status": "holds"|"fails", "states": states stored, "search_s":
        pan's own run time (s), "compile_s": spin -a plus cc (s), "mb": pan's
        reported total memory (MB)}``.

    Raises:
        RuntimeError: ``spin``/``cc`` missing, or a tool failed.
        subprocess.TimeoutExpired: a step took longer than ``timeout`` s.
    """
    for tool in ("spin", "cc"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool!r} is not installed (Debian: apt-get install spin gcc)")
    macro = PROPERTY_MACROS[prop]
    with tempfile.TemporaryDirectory(prefix="fsmcheck-pan-") as tmp:
        work = Path(tmp)
        (work / "orch.pml").write_text(orchestration_promela(system))
        _, t1 = _run(["spin", f"-D{macro}", "-a", "orch.pml"], work, timeout)
        flags = ["-O2", "-DSAFETY", "-DNOCLAIM"] + ([] if reduce else ["-DNOREDUCE"])
        _, t2 = _run(["cc", *flags, "-o", "pan", "pan.c"], work, timeout)
        text, search = _run(["./pan", "-m100000"] + ([] if prop == "progress" else ["-E"]), work, timeout)
    errors = int(re.search(r"errors:\s*(\d+)", text).group(1))
    stored = int(re.search(r"(\d+) states, stored", text).group(1))
    mem = re.search(r"([\d.]+)\s+total actual memory usage", text)
    return {"status": "fails" if errors else "holds", "states": stored, "search_s": search,
            "compile_s": t1 + t2, "mb": float(mem.group(1)) if mem else float("nan")}
