"""Structure checked by a JSON Schema: every input file kind's types, required
keys, unknown keys, enums and non-empty values, each problem at its key's
``file:line``.

Each kind states its format once as a JSON Schema (draft 2020-12) with a
``description`` on every key: the model (:mod:`fsmcheck.model.format`), the
orchestration file, errata and the rule catalogue. :func:`problems` checks a
parsed document against it, :func:`load_toml` reads, parses and checks a
TOML file in one call, and :func:`reference` renders a schema as the docs'
format reference. What a schema cannot say (a name that must exist
elsewhere, an expression) each loader checks after.
"""

from __future__ import annotations

import functools
import json
import os

from .diagnostic import Diagnostic, InputError
from .documents import parse_toml
from .positions import KeyLines, index_lines
from .source import DEFAULT_MAX_BYTES, Text, read_text

__all__ = ["boolean", "diagnostics", "entries", "integer", "key_name", "kind_of", "load_toml", "names", "problems",
           "read_toml", "reference", "string", "table"]


# -- building a schema: one helper per kind of value, each with its description --------------
def string(doc: str, **more) -> dict:
    """A string key (``minLength=1``: non-empty; ``enum=[...]``: one of)."""
    return {"type": "string", "description": doc, **more}


def integer(doc: str, **more) -> dict:
    """An integer key (never a float or a boolean)."""
    return {"type": "integer", "description": doc, **more}


def boolean(doc: str) -> dict:
    """A boolean key."""
    return {"type": "boolean", "description": doc}


def names(doc: str, *, item: dict | None = None, **more) -> dict:
    """An array of strings (``item``: the schema of each; ``minItems=1``: non-empty)."""
    return {"type": "array", "items": item or {"type": "string"}, "description": doc, **more}


def table(doc: str, properties: dict, required=(), **more) -> dict:
    """A table of exactly ``properties`` (any other key is unknown), ``required`` among them."""
    return {"type": "object", "description": doc, "properties": properties, "required": list(required),
            "additionalProperties": False, **more}


def entries(doc: str, properties: dict, required=(), **more) -> dict:
    """An array of tables (``[[name]]``), each a :func:`table`."""
    return {"type": "array", "description": doc, "items": table(doc, properties, required), **more}


_KINDS = {"integer": "an integer", "string": "a string", "boolean": "a boolean", "array": "an array",
          "object": "a table", "number": "a number"}


def kind_of(value) -> str:
    """``an integer``, ``a table``... for a parsed TOML value (in messages)."""
    kinds = {bool: "a boolean", int: "an integer", str: "a string", list: "an array", dict: "a table",
             float: "a float"}
    return kinds.get(type(value), type(value).__name__)


def _expected(schema: dict) -> str:
    """What ``schema`` takes, in words: ``a non-empty string``, ``"v1" or "v2"``."""
    if "enum" in schema:
        words = [json.dumps(v) for v in schema["enum"]]
        return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
    kind = _KINDS[schema["type"]]
    if schema.get("minLength") or schema.get("minItems") or schema.get("minProperties"):
        kind = "a non-empty " + kind.split(" ", 1)[1]
    if "minimum" in schema:
        kind += f" {schema['minimum']}..{schema['maximum']}" if "maximum" in schema else f" >= {schema['minimum']}"
    items = schema.get("items")
    if schema["type"] == "array" and isinstance(items, dict) and items.get("type") in ("string", "object"):
        kind += " of tables" if items["type"] == "object" else \
            (" of non-empty strings" if items.get("minLength") else " of strings")
    return kind


@functools.lru_cache(maxsize=None)
def _validator(schema_json: str):
    """A validator of the schema (jsonschema is imported when a file is read,
    not when a command's ``--help`` is)."""
    import jsonschema

    # TOML's integers are Python ints; a float or a boolean is never one (JSON
    # Schema's "integer" would take 1.0, Python's int takes True).
    validator = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)),
    )
    return validator(json.loads(schema_json))


def problems(document: dict, schema: dict) -> list[tuple[tuple, str]]:
    """Every place ``document`` (a parsed file) breaks ``schema``, as ``(key
    path, message)``: a wrong type, value or empty value at the key, a missing
    required key at its table (a top-level one at its own name), an unknown key
    at the key. A value's wrong type is reported once, not once per keyword."""
    out, tables, typed = [], set(), set()
    for error in _validator(json.dumps(schema, sort_keys=True)).iter_errors(document):
        path = tuple(error.absolute_path)
        if error.validator in ("type", "enum", "minLength", "minItems", "minProperties", "minimum", "maximum"):
            if path not in typed:
                typed.add(path)
                out.append((path, f"expected {_expected(error.schema)}, got {kind_of(error.instance)} "
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
        else:  # pattern, const...: the schema's own description says what is wanted
            out.append((path, f"expected {error.schema.get('description', error.message)}, got {error.instance!r}"))
    return out


def key_name(keypath: tuple) -> str:
    """A key path as diagnostics name it: ``("arcs", 3, "to")`` -> ``arcs[3].to``."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath).removeprefix(".")


def diagnostics(path: str | os.PathLike, found: list[tuple[tuple, str]], lines: KeyLines) -> list[Diagnostic]:
    """``(key path, message)`` pairs as :class:`Diagnostic` items of file
    ``path``, each at the line (and file, for a resolved ``extends``) that
    declares its key or the nearest enclosing one, in line order."""
    out = []
    for keypath, message in found:
        file, line = lines.where(keypath)
        out.append(Diagnostic(file or str(path), line, key_name(keypath) or "<file>", message))
    return sorted(out, key=lambda d: d.line)


def read_toml(source: str | os.PathLike | Text, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Text, dict, KeyLines]:
    """A TOML file read (unless ``source`` is an already read :class:`Text`)
    and parsed: ``(text, document, key lines)``.

    Raises:
        InputError: the file is unreadable or not TOML (the guards of
            :func:`~.source.read_text` and :func:`~.documents.parse_toml`).
    """
    text = source if isinstance(source, Text) else read_text(source, max_bytes=max_bytes)
    return text, parse_toml(text), index_lines(text.text)


def load_toml(source: str | os.PathLike | Text, schema: dict, *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Text, dict, KeyLines]:
    """:func:`read_toml`, the document checked against ``schema``.

    Raises:
        InputError: as :func:`read_toml`, or the document breaks ``schema``:
            every problem, each at its line.
    """
    text, document, lines = read_toml(source, max_bytes=max_bytes)
    found = problems(document, schema)
    if found:
        raise InputError(diagnostics(text.path, found, lines))
    return text, document, lines


def _keys(spec: dict) -> tuple[dict, list]:
    """The keys a table, an array of tables or a map of tables declares, and the required ones."""
    for inner in (spec, spec.get("items"), spec.get("additionalProperties")):
        if isinstance(inner, dict) and "properties" in inner:
            return inner["properties"], inner.get("required", [])
    return {}, []


def reference(schema: dict, title: str) -> str:
    """``schema`` as a Markdown format reference: the schema's description,
    then one section per top-level key with its description and one line per
    key it holds (type, whether required, description)."""
    lines = [f"# {title}", "", schema["description"], ""]
    for table, spec in schema["properties"].items():
        required = " (required)" if table in schema.get("required", []) else ""
        lines += [f"## `{table}`{required}", "", spec["description"], ""]
        keys, needed = _keys(spec)
        for key, sub in keys.items():
            kind = sub.get("type", "any")
            lines.append(f"- `{key}` ({kind}{', required' if key in needed else ''}): {sub.get('description', '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
