"""The P2P quiesce rule over the devices of one user context.

The rule is the model's ``[p2p]`` table (:class:`~fsmcheck.model.schema.P2PRule`),
named by two groups: ``initiating`` (states in which a device may start new
P2P DMA) and ``accepting`` (states in which a device takes P2P DMA). At no
point may one device be in an initiating state while another is outside the
accepting states. Source: vfio.h, the paragraph on the optional peer to peer
quiescent state (Linux 6.12, ``include/uapi/linux/vfio.h``).

This module is the one place the rule is evaluated; the trace checker, the
composed multi-device models and the single-device property all call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model.schema import Model

__all__ = ["QuiesceViolation", "initiates", "accepts", "quiesce_violations", "lacks_p2p"]


@dataclass(frozen=True)
class QuiesceViolation:
    """Device ``initiator`` may initiate P2P DMA (in state ``initiator_state``)
    while device ``blocked`` cannot take it (in state ``blocked_state``)."""

    initiator: str
    initiator_state: str
    blocked: str
    blocked_state: str

    def __str__(self) -> str:
        return (f"{self.initiator} is {self.initiator_state} (may initiate P2P DMA) while "
                f"{self.blocked} is {self.blocked_state} (cannot take it)")


def _rule(model: Model):
    if model.p2p is None:
        raise ValueError(f"model {model.name!r} declares no [p2p] rule")
    return model.p2p


def initiates(model: Model, state: str) -> bool:
    """True when a device in ``state`` may initiate new P2P DMA.

    Raises:
        ValueError: the model has no ``[p2p]`` table.
    """
    return state in model.groups[_rule(model).initiating]


def accepts(model: Model, state: str) -> bool:
    """True when a device in ``state`` takes P2P DMA (it runs).

    Raises:
        ValueError: the model has no ``[p2p]`` table.
    """
    return state in model.groups[_rule(model).accepting]


def quiesce_violations(model: Model, states: Mapping[str, str]) -> list[QuiesceViolation]:
    """Every (initiator, blocked) pair that breaks the rule in one global state.

    Args:
        model: a model with a ``[p2p]`` table (``vfio_v2``).
        states: device name -> the state name it is in at this point.

    Returns:
        The violations, ordered by initiator then blocked device (in the
        mapping's order); empty when the global state is safe. A single
        device never violates the rule.

    Raises:
        ValueError: the model has no ``[p2p]`` table.
    """
    rule = _rule(model)
    init, acc = set(model.groups[rule.initiating]), set(model.groups[rule.accepting])
    out = []
    for a, sa in states.items():
        if sa not in init:
            continue
        for b, sb in states.items():
            if b != a and sb not in acc:
                out.append(QuiesceViolation(a, sa, b, sb))
    return out


def lacks_p2p(model: Model, flags: Mapping[str, Iterable[str]]) -> list[str]:
    """Devices (of several) whose flag set lacks the rule's P2P flag.

    vfio.h: without the flag the P2P states "behave as though the device was
    fully running", so such a device cannot be quiesced while others stop.

    Args:
        flags: device name -> its feature flags.

    Returns:
        The devices without the flag, in the mapping's order; empty with one
        device, or when the rule names no flag.
    """
    rule = _rule(model)
    if rule.flag is None or len(flags) < 2:
        return []
    return [d for d, f in flags.items() if rule.flag not in set(f)]
