"""The in-memory form of a protocol model.

A :class:`Model` is what :func:`fsmcheck.model.load_model` returns: immutable,
validated, and with the line of every declaration kept for error messages and
counterexample locations. It holds what the protocol *is*; everything the
engines conclude is derived from it.

A model is checked once per :class:`Config`: a feature-flag set (v2: the four
defined sets) combined with a profile (v1: ``strict`` and ``lenient``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .expr import Predicate

__all__ = [
    "ALL_FLAGS", "Arc", "Blocked", "Capability", "CombinationRule", "Config", "Correspondence",
    "Model", "P2PRule", "Profile", "State", "Walk", "SESSION_EFFECTS",
]

#: Data-session effects an arc may declare.
SESSION_EFFECTS = ("starts", "keeps", "ends", "none")

#: Stands for "every flag" in a walk's per-state requirements (the kernel's ~0U).
ALL_FLAGS = "*"


@dataclass(frozen=True)
class State:
    """A state: its name, the value of ``device_state`` that encodes it, the
    feature flags it needs, and whether a user may request it."""

    name: str
    value: int
    needs: frozenset[str] = frozenset()
    requestable: bool = True
    doc: str = ""
    line: int = 0


@dataclass(frozen=True)
class Arc:
    """A single step ``src -> dst`` a driver implements.

    ``needs`` must all be set and ``unless`` all clear in the flag set;
    ``session`` is one of :data:`SESSION_EFFECTS`; ``tag`` classifies the arc
    for profiles (v1: ``required`` or ``agreed``).
    """

    src: str
    dst: str
    needs: frozenset[str] = frozenset()
    unless: frozenset[str] = frozenset()
    session: str = "none"
    tag: str = ""
    source: str = ""
    line: int = 0

    def enabled(self, flags: frozenset[str]) -> bool:
        """True if the arc exists under feature flags ``flags``."""
        return self.needs <= flags and not (self.unless & flags)


@dataclass(frozen=True)
class Blocked:
    """A request ``src -> dst`` that must fail with EINVAL -- unless one of
    the feature flags in ``unless`` is set (vfio.h reserves STOP_COPY ->
    PRE_COPY "for a future flag")."""

    src: str
    dst: str
    source: str = ""
    line: int = 0
    unless: frozenset[str] = frozenset()

    def applies(self, flags: frozenset[str]) -> bool:
        """True if the request is blocked under feature flags ``flags``."""
        return not (self.unless & flags)


@dataclass(frozen=True)
class Capability:
    """An optional device capability a pack can test, beyond the FSM.

    Attributes:
        name: the capability's name (as the uAPI spells it, e.g.
            ``PRECOPY_INFO_REINIT``).
        feature: the ``VFIO_DEVICE_FEATURE`` number a user opts in with (>= 0).
        needs: feature flags a flag set must have for the capability to apply.
        states: the states in which the capability is exercised.
        source: the uAPI text it comes from.
        line: the line of its ``[[capabilities]]`` table.
    """

    name: str
    feature: int
    needs: frozenset[str] = frozenset()
    states: tuple[str, ...] = ()
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class CombinationRule:
    """How a (current, requested) pair becomes a path of arcs.

    The path is a shortest path in the flag set's arc graph (unsupported
    states are absent from it, hence skipped) whose interior has no state of
    the groups in ``no_interior``. With ``within_group`` a path lying wholly
    inside one such group is admissible too (it keeps one data session).
    """

    path: str = "shortest"
    no_interior: tuple[str, ...] = ()
    within_group: bool = False
    line: int = 0


@dataclass(frozen=True)
class Walk:
    """An implementation of combination transitions under review.

    The kernel's form (``vfio_mig_get_next_state()``): ``next[(cur, req)]`` is
    the next state; while that state is unsupported (its ``requires`` flags
    are not all set) and not in ``exits``, the walk looks up
    ``next[(that state, req)]`` instead. A result in ``reject`` fails the
    request with EINVAL; so does a current (``check_current``) or requested
    (``check_requested``) state whose ``requires`` are not met. A request of
    the current state is then a no-op. Otherwise the device steps to the
    result and repeats until it reaches ``req``.
    """

    next: dict[tuple[str, str], str]
    requires: dict[str, frozenset[str]]
    exits: frozenset[str] = frozenset()
    reject: frozenset[str] = frozenset()
    check_current: bool = True
    check_requested: bool = True
    source: str = ""
    line: int = 0

    def supported(self, state: str, flags: frozenset[str], all_flags: frozenset[str]) -> bool:
        """True if the walk treats ``state`` as supported under ``flags``."""
        need = self.requires.get(state, frozenset())
        if ALL_FLAGS in need:
            need = (need - {ALL_FLAGS}) | all_flags | {ALL_FLAGS}
        return need <= flags


@dataclass(frozen=True)
class Profile:
    """Which arcs a profile takes: ``declared`` (the model's arcs, optionally
    only those with a tag in ``tags``) or ``all-requestable`` (any requestable
    state to any other)."""

    name: str
    arcs: str = "declared"
    tags: frozenset[str] | None = None
    doc: str = ""
    line: int = 0


@dataclass(frozen=True)
class Correspondence:
    """A state map from this model to another (v2 -> v1, SPEC section 3)."""

    model_path: Path
    profile: str
    mapping: dict[str, str]
    line: int = 0
    #: The target model as the loader loaded it (None for a model loaded as
    #: another's target: the link is followed one level only).
    model: "Model | None" = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class P2PRule:
    """The P2P quiesce rule across the devices of one user context.

    vfio.h (the P2P states): RUNNING_P2P and PRE_COPY_P2P are "a quiescent
    state for the device for the purposes of managing multiple devices within
    a user context where peer-to-peer DMA between devices may be active"; they
    "must prevent the device from initiating any new P2P DMA". So no device
    may be in a state of group ``initiating`` (it may start P2P DMA) while
    another is in a state outside group ``accepting`` (it cannot take it).
    A device without feature flag ``flag`` "behaves as though the device was
    fully running" in the P2P states it lacks: it cannot be quiesced.

    Attributes:
        initiating: name of the group of states that may initiate P2P DMA.
        accepting: name of the group of states that take P2P DMA.
        flag: the feature flag that brings the P2P states, or None.
        source: the sentence the rule comes from.
        line: the line of the ``[p2p]`` table.
    """

    initiating: str
    accepting: str
    flag: str | None = None
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class Config:
    """One configuration a model is checked in: a flag set and a profile."""

    flags: frozenset[str]
    profile: str
    flag_order: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``STOP_COPY|P2P`` for a flag set (``(no flags)`` for the empty
        set), ``strict`` for a profile, or both joined by ``/``."""
        parts = []
        if self.flag_order:
            parts.append("|".join(f for f in self.flag_order if f in self.flags) or "(no flags)")
        if self.profile != "spec" or not parts:
            parts.append(self.profile)
        return "/".join(parts)


