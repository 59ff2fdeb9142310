"""The model file format as a JSON Schema: the loader's structural checks and
the format reference.

:data:`SCHEMA` says which tables and keys a model file has, their types and
which are required, each with a description. The loader checks every
document against it first (:func:`fsmcheck.inputs.schema.problems`: wrong
types and values, missing and unknown keys, each at the key's ``file:line``);
what the schema cannot say -- a state name that names no state, a bit outside
the mask -- the loader checks after. ``tools/docs_gen.py`` renders the schema
as the docs' model-format reference.
"""

from __future__ import annotations

from ..inputs.schema import boolean, entries, integer, names, string, table
from .schema import SESSION_EFFECTS

__all__ = ["SCHEMA"]


_SOURCE = string("the uAPI, kernel or seed text the declaration comes from")

#: The model file format (JSON Schema draft 2020-12).
SCHEMA: dict = table("A protocol model (TOML). A variant may instead give `extends` and only its change "
                      "(docs/architecture.md).", {
    "format": integer("the model-format version; this fsmcheck reads 1"),
    "model": table("what the model is", {
        "name": string("the model's name (a shipped model's name is its file's stem)"),
        "title": string("a one-line title for reports"),
        "encoding": string("`enum` (a state is a value) or `bits` (a state is a bit pattern of device_state)",
                           enum=["enum", "bits"]),
        "width": integer("bits in device_state, 1..64 (default 32)", minimum=1, maximum=64),
        "sources": names("the documents the model is written from"),
    }, ["name"]),
    "encoding": table("a bit-encoded model's encoding (with `encoding = \"bits\"`)", {
        "mask": integer("the bits of device_state that name a state"),
        "bits": {"type": "object", "description": "bit names: NAME = bit number inside the mask"},
        "valid": string("the validity predicate over `s` (Python syntax: & | ^ ~ << >> + -, comparisons, "
                      "and/or/not, A if C else B)"),
    }, ["mask", "valid"]),
    "device": table("the device's fixed states", {
        "initial": string("the state at open"),
        "reset": string("the state after VFIO_DEVICE_RESET"),
        "error": string("the error state, entered only by a failed request"),
    }, ["initial", "reset"]),
    "flags": table("feature flags (VFIO_DEVICE_FEATURE_MIGRATION)", {
        "bits": {"type": "object", "description": "FLAG = bit number 0..63",
                 "additionalProperties": integer("a bit number", minimum=0, maximum=63)},
        "always": names("flags every flag set has"),
        "sets": {"type": "array", "items": {"type": "array", "items": {"type": "string"}},
                 "description": "the defined flag sets, each an array of flag names (default: all flags)",
                 "minItems": 1},
    }),
    "states": entries("`[[states]]`: one per state", {
        "name": string("the state's name as the uAPI spells it"),
        "value": integer("its device_state value"),
        "needs": names("the feature flags that bring the state"),
        "requestable": boolean("whether a user may request it (default true)"),
        "doc": string("what the state is"),
    }, ["name", "value"], minItems=1),
    "groups": {"type": "object", "additionalProperties": names("the group's states"),
               "description": "named groups of states: GROUP = [states]"},
    "sessions": table("data sessions (data_fd)", {
        "groups": names("the groups in which a data session is open"),
        "directions": {"type": "object", "description": "GROUP = `read` or `write`",
                       "additionalProperties": string("a direction", enum=["read", "write"])},
    }),
    "arcs": entries("`[[arcs]]`: one step a driver implements", {
        "from": string("the current state"),
        "to": string("the next state"),
        "needs": names("flags that must all be set"),
        "unless": names("flags that must all be clear"),
        "session": string("`starts`, `keeps`, `ends` or `none` (default)", enum=list(SESSION_EFFECTS)),
        "tag": string("a class for profiles (v1: `required`, `agreed`)"),
        "source": _SOURCE,
    }, ["from", "to"]),
    "blocked": entries("`[[blocked]]`: requests that fail with EINVAL although a path exists", {
        "from": string("the current state"),
        "to": string("the requested state"),
        "source": _SOURCE,
        "unless": names("flags under which the request is not blocked"),
    }, ["from", "to"]),
    "combination": table("how a (current, requested) pair becomes a path of arcs", {
        "path": string("`shortest` (the only rule)", enum=["shortest"]),
        "no_interior": names("groups whose states may not be interior to a path"),
        "within_group": boolean("a path wholly inside one such group is admissible"),
    }),
    "profiles": {"type": "object", "description": "named arc selections: `[profiles.NAME]`", "minProperties": 1,
                 "additionalProperties": table("one profile", {
                     "arcs": string("`declared` (default) or `all-requestable`", enum=["declared", "all-requestable"]),
                     "tags": names("only the declared arcs with these tags"),
                     "doc": string("what the profile is"),
                 })},
    "walk": table("an implementation under review: the kernel's combination walk as data", {
        "source": _SOURCE,
        "exits": names("next states that end the skip loop although unsupported"),
        "reject": names("next states that fail the request with EINVAL"),
        "requires": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                     "description": "STATE = [flags it requires; `*` is every flag]"},
        "next": {"type": "object", "description": "CURRENT = { REQUESTED = next state }",
                 "additionalProperties": {"type": "object", "additionalProperties": string("a state name")}},
        "check_current": boolean("an unsupported current state fails the request (default true)"),
        "check_requested": boolean("an unsupported requested state fails the request (default true)"),
    }, ["next"]),
    "correspondence": table("a state map to another model (v2 -> v1)", {
        "model": string("the other model: a shipped name (`vfio_v1`) or a path relative to this file"),
        "profile": string("the other model's profile the arcs must map into"),
        "map": {"type": "object", "description": "STATE = the other model's state",
                "additionalProperties": string("a state name")},
    }, ["model", "profile", "map"]),
    "properties": table("the properties to check", {
        "check": names("property names (default: every applicable property)"),
    }),
    "region": table("the register fields of a region-based protocol (v1)", {
        "fields": entries("one register field", {
            "name": string("the field's name"),
            "offset": integer("its byte offset"),
            "width": integer("its width in bytes: 1, 2, 4 or 8"),
            "access": string("`ro` or `rw` (default)", enum=["ro", "rw"]),
        }, ["name", "offset", "width"]),
    }),
    "p2p": table("the P2P quiesce rule across the devices of one user context", {
        "initiating": string("the group of states that may initiate P2P DMA"),
        "accepting": string("the group of states that take P2P DMA"),
        "flag": string("the feature flag that brings the P2P states"),
        "source": _SOURCE,
    }, ["initiating", "accepting"]),
    "capabilities": entries("`[[capabilities]]`: optional device capabilities a pack tests", {
        "name": string("the capability's name as the uAPI spells it"),
        "feature": integer("the VFIO_DEVICE_FEATURE number a user opts in with (>= 0)", minimum=0),
        "needs": names("flags a flag set must have for it to apply"),
        "states": names("the states in which it is exercised"),
        "source": _SOURCE,
    }, ["name", "feature"]),
}, ["format", "model", "device", "states"])
