"""The reference VFIO v2 migration driver.

A device with real internal state: :attr:`ReferenceV2Device.memory` (64
bytes) changes on every operation while the device runs, so save -> resume
round trips are meaningful. The driver implements exactly the arcs of its
flag set (from ``models/vfio_v2.toml``) and carries out a combination
transition the way the kernel does: one arc at a time, each next step taken
from the combination table derived from the model (vfio.h: "Refer to
vfio_mig_get_next_state()"). Sessions get fresh handles; ending a session or
a reset disables the old handle (``ENODEV``, as the in-tree drivers do);
RESUMING -> STOP validates the stream (:mod:`.stream`) and fails with
``EINVAL`` on bad data, leaving the device in RESUMING. Failures can be
injected at any arc (:meth:`ReferenceV2Device.inject_failure`).

What a device derives from its model for its flag set (the combination
table, the arcs, the state names and groups) is derived once per (device
class, model, flag set) and shared, read-only, by every device opened with
them (:func:`derive`, a ``functools.lru_cache``): a pack opens thousands of
devices, and deriving the table took most of the time of each open.

Mutant drivers subclass it and override one hook each; a mutant class (one
that changes the table overrides :meth:`ReferenceV2Device.derive_table`)
gets cache entries of its own.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..adapters.contract import DriverError
from ..semantics.combination import NOOP, PATH, Entry, derive_table
from ..model.schema import Arc, Config, Model
from .stream import StreamError, end_record, parse_stream, record

__all__ = ["ReferenceV2Device", "Session", "STATE_SIZE", "Derived", "derive"]

#: Bytes of internal device state.
STATE_SIZE = 64

_handles = itertools.count(3)  # like file descriptors: never reused in a process


@dataclass(frozen=True, eq=False)
class Derived:
    """What a device derives from its model for one flag set; read-only and
    shared by every device opened with the same (class, model, flags).

    Attributes:
        model: the model it was derived from.
        table: ``{(current, requested): Entry}``, the combination table.
        arcs: ``{(src, dst): Arc}`` of the arcs enabled under the flags
            between supported states.
        value_of, name_of: state name -> value and value -> name.
        running, saving: the states of the ``running`` and ``saving`` groups.
    """

    model: Model
    table: Mapping[tuple[str, str], Entry]
    arcs: Mapping[tuple[str, str], Arc]
    value_of: Mapping[str, int]
    name_of: Mapping[int, str]
    running: frozenset[str]
    saving: frozenset[str]


class Session:
    """A data session: a handle, its direction and its bytes."""

    def __init__(self, handle: int, kind: str):
        self.handle, self.kind = handle, kind          # kind: "save" or "resume"
        self.enabled, self.closed = True, False
        self.data = bytearray()                        # save: produced bytes; resume: received
        self.read_pos = 0
        self.final = False                             # save: F and E records appended


class ReferenceV2Device:
    """A reference v2 device for one flag set (see the module docstring).

    Args:
        model: the loaded v2 model.
        flags: the VFIO_DEVICE_FEATURE_MIGRATION flags (bit mask); must be a
            defined flag set of the model.
        seed: initial contents of the device memory.

    Raises:
        ValueError: ``flags`` is not a defined flag set.
    """

    #: Bytes of internal device state (a subclass may model a bigger device).
    state_size = STATE_SIZE

    def __init__(self, model: Model, flags: int, seed: int = 0):
        self.model = model
        chosen = model.flags_of(flags)
        if chosen not in model.flag_sets:
            raise ValueError(f"flags {flags:#x} are not a defined flag set of {model.name}")
        self.flags_value, self.flags = flags, chosen
        derived = self.derived(model, chosen)
        self.table, self.arcs = derived.table, derived.arcs
        self.value_of, self.name_of = derived.value_of, derived.name_of
        self.running, self.saving = derived.running, derived.saving
        self.state = model.initial
        self.memory = bytearray(random.Random(seed).randbytes(self.state_size))
        self.tick = 0
        self.sessions: dict[int, Session] = {}
        self.active: Session | None = None
        self.injected: dict[tuple[str, str], tuple[str, bool]] = {}
        self.closed = False

    # -- what the device derives from its model -------------------------------
    @classmethod
    def derive_table(cls, model: Model, config: Config) -> dict[tuple[str, str], Entry]:
        """The combination table the device walks (the hook a mutant that
        changes the table overrides; it may depend only on its arguments).

        Returns: ``{(current, requested): Entry}`` (:func:`~fsmcheck.semantics.combination.derive_table`).
        """
        return derive_table(model, config)

    @classmethod
    def derived(cls, model: Model, flags: frozenset[str]) -> Derived:
        """What a device of ``flags`` derives from ``model`` (its first
        profile), through :func:`derive`.

        Returns: a read-only :class:`Derived` (its mappings refuse assignment).
        """
        return derive(cls, model, flags)

    # -- the device runs ---------------------------------------------------
    def _advance(self) -> None:
        if self.closed:
            raise DriverError("EBADF", "device closed")
        if self.state in self.running:
            self.tick += 1
            self.memory[self.tick % self.state_size] ^= (self.tick * 37 + 11) & 0xFF

    # -- contract ------------------------------------------------------------
    def migration_flags(self) -> int:
        self._advance()
        return self.flags_value

    def get_state(self) -> int:
        self._advance()
        return self.value_of[self.state]

    def set_state(self, state: int) -> int | None:
        self._advance()
        target = self.name_of.get(state) if 0 <= state < 2**32 else None
        if target is None:
            raise DriverError("EINVAL", f"{state} names no state")
        entry = self.table.get((self.state, target))
        if entry is None or entry.outcome not in (PATH, NOOP):
            raise DriverError("EINVAL", f"{self.state} -> {target} is rejected")
        handle = None
        for step in self._path(self.state, target, entry.path):
            handle = self._step(self.state, step)
            self.state = step
        return handle

    def reset(self) -> None:
        if self.closed:
            raise DriverError("EBADF", "device closed")
        self.state = self._reset_target()
        self._end_all_sessions()

    def read(self, handle: int, size: int) -> bytes:
        self._advance()
        session = self._session(handle, "save")
        if session.read_pos >= len(session.data):
            if session.final and self._eof_allowed():
                return b""
            raise DriverError("ENOMSG", "no more pre-copy data for now")
        chunk = bytes(session.data[session.read_pos:session.read_pos + max(size, 0)])
        session.read_pos += len(chunk)
        return chunk

    def write(self, handle: int, data: bytes) -> int:
        self._advance()
        session = self._session(handle, "resume")
        session.data.extend(data)
        return len(data)

    def close_handle(self, handle: int) -> None:
        session = self.sessions.get(handle)
        if session is None or session.closed:
            raise DriverError("EBADF", f"handle {handle} is not open")
        session.closed = True

    def close(self) -> None:
        self._end_all_sessions()
        self.closed = True

    # -- optional capabilities ------------------------------------------------
    def precopy_info(self, handle: int) -> tuple[int, int]:
        """VFIO_MIG_GET_PRECOPY_INFO: ``(initial_bytes, dirty_bytes)``; EINVAL
        outside the pre-copy states (saving and running), ENODEV on an ended
        session. The snapshot taken on entry is the initial data; changes
        made while running are not tracked, so dirty_bytes is 0."""
        self._advance()
        if not (self.state in self.saving and self.state in self.running):
            raise DriverError("EINVAL", f"not a pre-copy state: {self.state}")
        session = self._session(handle, "save")
        return len(session.data) - session.read_pos, 0


    def inject_failure(self, src: str, dst: str, errno: str = "EIO", to_error: bool = False) -> None:
        """Make the next step ``src -> dst`` fail with ``errno`` (entering the
        error state if ``to_error``)."""
        self.injected[(src, dst)] = (errno, to_error)

    # -- hooks (mutants override these) ------------------------------------
    def _path(self, current: str, target: str, derived: tuple[str, ...]) -> tuple[str, ...]:
        return derived

    def _reset_target(self) -> str:
        return self.model.reset

    def _new_handle(self) -> int:
        return next(_handles)

    def _eof_allowed(self) -> bool:
        return True

    def _disable(self, session: Session) -> None:
        session.enabled = False

    def _validate(self, data: bytes) -> bytes:
        return parse_stream(data, self.state_size)

    def _step(self, src: str, dst: str) -> int | None:
        """Carry out one arc; return a new handle when it starts a session."""
        arc = self.arcs.get((src, dst))
        if arc is None:  # the kernel's walk never asks for it; a driver WARN_ONs
            raise DriverError("EINVAL", f"arc {src} -> {dst} not implemented")
        if (src, dst) in self.injected:
            errno, to_error = self.injected.pop((src, dst))
            if to_error:
                self.state = self.model.error
                self._end_all_sessions()
            raise DriverError(errno, f"injected failure at {src} -> {dst}")
        if arc.session == "starts":
            return self._start_session(dst)
        if arc.session == "keeps" and dst in self.saving and dst not in self.running:
            self._finalize_save()
        if arc.session == "ends":
            if src == "RESUMING":
                self._load()
            self._end_all_sessions()
        return None

    # -- internals -----------------------------------------------------------
    def _start_session(self, dst: str) -> int:
        self._end_all_sessions()
        session = Session(self._new_handle(), "resume" if dst == "RESUMING" else "save")
        if session.kind == "save":
            if dst in self.running:          # PRE_COPY: a snapshot now, the rest at STOP_COPY
                session.data += record(b"P", bytes(self.memory))
            else:                            # STOP_COPY from STOP: the whole state
                self._finalize(session)
        self.sessions[session.handle] = session
        self.active = session
        return session.handle

    def _finalize(self, session: Session) -> None:
        session.data += record(b"F", bytes(self.memory))
        session.data += end_record(bytes(session.data))
        session.final = True

    def _finalize_save(self) -> None:
        if self.active is not None and self.active.kind == "save" and not self.active.final:
            self._finalize(self.active)

    def _load(self) -> None:
        session = self.active
        data = bytes(session.data) if session is not None else b""
        try:
            self.memory[:] = self._validate(data)
        except StreamError as exc:
            raise DriverError("EINVAL", f"resume data rejected: {exc}") from None

    def _end_all_sessions(self) -> None:
        for session in self.sessions.values():
            if session.enabled:
                self._disable(session)
        self.active = None

    def _session(self, handle: int, kind: str) -> Session:
        session = self.sessions.get(handle)
        if session is None or session.closed:
            raise DriverError("EBADF", f"handle {handle} is not open")
        if not session.enabled:
            raise DriverError("ENODEV", f"handle {handle}: its session has ended")
        if session.kind != kind:
            raise DriverError("EINVAL", f"handle {handle} is a {session.kind} session")
        return session


@functools.lru_cache(maxsize=32)
def derive(cls: type[ReferenceV2Device], model: Model, flags: frozenset[str]) -> Derived:
    """The cache every :class:`ReferenceV2Device` derives through: the
    :class:`Derived` of (device class, model, flag set), derived on the first
    open of each (a model is hashed by its content key and compared field by
    field, so one changed with ``dataclasses.replace`` is derived anew)."""
    profile = model.profiles[0].name
    supported = set(model.supported(flags))
    return Derived(
        model=model,
        table=MappingProxyType(dict(cls.derive_table(model, Config(flags, profile, model.flag_order)))),
        arcs=MappingProxyType({(a.src, a.dst): a for a in model.arcs
                               if a.enabled(flags) and {a.src, a.dst} <= supported}),
        value_of=MappingProxyType({s.name: s.value for s in model.states}),
        name_of=MappingProxyType({s.value: s.name for s in model.states}),
        running=frozenset(model.groups.get("running", ())),
        saving=frozenset(model.groups.get("saving", ())))
