"""Composed multi-device models: a VMM's orchestration of N VFIO devices.

An orchestration model (``models/qemu_orchestration.toml``) describes how a
VMM drives the ``device_state`` of several devices through phases of
callbacks (QEMU 10: ``vm_state_notify()`` prepare and main callbacks, the
save/load handlers of ``hw/vfio/migration.c``); the per-device FSM is a v2
device model (``vfio_v2.toml``) from which every request's effect is
derived. Two engines decide its properties (P2P safety, progress, and
stopped-vm: no device runs while the VM is stopped), both over the same
counter abstraction (devices with the same flag set counted, not named):
the explicit engine, a breadth-first search of the counted product with
partial-order reduction (reported under the engine name ``networkx``), and
a z3 encoding (bounded model checking and k-induction). See
``docs/orchestration.md`` for the symmetry and reduction arguments.

Modules: :mod:`.schema` (the loaded model), :mod:`.format` (the file format's
JSON Schema), :mod:`.loader` (reading TOML, errors as ``file:line: key: message``;
:func:`.loader.load` reads any model file once and returns what it holds), :mod:`.semantics` (what a callback
does to one device, and the composed system), :mod:`.explicit`,
:mod:`.symbolic`, :mod:`.trace` (counterexamples as QEMU callbacks, ITF),
:mod:`.verify` (both engines, compared), :mod:`.diagram` (the per-phase
diagram), :mod:`.report` (the HTML report section).
"""

from .loader import load, load_orchestration
from .schema import Orchestration, Phase, Rule, Run

__all__ = ["Orchestration", "Phase", "Rule", "Run", "load", "load_orchestration"]
