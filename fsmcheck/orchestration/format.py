"""The orchestration file format as a JSON Schema: the loader's structural
checks (:func:`fsmcheck.inputs.schema.problems`) and the format reference.

What the schema cannot say -- a state, group, flag or phase name that must
exist in the device model or the file, a recover state -- the loader
(:mod:`.loader`) checks after.
"""

from __future__ import annotations

from ..inputs.schema import boolean, entries, integer, names, string, table

__all__ = ["FORMAT_VERSION", "PROPERTIES", "SCHEMA"]

#: The format version this loader reads.
FORMAT_VERSION = 1

#: Properties an orchestration model may list.
PROPERTIES = ("p2p-safety", "progress", "stopped-vm")

_STATES = "states of the device model or groups (the file's or the device model's)"

_RULE = table("one case of the callback: `{ in, needs, runstate, request, recover }`", {
    "in": names(f"the {_STATES} it applies to (default: every state)"),
    "needs": names("feature flags the device must have"),
    "runstate": names("QEMU RunStates of the run it applies to (default: any)"),
    "request": string("the device_state requested (a requestable state)"),
    "recover": string("vfio_migration_set_state()'s recover state: a state, or `current` (default: the device "
                      "model's error state)"),
}, ["request"])

#: The orchestration file format (JSON Schema draft 2020-12).
SCHEMA: dict = table("An orchestration model (TOML): the callbacks a VMM makes on every device of one "
                     "migration, phase by phase (docs/orchestration.md). A variant may instead give `extends` "
                     "and only its change; its phases and runs match by `name`.", {
    "format": integer("the orchestration-format version; this fsmcheck reads 1"),
    "orchestration": table("what the model is", {
        "name": string("the model's name"),
        "title": string("a one-line title for reports"),
        "device_model": string("the per-device model (a v2 model with [p2p] and [combination] rules): a path "
                               "relative to the file declaring it (to the current directory for standard input)"),
        "default_flags": names("the flag set of every device unless --flags chooses (default: the largest)"),
        "properties": names("the properties to check (default: all)", item=string("", enum=list(PROPERTIES))),
        "sources": names("the documents the model is written from"),
    }, ["name", "device_model"]),
    "groups": {"type": "object", "additionalProperties": names("the group's states"),
               "description": "named groups of the device model's states: GROUP = [states]"},
    "phases": entries("`[[phases]]`: one callback, called once for every device a rule applies to", {
        "name": string("the phase's name (`stop-prepare`)"),
        "callback": string("the QEMU function (`vfio_vmstate_change_prepare`)"),
        "event": string("what calls it"),
        "rules": {"type": "array", "items": _RULE,
                  "description": "the callback's cases, the first applicable wins; none: the device is skipped"},
        "on_error": string("`continue` (default: an error is not reported), `abort` (after this phase a run "
                           "with an error goes on with its abort phases) or `abort-now` (right after the "
                           "failing callback)", enum=["abort", "abort-now", "continue"]),
        "closes_data_fd": boolean("the callback closes QEMU's data_fd of every device"),
        "vm": string("`stops` (the VM is stopped once this phase is done) or `starts` (the VM runs from this "
                     "phase on)", enum=["", "stops", "starts"]),
        "source": string("the QEMU file and function"),
    }, ["name", "rules"], minItems=1),
    "runs": entries("`[[runs]]`: a sequence of phases from the state at open", {
        "name": string("the run's name (`migrate-source`)"),
        "runstate": string("QEMU's RunState the VM is stopped to (default `paused`)"),
        "phases": names("the phases of a successful run", minItems=1),
        "abort": names("the phases after an abort (none: QEMU exits)"),
        "abort_from": {"type": "object", "additionalProperties": names("abort phases"),
                       "description": "PHASE = the abort phases after an abort from that phase"},
        "target": names(f"the {_STATES} every device must end in", minItems=1),
        "abort_target": names(f"the {_STATES} every device must end in after the abort phases"),
        "p2p_from": string("the phase from which P2P safety is checked (default: everywhere)"),
        "source": string("where the run is written (QEMU file and function)"),
    }, ["name", "target"], minItems=1),
}, ["format", "orchestration", "phases", "runs"])

