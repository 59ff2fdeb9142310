"""The protocol facts a generated v2 pack carries (its ``SPEC`` constant).

A pack must run where the model file is not installed (vendors ship packs),
so the generator embeds what the runtime needs as plain data; :class:`V2Spec`
gives it a typed face.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cited import cite

__all__ = ["V2Spec", "RULES"]

#: Sources quoted in violations, by rule; each names the one catalogue rule
#: (``fsmcheck/rules/catalogue.toml``) a failure citing it breaks.
RULES = {
    "get": cite("v2.get", "vfio.h: GET returns the current device_state"),
    "set": cite("v2.set-complete", "vfio.h: SET carries out the whole (combination) transition before it returns"),
    "failure-reported": cite("v2.set-complete", "vfio.h: the driver must fully transition the device to the new "
                             "state before the operation returns: a SET whose step failed must fail"),
    "reject": cite("v2.blocked-arcs", "vfio.h: unsupported states, ERROR, values >= 8 and blocked arcs fail with "
                   "EINVAL, state unchanged"),
    "handle-new": cite("v2.saving-new-fd", "vfio.h: arcs into the saving group and STOP -> RESUMING return a new "
                       "data_fd"),
    "handle-none": cite("v2.data-fd", "vfio.h: other arcs return no data_fd"),
    "handle-fresh": cite("v2.fd-fresh", "seed 002: data_fds are not re-used, every session gets a new fd"),
    "handle-kept": cite("v2.saving-group-keeps-fd", "vfio.h: moving inside the saving group does not affect the fd"),
    "handle-disabled": cite("v2.session-ends", "seed 002 / SPEC 2: when a session ends or on reset the old fd is "
                            "disabled (ENODEV)"),
    "reset": cite("v2.error-reset", "vfio.h VFIO_DEVICE_RESET: device_state returns to RUNNING, all fds disabled"),
    "eof": cite("v2.stream-complete", "vfio.h: in STOP_COPY, end of stream on the fd means the whole state was "
                "transferred"),
    "resume-validate": cite("v2.resume-validate", "vfio.h RESUMING -> STOP: incomplete or invalid data must fail "
                            "the SET"),
    "resume-take": cite("v2.resuming-loads", "vfio.h: RESUMING - the device is loading a new internal state: "
                        "write() takes a stream saved from a compatible device"),
    "round-trip": cite("v2.stream-complete", "vfio.h: the resumed device takes the state saved by the source device"),
    "failure": cite("v2.failure-on-path", "vfio.h: after a failed SET the state is the original, one on the path, "
                    "or ERROR"),
    "error-exit": cite("v2.error-reset", "vfio.h: ERROR is left only by VFIO_DEVICE_RESET"),
    "precopy-info": cite("v2.precopy-info-mandatory", "vfio.h VFIO_MIG_GET_PRECOPY_INFO: mandatory for a driver "
                         "that claims PRE_COPY"),
    "precopy-initial": cite("v2.precopy-initial-bytes", "vfio.h VFIO_MIG_GET_PRECOPY_INFO: initial_bytes is the "
                            "amount of initial precopy data: it never grows within a session (device activity "
                            "is dirty_bytes)"),
    "precopy-decrease": cite("v2.precopy-initial-decreases", "vfio.h VFIO_MIG_GET_PRECOPY_INFO: initial_bytes "
                             "should decrease as data is read"),
    "precopy-announced": cite("v2.precopy-initial-decreases", "vfio.h VFIO_MIG_GET_PRECOPY_INFO: the fields "
                              "estimate the data available; more may come (poll) while the device runs"),
    "precopy-enomsg": cite("v2.precopy-enomsg", "vfio.h: at the temporary end of stream in PRE_COPY, read() should "
                           "return ENOMSG"),
    "precopy-einval": cite("v2.precopy-info-einval", "vfio.h: VFIO_MIG_GET_PRECOPY_INFO is valid only in PRE_COPY "
                           "states; should be EINVAL elsewhere"),
    "flags-defined": cite("v2.flags-defined", "vfio.h VFIO_DEVICE_FEATURE_MIGRATION: at least "
                          "VFIO_MIGRATION_STOP_COPY must be set; other combinations are undefined"),
    "handle-fd": cite("v2.data-fd", "vfio.h: a new session's FD is returned in data_fd (a file descriptor: >= 0)"),
    "read-bounded": cite("v2.fd-read-write", "vfio.h: migration data flows over the FD using read() and write(): "
                         "read() returns at most the bytes asked for"),
    "write-bounded": cite("v2.fd-read-write", "vfio.h: migration data flows over the FD using read() and write(): "
                          "write() returns at most the bytes it was given"),
    "eof-final": cite("v2.eof-permanent", "vfio.h: once in STOP_COPY the FD has a permanent end of stream: read() "
                      "always returns 0 (the saving side ended its stream early)"),
    "stop-frozen": cite("v2.stop-frozen", "vfio.h: while in STOP the device must not change its internal state"),
    "stream-complete": cite("v2.stream-complete", "vfio.h: end of stream on the FD indicates the entire device "
                            "state has been transferred (changes made in PRE_COPY included)"),
    "stream-current": cite("v2.stop-copy-reads-state", "vfio.h: STOP_COPY - the device internal state can be read "
                           "out: each session's stream carries the device's state at that session"),
    "path": cite("v2.path-selection", "vfio.h: a combination transition takes the shortest path with no "
                 "saving-group state inside; after a failure the state is on that path"),
    "open-ended-errno": cite("v2.ended-fd-errno", "left open: vfio.h names no errno for I/O on an ended session's "
                             "FD; seed 002 says only 'render it inoperable' (the in-tree drivers give ENODEV)"),
    "open-forced-eof": cite("v2.ended-fd-forced-eof", "left open: seed 002: the driver 'should piggy back the force "
                            "EOF' -- a saving FD may read end of stream after its session ended"),
    "open-reject-errno": cite("v2.reject-errno", "left open: vfio.h says a request that is not permitted "
                              "'return[s] error' and names no errno (the in-tree drivers give EINVAL, through "
                              "vfio_mig_get_next_state())"),
    "open-error-in-error": cite("v2.error-in-error", "left open: vfio.h: 'ERROR cannot be specified as a device "
                                "state', but every in-tree driver loops while (cur != new) and returns success "
                                "for SET ERROR in ERROR"),
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
