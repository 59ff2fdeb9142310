"""vfio-user server processes: one per device, started from a command
template, never outliving the run.

A template is a shell-like command line with ``{socket}`` in it
(``'./server -v {socket}'``); :func:`parse_template` splits it (no shell is
run) and checks the program exists. :class:`ServerProcess` starts it with
``{socket}`` replaced by a fresh path in a private directory, in a process
group of its own (``start_new_session``), stdout discarded and stderr kept
in an unlinked temporary file (its tail goes into every error), and waits,
bounded, for the socket to accept a connection. :meth:`ServerProcess.stop`
kills the whole group, reaps the process and removes the socket. Every live
server is also killed at interpreter exit (:mod:`atexit`: a Ctrl-C or the
pack's budget ends pytest normally), and on Linux the kernel kills a server
whose parent dies (``PR_SET_PDEATHSIG``, through util-linux's ``setpriv``
when it is installed), so none outlives the run.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref

__all__ = ["ServerError", "ServerProcess", "TemplateError", "parse_template", "exit_description"]

PLACEHOLDER = "{socket}"


class TemplateError(ValueError):
    """A server command template that cannot be run (a usage error)."""


class ServerError(RuntimeError):
    """A server did not start: it exited, or never created its socket within
    the wait. The message has its exit status and stderr tail."""


def parse_template(template: str) -> list[str]:
    """The argument list of ``template`` (split like a shell would, no shell run).

    Raises:
        TemplateError: it does not parse, has no ``{socket}``, or its program
            is not found (on PATH or as a path) or not executable.
    """
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise TemplateError(f"server template {template!r}: {exc}") from None
    if not argv:
        raise TemplateError("server template is empty")
    if not any(PLACEHOLDER in arg for arg in argv):
        raise TemplateError(f"server template {template!r} has no {PLACEHOLDER} (where the socket path goes)")
    program = argv[0]
    found = shutil.which(program) if os.sep not in program else (program if os.access(program, os.X_OK) else None)
    if not found or not os.path.isfile(found):
        raise TemplateError(f"server template {template!r}: no such program {program!r}"
                            + ("" if os.sep in program else " on PATH"))
    return argv


def exit_description(returncode: int | None) -> str:
    """``-6`` -> ``"SIGABRT"``, ``3`` -> ``"exit status 3"``, None -> ``"still running"``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


_LIVE: "weakref.WeakSet[ServerProcess]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


#: util-linux's setpriv sets PR_SET_PDEATHSIG and execs the server (same
#: process): the kernel kills the server when the process that started it
#: dies, however it dies. (A preexec_fn would do the same but makes Python
#: fork the whole pack process instead of vfork, for every server.)
_SETPRIV = shutil.which("setpriv")


class ServerProcess:
    """One running server and its socket (see the module docstring).

    Args:
        argv: the template's arguments (:func:`parse_template`).
        directory: where the socket is created (must exist; short: UNIX
            socket paths are limited to 107 bytes).
        name: the socket's file name in ``directory``.
        start_timeout: seconds to wait for the socket to accept a connection.

    Raises:
        ServerError: the program could not be run, exited, or its socket did
            not accept within ``start_timeout`` (the server is stopped then).
    """

    def __init__(self, argv: list[str], directory: str, name: str, start_timeout: float = 5.0):
        self.socket_path = os.path.join(directory, name)
        self.argv = [arg.replace(PLACEHOLDER, self.socket_path) for arg in argv]
        self.stderr = tempfile.TemporaryFile(prefix="fsmcheck-vfio-user-stderr-")
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        try:
            launch = ([_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []) + self.argv
            self.proc = subprocess.Popen(launch, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self.stderr, start_new_session=True, close_fds=True)
        except OSError as exc:
            self.stderr.close()
            raise ServerError(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from None
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self.sock = self._connect(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"the server exited at start-up ({exit_description(self.proc.returncode)})"
                                  + self.stderr_tail(prefix="; stderr: "))
            if os.path.exists(self.socket_path):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(self.socket_path)
                    return sock
                except OSError:
                    sock.close()
            if time.monotonic() >= deadline:
                raise ServerError(f"the server did not create its socket {self.socket_path} within {timeout:g} s"
                                  + self.stderr_tail(prefix="; stderr: "))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stderr_tail(self, limit: int = 600, prefix: str = "") -> str:
        """The last ``limit`` bytes of the server's stderr, one line (``prefix``
        before it; empty when there is none)."""
        try:
            self.stderr.flush()
            size = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, size - limit))
            text = self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):  # closed
            return ""
        text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
        return f"{prefix}{text}" if text else ""

    def died(self, wait: float = 2.0) -> str | None:
        """How the server ended (``"SIGSEGV"``, ``"exit status 1"``) after
        waiting up to ``wait`` seconds for it, or None if it still runs."""
        if self.proc is None:
            return "never started"
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        return exit_description(self.proc.returncode)

    def stop(self, grace: float = 1.0) -> None:
        """Close the connection (a server ends on EOF), wait up to ``grace``
        seconds, then SIGKILL its process group; reap it; remove the socket
        and the stderr file. Idempotent."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group: whatever the server started too
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        with _LIVE_LOCK:
            _LIVE.discard(self)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        if not self.stderr.closed:
            self.stderr.close()
