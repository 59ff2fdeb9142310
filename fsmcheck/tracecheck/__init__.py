"""Trace validation: QEMU's VFIO migration traces checked against a model.

``fsmcheck check-trace TRACE...`` reads QEMU trace-event logs, QMP
``VFIO_MIGRATION`` event logs and ITF traces (format detected from content,
:mod:`.detect`), replays QEMU's semantics (:mod:`.semantics`), judges every
device's requests, recorded states and data events against the model
(:mod:`.device`, :mod:`.check`) and the P2P quiesce rule across devices
(:mod:`fsmcheck.semantics.p2p`); it prints a table per device, the findings
(:mod:`.output`), ``--json`` and ``--sarif`` (:mod:`.sarif`).
"""

from .check import DeviceReport, TraceReport, Violation, check_trace
from .detect import TraceInputError, TraceSource, open_trace
from .rules import RULES, Rule

__all__ = ["check_trace", "open_trace", "TraceInputError", "TraceSource", "TraceReport", "DeviceReport",
           "Violation", "RULES", "Rule"]
