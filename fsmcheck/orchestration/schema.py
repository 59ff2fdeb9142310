"""The in-memory form of an orchestration model.

An :class:`Orchestration` is what :func:`~fsmcheck.orchestration.loader.load_orchestration`
returns: validated, immutable, each declaration with its file line. It says
*what the VMM asks for*; what a request does to a device is the device
model's business (:attr:`Orchestration.device`, a v2
:class:`~fsmcheck.model.schema.Model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model.schema import Model

__all__ = ["Rule", "Phase", "Run", "Orchestration", "RECOVER_CURRENT"]

#: ``recover = "current"``: vfio_load_setup()'s recover state is the device's own state.
RECOVER_CURRENT = "current"


@dataclass(frozen=True)
class Rule:
    """One case of a callback.

    Attributes:
        states: the device states it applies to (groups already expanded);
            empty means every state.
        needs: feature flags the device must have.
        runstates: run states (of the run) it applies to; empty means any.
        request: the ``device_state`` requested.
        recover: ``vfio_migration_set_state()``'s recover state: a state
            name, the model's error state (reset on failure) or
            :data:`RECOVER_CURRENT`.
        line: the model-file line of the phase's ``rules``.
    """

    states: frozenset[str]
    needs: frozenset[str]
    runstates: frozenset[str]
    request: str
    recover: str
    line: int = 0

    def applies(self, state: str, flags: frozenset[str], runstate: str) -> bool:
        """True when a device in ``state`` with ``flags`` takes this rule in ``runstate``."""
        return ((not self.states or state in self.states) and self.needs <= flags
                and (not self.runstates or runstate in self.runstates))


@dataclass(frozen=True)
class Phase:
    """One callback, called once for every device a rule applies to.

    Attributes:
        name: the phase name (``stop-prepare``).
        callback: the QEMU function (``vfio_vmstate_change_prepare``).
        event: what calls it (``vm_state_notify(running=false): prepare callbacks``).
        rules: first applicable rule wins; none applicable: the device is skipped.
        on_error: ``""`` (errors are not reported: the run goes on),
            ``"abort"`` (after this phase, a run with an error so far goes on
            with its abort phases) or ``"abort-now"`` (right after the
            failing callback; the devices not yet called are skipped).
        closes_data_fd: the callback closes QEMU's ``data_fd`` of every device.
        vm: what the phase does to the VM's run state: ``"stops"`` (the VM
            is stopped once this phase's callbacks are done: the end of
            ``vm_state_notify(running=false)``), ``"starts"`` (the VM runs
            from this phase on: ``vm_start()``), or ``""``.
        source: where the behaviour is written (QEMU file and function).
        line: the model-file line of the ``[[phases]]`` header.
    """

    name: str
    callback: str
    event: str
    rules: tuple[Rule, ...]
    on_error: str = ""
    closes_data_fd: bool = False
    source: str = ""
    line: int = 0
    vm: str = ""

    def rule_for(self, state: str, flags: frozenset[str], runstate: str) -> Rule | None:
        """The rule a device in ``state`` with ``flags`` takes, or None (skipped)."""
        for rule in self.rules:
            if rule.applies(state, flags, runstate):
                return rule
        return None


@dataclass(frozen=True)
class Run:
    """A sequence of phases from the state at open.

    Attributes:
        name: the run name (``migrate-source``).
        runstate: QEMU's RunState the VM is stopped to (``finish-migrate``).
        phases: the phases of a successful run.
        abort: the phases after an abort (empty: QEMU exits).
        p2p_from: the phase from which P2P safety is checked ("" = everywhere).
        abort_from: phase name -> the abort phases after an abort from that
            phase, where they differ from ``abort``.
        target: states every device must end in after ``phases``.
        abort_target: the same after ``abort``; empty: nothing required.
        line: the model-file line of the ``[[runs]]`` header.
    """

    name: str
    runstate: str
    phases: tuple[Phase, ...]
    abort: tuple[Phase, ...]
    target: frozenset[str]
    abort_target: frozenset[str]
    abort_from: dict = None
    p2p_from: str = ""
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class Orchestration:
    """A validated orchestration model.

    Attributes:
        name, title: as declared; ``path`` the file, ``digest`` its SHA-256.
        device: the per-device model (a v2 model with a ``[p2p]`` rule).
        default_flags: the flag set of every device unless chosen otherwise.
        phases: every declared phase by name; ``runs`` in file order.
        properties: property names to check (``p2p-safety``, ``progress``).
        lines: key path -> line, for :meth:`line_of`.
    """

    name: str
    title: str
    path: Path
    digest: str
    device: Model
    default_flags: frozenset[str]
    phases: dict
    runs: tuple[Run, ...]
    properties: tuple[str, ...]
    sources: tuple[str, ...] = ()
    lines: object = None

    def __hash__(self) -> int:
        # The content key (the file's SHA-256 and the device model's), what
        # the engines' caches are keyed by; equality stays field-wise.
        return hash((self.digest, self.path, self.device))

    def line_of(self, *path) -> int:
        """The line declaring ``path`` (or its nearest declared prefix; 1 if none)."""
        return self.lines.line(path) if self.lines is not None else 1

    def run(self, name: str) -> Run:
        """The run called ``name`` (KeyError if none)."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)
