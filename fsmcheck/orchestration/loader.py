"""Reading and validating orchestration model files.

:func:`load_orchestration` reads a TOML file such as
``models/qemu_orchestration.toml``, loads the device model it refers to
(``device_model``, relative to the file) with
:func:`fsmcheck.model.load_model`, and checks every name against it. Every
problem is reported, not only the first: :class:`~fsmcheck.model.ModelError`
carries :class:`~fsmcheck.model.loader.Diagnostic` objects rendered as
``file:line: key: message`` (the same shape as device models).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..inputs import InputError, parse_toml, read_text
from ..inputs.positions import KeyLines, index_lines
from ..model.extends import resolve
from ..model.loader import Diagnostic, ModelError, load_model
from .schema import RECOVER_CURRENT, Orchestration, Phase, Rule, Run

__all__ = ["load_orchestration", "is_orchestration", "PROPERTIES", "FORMAT_VERSION"]

#: The format version this loader reads.
FORMAT_VERSION = 1

#: Properties an orchestration model may list.
from ..model.properties import ORCHESTRATION_NAMES as PROPERTIES  # noqa: E402 (the registry's names)

_TOP = {"format", "orchestration", "groups", "phases", "runs"}
_META = {"name", "title", "device_model", "default_flags", "properties", "sources"}
_PHASE = {"name", "callback", "event", "rules", "on_error", "closes_data_fd", "source", "vm"}
_RULE = {"in", "needs", "runstate", "request", "recover"}
_RUN = {"name", "runstate", "phases", "abort", "abort_from", "target", "abort_target", "p2p_from", "source"}


def is_orchestration(path: str | Path) -> bool:
    """True when ``path`` is a readable TOML file with an ``[orchestration]`` table
    (so ``fsmcheck verify`` treats it as an orchestration model). Never raises."""
    try:
        return isinstance(parse_toml(read_text(path)).get("orchestration"), dict)
    except InputError:
        return False  # the device-model reader then says what is wrong, exit 2


class _Problems:
    def __init__(self, path: Path, lines: KeyLines):
        self.path, self.lines, self.items = path, lines, []

    def file_of(self, keypath: tuple) -> Path:
        """The file that declares ``keypath`` (the base's, for what a variant inherits)."""
        return Path(self.lines.where(keypath)[0] or self.path)

    def add(self, keypath: tuple, message: str) -> None:
        key = ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in keypath).replace(".[", "[")
        file, line = self.lines.where(keypath)
        self.items.append(Diagnostic(file or str(self.path), line, key or "<file>", message))

    def unknown(self, table: dict, keypath: tuple, allowed: set) -> None:
        for key in table:
            if key not in allowed:
                self.add(keypath + (key,), f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def typed(self, table: dict, keypath: tuple, key: str, kind, default=...):
        if key not in table:
            if default is ...:
                self.add(keypath, f"missing required key {key!r}")
                return None
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is list and ok:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            what = {str: "a string", list: "an array of strings", bool: "a boolean", dict: "a table",
                    int: "an integer"}[kind]
            self.add(keypath + (key,), f"expected {what}, got {value!r}")
            return None if default is ... else default
        return value


#: The arrays of tables a variant's entries match by key (``extends``: see
#: :mod:`fsmcheck.model.extends`).
MATCH = {"phases": ("name",), "runs": ("name",)}


def _read_document(path: Path) -> tuple[dict, KeyLines]:
    """An orchestration file's document and key lines (the base of an ``extends``)."""
    try:
        doc = read_text(path)
        return parse_toml(doc), index_lines(doc.text)
    except InputError as exc:
        raise ModelError(list(exc.diagnostics)) from None


def load_orchestration(path: str | Path) -> Orchestration:
    """Read, validate and return the orchestration model at ``path``.

    A variant may state only its change: ``extends = "qemu_orchestration"`` (a
    shipped name or a path) with the phases and runs it adds or changes, matched
    by ``name`` (:data:`MATCH`; :mod:`fsmcheck.model.extends` merges them). A
    relative ``device_model`` is taken from the file that declares it.

    Returns:
        The :class:`~.schema.Orchestration`, its ``device`` model loaded and
        ``digest`` the SHA-256 of the orchestration file's bytes.

    Raises:
        fsmcheck.model.ModelError: the file (or its device model) is missing,
            not TOML, or invalid; each problem as ``file:line: key: message``.
    """
    path = Path(path)
    try:
        doc = read_text(path)
        data = parse_toml(doc)
    except ModelError:
        raise
    except InputError as exc:  # one error type for every model file: ModelError is an InputError
        raise ModelError(list(exc.diagnostics)) from None
    data, lines = resolve(path, data, index_lines(doc.text), _read_document, match=MATCH)
    p = _Problems(path, lines)
    result = _build(p, path, data, hashlib.sha256(doc.data).hexdigest())
    if p.items or result is None:
        raise ModelError(p.items or [Diagnostic(str(path), 1, "<file>", "not a valid orchestration model")])
    return result


def _build(p: _Problems, path: Path, d: dict, digest: str) -> Orchestration | None:
    p.unknown(d, (), _TOP)
    fmt = p.typed(d, (), "format", int)
    if fmt is not None and fmt != FORMAT_VERSION:
        p.add(("format",), f"unsupported format {fmt} (this fsmcheck reads format {FORMAT_VERSION})")
    meta = p.typed(d, (), "orchestration", dict)
    if meta is None:
        return None
    p.unknown(meta, ("orchestration",), _META)
    name = p.typed(meta, ("orchestration",), "name", str) or "?"
    title = p.typed(meta, ("orchestration",), "title", str, "") or ""
    ref = p.typed(meta, ("orchestration",), "device_model", str)
    if ref is None:
        return None
    try:
        device = load_model(p.file_of(("orchestration", "device_model")).parent / ref)
    except ModelError as exc:
        p.add(("orchestration", "device_model"), f"device model {ref!r} does not load: "
              + "; ".join(str(x) for x in exc.diagnostics[:3]))
        return None
    if device.p2p is None or device.combination is None:
        p.add(("orchestration", "device_model"),
              f"device model {device.name!r} needs a [p2p] rule and a [combination] rule")
        return None
    states = set(device.state_names)

    groups = p.typed(d, (), "groups", dict, {}) or {}
    local_groups: dict[str, tuple[str, ...]] = {}
    for g, members in groups.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            p.add(("groups", g), "expected an array of state names")
            continue
        for m in members:
            if m not in states:
                p.add(("groups", g), f"unknown state {m!r} of {device.name}")
        local_groups[g] = tuple(m for m in members if m in states)

    def expand(names, keypath) -> frozenset[str]:
        out = set()
        for n in names:
            if n in states:
                out.add(n)
            elif n in local_groups:
                out.update(local_groups[n])
            elif n in device.groups:
                out.update(device.groups[n])
            else:
                p.add(keypath, f"unknown state or group {n!r} (states of {device.name}: "
                      f"{', '.join(device.state_names)})")
        return frozenset(out)

    flags_known = set(device.flag_bits)
    default_flags = p.typed(meta, ("orchestration",), "default_flags", list, None)
    if default_flags is None:
        default = max(device.flag_sets, key=len)
    else:
        default = frozenset(default_flags)
        if default not in device.flag_sets:
            p.add(("orchestration", "default_flags"), f"{sorted(default)} is not a flag set of {device.name}")
    props = p.typed(meta, ("orchestration",), "properties", list, list(PROPERTIES)) or []
    for prop in props:
        if prop not in PROPERTIES:
            p.add(("orchestration", "properties"), f"unknown property {prop!r} (known: {', '.join(PROPERTIES)})")
    sources = tuple(p.typed(meta, ("orchestration",), "sources", list, []) or [])

    phases: dict[str, Phase] = {}
    raw_phases = d.get("phases", [])
    if not isinstance(raw_phases, list) or not raw_phases:
        p.add(("phases",), "expected at least one [[phases]] table")
        raw_phases = []
    for i, ph in enumerate(raw_phases):
        key = ("phases", i)
        if not isinstance(ph, dict):
            p.add(key, "expected a table")
            continue
        p.unknown(ph, key, _PHASE)
        pname = p.typed(ph, key, "name", str)
        callback = p.typed(ph, key, "callback", str, "") or ""
        event = p.typed(ph, key, "event", str, "") or ""
        on_error = p.typed(ph, key, "on_error", str, "continue")
        if on_error not in ("abort", "abort-now", "continue"):
            p.add(key + ("on_error",), f"expected \"abort\", \"abort-now\" or \"continue\", got {on_error!r}")
        closes = p.typed(ph, key, "closes_data_fd", bool, False)
        vm = p.typed(ph, key, "vm", str, "") or ""
        if vm not in ("", "stops", "starts"):
            p.add(key + ("vm",), f"expected \"stops\" or \"starts\", got {vm!r}")
            vm = ""
        rules_raw = ph.get("rules", None)
        rules = []
        if not isinstance(rules_raw, list):
            p.add(key + ("rules",) if "rules" in ph else key, "expected an array of rule tables (rules = [...])")
            rules_raw = []
        line = p.lines.line(key + ("rules",))
        for j, rule in enumerate(rules_raw):
            rkey = key + ("rules",)
            if not isinstance(rule, dict):
                p.add(rkey, f"rule {j}: expected a table")
                continue
            for k in rule:
                if k not in _RULE:
                    p.add(rkey, f"rule {j}: unknown key {k!r} (expected one of: {', '.join(sorted(_RULE))})")
            request = rule.get("request")
            if not isinstance(request, str) or request not in states:
                p.add(rkey, f"rule {j}: request must name a state of {device.name}, got {request!r}")
                continue
            if not device.state(request).requestable:
                p.add(rkey, f"rule {j}: {request} cannot be requested")
            recover = rule.get("recover", device.error)
            if not isinstance(recover, str) or (recover != RECOVER_CURRENT and recover not in states):
                p.add(rkey, f"rule {j}: recover must be a state of {device.name} or \"current\", got {recover!r}")
                continue
            lists = {}
            for k in ("in", "needs", "runstate"):
                value = rule.get(k, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    p.add(rkey, f"rule {j}: {k} must be an array of strings, got {value!r}")
                    value = []
                lists[k] = value
            bad = [f for f in lists["needs"] if f not in flags_known]
            if bad:
                p.add(rkey, f"rule {j}: unknown flag(s) {bad} (flags of {device.name}: {', '.join(device.flag_order)})")
            rules.append(Rule(expand(lists["in"], rkey), frozenset(lists["needs"]) - set(bad),
                              frozenset(lists["runstate"]), request, recover, line))
        if pname is None:
            continue
        if pname in phases:
            p.add(key + ("name",), f"phase {pname!r} is declared twice")
        phases[pname] = Phase(pname, callback, event, tuple(rules), on_error if on_error != "continue" else "",
                              bool(closes),
                              ph.get("source", "") if isinstance(ph.get("source", ""), str) else "",
                              p.lines.line(key), vm)

    runs = []
    raw_runs = d.get("runs", [])
    if not isinstance(raw_runs, list) or not raw_runs:
        p.add(("runs",), "expected at least one [[runs]] table")
        raw_runs = []
    for i, run in enumerate(raw_runs):
        key = ("runs", i)
        if not isinstance(run, dict):
            p.add(key, "expected a table")
            continue
        p.unknown(run, key, _RUN)
        rname = p.typed(run, key, "name", str)
        runstate = p.typed(run, key, "runstate", str, "paused") or "paused"

        def phase_list(k, names=None):
            names = p.typed(run, key, k, list, []) or [] if names is None else names
            out = []
            for n in names:
                if n not in phases:
                    p.add(key + (k,), f"unknown phase {n!r} (declared: {', '.join(phases)})")
                else:
                    out.append(phases[n])
            return tuple(out)

        seq, abort = phase_list("phases"), phase_list("abort")
        abort_from = {}
        raw_from = p.typed(run, key, "abort_from", dict, {}) or {}
        for origin, names in raw_from.items():
            if origin not in {ph.name for ph in seq}:
                p.add(key + ("abort_from", origin), f"{origin!r} is not a phase of this run")
            elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                p.add(key + ("abort_from", origin), "expected an array of phase names")
            else:
                abort_from[origin] = phase_list("abort_from", names)
        if not seq and "phases" in run:
            p.add(key + ("phases",), "a run needs at least one phase")
        target = expand(p.typed(run, key, "target", list, []) or [], key + ("target",))
        if not target:
            p.add(key + ("target",) if "target" in run else key, "missing or empty target (states every device must end in)")
        abort_target = expand(p.typed(run, key, "abort_target", list, []) or [], key + ("abort_target",))
        p2p_from = p.typed(run, key, "p2p_from", str, "") or ""
        if p2p_from and p2p_from not in {ph.name for ph in seq}:
            p.add(key + ("p2p_from",), f"{p2p_from!r} is not a phase of this run")
            p2p_from = ""
        if rname is None:
            continue
        if any(r.name == rname for r in runs):
            p.add(key + ("name",), f"run {rname!r} is declared twice")
        runs.append(Run(rname, runstate, seq, abort, target, abort_target, abort_from, p2p_from,
                        run.get("source", "") if isinstance(run.get("source", ""), str) else "", p.lines.line(key)))
    return Orchestration(name, title, path, digest, device, default, phases, tuple(runs), tuple(props),
                         sources, p.lines)
