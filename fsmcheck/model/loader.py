"""Reading and validating model files.

:func:`load_model` turns a TOML model file into a :class:`~.schema.Model`.
Every problem found is reported, not only the first: the raised
:class:`ModelError` carries a list of :class:`Diagnostic`, each rendered as
``file:line: key: message``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..inputs import Diagnostic, InputError, Text, directory_of
from .diagnostics import ModelError
from .expr import PredicateError, parse_predicate
from .extends import resolve
from ..inputs.schema import key_name, problems, read_toml
from .format import SCHEMA
from .properties import NAMES
from .schema import (
    ALL_FLAGS, Arc, Blocked, Capability, CombinationRule, Correspondence,
    Model, P2PRule, Profile, State, Walk,
)

__all__ = ["Diagnostic", "ModelError", "load_model", "FORMAT_VERSION", "KNOWN_PROPERTIES"]

#: The model-format version this loader reads (the file's ``format`` key).
FORMAT_VERSION = 1

#: Property names a model may list under ``[properties] check`` (the registry's).
KNOWN_PROPERTIES = NAMES



class _Reader:
    """Typed access to the parsed document that records problems."""

    def __init__(self, path: Path, data: dict, lines):
        self.path, self.data, self.lines = path, data, lines
        self.problems: list[Diagnostic] = []

    def error(self, keypath: tuple, message: str) -> None:
        file, line = self.lines.where(keypath)
        self.problems.append(Diagnostic(file or str(self.path), line, key_name(keypath), message))

    def file_of(self, keypath: tuple) -> Path:
        """The file that declared ``keypath`` (a base's, for what a variant inherits)."""
        return Path(self.lines.where(keypath)[0] or self.path)

    @staticmethod
    def get(table: dict, key: str, kind, default=None):
        """``table[key]`` if it is of ``kind``, else ``default`` (the
        structural checks, :mod:`.format`, report a wrong type or a missing
        required key)."""
        value = table.get(key, default)
        return value if _is_kind(value, kind) else default


def _is_kind(value, kind) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list)
    return isinstance(value, kind)



def load_model(path: str | Path, *, text: Text | None = None) -> Model:
    """Read, validate and return the model in TOML file ``path`` (``text``:
    the file, already read: :func:`fsmcheck.orchestration.load` reads once).

    Returns:
        The validated :class:`~.schema.Model`, with ``digest`` the SHA-256 of
        the file's bytes.

    Raises:
        ModelError: the file is missing, unreadable, not TOML, or not a valid
            model; every problem is listed as ``file:line: key: message``.
            Nothing else is raised for any content of the file. A
            ``[correspondence]`` model is loaded too, and its state names and
            profiles checked against the map.
    """
    return _load(Path(path), link=True, text=text)


def _load(path: Path, *, link: bool, text: Text | None = None) -> Model:
    """:func:`load_model`; ``link`` also loads and checks the correspondence
    model (never followed further, so two models may name each other)."""
    raw, data, lines = _read(text or path)
    data, lines = resolve(path, data, lines, lambda p: _read(p)[1:])
    reader = _Reader(path, data, lines)
    for keypath, message in sorted(problems(data, SCHEMA), key=lambda p: lines.line(p[0])):
        reader.error(keypath, message)
    resolved = json.dumps(data, sort_keys=True, default=str).encode()
    model = _build(reader, hashlib.sha256(raw).hexdigest(), link, hashlib.sha256(resolved).hexdigest())
    if reader.problems:
        raise ModelError(reader.problems)
    return model


def _read(source: Path | Text):
    """``(bytes, document, key lines)`` of the model file ``source`` (read
    through :mod:`fsmcheck.inputs`: its size, decoding and nesting guards),
    unless it is already read."""
    try:
        doc, data, lines = read_toml(source)
        return doc.data, data, lines
    except InputError as exc:
        raise ModelError(exc.diagnostics) from None