@dataclass(frozen=True)
class Model:
    """A validated protocol model (see the module docstring)."""

    path: Path
    name: str
    title: str
    encoding: str
    width: int
    states: tuple[State, ...]
    initial: str
    reset: str
    error: str | None
    arcs: tuple[Arc, ...]
    flag_bits: dict[str, int] = field(default_factory=dict)
    flag_sets: tuple[frozenset[str], ...] = (frozenset(),)
    mask: int = 0
    bit_names: dict[str, int] = field(default_factory=dict)
    valid: Predicate | None = None
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    session_groups: tuple[str, ...] = ()
    session_directions: dict[str, str] = field(default_factory=dict)
    blocked: tuple[Blocked, ...] = ()
    combination: CombinationRule | None = None
    profiles: tuple[Profile, ...] = (Profile("spec"),)
    walk: Walk | None = None
    correspondence: Correspondence | None = None
    p2p: P2PRule | None = None
    properties: tuple[str, ...] | None = None
    region: tuple[dict, ...] = ()
    sources: tuple[str, ...] = ()
    digest: str = ""
    lines: object = None
    capabilities: tuple[Capability, ...] = ()
    #: The content key: SHA-256 of the resolved model text (after ``extends``);
    #: with the model's hash, what the engines' caches are keyed by.
    key: str = ""
    # Indexes built once (the model is immutable): name -> State, value -> name.
    _by_name: dict = field(init=False, repr=False, compare=False, default=None)
    _by_value: dict = field(init=False, repr=False, compare=False, default=None)
    _names: tuple = field(init=False, repr=False, compare=False, default=())
    _by_flags: dict = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in self.states})
        by_value: dict[int, str] = {}
        for s in self.states:
            by_value.setdefault(s.value, s.name)
        object.__setattr__(self, "_by_value", by_value)
        object.__setattr__(self, "_names", tuple(s.name for s in self.states))
        object.__setattr__(self, "_by_flags", {})

    def __hash__(self) -> int:
        # Equality stays field-wise (a model rebuilt with dataclasses.replace
        # and another walk is another model); the hash is the content key's.
        return hash((self.key, self.path))

    # -- lookups -----------------------------------------------------------
    def flags_of(self, value: int) -> frozenset[str]:
        """The feature flags whose bit is set in ``value`` (a
        ``VFIO_MIGRATION_*`` mask); bits naming no flag are ignored."""
        return frozenset(f for f, bit in self.flag_bits.items() if value >> bit & 1)

    def flags_value(self, flags) -> int:
        """The ``VFIO_MIGRATION_*`` mask of the flag names ``flags``
        (KeyError for a name the model does not define)."""
        return sum(1 << self.flag_bits[f] for f in flags)

    def state(self, name: str) -> State:
        """The :class:`State` called ``name`` (KeyError if none); O(1)."""
        return self._by_name[name]

    @property
    def state_names(self) -> tuple[str, ...]:
        """State names in declaration order."""
        return self._names

    @property
    def flag_order(self) -> tuple[str, ...]:
        """Feature flags in bit order."""
        return tuple(sorted(self.flag_bits, key=self.flag_bits.get))

    def line_of(self, *path) -> int:
        """The line declaring key ``path`` (1 if unknown): a
        :class:`~fsmcheck.inputs.positions.Line`, whose ``file`` names the
        declaring file when it is not :attr:`path` (a variant's base)."""
        return self.lines.line(tuple(path)) if self.lines is not None else 1

    def configs(self) -> list[Config]:
        """Every configuration: each flag set with each profile."""
        return [
            Config(flags, p.name, self.flag_order)
            for flags in self.flag_sets
            for p in self.profiles
        ]

    def config(self, label: str) -> Config | None:
        """The configuration whose :attr:`Config.label` is ``label`` (as results
        name them), or None (model-wide results say ``"all"``)."""
        return next((c for c in self.configs() if c.label == label), None)

    def blocked_in(self, flags: frozenset[str]) -> tuple[Blocked, ...]:
        """The blocked requests that apply under feature flags ``flags``."""
        return tuple(b for b in self.blocked if b.applies(flags))

    def profile(self, name: str) -> Profile:
        """The :class:`Profile` called ``name`` (KeyError if none)."""
        return {p.name: p for p in self.profiles}[name]

    def supported(self, flags: frozenset[str]) -> tuple[str, ...]:
        """States whose needed flags are all in ``flags``, in declaration order
        (computed once per flag set)."""
        found = self._by_flags.get(flags)
        if found is None:
            found = self._by_flags[flags] = tuple(s.name for s in self.states if s.needs <= flags)
        return found

    def group_of(self, state: str, groups: tuple[str, ...]) -> str | None:
        """The first of ``groups`` that contains ``state``, or None."""
        for g in groups:
            if state in self.groups.get(g, ()):
                return g
        return None

    def describe(self, state: str) -> str:
        """``NAME`` for an enum model, ``NAME (011b)`` for a bit encoding."""
        if self.encoding != "bits":
            return state
        nbits = max(self.mask.bit_length(), 1)
        return f"{state} ({self.state(state).value:0{nbits}b}b)"

    def name_of_value(self, value: int) -> str | None:
        """The state encoded by ``value`` (masked for bit encodings), or None."""
        if self.encoding == "bits":
            value &= self.mask
        return self._by_value.get(value)
