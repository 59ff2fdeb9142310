"""The property registry: every property fsmcheck checks, in one place.

A :class:`Property` is one registry entry: its name, the models it applies
to, its one-line statement for the report, its source, and the name of its
implementation, which every engine (:class:`fsmcheck.engines.Engine`)
provides. The model loader reads the names from here (``[properties]
check``), the verifier the entries (:func:`applicable`), the report the
statements and sources. A property is decided per configuration (flag set and
profile), or once per model when its ``scope`` is ``"model"``; those of
orchestration models (:data:`ORCHESTRATION`) per run, flag sets and failure
budget. Adding a property: docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .schema import Config, Model

__all__ = ["Property", "PROPERTIES", "NAMES", "ORCHESTRATION", "ORCHESTRATION_NAMES", "applicable", "requirement"]


@dataclass(frozen=True)
class Property:
    """A named property: ``statement(model, config)`` words it for one instance."""

    name: str
    scope: str
    needs: str
    applies: Callable[[Model], bool]
    statement: Callable[[Model, Config], str]
    source: str

    @property
    def implementation(self) -> str:
        """The name every engine implements the property under: the
        property's name as a Python identifier (``combination-table`` ->
        ``combination_table``)."""
        return self.name.replace("-", "_")


def _bits(v: int, model: Model) -> str:
    return f"{v:0{max(model.mask.bit_length(), 1)}b}"


def _requestable_values(model: Model) -> str:
    return ", ".join(_bits(s.value, model) for s in model.states if s.requestable)


def _no_invalid_statement(model: Model) -> str:
    parts = []
    bad = [model.describe(s.name) for s in model.states if not s.requestable and s.name != model.error]
    if bad:
        parts.append("reaches " + ", ".join(bad))
    if model.error:
        parts.append(f"enters or leaves the error state {model.describe(model.error)}")
    return "no successful request " + (", or ".join(parts) or "reaches a non-requestable state")


def _walk_bound(model: Model) -> int:
    return len(model.states)


PROPERTIES: tuple[Property, ...] = (
    Property(
        "validity", "model", "a bit encoding with a validity predicate",
        lambda m: m.encoding == "bits" and m.valid is not None,
        lambda m, c: (f"VALID(s) <=> (s & {m.mask:#x}) in {{{_requestable_values(m)}}} for all "
                      f"2^{m.width} values of device_state (reserved bits irrelevant)"),
        "seed 000 (VFIO_DEVICE_STATE_VALID); SPEC 1",
    ),
    Property(
        "no-invalid-entry", "config", "",
        lambda m: True,
        lambda m, c: _no_invalid_statement(m),
        "SPEC 1 (invalid writes fail); vfio.h (ERROR cannot be specified)",
    ),
    Property(
        "reset", "config", "",
        lambda m: True,
        lambda m, c: (f"the state at open is {m.describe(m.initial)}; reset from every state"
                      + (f", {m.error} included," if m.error else "") + f" gives {m.describe(m.initial)}"),
        "seed 000 (initial 001, reset to 001); vfio.h VFIO_DEVICE_RESET",
    ),
    Property(
        "reachability", "config", "",
        lambda m: True,
        lambda m, c: (f"every accepted state is reachable from {m.describe(m.initial)}, and "
                      f"{m.describe(m.initial)} from every state (reset allowed)"),
        "SPEC 1 and 2",
    ),
    Property(
        "error-exit", "config", "an error state ([device] error)",
        lambda m: m.error is not None,
        lambda m, c: f"the error state {m.describe(m.error)} is left only by reset",
        "SPEC 1 (only way out of 110); vfio.h (any -> ERROR)",
    ),
    Property(
        "rejections", "config", "a [combination] rule",
        lambda m: m.combination is not None,
        lambda m, c: (f"requests of {m.error or 'non-requestable states'}, of unsupported states, of "
                      f"values naming no state, from {m.error or 'the error state'}, and blocked pairs fail "
                      "with EINVAL"),
        "vfio.h (optional states, ERROR, blocked STOP_COPY arcs)",
    ),
    Property(
        "combination-table", "config", "a [combination] rule",
        lambda m: m.combination is not None,
        lambda m, c: (f"every accepted pair has exactly one shortest admissible path, never passing "
                      f"{m.error or 'the error state'} and using only arcs of its flag set"),
        "vfio.h (combination transitions); SPEC 2",
    ),
    Property(
        "sessions", "config", "[sessions] groups",
        lambda m: bool(m.session_groups),
        lambda m, c: ("arc session effects match the session groups; along every derived path a "
                      "session starts exactly when a session group is entered and ends exactly when "
                      "it is left"),
        "vfio.h (saving group, data_fd); seed 002",
    ),
    Property(
        "walk-terminates", "config", "a [walk]",
        lambda m: m.walk is not None,
        lambda m, c: (f"the walk under review ends within {_walk_bound(m)} steps from every "
                      "(current, requested) pair"),
        "SPEC 4 (the 2022-2026 skip-loop hang)",
    ),
    Property(
        "walk-agrees", "config", "a [walk]",
        lambda m: m.walk is not None,
        lambda m, c: "the walk under review takes exactly the derived path, and rejects exactly the derived rejections",
        "vfio.h (refer to vfio_mig_get_next_state())",
    ),
    Property(
        "p2p-quiesce", "config", "a [p2p] rule",
        lambda m: m.p2p is not None,
        lambda m, c: ("the P2P quiesce rule holds in every reachable state of one device -- vacuously: "
                      "the rule relates two devices; compose devices with an orchestration model "
                      "(models/qemu_orchestration.toml, `fsmcheck verify ... --devices N`)"),
        "vfio.h: the P2P quiescent states; fsmcheck.semantics.p2p",
    ),
    Property(
        "correspondence", "config", "a [correspondence]",
        lambda m: m.correspondence is not None,
        lambda m, c: (f"every arc between states with an encoding in {m.correspondence.model_path.name} "
                      f"is a transition of its {m.correspondence.profile!r} profile; open and reset states agree"),
        "SPEC 3",
    ),
)


def _initiating(orch) -> str:
    return ", ".join(orch.device.groups[orch.device.p2p.initiating])


def _blocking(orch) -> str:
    return ", ".join(s for s in orch.device.state_names if s not in orch.device.groups[orch.device.p2p.accepting])


#: The properties of orchestration models (statements over an
#: :class:`~fsmcheck.orchestration.schema.Orchestration`, read duck-typed).
ORCHESTRATION: tuple[Property, ...] = (
    Property(
        "p2p-safety", "config", "an orchestration model", lambda m: True,
        lambda m, c: (f"in every global state between callbacks, no device that may initiate P2P DMA "
                      f"({_initiating(m)}) while another cannot take it ({_blocking(m)})"),
        "vfio.h: the P2P quiescent states (RUNNING_P2P, PRE_COPY_P2P); QEMU 10 hw/vfio/migration.c",
    ),
    Property(
        "progress", "config", "an orchestration model", lambda m: True,
        lambda m, c: ("every run ends; at its end every device is in the run's target (or, with failures, "
                      "reset) and no data session is left open"),
        "QEMU 10 hw/vfio/migration.c (vfio_migration_set_state, vfio_save_cleanup); seed 002 (data_fd)",
    ),
    Property(
        "stopped-vm", "config", "an orchestration model", lambda m: True,
        lambda m, c: ("once vm_state_notify(running=false) is done and until vm_start(), no device is in a "
                      f"state that runs ({_initiating(m)}): the devices of a stopped VM do not run"),
        "QEMU 10 system/runstate.c (do_vm_stop, vm_start); hw/vfio/migration.c vfio_vmstate_change()",
    ),
)

_BY_NAME = {p.name: p for p in PROPERTIES + ORCHESTRATION}

#: The registered names, in registry order (what ``[properties] check`` may list).
NAMES: tuple[str, ...] = tuple(p.name for p in PROPERTIES)

#: The orchestration properties' names (what ``[orchestration] properties`` may list).
ORCHESTRATION_NAMES: tuple[str, ...] = tuple(p.name for p in ORCHESTRATION)


def requirement(name: str) -> Property:
    """The :class:`Property` called ``name``, of either tuple (KeyError if unknown)."""
    return _BY_NAME[name]


def applicable(model, registry: tuple[Property, ...] | None = None) -> list[Property]:
    """The model's listed properties in the canonical order of ``registry``
    (default :data:`PROPERTIES`; :data:`ORCHESTRATION` for an orchestration
    model); every applicable property when the model lists none.

    Raises:
        ValueError: a listed property does not apply to the model; the
            message names what the property needs.
    """
    registry = PROPERTIES if registry is None else registry
    if model.properties is None:
        return [prop for prop in registry if prop.applies(model)]
    out = []
    for prop in registry:
        if prop.name not in model.properties:
            continue
        if not prop.applies(model):
            raise ValueError(f"property {prop.name!r} needs {prop.needs}")
        out.append(prop)
    return out