def _names(reader: _Reader, value, keypath: tuple, known: set[str], what: str) -> tuple[str, ...]:
    """Check an array of names against ``known``; return the valid ones."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ()  # the structural checks report the type
    out = []
    for v in value:
        if v not in known:
            reader.error(keypath, f"unknown {what} {v!r} (known: {', '.join(sorted(known)) or 'none'})")
        else:
            out.append(v)
    return tuple(out)


def _build(r: _Reader, digest: str, link: bool = True, content_key: str = "") -> Model | None:
    d = r.data
    fmt = r.get(d, "format", int)
    if fmt is not None and fmt != FORMAT_VERSION:
        r.error(("format",), f"unsupported model format {fmt} (this fsmcheck reads format {FORMAT_VERSION})")

    meta = r.get(d, "model", dict) or {}
    name = r.get(meta, "name", str) or "?"
    title = r.get(meta, "title", str, "")
    encoding = r.get(meta, "encoding", str, "enum")  # the schema says which values are valid
    width = r.get(meta, "width", int, 32)
    width = width if 1 <= width <= 64 else 32
    sources = tuple(r.get(meta, "sources", list, []) or ())

    # Names declared by an entry with an error still count as declared: the
    # entry's own error is reported, not one per reference to it.
    flag_bits, always, flag_sets, flag_names = _flags(r)
    states, names = _states(r, flag_names, width or 32, encoding)
    by_name = {s.name: s for s in states}

    mask, bit_names, valid = 0, {}, None
    if encoding == "bits":
        mask, bit_names, valid = _encoding(r, width or 32, states)
    elif "encoding" in d:
        r.error(("encoding",), "only bit-encoded models ('encoding = \"bits\"') take an [encoding] table")

    device = r.get(d, "device", dict) or {}
    initial = r.get(device, "initial", str)
    reset = r.get(device, "reset", str)
    error = r.get(device, "error", str, None)
    for key, value in (("initial", initial), ("reset", reset), ("error", error)):
        if value is not None and value not in names:
            r.error(("device", key), f"unknown state {value!r}")
    for key, value in (("initial", initial), ("reset", reset)):
        if value in by_name and not by_name[value].needs <= always:
            r.error(("device", key), f"state {value!r} needs flags that are not always set")

    groups = _groups(r, names)
    sessions = r.get(d, "sessions", dict, {}) or {}
    session_groups = _names(r, sessions.get("groups"), ("sessions", "groups"), set(groups), "group")
    directions = r.get(sessions, "directions", dict, {}) or {}
    for g, direction in directions.items():
        if g not in session_groups:
            r.error(("sessions", "directions", g), f"{g!r} is not a session group")
    _check_disjoint(r, session_groups, groups)

    arcs = _arcs(r, names, flag_names, flag_sets)
    blocked = _blocked(r, names, flag_names)
    combination = _combination(r, set(groups))
    profiles = _profiles(r, {a.tag for a in arcs if a.tag})
    walk = _walk(r, names, flag_names)
    correspondence = _correspondence(r, names, link)
    p2p = _p2p(r, groups, flag_names)
    properties = _properties(r)
    region = _region(r)
    capabilities = _capabilities(r, names, flag_names)

    if r.problems:
        return None
    return Model(
        path=r.path, name=name, title=title, encoding=encoding, width=width,
        states=states, initial=initial, reset=reset, error=error, arcs=arcs,
        flag_bits=flag_bits, flag_sets=flag_sets, mask=mask, bit_names=bit_names,
        valid=valid, groups=groups, session_groups=session_groups,
        session_directions=dict(directions), blocked=blocked,
        combination=combination, profiles=profiles, walk=walk,
        correspondence=correspondence, p2p=p2p, properties=properties, sources=sources, region=region,
        digest=digest, lines=r.lines, capabilities=capabilities, key=content_key,
    )


def _flags(r: _Reader):
    table = r.get(r.data, "flags", dict, None)
    if table is None:
        return {}, frozenset(), (frozenset(),), set()
    bits = r.get(table, "bits", dict, {}) or {}
    declared = set(bits)
    flag_bits: dict[str, int] = {}
    seen: dict[int, str] = {}
    for flag, bit in bits.items():
        if not _is_kind(bit, int) or not 0 <= bit < 64:
            continue  # the schema's diagnostic
        if bit in seen:
            r.error(("flags", "bits", flag), f"bit {bit} is already flag {seen[bit]!r}")
        else:
            seen[bit] = flag
            flag_bits[flag] = bit
    always = frozenset(_names(r, table.get("always", []), ("flags", "always"), declared, "flag"))
    raw_sets = r.get(table, "sets", list, None)
    if raw_sets is None:
        return flag_bits, always, (frozenset(flag_bits),), declared
    sets, seen_sets = [], set()
    for i, item in enumerate(raw_sets):
        chosen = frozenset(_names(r, item, ("flags", "sets", i), declared, "flag"))
        if not always <= chosen:
            r.error(("flags", "sets", i), f"flag set lacks the always-set flags {sorted(always - chosen)}")
        if chosen in seen_sets:
            r.error(("flags", "sets", i), f"duplicate flag set {sorted(chosen)}")
        seen_sets.add(chosen)
        sets.append(chosen)
    return flag_bits, always, tuple(sets), declared


def _states(r: _Reader, flags: set[str], width: int, encoding: str) -> tuple[tuple[State, ...], set[str]]:
    """The valid states, and every state name declared (with or without an error)."""
    raw = r.get(r.data, "states", list, None)
    if raw is None:  # the schema's diagnostic
        return (), set()
    out, names, values, declared = [], {}, {}, set()
    for i, entry in enumerate(raw):
        kp = ("states", i)
        if not isinstance(entry, dict):
            continue
        name = r.get(entry, "name", str)
        value = r.get(entry, "value", int)
        needs = frozenset(_names(r, entry.get("needs", []), kp + ("needs",), flags, "flag"))
        requestable = r.get(entry, "requestable", bool, True)
        doc = r.get(entry, "doc", str, "")
        if name is not None:
            declared.add(name)
        if name is None or value is None:
            continue
        if name in names:
            r.error(kp + ("name",), f"duplicate state {name!r} (first declared at line {names[name]})")
            continue
        if not 0 <= value < (1 << width):
            r.error(kp + ("value",), f"value {value} does not fit in {width} bits")
        if value in values:
            r.error(kp + ("value",), f"value {value} is already state {values[value]!r}")
        names[name] = r.lines.line(kp)
        values[value] = name
        out.append(State(name, value, needs, requestable, doc, r.lines.line(kp)))
    return tuple(out), declared


def _encoding(r: _Reader, width: int, states: tuple[State, ...]):
    table = r.get(r.data, "encoding", dict, None)
    if table is None:
        r.error(("encoding",), "a bit-encoded model needs an [encoding] table with mask and valid")
        return 0, {}, None
    mask = r.get(table, "mask", int) or 0
    if not 0 <= mask < (1 << width):
        r.error(("encoding", "mask"), f"mask {mask:#x} is not a non-negative value of {width} bits")
        mask = 0
    bits = r.get(table, "bits", dict, {}) or {}
    for name, bit in bits.items():
        if not _is_kind(bit, int) or not 0 <= bit < width or not (mask >> bit) & 1:
            shown = f"{mask:#x}"
            r.error(("encoding", "bits", name), f"bit {bit!r} is not a bit of the mask {shown}")
    for s in states:
        if s.value & ~mask:
            r.error(("states",), f"state {s.name!r} has value {s.value:#x} outside the mask {mask:#x}")
    declared = {s.value for s in states}
    nbits = max(mask.bit_length(), 1)
    if mask > 0xFF:
        r.error(("encoding", "mask"), f"mask {mask:#x} has more than 8 bits; fsmcheck enumerates masked values")
    else:
        missing = [f"{v:0{nbits}b}b" for v in range(mask + 1) if v & mask == v and v not in declared]
        if missing:
            r.error(("states",), f"every masked value needs a state; missing {', '.join(missing)}")
    text = r.get(table, "valid", str)
    valid = None
    if text is not None:
        try:
            valid = parse_predicate(text, width)
        except PredicateError as exc:
            r.error(("encoding", "valid"), str(exc))
    return mask, dict(bits), valid


def _groups(r: _Reader, names: set[str]) -> dict[str, tuple[str, ...]]:
    table = r.get(r.data, "groups", dict, {}) or {}
    return {g: _names(r, members, ("groups", g), names, "state") for g, members in table.items()}


def _check_disjoint(r: _Reader, session_groups, groups) -> None:
    owner: dict[str, str] = {}
    for g in session_groups:
        for s in groups.get(g, ()):
            if s in owner:
                r.error(("sessions", "groups"), f"state {s!r} is in session groups {owner[s]!r} and {g!r}")
            owner[s] = g


def _pair(r: _Reader, entry: dict, kp: tuple, names: set[str]):
    src = r.get(entry, "from", str)
    dst = r.get(entry, "to", str)
    ok = src is not None and dst is not None
    for key, value in (("from", src), ("to", dst)):
        if value is not None and value not in names:
            r.error(kp + (key,), f"unknown state {value!r} (known: {', '.join(sorted(names))})")
            ok = False
    if ok and src == dst:
        r.error(kp, f"an arc from {src!r} to itself is not a transition")
        ok = False
    return (src, dst) if ok else None


def _arcs(r: _Reader, names: set[str], flags: set[str], flag_sets=()) -> tuple[Arc, ...]:
    """The ``[[arcs]]``. Two arcs for one pair that both exist under some
    defined flag set must declare the same session effect and tag: the pair is
    one step of the device, and a step has one effect."""
    raw = r.get(r.data, "arcs", list, []) or []
    out, seen, by_pair = [], {}, {}
    for i, entry in enumerate(raw):
        kp = ("arcs", i)
        if not isinstance(entry, dict):
            continue
        pair = _pair(r, entry, kp, names)
        needs = frozenset(_names(r, entry.get("needs", []), kp + ("needs",), flags, "flag"))
        unless = frozenset(_names(r, entry.get("unless", []), kp + ("unless",), flags, "flag"))
        session = r.get(entry, "session", str, "none")
        if needs & unless:
            r.error(kp + ("unless",), f"flags {sorted(needs & unless)} are both needed and excluded")
        if pair is None:
            continue
        key = (pair, needs, unless)
        if key in seen:
            r.error(kp, f"duplicate arc {pair[0]} -> {pair[1]} (first declared at line {seen[key]})")
            continue
        seen[key] = r.lines.line(kp)
        arc = Arc(pair[0], pair[1], needs, unless, session or "none",
                  r.get(entry, "tag", str, ""), r.get(entry, "source", str, ""),
                  r.lines.line(kp))
        for prior in by_pair.setdefault(pair, []):
            if (prior.session, prior.tag) == (arc.session, arc.tag):
                continue
            both = [fs for fs in flag_sets if prior.enabled(fs) and arc.enabled(fs)]
            if both:
                what = (f"session effect {arc.session!r}" if prior.session != arc.session
                        else f"tag {arc.tag!r}")
                theirs = prior.session if prior.session != arc.session else prior.tag
                r.error(kp, f"conflicting arcs {pair[0]} -> {pair[1]}: this one (line {arc.line}) declares "
                            f"{what}, the one at line {prior.line} {theirs!r}, and both exist under flags "
                            f"{sorted(both[0]) or '(none)'}")
                break
        by_pair[pair].append(arc)
        out.append(arc)
    return tuple(out)


def _blocked(r: _Reader, names: set[str], flags: set[str]) -> tuple[Blocked, ...]:
    raw = r.get(r.data, "blocked", list, []) or []
    out, seen = [], {}
    for i, entry in enumerate(raw):
        kp = ("blocked", i)
        if not isinstance(entry, dict):
            continue
        unless = frozenset(_names(r, entry.get("unless", []), kp + ("unless",), flags, "flag"))
        pair = _pair(r, entry, kp, names)
        if pair is None:
            continue
        if pair in seen:
            r.error(kp, f"duplicate blocked request {pair[0]} -> {pair[1]} (first at line {seen[pair]})")
            continue
        seen[pair] = r.lines.line(kp)
        out.append(Blocked(pair[0], pair[1], r.get(entry, "source", str, ""), r.lines.line(kp), unless))
    return tuple(out)


def _capabilities(r: _Reader, names: set[str], flags: set[str]):
    """The ``[[capabilities]]`` tables: optional device capabilities a pack tests."""
    raw = r.get(r.data, "capabilities", list, []) or []
    out, seen = [], {}
    for i, entry in enumerate(raw):
        kp = ("capabilities", i)
        if not isinstance(entry, dict):
            continue
        name = r.get(entry, "name", str)
        feature = r.get(entry, "feature", int)
        needs = frozenset(_names(r, entry.get("needs", []), kp + ("needs",), flags, "flag"))
        states = _names(r, entry.get("states", []), kp + ("states",), names, "state")
        if name is None or feature is None:
            continue
        if name in seen:
            r.error(kp + ("name",), f"duplicate capability {name!r} (first declared at line {seen[name]})")
            continue
        seen[name] = r.lines.line(kp)
        out.append(Capability(name, feature, needs, states, r.get(entry, "source", str, ""), r.lines.line(kp)))
    return tuple(out)


def _combination(r: _Reader, groups: set[str]) -> CombinationRule | None:
    table = r.get(r.data, "combination", dict, None)
    if table is None:
        return None
    kp = ("combination",)
    no_interior = _names(r, table.get("no_interior", []), kp + ("no_interior",), groups, "group")
    within = r.get(table, "within_group", bool, False)
    return CombinationRule("shortest", no_interior, bool(within), r.lines.line(kp))


def _profiles(r: _Reader, tags: set[str]) -> tuple[Profile, ...]:
    table = r.get(r.data, "profiles", dict, None)
    if table is None:
        return (Profile("spec"),)
    out = []
    for name, entry in table.items():
        kp = ("profiles", name)
        if not isinstance(entry, dict):
            continue
        arcs = r.get(entry, "arcs", str, "declared")
        chosen = None
        if "tags" in entry:
            chosen = frozenset(_names(r, entry["tags"], kp + ("tags",), tags, "arc tag"))
        out.append(Profile(name, arcs, chosen, r.get(entry, "doc", str, ""), r.lines.line(kp)))
    return tuple(out) or (Profile("spec"),)


def _walk(r: _Reader, names: set[str], flags: set[str]) -> Walk | None:
    table = r.get(r.data, "walk", dict, None)
    if table is None:
        return None
    kp = ("walk",)
    requires = {}
    for state, need in (r.get(table, "requires", dict, {}) or {}).items():
        if state not in names:
            r.error(kp + ("requires", state), f"unknown state {state!r}")
            continue
        requires[state] = frozenset(_names(r, need, kp + ("requires", state), flags | {ALL_FLAGS}, "flag"))
    nxt: dict[tuple[str, str], str] = {}
    rows = r.get(table, "next", dict) or {}
    for cur in sorted(names - set(rows)):
        r.error(kp + ("next",), f"missing row for current state {cur!r}")
    for cur, row in rows.items():
        rkp = kp + ("next", cur)
        if cur not in names:
            r.error(rkp, f"unknown state {cur!r}")
            continue
        if not isinstance(row, dict):
            continue
        for req in sorted(names - set(row)):
            r.error(rkp, f"missing entry for requested state {req!r}")
        for req, step in row.items():
            if req not in names:
                r.error(rkp + (req,), f"unknown requested state {req!r}")
            elif isinstance(step, str) and step not in names:
                r.error(rkp + (req,), f"unknown next state {step!r}")
            elif isinstance(step, str):
                nxt[(cur, req)] = step
    return Walk(
        next=nxt, requires=requires,
        exits=frozenset(_names(r, table.get("exits", []), kp + ("exits",), names, "state")),
        reject=frozenset(_names(r, table.get("reject", []), kp + ("reject",), names, "state")),
        check_current=bool(r.get(table, "check_current", bool, True)),
        check_requested=bool(r.get(table, "check_requested", bool, True)),
        source=r.get(table, "source", str, ""), line=r.lines.line(kp),
    )


def _correspondence(r: _Reader, names: set[str], link: bool = True) -> Correspondence | None:
    table = r.get(r.data, "correspondence", dict, None)
    if table is None:
        return None
    kp = ("correspondence",)
    other = r.get(table, "model", str)
    profile = r.get(table, "profile", str)
    mapping = r.get(table, "map", dict) or {}
    for state in mapping:
        if state not in names:
            r.error(kp + ("map", state), f"unknown state {state!r}")
    if other is None or profile is None:
        return None
    target = _target(r, kp + ("model",), other)
    if target is None:
        return None
    loaded = _check_other(r, target, profile, mapping) if link else None
    return Correspondence(target, profile, {k: str(v) for k, v in mapping.items()}, r.lines.line(kp), loaded)


def _target(r: _Reader, kp: tuple, other: str) -> Path | None:
    """The file of the correspondence model ``other``: a shipped model's
    name (``vfio_v1``), or a path relative to the file that declares it."""
    if "/" not in other and "\\" not in other and not other.endswith(".toml"):
        from .shipped import shipped_model_path

        try:
            return shipped_model_path(other).resolve()
        except (FileNotFoundError, ValueError, OSError) as exc:
            r.error(kp, str(exc))
            return None
    try:
        target = (directory_of(r.file_of(kp)) / other).resolve()
        found = target.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
        r.error(kp, f"not a usable file name {other[:80]!r}{'...' if len(other) > 80 else ''}: "
                    f"{type(exc).__name__}: {str(exc)[:120]}")
        return None
    if not found:
        r.error(kp, f"no such model file {str(target)!r}")
        return None
    return target


def _check_other(r: _Reader, target: Path, profile: str, mapping: dict) -> Model | None:
    """The correspondence model, loaded (None if it is not valid); checked to
    have ``profile`` and every state the map names."""
    kp = ("correspondence",)
    try:
        other = _load(target, link=False)
    except ModelError as exc:
        r.error(kp + ("model",), f"the model {str(target)!r} is not valid: {exc.diagnostics[0]}")
        return None
    profiles = [p.name for p in other.profiles]
    if profile not in profiles:
        r.error(kp + ("profile",), f"{other.name} has no profile {profile!r} (profiles: {', '.join(profiles)})")
    states = set(other.state_names)
    for state, image in mapping.items():
        if isinstance(image, str) and image not in states:
            r.error(kp + ("map", state), f"{other.name} has no state {image!r}")
    return other


def _p2p(r: _Reader, groups: dict[str, tuple[str, ...]], flags: set[str]) -> P2PRule | None:
    """The ``[p2p]`` table: the P2P quiesce rule, named by two groups."""
    table = r.get(r.data, "p2p", dict, None)
    if table is None:
        return None
    kp = ("p2p",)
    found = {}
    for key in ("initiating", "accepting"):
        name = r.get(table, key, str)
        if name is not None and name not in groups:
            r.error(kp + (key,), f"unknown group {name!r} (known: {', '.join(sorted(groups)) or 'none'})")
            name = None
        found[key] = name
    flag = r.get(table, "flag", str, None)
    if flag is not None and flag not in flags:
        r.error(kp + ("flag",), f"unknown flag {flag!r}")
    if found["initiating"] and found["accepting"]:
        stray = [s for s in groups[found["initiating"]] if s not in groups[found["accepting"]]]
        if stray:
            r.error(kp + ("initiating",), f"states {stray} may initiate P2P DMA but are not in group "
                                          f"{found['accepting']!r} (a device that initiates P2P DMA runs)")
    if None in found.values():
        return None
    return P2PRule(found["initiating"], found["accepting"], flag, r.get(table, "source", str, ""),
                   r.lines.line(kp))


def _region(r: _Reader) -> tuple[dict, ...]:
    """The register fields of a region-based protocol (v1), if declared."""
    table = r.get(r.data, "region", dict, None)
    if table is None:
        return ()
    out, end = [], 0
    for i, field in enumerate(r.get(table, "fields", list, []) or []):
        kp = ("region", "fields", i)
        if not isinstance(field, dict):
            continue
        name = r.get(field, "name", str)
        offset = r.get(field, "offset", int)
        width = r.get(field, "width", int)
        access = r.get(field, "access", str, "rw")
        if None in (name, offset, width):
            continue
        if width not in (1, 2, 4, 8) or offset % width:
            r.error(kp, f"field {name!r}: width {width} at offset {offset} is not a natural alignment")
        if offset < end:
            r.error(kp, f"field {name!r} overlaps the previous field")
        end = offset + width
        out.append({"name": name, "offset": offset, "width": width, "access": access})
    return tuple(out)


def _properties(r: _Reader) -> tuple[str, ...] | None:
    """The listed properties, or None (check every applicable one)."""
    table = r.get(r.data, "properties", dict, {}) or {}
    if "check" not in table:
        return None
    return _names(r, table["check"], ("properties", "check"), set(KNOWN_PROPERTIES), "property")
