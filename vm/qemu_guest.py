"""Runs inside the VM of ``make vm-qemu`` (standard library only): real QEMU 10
migrations of a q35 guest with mtty mdevs, driven over QMP, with QEMU's
trace-event log and the QMP event log of each side.

Usage (the init script's)::

    python3 qemu_guest.py OUT [SCENARIO...]

The mdevs are :data:`MDEVS` (created by the init script: ``ONE`` of mtty's
one-port type, ``TWO`` of its two-port type). The guest (every scenario, both
sides) is a 512-byte boot sector (:func:`boot_sector`) that rewrites 512 KiB of
its memory in a loop, so pre-copy always has dirty pages to send.

Every scenario is a :class:`Scenario` in :data:`SCENARIOS`, which states what
it does, what must come of it (``expect``: the final ``query-migrate`` status
of the source, the run state of each side, or ``exited`` for a destination
QEMU that quits after a failed load) and which check-trace findings each of
its logs must get (``findings``: file -> rule ids; every other log must get
none). The host (vm/qemu.py) imports this module for that table.

Each scenario directory ``OUT/NAME/`` gets ``source.trace``/``destination.trace``
(``-D``, ``-msg timestamp=on``), ``source.qmp.jsonl``/``destination.qmp.jsonl``
(every QMP event, one JSON object a line), ``source.log``/``destination.log``
(QEMU's stderr) and ``result.json``: the command lines, the final
``query-migrate`` and ``query-status`` of each side, ``expected``, ``got``
and ``ok``. Exit status: 0 when every scenario did what it must, 1 otherwise.

Facts used (QEMU 10.0): ``migrate_cancel`` during pre-copy ends in
``cancelled`` and the source runs on (migration/migration.c); a source
stopped with ``stop`` stays paused after ``migrate`` and its destination
ends ``paused`` (the global state carries the run state); a destination whose
load fails exits (``exit-on-error`` defaults to true); with ``return-path``
the source learns of it and fails, without it the source ``completed``.
mtty (samples/vfio-mdev/mtty.c) refuses a stream whose port count differs
from its own (-EFAULT on the data_fd write): the wrong-type destination.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

QEMU = "/usr/bin/qemu-system-x86_64"
ONE, TWO = 8, 2
#: mtty mdevs the init script creates: ONE of type mtty-1, then TWO of type mtty-2.
MDEVS = [f"83b8f4f2-509f-382f-3c1e-e6bfe0fa{1001 + i}" for i in range(ONE + TWO)]
#: The trace events enabled on both sides: the VFIO migration state machine,
#: its data events (incl. QEMU 10's multifd device-state threads, named
#: vfio_load_*/vfio_save_*), the migration's state and the VM's run state.
TRACE_EVENTS = ["vfio_migration*", "vfio_vmstate*", "vfio_save*", "vfio_load*", "vfio_state_pending*",
                "vfio_device_dirty_tracking*", "vfio_get_dirty_bitmap", "migrate_set_state", "vm_state_notify"]
TUNED = "enable-migration=on,x-device-dirty-page-tracking=off,migration-events=on"
DEFAULTS = "migration-events=on"
RUN_SECONDS = 1.5    # the guest runs this long before `migrate`
TIMEOUT = 60.0       # per wait (QMP connection, migration, arrival)
FINISHED = ("completed", "failed", "cancelled")
SLOW = {"max-bandwidth": 256 << 10, "downtime-limit": 1}  # pre-copy cannot converge: it lasts until cancelled
FAULT = "/sys/module/mtty/parameters/"
# vfio.h enum vfio_device_mig_state: PRE_COPY = 6, PRE_COPY_P2P = 7.
FAULT_ARC = (6, 7)
BOOT = "/tmp/dirty.img"


@dataclass(frozen=True)
class Scenario:
    """One migration run.

    Attributes:
        name: the directory name.
        what: one sentence for the report.
        source, destination: indices into :data:`MDEVS` of each side's devices
            (``destination`` empty: ``file:`` reuses the source's).
        transport: ``unix`` (live, both sides at once) or ``file``.
        options: the vfio-pci options of the source's devices.
        capabilities: migration capabilities set on both sides.
        parameters: migration parameters set on the source.
        pause: ``stop`` the source before ``migrate``.
        cancel: ``migrate_cancel`` once pre-copy runs (``cancel_at = "pre-copy"``),
            or once the migration waits in ``pre-switchover`` (with the
            ``pause-before-switchover`` capability: deterministic, where a
            paused VM's pre-copy may converge before a timed cancel arrives).
        fault: mdev index whose PRE_COPY -> PRE_COPY_P2P arc fails with -EIO.
        expect: final outcome, key -> value: ``migrate`` (source query-migrate
            status), ``source`` / ``destination`` (query-status, or ``exited``).
        findings: trace file -> the check-trace rule ids it must get.
    """

    name: str
    what: str
    source: tuple[int, ...]
    destination: tuple[int, ...] = ()
    transport: str = "unix"
    options: str = TUNED
    capabilities: tuple[str, ...] = ()
    parameters: dict = field(default_factory=dict)
    pause: bool = False
    cancel: bool = False
    cancel_at: str = "pre-copy"
    fault: int | None = None
    expect: dict = field(default_factory=dict)
    findings: dict = field(default_factory=dict)


ARRIVE = {"migrate": "completed", "source": "postmigrate", "destination": "running"}
SCENARIOS = [
    Scenario("file", "migrate to file:, the source quits, the destination resumes from the file on the same mdevs",
             (0, 1), transport="file", expect={"migrate": "completed", "destination": "running"}),
    Scenario("unix", "live migration between two QEMUs", (0, 1), (2, 3), expect=ARRIVE),
    Scenario("defaults", "QEMU's default device options: mtty's device dirty tracking fails, the migration "
             "fails in setup and the source runs on", (0, 1), transport="file", options=DEFAULTS,
             expect={"migrate": "failed", "source": "running"}),
    Scenario("four", "live migration with four devices per side", (0, 1, 2, 3), (4, 5, 6, 7), expect=ARRIVE),
    Scenario("multifd", "live migration with multifd (QEMU 10's multifd device-state transfer)", (0, 1), (2, 3),
             capabilities=("multifd",), expect=ARRIVE),
    Scenario("cancel-precopy", "migrate_cancel during pre-copy: the devices go back to RUNNING, the source "
             "runs on", (0, 1), (2, 3), parameters=SLOW, cancel=True,
             expect={"migrate": "cancelled", "source": "running"}),
    Scenario("paused", "the source is paused with stop, then migrated; the destination arrives paused",
             (0, 1), (2, 3), pause=True,
             expect={"migrate": "completed", "source": "postmigrate", "destination": "paused"}),
    Scenario("cancel-paused", "the source is paused with stop, migrated and the migration cancelled (at "
             "pre-switchover: a paused VM's pre-copy converges at once): QEMU's migration notifier moves each "
             "device to RUNNING, one at a time, while the VM stays paused",
             (0, 1), (2, 3), capabilities=("pause-before-switchover",), pause=True, cancel=True,
             cancel_at="pre-switchover",
             expect={"migrate": "cancelled", "source": "paused"},
             findings={"source.trace": {"p2p-quiesce", "vm-stopped"},
                       "source.qmp.jsonl": {"p2p-quiesce", "vm-stopped"}}),
    Scenario("load-failure-return-path", "the destination's mdevs are of the two-port type: mtty refuses the "
             "stream, the destination exits; with return-path the source fails and runs on",
             (0, 1), (ONE, ONE + 1), capabilities=("return-path",),
             expect={"migrate": "failed", "source": "running", "destination": "exited"}),
    Scenario("load-failure", "the same wrong-type destination without return-path: mtty refuses the first "
             "pre-copy data, the destination exits, the source's next write fails: it fails and runs on",
             (0, 1), (ONE, ONE + 1), expect={"migrate": "failed", "source": "running", "destination": "exited"}),
    Scenario("fault-p2p", "fault-injected mtty (vm/mtty-fault-injection.patch): the second device's PRE_COPY -> "
             "PRE_COPY_P2P fails with -EIO, QEMU resets it to RUNNING while its peer goes on to STOP_COPY",
             (0, 1), (2, 3), fault=0, expect={"migrate": "failed", "source": "running"},
             findings={"source.trace": {"p2p-quiesce", "vm-stopped"}, "source.qmp.jsonl": {"p2p-quiesce"}}),
]


def boot_sector() -> bytes:
    """A 512-byte x86 boot sector (real mode) that rewrites 8 x 64 KiB
    (0x10000-0x8FFFF) with a counter, forever::

            cli
            xor  bx, bx
        outer:
            inc  bx
            mov  dx, 0x1000
        seg:
            mov  es, dx
            xor  di, di
            mov  ax, bx
            mov  cx, 0x8000
            rep  stosw
            add  dx, 0x1000
            cmp  dx, 0x9000
            jb   seg
            jmp  outer
    """
    code = bytes([0xFA, 0x31, 0xDB,                       # cli; xor bx,bx
                  0x43, 0xBA, 0x00, 0x10,                 # outer: inc bx; mov dx,0x1000
                  0x8E, 0xC2, 0x31, 0xFF, 0x89, 0xD8,     # seg: mov es,dx; xor di,di; mov ax,bx
                  0xB9, 0x00, 0x80, 0xF3, 0xAB,           # mov cx,0x8000; rep stosw
                  0x81, 0xC2, 0x00, 0x10,                 # add dx,0x1000
                  0x81, 0xFA, 0x00, 0x90,                 # cmp dx,0x9000
                  0x72, 0xEB,                             # jb seg (28 -> 7)
                  0xEB, 0xE5])                            # jmp outer (30 -> 3)
    return code + bytes(510 - len(code)) + b"\x55\xaa"


def command(uuids: list[str], options: str, trace: str, qmp: str, incoming: str | None = None) -> list[str]:
    """The QEMU command line of one side: q35, 64 MiB, TCG, the boot sector as
    its disk, one vfio-pci device per mdev UUID with ``options``, QMP on the
    unix socket ``qmp``, trace events to ``trace``, and ``-incoming`` when given."""
    cmd = [QEMU, "-machine", "q35", "-m", "64", "-nodefaults", "-nographic", "-net", "none", "-accel", "tcg",
           "-msg", "timestamp=on", "-drive", f"file={BOOT},format=raw,if=ide,snapshot=on"]
    for i, uuid in enumerate(uuids):
        cmd += ["-device", f"vfio-pci,id=mtty{i},sysfsdev=/sys/bus/mdev/devices/{uuid},{options}"]
    cmd += ["-qmp", f"unix:{qmp},server=on,wait=off", "-D", trace]
    for event in TRACE_EVENTS:
        cmd += ["-trace", event]
    if incoming:
        cmd += ["-incoming", incoming]
    return cmd


def log(text: str) -> None:
    print(f"fsmcheck-vm: qemu: {text}", flush=True)


class Side:
    """One QEMU process and its QMP connection; every event is appended to
    ``NAME.qmp.jsonl`` as it is read."""

    def __init__(self, out: str, name: str, uuids: list[str], options: str, incoming: str | None = None):
        self.name = name
        self.qmp_path = f"/tmp/{os.path.basename(out)}-{name}.qmp"
        self.cmd = command(uuids, options, os.path.join(out, f"{name}.trace"), self.qmp_path, incoming)
        self.events = open(os.path.join(out, f"{name}.qmp.jsonl"), "w")
        self.stderr = open(os.path.join(out, f"{name}.log"), "w")
        log(f"{name}: {' '.join(self.cmd)}")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr)
        self.sock = None
        self.reader = None
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name}: QEMU exited with {self.proc.returncode} before QMP was up")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(TIMEOUT)
                sock.connect(self.qmp_path)
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no QMP socket {self.qmp_path} after {TIMEOUT:.0f} s")
                time.sleep(0.1)
        self.sock = sock
        self.reader = sock.makefile("rb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise EOFError(f"{self.name}: QMP closed")
        message = json.loads(line)
        if "event" in message:
            self.events.write(json.dumps(message, sort_keys=True) + "\n")
            self.events.flush()
        return message

    def execute(self, name: str, **arguments) -> dict:
        """Send one QMP command; its ``return`` (or ``{"error": ...}``)."""
        request = {"execute": name, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._read()
            if "return" in message:
                return message["return"]
            if "error" in message:
                return {"error": message["error"]}

    def status(self) -> str:
        """``query-status``'s status, or ``exited`` when QEMU has quit."""
        if self.proc.poll() is not None:
            return "exited"
        try:
            return self.execute("query-status").get("status", "?")
        except (OSError, EOFError, ValueError):
            self.proc.wait(timeout=30)
            return "exited"

    def wait(self, query: str, done, what: str) -> dict:
        """Poll ``query`` until ``done(reply)``; the last reply (``{"timeout":
        ...}`` added when it never came)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self.execute(query)
            if done(reply):
                return reply
            if time.monotonic() > deadline:
                return dict(reply, timeout=f"no {what} within {TIMEOUT:.0f} s")
            time.sleep(0.1)

    def wait_status(self, wanted: set[str]) -> str:
        """Poll the run state until it is one of ``wanted`` (or ``exited``, or
        the time-out); the last one seen."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            status = self.status()
            if status in wanted or status == "exited" or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def close(self) -> int | None:
        """QMP ``quit`` (reading the last events), then make sure the process ended."""
        if self.sock is not None and self.proc.poll() is None:
            try:
                self.execute("quit")
                while True:
                    self._read()
            except (OSError, EOFError, ValueError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.reader, self.sock, self.events, self.stderr):
            if f is not None:
                f.close()
        return self.proc.returncode


def set_fault(uuid: str | None) -> None:
    """Arm (``uuid``) or disarm (None) the fault-injected mtty's arc."""
    frm, to = FAULT_ARC if uuid else (-1, -1)
    for name, value in (("fail_from", frm), ("fail_to", to), ("fail_mdev", uuid or "none")):
        with open(FAULT + name, "w") as f:
            f.write(str(value))


MDEV_BUS = "/sys/bus/mdev/devices/"
MDEV_TYPES = "/sys/class/mdev_bus/mtty/mdev_supported_types/"


def fresh_mdevs(indices) -> None:
    """Remove and create again the mdevs of ``indices`` (their type: mtty-1 for
    the first ONE, mtty-2 after): each scenario starts on devices in RUNNING.
    mtty (samples/vfio-mdev/mtty.c, Linux 6.12) does not set its state back
    to RUNNING when the device is closed (mtty_close()), so a destination
    QEMU that exits with its devices in RESUMING leaves them there; the next
    QEMU's RESUMING request is then a no-op in the kernel that returns no
    data_fd, and its first write fails with EBADF."""
    for i in indices:
        uuid = MDEVS[i]
        if os.path.exists(MDEV_BUS + uuid):
            with open(MDEV_BUS + uuid + "/remove", "w") as f:
                f.write("1")
        with open(MDEV_TYPES + ("mtty-1" if i < ONE else "mtty-2") + "/create", "w") as f:
            f.write(uuid)


def _migrating(reply: dict) -> bool:
    return reply.get("status") in FINISHED or (reply.get("status") == "active" and reply.get("ram", {})
                                               .get("transferred", 0) > 0)


def run(s: Scenario, out: str) -> dict:
    """Run one scenario into ``out``; its result (also written to result.json)."""
    os.makedirs(out, exist_ok=True)
    state = f"/tmp/{s.name}.state"
    result: dict = {"scenario": s.name, "what": s.what, "expected": s.expect,
                    "findings": {k: sorted(v) for k, v in s.findings.items()}}
    sides: list[Side] = []
    destination = None
    got: dict = {}
    started = time.monotonic()
    uri = f"unix:/tmp/{s.name}-migration.sock" if s.transport == "unix" else f"file:{state}"
    caps = [{"capability": c, "state": True} for c in s.capabilities]
    try:
        fresh_mdevs(sorted({*s.source, *s.destination}))
        if s.fault is not None:
            set_fault(MDEVS[s.source[s.fault]])
        if s.transport == "unix":
            # With capabilities the destination starts with -incoming defer: they must be set before it
            # listens (multifd opens its channels as it accepts), then migrate-incoming.
            destination = Side(out, "destination", [MDEVS[i] for i in s.destination], TUNED,
                               incoming="defer" if caps else uri)
            sides.append(destination)
            if caps:
                result["destination"] = {"capabilities": destination.execute("migrate-set-capabilities",
                                                                             capabilities=caps),
                                         "migrate-incoming": destination.execute("migrate-incoming", uri=uri)}
        source = Side(out, "source", [MDEVS[i] for i in s.source], s.options)
        sides.append(source)
        result["source"] = {"command": source.cmd, "status_before": source.execute("query-status")}
        if caps:
            result["source"]["capabilities"] = source.execute("migrate-set-capabilities", capabilities=caps)
        if s.parameters:
            result["source"]["parameters"] = source.execute("migrate-set-parameters", **s.parameters)
        time.sleep(RUN_SECONDS)
        if s.pause:
            result["source"]["stop"] = source.execute("stop")
        result["source"]["migrate"] = source.execute("migrate", uri=uri)
        if s.cancel and s.cancel_at == "pre-switchover":
            result["source"]["before-cancel"] = source.wait(
                "query-migrate", lambda r: r.get("status") in ("pre-switchover", *FINISHED), "pre-switchover")
            result["source"]["migrate_cancel"] = source.execute("migrate_cancel")
        elif s.cancel:
            result["source"]["before-cancel"] = source.wait("query-migrate", _migrating, "pre-copy")
            time.sleep(0.5)
            result["source"]["migrate_cancel"] = source.execute("migrate_cancel")
        result["source"]["query-migrate"] = source.wait("query-migrate", lambda r: r.get("status") in FINISHED,
                                                        "end of migration")
        got["migrate"] = result["source"]["query-migrate"].get("status")
        if "source" in s.expect:
            got["source"] = source.wait_status({s.expect["source"]})
        if s.transport == "file":
            result["source"]["exit"] = source.close()
            sides.remove(source)
            if got["migrate"] == "completed":
                destination = Side(out, "destination", [MDEVS[i] for i in s.source], TUNED,
                                   incoming=f"file:{state}")
                sides.append(destination)
        if destination is not None and "destination" in s.expect:
            got["destination"] = destination.wait_status({s.expect["destination"]})
            if got["destination"] != "exited":
                result.setdefault("destination", {})["query-migrate"] = destination.execute("query-migrate")
    except (OSError, EOFError, RuntimeError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for side in sides:
            result.setdefault(side.name, {})["exit"] = side.close()
        if s.fault is not None:
            try:
                set_fault(None)
            except OSError as exc:
                result["error"] = f"disarming the fault: {exc}"
        if os.path.exists(state):
            os.remove(state)
    result["got"] = got
    result["ok"] = got == s.expect and "error" not in result
    result["seconds"] = round(time.monotonic() - started, 3)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    log(f"{s.name}: expected {s.expect}, got {got}, ok {result['ok']}, {result['seconds']:.1f} s"
        + (f", {result['error']}" if "error" in result else ""))
    return result


def main(argv: list[str]) -> int:
    out, names = argv[0], argv[1:]
    os.makedirs("/var/tmp", exist_ok=True)  # snapshot=on keeps its overlay there
    with open(BOOT, "wb") as f:
        f.write(boot_sector())
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    results = [run(s, os.path.join(out, s.name)) for s in chosen]
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
