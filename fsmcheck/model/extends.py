"""``extends``: a model file that states only its change to another.

A variant names its base (``extends = "vfio_v2"``: a shipped model's name, or
a path relative to the variant's file) and holds only what differs. The
resolved document is the base's with the variant's merged in:

- tables merge key by key; any other value the variant gives replaces the
  base's (a plain array is replaced whole);
- the arrays of tables match entries by key (:data:`MATCH`): a variant entry
  with the key of a base entry is merged into it, in the base's position;
  any other entry is appended;
- removal is explicit: an array entry with ``remove = true`` deletes the
  base entry of its key; ``remove = ["walk", "model.sources"]`` at the top
  deletes tables or keys.

Every key of the resolved document keeps the file and line that declared it
(:class:`~.positions.KeyLines` with files), so diagnostics name the base file
for what the base declares and the variant for what it declares. A base may
extend another; a cycle is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .diagnostics import Diagnostic, ModelError
from ..inputs import directory_of
from ..inputs.positions import KeyLines

__all__ = ["MATCH", "resolve"]

#: The arrays of tables whose entries match by key, and the keys.
MATCH = {
    "states": ("name",),
    "arcs": ("from", "to", "needs"),
    "blocked": ("from", "to"),
    "capabilities": ("name",),
}

#: Longest chain of ``extends`` followed.
MAX_DEPTH = 8

Located = dict  # key path -> (file, line)


def resolve(path: Path, data: dict, lines: KeyLines,
            read: Callable[[Path], tuple[dict, KeyLines]], *, match: dict[str, tuple[str, ...]] = MATCH,
            _seen: tuple = ()) -> tuple[dict, KeyLines]:
    """The document ``data`` of file ``path`` (its keys' lines in ``lines``)
    with its ``extends`` resolved; ``read(path)`` parses another model file.
    ``match`` names the top-level arrays of tables whose entries match by key
    (:data:`MATCH`, a device model's; an orchestration file passes its own).

    Returns ``(data, lines)`` unchanged for a file without ``extends``.

    Raises:
        ModelError: ``extends`` or ``remove`` is malformed, names no model, or
            forms a cycle; a removal matches nothing; or reading the base
            failed (its own diagnostics).
    """
    if "extends" not in data:
        if "remove" in data:
            raise _error(path, lines, ("remove",), "only a model that extends another removes keys")
        return data, lines
    base_path = _base_path(path, lines, data["extends"])
    if base_path in _seen or len(_seen) >= MAX_DEPTH:
        chain = " -> ".join(str(p) for p in (*_seen, path, base_path))
        raise _error(path, lines, ("extends",), f"extends forms a cycle or a chain too long: {chain}")
    base_data, base_lines = read(base_path)
    base_data, base_lines = resolve(base_path, base_data, base_lines, read, match=match, _seen=(*_seen, path))
    out: Located = {}
    merged = _table(base_data, _located(base_data, base_lines, base_path), (),
                    {k: v for k, v in data.items() if k not in ("extends", "remove")},
                    _located(data, lines, path), (), out, path, match)
    for key in _removals(path, lines, data.get("remove", [])):
        _remove_key(merged, key, out, path, lines)
    files = {kp: f for kp, (f, _) in out.items()}
    return merged, KeyLines({kp: line for kp, (_, line) in out.items()}, files)


def _error(path: Path, lines: KeyLines, kp: tuple, message: str) -> ModelError:
    file, line = lines.where(kp)
    return ModelError([Diagnostic(file or str(path), line, ".".join(map(str, kp)), message)])


def _base_path(path: Path, lines: KeyLines, name) -> Path:
    if not isinstance(name, str) or not name:
        raise _error(path, lines, ("extends",), f"expected a model name or file, got {name!r}")
    if "/" not in name and not name.endswith(".toml"):
        from .shipped import shipped_model_path

        try:
            return shipped_model_path(name).resolve()
        except FileNotFoundError as exc:
            raise _error(path, lines, ("extends",), str(exc)) from None
    target = (directory_of(path) / name).resolve()
    if not target.is_file():
        raise _error(path, lines, ("extends",), f"no such model file {str(target)!r}")
    return target


def _located(data, lines: KeyLines, path: Path) -> Located:
    """Every key path of ``data`` with the file and line declaring it (or
    its nearest declared prefix)."""
    file = str(path)
    out: Located = {}
    stack = [((), data)]
    while stack:
        kp, value = stack.pop()
        found, line = lines.where(kp)
        out[kp] = (found or file, line)
        if isinstance(value, dict):
            stack.extend((kp + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((kp + (i,), v) for i, v in enumerate(value))
    return out


def _copy(src: Located, src_kp: tuple, out: Located, dst_kp: tuple) -> None:
    n = len(src_kp)
    for kp, where in src.items():
        if kp[:n] == src_kp:
            out[dst_kp + kp[n:]] = where


def _table(base: dict, bpos: Located, bkp: tuple, child: dict, cpos: Located, ckp: tuple,
           out: Located, path: Path, match: dict) -> dict:
    merged = dict(base)
    _copy(bpos, bkp, out, ckp)  # the base's keys, at the merged path
    out[ckp] = cpos.get(ckp, out.get(ckp))
    for key, value in child.items():
        kp = ckp + (key,)
        old = base.get(key)
        if ckp == () and key in match and isinstance(old, list) and isinstance(value, list):
            merged[key] = _array(key, match[key], old, bpos, value, cpos, out, path)
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _table(old, bpos, bkp + (key,), value, cpos, kp, out, path, match)
        else:
            for stale in [k for k in out if k[:len(kp)] == kp]:
                del out[stale]
            merged[key] = value
            _copy(cpos, kp, out, kp)
    return merged


def _match_key(fields: tuple[str, ...], entry) -> tuple | None:
    """The key an array entry matches by, or None (not a table, or a key value of
    the wrong type: such an entry matches nothing, and the schema reports it)."""
    if not isinstance(entry, dict):
        return None
    parts = []
    for field in fields:
        value = entry.get(field, [] if field == "needs" else None)
        if isinstance(value, list):
            value = tuple(sorted(map(str, value)))
        elif isinstance(value, dict):
            return None
        parts.append(value)
    return tuple(parts)


def _array(name: str, fields: tuple[str, ...], base: list, bpos: Located, child: list, cpos: Located,
           out: Located, path: Path) -> list:
    for stale in [k for k in out if k[:1] == (name,)]:
        del out[stale]
    out[(name,)] = bpos.get((name,)) or cpos.get((name,))
    entries = [(e, bpos, (name, i)) for i, e in enumerate(base)]
    index = {_match_key(fields, e): i for i, e in enumerate(base) if _match_key(fields, e) is not None}
    removed = set()
    for j, entry in enumerate(child):
        key = _match_key(fields, entry)
        at = index.get(key)
        if isinstance(entry, dict) and entry.get("remove") is True:
            if at is None:
                file, line = cpos[(name, j)]
                raise ModelError([Diagnostic(file, line, f"{name}[{j}]",
                                             f"remove = true matches no {name} entry of the base "
                                             f"(matched by {', '.join(fields)})")])
            removed.add(at)
        elif at is not None:
            entries[at] = ("merge", entries[at], (entry, cpos, (name, j)))
        else:
            entries.append((entry, cpos, (name, j)))
    merged = []
    for i, item in enumerate(entries):
        if i in removed:
            continue
        dst = (name, len(merged))
        if item[0] == "merge":
            (b, bp, bk), (c, cp, ck) = item[1], item[2]
            sub: Located = {}
            value = _table(b, bp, bk, c, cp, ck, sub, path, {})
            n = len(ck)
            for kp, where in sub.items():
                out[dst + kp[n:]] = where
        else:
            value, src, kp = item
            _copy(src, kp, out, dst)
        merged.append(value)
    return merged


def _removals(path: Path, lines: KeyLines, value) -> list[tuple[str, ...]]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _error(path, lines, ("remove",), "expected an array of dotted key names (\"walk\", \"model.sources\")")
    return [tuple(v.split(".")) for v in value]


def _remove_key(merged: dict, key: tuple, out: Located, path: Path, lines: KeyLines) -> None:
    table = merged
    for part in key[:-1]:
        table = table.get(part) if isinstance(table, dict) else None
    if not isinstance(table, dict) or key[-1] not in table:
        raise _error(path, lines, ("remove",), f"remove: the base has no key {'.'.join(key)!r}")
    del table[key[-1]]
    for stale in [k for k in out if k[:len(key)] == key]:
        del out[stale]
