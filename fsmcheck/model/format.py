"""The model file format as a JSON Schema: the loader's structural checks and
the format reference.

:data:`SCHEMA` says which tables and keys a model file has, their types and
which are required, each with a description. The loader checks every
document against it first (:func:`structural_problems`: wrong types, missing
and unknown keys, each at the key's ``file:line``); what the schema cannot
say -- a state name that names no state, a bit outside the mask -- the loader
checks after. :func:`format_reference` renders the schema as the docs'
model-format reference.
"""

from __future__ import annotations

import jsonschema

__all__ = ["SCHEMA", "format_reference", "kind_of", "structural_problems"]


def _str(doc: str) -> dict:
    return {"type": "string", "description": doc}


def _int(doc: str) -> dict:
    return {"type": "integer", "description": doc}


def _bool(doc: str) -> dict:
    return {"type": "boolean", "description": doc}


def _names(doc: str) -> dict:
    return {"type": "array", "items": {"type": "string"}, "description": doc}


def _table(doc: str, properties: dict, required=(), **more) -> dict:
    return {"type": "object", "description": doc, "properties": properties, "required": list(required),
            "additionalProperties": False, **more}


def _entries(doc: str, properties: dict, required=()) -> dict:
    return {"type": "array", "description": doc, "items": _table(doc, properties, required)}


_SOURCE = _str("the uAPI, kernel or seed text the declaration comes from")

#: The model file format (JSON Schema draft 2020-12).
SCHEMA: dict = _table("A protocol model (TOML). A variant may instead give `extends` and only its change "
                      "(docs/architecture.md).", {
    "format": _int("the model-format version; this fsmcheck reads 1"),
    "model": _table("what the model is", {
        "name": _str("the model's name (a shipped model's name is its file's stem)"),
        "title": _str("a one-line title for reports"),
        "encoding": _str("`enum` (a state is a value) or `bits` (a state is a bit pattern of device_state)"),
        "width": _int("bits in device_state, 1..64 (default 32)"),
        "sources": _names("the documents the model is written from"),
    }, ["name"]),
    "encoding": _table("a bit-encoded model's encoding (with `encoding = \"bits\"`)", {
        "mask": _int("the bits of device_state that name a state"),
        "bits": {"type": "object", "description": "bit names: NAME = bit number inside the mask"},
        "valid": _str("the validity predicate over `s` (Python syntax: & | ^ ~ << >> + -, comparisons, "
                      "and/or/not, A if C else B)"),
    }, ["mask", "valid"]),
    "device": _table("the device's fixed states", {
        "initial": _str("the state at open"),
        "reset": _str("the state after VFIO_DEVICE_RESET"),
        "error": _str("the error state, entered only by a failed request"),
    }, ["initial", "reset"]),
    "flags": _table("feature flags (VFIO_DEVICE_FEATURE_MIGRATION)", {
        "bits": {"type": "object", "description": "FLAG = bit number 0..63"},
        "always": _names("flags every flag set has"),
        "sets": {"type": "array", "items": {"type": "array", "items": {"type": "string"}},
                 "description": "the defined flag sets, each an array of flag names (default: all flags)"},
    }),
    "states": _entries("`[[states]]`: one per state", {
        "name": _str("the state's name as the uAPI spells it"),
        "value": _int("its device_state value"),
        "needs": _names("the feature flags that bring the state"),
        "requestable": _bool("whether a user may request it (default true)"),
        "doc": _str("what the state is"),
    }, ["name", "value"]),
    "groups": {"type": "object", "additionalProperties": _names("the group's states"),
               "description": "named groups of states: GROUP = [states]"},
    "sessions": _table("data sessions (data_fd)", {
        "groups": _names("the groups in which a data session is open"),
        "directions": {"type": "object", "description": "GROUP = `read` or `write`"},
    }),
    "arcs": _entries("`[[arcs]]`: one step a driver implements", {
        "from": _str("the current state"),
        "to": _str("the next state"),
        "needs": _names("flags that must all be set"),
        "unless": _names("flags that must all be clear"),
        "session": _str("`starts`, `keeps`, `ends` or `none` (default)"),
        "tag": _str("a class for profiles (v1: `required`, `agreed`)"),
        "source": _SOURCE,
    }, ["from", "to"]),
    "blocked": _entries("`[[blocked]]`: requests that fail with EINVAL although a path exists", {
        "from": _str("the current state"),
        "to": _str("the requested state"),
        "source": _SOURCE,
        "unless": _names("flags under which the request is not blocked"),
    }, ["from", "to"]),
    "combination": _table("how a (current, requested) pair becomes a path of arcs", {
        "path": _str("`shortest` (the only rule)"),
        "no_interior": _names("groups whose states may not be interior to a path"),
        "within_group": _bool("a path wholly inside one such group is admissible"),
    }),
    "profiles": {"type": "object", "description": "named arc selections: `[profiles.NAME]`",
                 "additionalProperties": _table("one profile", {
                     "arcs": _str("`declared` (default) or `all-requestable`"),
                     "tags": _names("only the declared arcs with these tags"),
                     "doc": _str("what the profile is"),
                 })},
    "walk": _table("an implementation under review: the kernel's combination walk as data", {
        "source": _SOURCE,
        "exits": _names("next states that end the skip loop although unsupported"),
        "reject": _names("next states that fail the request with EINVAL"),
        "requires": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                     "description": "STATE = [flags it requires; `*` is every flag]"},
        "next": {"type": "object", "description": "CURRENT = { REQUESTED = next state }"},
        "check_current": _bool("an unsupported current state fails the request (default true)"),
        "check_requested": _bool("an unsupported requested state fails the request (default true)"),
    }, ["next"]),
    "correspondence": _table("a state map to another model (v2 -> v1)", {
        "model": _str("the other model: a shipped name (`vfio_v1`) or a path relative to this file"),
        "profile": _str("the other model's profile the arcs must map into"),
        "map": {"type": "object", "description": "STATE = the other model's state"},
    }, ["model", "profile", "map"]),
    "properties": _table("the properties to check", {
        "check": _names("property names (default: every applicable property)"),
    }),
    "region": _table("the register fields of a region-based protocol (v1)", {
        "fields": _entries("one register field", {
            "name": _str("the field's name"),
            "offset": _int("its byte offset"),
            "width": _int("its width in bytes: 1, 2, 4 or 8"),
            "access": _str("`ro` or `rw` (default)"),
        }, ["name", "offset", "width"]),
    }),
    "p2p": _table("the P2P quiesce rule across the devices of one user context", {
        "initiating": _str("the group of states that may initiate P2P DMA"),
        "accepting": _str("the group of states that take P2P DMA"),
        "flag": _str("the feature flag that brings the P2P states"),
        "source": _SOURCE,
    }, ["initiating", "accepting"]),
    "capabilities": _entries("`[[capabilities]]`: optional device capabilities a pack tests", {
        "name": _str("the capability's name as the uAPI spells it"),
        "feature": _int("the VFIO_DEVICE_FEATURE number a user opts in with (>= 0)"),
        "needs": _names("flags a flag set must have for it to apply"),
        "states": _names("the states in which it is exercised"),
        "source": _SOURCE,
    }, ["name", "feature"]),
}, ["format", "model", "device"])

