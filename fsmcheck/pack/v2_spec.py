"""The protocol facts a generated v2 pack carries (its ``SPEC`` constant).

A pack must run where the model file is not installed (vendors ship packs),
so the generator embeds what the runtime needs as plain data; :class:`V2Spec`
gives it a typed face.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["V2Spec", "RULES"]

#: Sources quoted in violations, by rule.
RULES = {
    "get": "vfio.h: GET returns the current device_state",
    "set": "vfio.h: SET carries out the whole (combination) transition before it returns",
    "reject": "vfio.h: unsupported states, ERROR, values >= 8 and blocked arcs fail with EINVAL, state unchanged",
    "handle-new": "vfio.h: arcs into the saving group and STOP -> RESUMING return a new data_fd",
    "handle-none": "vfio.h: other arcs return no data_fd",
    "handle-fresh": "seed 002: data_fds are not re-used, every session gets a new fd",
    "handle-kept": "vfio.h: moving inside the saving group does not affect the fd",
    "handle-disabled": "seed 002 / SPEC 2: when a session ends or on reset the old fd is disabled (ENODEV)",
    "reset": "vfio.h VFIO_DEVICE_RESET: device_state returns to RUNNING, all fds disabled",
    "eof": "vfio.h: in STOP_COPY, end of stream on the fd means the whole state was transferred",
    "resume-validate": "vfio.h RESUMING -> STOP: incomplete or invalid data must fail the SET",
    "round-trip": "vfio.h: the resumed device takes the state saved by the source device",
    "failure": "vfio.h: after a failed SET the state is the original, one on the path, or ERROR",
    "error-exit": "vfio.h: ERROR is left only by VFIO_DEVICE_RESET",
    "precopy-info": "vfio.h VFIO_MIG_GET_PRECOPY_INFO: mandatory for a driver that claims PRE_COPY",
    "precopy-decrease": "vfio.h VFIO_MIG_GET_PRECOPY_INFO: initial_bytes should decrease as data is read",
    "precopy-enomsg": "vfio.h: at the temporary end of stream in PRE_COPY, read() should return ENOMSG",
    "precopy-einval": "vfio.h: VFIO_MIG_GET_PRECOPY_INFO is valid only in PRE_COPY states; should be EINVAL elsewhere",
    "flags-defined": "vfio.h VFIO_DEVICE_FEATURE_MIGRATION: at least VFIO_MIGRATION_STOP_COPY must be set; "
                     "other combinations are undefined",
    "handle-fd": "vfio.h: a new session's FD is returned in data_fd (a file descriptor: >= 0)",
    "eof-final": "vfio.h: once in STOP_COPY the FD has a permanent end of stream: read() always returns 0 "
                 "(the saving side ended its stream early)",
    "stop-frozen": "vfio.h: while in STOP the device must not change its internal state",
    "stream-complete": "vfio.h: end of stream on the FD indicates the entire device state has been transferred "
                       "(changes made in PRE_COPY included)",
    "path": "vfio.h: a combination transition takes the shortest path with no saving-group state inside; "
            "after a failure the state is on that path",
    "open-ended-errno": "left open: vfio.h names no errno for I/O on an ended session's FD; seed 002 says only "
                        "'render it inoperable' (the in-tree drivers give ENODEV)",
    "open-forced-eof": "left open: seed 002: the driver 'should piggy back the force EOF' -- a saving FD may "
                       "read end of stream after its session ended",
    "open-error-in-error": "left open: vfio.h: 'ERROR cannot be specified as a device state', but every in-tree "
                           "driver loops while (cur != new) and returns success for SET ERROR in ERROR",
}


@dataclass(frozen=True)
class V2Spec:
    """Typed access to a pack's ``SPEC`` dict (see :func:`from_dict`)."""

    model: str
    sha256: str
    flags: tuple[str, ...]
    flags_value: int
    states: dict[str, int]
    supported: tuple[str, ...]
    initial: str
    reset: str
    error: str
    session_groups: dict[str, tuple[str, ...]]
    directions: dict[str, str]
    arcs: dict[tuple[str, str], str]
    table: dict[tuple[str, str], tuple[str, tuple[str, ...]]]
    defined_flags: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> "V2Spec":
        """Build from the generated ``SPEC`` constant."""
        return cls(
            model=d["model"], sha256=d["sha256"], flags=tuple(d["flags"]), flags_value=d["flags_value"],
            states=dict(d["states"]), supported=tuple(d["supported"]), initial=d["initial"],
            reset=d["reset"], error=d["error"],
            session_groups={g: tuple(m) for g, m in d["session_groups"].items()},
            directions=dict(d["directions"]),
            arcs={(a, b): effect for a, b, effect in d["arcs"]},
            table={(c, r): (outcome, tuple(path)) for c, row in d["table"].items() for r, (outcome, path) in row.items()},
            defined_flags=tuple(d.get("defined_flags", ())),
        )

    @property
    def names(self) -> dict[int, str]:
        return {v: n for n, v in self.states.items()}

    @property
    def label(self) -> str:
        return "|".join(self.flags)

    def group(self, state: str) -> str | None:
        """The session group of ``state``, or None."""
        return next((g for g, members in self.session_groups.items() if state in members), None)

    def outcome(self, current: str, requested: str) -> tuple[str, tuple[str, ...]]:
        """``(outcome, path)`` of a request (``rejected`` for unknown pairs)."""
        return self.table.get((current, requested), ("rejected", ()))

    def returns_handle(self, current: str, path: tuple[str, ...]) -> bool:
        """Whether carrying out ``path`` from ``current`` returns a new handle."""
        steps = zip((current,) + path, path)
        return any(self.arcs.get(step) == "starts" for step in steps)

    def keeps_session(self, current: str, requested: str) -> bool:
        """Whether a session held in ``current`` survives the move to ``requested``."""
        g = self.group(current)
        return g is not None and g == self.group(requested)

    def direction(self, state: str) -> str | None:
        """``read`` or ``write`` for the session held in ``state``, else None."""
        return self.directions.get(self.group(state)) if self.group(state) else None
