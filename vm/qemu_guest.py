"""Runs inside the VM of ``make vm-qemu`` (standard library only): real QEMU 10
migrations of a q35 guest (SeaBIOS, no OS) with two mtty mdevs, driven
over QMP, with QEMU's trace-event log and the QMP event log of each side.

Usage (the init script's)::

    python3 qemu_guest.py OUT UUID1 UUID2 UUID3 UUID4 [SCENARIO...]

Scenarios (all by default), each in ``OUT/SCENARIO/``:

``file``
    source on mdevs 1, 2 -> QMP ``migrate`` to ``file:``; the source quits;
    destination on the same mdevs with ``-incoming file:``.
``unix``
    live: destination on mdevs 3, 4 listening on ``-incoming unix:``; source
    on mdevs 1, 2 -> QMP ``migrate`` to it.
``defaults``
    source with QEMU's default device options (only ``migration-events=on``):
    Debian's 6.12 has ``CONFIG_IOMMUFD_DRIVER`` unset, so mtty's device
    dirty-page tracking fails with EOPNOTSUPP, ``ram_save_setup`` fails and
    the source must go back to running: a real failure trace.

The options of the other scenarios, ``x-device-dirty-page-tracking=off``
(the type1 container's dirty tracking instead of the device's) and then
``enable-migration=on`` (required once device tracking is off), are what makes
the migration work on that kernel.

Each scenario directory gets ``source.trace``/``destination.trace`` (``-D``,
``-msg timestamp=on``), ``source.qmp.jsonl``/``destination.qmp.jsonl`` (every
QMP event, one JSON object a line), ``source.log``/``destination.log``
(QEMU's stderr) and ``result.json``: the command lines, the final
``query-migrate`` and ``query-status`` of each side, ``expected`` ("arrive" or
"fail"), ``arrived`` and ``ok``. Exit status: 0 when every scenario did what
it was expected to, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

QEMU = "/usr/bin/qemu-system-x86_64"
# The trace events of ../shared/qemu-traces (the VFIO migration state machine,
# its data events and the migration's own state).
TRACE_EVENTS = ["vfio_migration*", "vfio_vmstate*", "vfio_save*", "vfio_load*", "vfio_state_pending*",
                "vfio_device_dirty_tracking*", "vfio_get_dirty_bitmap", "migrate_set_state"]
TUNED = "enable-migration=on,x-device-dirty-page-tracking=off,migration-events=on"
DEFAULTS = "migration-events=on"
RUN_SECONDS = 3.0    # the guest runs (SeaBIOS) this long before `migrate`
TIMEOUT = 120.0      # per wait (QMP connection, migration, arrival)
FINISHED = ("completed", "failed", "cancelled")


def command(uuids: list[str], options: str, trace: str, qmp: str, incoming: str | None = None) -> list[str]:
    """The QEMU command line of one side: q35, 64 MiB, TCG, one vfio-pci
    device per mdev UUID with ``options``, QMP on the unix socket ``qmp``,
    trace events to ``trace``, and ``-incoming`` when given."""
    cmd = [QEMU, "-machine", "q35", "-m", "64", "-nodefaults", "-nographic", "-net", "none", "-accel", "tcg",
           "-msg", "timestamp=on"]
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
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
            time.sleep(0.2)

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


def migrated(reply: dict) -> bool:
    return reply.get("status") in FINISHED


def running(reply: dict) -> bool:
    return reply.get("status") == "running"


def scenario(out: str, name: str, uuids: list[str]) -> dict:
    """Run one scenario into ``out``; its result (also written to result.json)."""
    os.makedirs(out, exist_ok=True)
    state = f"/tmp/{name}.state"
    result: dict = {"scenario": name, "expected": "fail" if name == "defaults" else "arrive"}
    sides: list[Side] = []
    destination = None
    started = time.monotonic()
    try:
        if name == "unix":
            uri = f"unix:/tmp/{name}-migration.sock"
            destination = Side(out, "destination", uuids[2:4], TUNED, incoming=uri)
            sides.append(destination)
        source = Side(out, "source", uuids[:2], DEFAULTS if name == "defaults" else TUNED)
        sides.append(source)
        result["source"] = {"command": source.cmd, "status_before": source.execute("query-status")}
        time.sleep(RUN_SECONDS)
        uri = f"unix:/tmp/{name}-migration.sock" if name == "unix" else f"file:{state}"
        result["source"]["migrate"] = source.execute("migrate", uri=uri)
        result["source"]["query-migrate"] = source.wait("query-migrate", migrated, "end of migration")
        result["source"]["query-status"] = source.execute("query-status")
        if name == "file":
            result["source"]["exit"] = source.close()
            sides.remove(source)
            if result["source"]["query-migrate"].get("status") == "completed":
                destination = Side(out, "destination", uuids[:2], TUNED, incoming=f"file:{state}")
                sides.append(destination)
        if destination is not None:
            result["destination"] = {"command": destination.cmd}
            result["destination"]["query-status"] = destination.wait("query-status", running, "running guest")
            result["destination"]["query-migrate"] = destination.execute("query-migrate")
            time.sleep(1.0)  # the guest runs on the destination
    except (OSError, EOFError, RuntimeError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for side in sides:
            result.setdefault(side.name, {})["exit"] = side.close()
        if os.path.exists(state):
            os.remove(state)
    source_status = result.get("source", {}).get("query-migrate", {}).get("status")
    result["arrived"] = (source_status == "completed"
                         and result.get("destination", {}).get("query-status", {}).get("status") == "running")
    if result["expected"] == "arrive":
        result["ok"] = result["arrived"] and "error" not in result
    else:  # the failure run: migration failed and the source runs on
        result["ok"] = (source_status == "failed" and "error" not in result
                        and result["source"].get("query-status", {}).get("status") == "running")
    result["seconds"] = round(time.monotonic() - started, 3)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    log(f"{name}: expected {result['expected']}, arrived {result['arrived']}, "
        f"source {source_status}, ok {result['ok']}, {result['seconds']:.1f} s"
        + (f", {result['error']}" if "error" in result else ""))
    return result


def main(argv: list[str]) -> int:
    out, uuids, names = argv[0], argv[1:5], argv[5:] or ["file", "unix", "defaults"]
    results = [scenario(os.path.join(out, name), name, uuids) for name in names]
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