# TOML's integers are Python ints; a float or a boolean is never one (JSON
# Schema's "integer" would take 1.0, Python's int takes True).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)),
)

_KINDS = {"integer": "an integer", "string": "a string", "boolean": "a boolean", "array": "an array",
          "object": "a table", "number": "a number"}


def kind_of(value) -> str:
    """``an integer``, ``a table``... for a parsed TOML value (in messages)."""
    kinds = {bool: "a boolean", int: "an integer", str: "a string", list: "an array", dict: "a table",
             float: "a float"}
    return kinds.get(type(value), type(value).__name__)


def structural_problems(document: dict) -> list[tuple[tuple, str]]:
    """Every place ``document`` (a parsed model file) breaks :data:`SCHEMA`,
    as ``(key path, message)``: a wrong type at the key, a missing required
    key at its table (a top-level one at its own name), an unknown key at
    the key. In document order of the key paths."""
    out, tables = [], set()
    for error in _Validator(SCHEMA).iter_errors(document):
        path = tuple(error.absolute_path)
        if error.validator == "type":
            out.append((path, f"expected {_KINDS[error.validator_value]}, got {kind_of(error.instance)} "
                              f"{error.instance!r}"))
        elif error.validator == "required":  # one error per missing key: report the table's once
            if path not in tables:
                tables.add(path)
                out += [(path or (key,), f"missing required key {key!r}")
                        for key in error.validator_value if key not in error.instance]
        elif error.validator == "additionalProperties":
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            for key in error.instance:
                if key not in error.schema.get("properties", {}):
                    out.append((path + (key,), f"unknown key (expected one of: {allowed})"))
        else:  # pragma: no cover -- SCHEMA uses only the three above
            out.append((path, error.message))
    return out


def format_reference() -> str:
    """The model-format reference as Markdown, generated from :data:`SCHEMA`:
    one section per top-level table, one line per key with its type, whether
    it is required, and its description."""
    lines = ["# Model file format", "", SCHEMA["description"], ""]
    for table, spec in SCHEMA["properties"].items():
        required = " (required)" if table in SCHEMA["required"] else ""
        lines += [f"## `{table}`{required}", "", spec["description"], ""]
        keys = spec.get("properties") or (spec.get("items") or {}).get("properties") or \
            ((spec.get("additionalProperties") or {}).get("properties") if isinstance(
                spec.get("additionalProperties"), dict) else None) or {}
        needed = spec.get("required") or (spec.get("items") or {}).get("required") or []
        for key, sub in keys.items():
            kind = sub.get("type", "any")
            lines.append(f"- `{key}` ({kind}{', required' if key in needed else ''}): {sub.get('description', '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
