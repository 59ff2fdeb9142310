"""Timed adapter calls: how the harness runs one call with a time limit.

A call runs on one daemon worker thread per device (:class:`_Worker`), or
inline on the test's thread under the process's watchdog (:class:`_Watchdog`)
for adapters that declare their devices pure Python; a call that overruns
its limit is abandoned and its device and adapter are marked *lost*
(:data:`LOST`). :class:`~fsmcheck.pack.harness.Harness` is the one user; see
its module docstring for why a worker and when inline. Split out of
``harness.py`` (issue 25): this module knows nothing of devices or protocols.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["DEFAULTS", "LOST", "deadline_left", "adapter_lost"]

#: Run-wide settings (the pytest plugin sets them from its options):
#: ``timeout`` is the seconds one adapter call may take before the test fails;
#: ``deadline`` the ``time.monotonic()`` by which the whole run must end
#: (None: no budget).
DEFAULTS = {"timeout": 10.0, "deadline": None}

#: ``id(adapter) or id(device)`` -> why it was given up (a call hung).
LOST: dict[int, str] = {}

#: Private, for measurements only (``bench/bench_pack.py``): call the adapter
#: directly on the test's thread, without a worker, a time limit or a budget
#: -- the bare adapter the harness's cost is measured against. Never set in a
#: real run: a hung call would hang the run.
_DIRECT = False


def deadline_left() -> float | None:
    """Seconds left of the run budget (``--fsmcheck-budget``), or None."""
    deadline = DEFAULTS.get("deadline")
    return None if deadline is None else deadline - time.monotonic()


def adapter_lost(adapter) -> str | None:
    """Why ``adapter`` was given up (an earlier call hung), or None."""
    return LOST.get(id(adapter))


class _Worker:
    """One daemon thread that runs a device's calls in order.

    A call is handed over through two locks the worker owns for its life
    (``_go``: a call is waiting; ``_done``: its result is there), so a call
    costs two thread switches and no allocation -- not a queue, an event and
    a condition per call. :meth:`run` waits at most ``timeout`` seconds; on
    expiry the worker is abandoned (:meth:`abandon`: its thread may spin
    forever, but as a daemon it does not hold the process at exit, and if
    the call ever returns the thread ends) and never given another call.
    """

    def __init__(self):
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job: tuple | None = None
        self._result: tuple = (False, None)
        self._abandoned = False
        #: True from handing a call over until its result is taken: still True
        #: when the wait was interrupted (KeyboardInterrupt), so the worker is
        #: not given another call while one is in flight.
        self.busy = False
        self.thread = threading.Thread(target=self._loop, name="fsmcheck-adapter", daemon=True)
        self.thread.start()

    def _loop(self):
        go, done = self._go, self._done
        while True:
            go.acquire()
            job, self._job = self._job, None
            if job is None or self._abandoned:  # stop(), or given up
                return
            fn, args = job
            try:
                self._result = (True, fn(*args))
            except BaseException as exc:  # handed to the caller
                self._result = (False, exc)
            done.release()

    def run(self, fn, args, timeout: float):
        """Run ``fn(*args)`` on the worker; ``(finished, ok, value_or_exception)``
        (``finished`` False: it did not return within ``timeout`` seconds)."""
        self.busy = True
        self._job = (fn, args)
        self._go.release()
        if not self._done.acquire(True, max(0.0, min(timeout, threading.TIMEOUT_MAX))):
            return False, False, None
        self.busy = False
        ok, value = self._result
        self._result = (False, None)
        return True, ok, value

    def abandon(self):
        """Give the worker up: it gets no further call, and its thread ends
        as soon as the call in progress (if it ever) returns."""
        self._abandoned = True
        self._job = None
        try:
            self._go.release()
        except RuntimeError:  # the call was never picked up: the worker sees _abandoned when it is
            pass

    def stop(self):
        """End the (idle) worker's thread."""
        self._job = None
        self._go.release()


class _Hung(BaseException):
    """Raised asynchronously in a test's thread by :class:`_Watchdog` when an
    inline call overruns its limit (a BaseException: a driver's ``except
    Exception`` does not swallow it)."""


def _async_raiser():
    """``set(thread_ident, exception_class_or_None)`` over the C API's
    ``PyThreadState_SetAsyncExc`` (None clears a pending exception), or None
    where there is none (then every call goes to a worker)."""
    try:
        import ctypes

        api = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):
        return None

    def set_exc(ident: int, exc) -> None:
        api(ctypes.c_ulong(ident), None if exc is None else ctypes.py_object(exc))  # None: NULL, clears

    return set_exc


_SET_ASYNC_EXC = _async_raiser()

#: Seconds the watchdog thread waits, with no inline device open, before it ends.
_LINGER = 0.25


class _Watchdog:
    """One daemon thread for every inline call of the process (see the module
    docstring). A call is *armed* with its deadline (a dict entry under a
    lock: no thread switch); the thread sleeps until the earliest deadline (or
    the default call timeout from now, woken early only when a call is armed
    with a deadline before that), raises :class:`_Hung` in the thread of a
    call past its deadline (again every second until it is disarmed), and
    ends when no inline device has been open for :data:`_LINGER` seconds.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[int, list] = {}   # slot -> [deadline, thread ident, fired]
        self._users = 0
        self._wake_at = 0.0
        self.thread: threading.Thread | None = None

    def enter(self) -> None:
        """An inline device opens (the thread starts if it is not running)."""
        with self._cond:
            self._users += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="fsmcheck-watchdog", daemon=True)
                self.thread.start()

    def leave(self) -> None:
        """An inline device closes."""
        with self._cond:
            self._users -= 1
            self._cond.notify()

    def arm(self, slot: int, deadline: float) -> list:
        """Watch the calling thread's call until :meth:`disarm`; its entry."""
        entry = [deadline, threading.get_ident(), False]
        with self._cond:
            self._armed[slot] = entry
            if deadline < self._wake_at:
                self._cond.notify()
        return entry

    def disarm(self, slot: int, entry: list) -> bool:
        """Stop watching; True when the call overran (then any exception still
        pending for the thread is cleared, so none is raised later)."""
        with self._cond:
            if self._armed.get(slot) is entry:
                del self._armed[slot]
            if entry[2]:
                _SET_ASYNC_EXC(entry[1], None)
            return entry[2]

    def _loop(self) -> None:
        idle_since = None
        with self._cond:
            while True:
                now = time.monotonic()
                for entry in self._armed.values():
                    if now >= entry[0]:
                        entry[2] = True
                        entry[0] = now + 1.0
                        _SET_ASYNC_EXC(entry[1], _Hung)
                if self._armed or self._users:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= _LINGER:
                    self.thread = None
                    return
                wake = min([now + DEFAULTS["timeout"], *(e[0] for e in self._armed.values())])
                if not self._users:
                    wake = min(wake, now + _LINGER)
                self._wake_at = wake
                self._cond.wait(min(max(wake - now, 0.0), threading.TIMEOUT_MAX))


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a forked child has no watchdog thread, whatever the parent had
    os.register_at_fork(after_in_child=_WATCHDOG.__init__)


def _direct(fn, args):
    """``_Worker.run`` without the worker (see :data:`_DIRECT`)."""
    try:
        return True, True, fn(*args)
    except BaseException as exc:
        return True, False, exc
