"""The rules ``fsmcheck check-trace`` checks, each with the sentence it comes from.

A finding names its rule id; the text output, ``--json`` and ``--sarif``
(one SARIF rule per id) all take the statement and source from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.schema import Model

__all__ = ["Rule", "RULES", "rule", "source_of"]


@dataclass(frozen=True)
class Rule:
    """A checked rule: its id, what it requires, and the source sentence."""

    id: str
    statement: str
    source: str


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("request-accepted",
         "Each request is accepted by the model from the recorded current state under the device's flag set.",
         "vfio.h: \"The remaining possible transitions are interpreted as combinations of the above FSM "
         "arcs\"; \"The optional states cannot be used with SET_STATE if the device does not support "
         "them\"; STOP_COPY -> PRE_COPY(_P2P) \"are not permitted and return error if requested\""),
    Rule("error-exit",
         "No request is made of a device in ERROR; only a reset leaves it.",
         "vfio.h: \"To recover from ERROR VFIO_DEVICE_RESET must be used to return the device_state "
         "back to RUNNING.\""),
    Rule("recorded-state",
         "After a request QEMU records the new state (success), the recover state (failure) or RUNNING "
         "(reset); it records no state without a request.",
         "QEMU hw/vfio/migration.c vfio_migration_set_state(): vfio_migration_set_device_state() is "
         "called after a successful ioctl, after setting the recover state, and with RUNNING after "
         "VFIO_DEVICE_RESET"),
    Rule("recovery",
         "A failed request is followed by a legal recovery: a request of the recover state the model "
         "accepts from a state along the failed request's path, or a reset.",
         "vfio.h: \"the user may see any step along the path in the device_state if SET_STATE fails\"; "
         "\"any transition request can be failed with an errno return and may then move the "
         "device_state into ERROR\""),
    Rule("data-session",
         "Save data only in the saving group with a session started, load data only in RESUMING, "
         "nothing after the session that carried it ended.",
         "vfio.h: \"PRE_COPY, PRE_COPY_P2P and STOP_COPY form the \"saving group\" of states which "
         "share a data transfer session\"; STOP -> RESUMING \"will return a new data_fd\"; \"The "
         "PRE_COPY arc will terminate a data transfer session.\""),
    Rule("p2p-quiesce",
         "At no point may one device be able to initiate P2P DMA while another device cannot take it.",
         "vfio.h: the P2P states are \"a quiescent state for the device for the purposes of managing "
         "multiple devices within a user context where peer-to-peer DMA between devices may be "
         "active\"; RUNNING_P2P and PRE_COPY_P2P \"must prevent the device from initiating any new "
         "P2P DMA\""),
    Rule("p2p-flag",
         "With several devices in one trace, every device supports the P2P states.",
         "vfio.h: \"For the purpose of specification the states behave as though the device was fully "
         "running if not supported.\""),
    Rule("vm-stopped",
         "No device enters a running state (RUNNING, PRE_COPY: the model's P2P initiating group) while the VM "
         "is stopped.",
         "QEMU system/runstate.c vm_state_notify() runs the VM state-change handlers, and hw/vfio/migration.c "
         "vfio_vmstate_change() asks for RUNNING only when the VM runs (STOP or STOP_COPY when it stops); "
         "vfio.h: \"While in RUNNING the device is fully operational, the device may generate interrupts, DMA, "
         "respond to MMIO\" (and PRE_COPY \"is running normally\")"),
    Rule("event-format",
         "Each line of a known event has the arguments of its format; no line is truncated.",
         "QEMU hw/vfio/trace-events (QEMU 10); QAPI event VFIO_MIGRATION (qapi/vfio.json)"),
)}


def rule(rule_id: str) -> Rule:
    """The :class:`Rule` called ``rule_id`` (KeyError if none)."""
    return RULES[rule_id]


def source_of(model: Model, rule_id: str) -> str:
    """The source sentence of ``rule_id`` for ``model``: the P2P rules quote
    the model's own ``[p2p] source`` when it has one, the others :data:`RULES`."""
    if rule_id == "p2p-quiesce" and model.p2p is not None and model.p2p.source:
        return model.p2p.source
    return RULES[rule_id].source
