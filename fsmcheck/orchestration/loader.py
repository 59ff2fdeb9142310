"""Reading and validating orchestration model files.

:func:`load_orchestration` reads a TOML file such as
``models/qemu_orchestration.toml``, checks its structure against
:data:`.format.SCHEMA`, loads the device model it refers to
(``device_model``, relative to the file) with
:func:`fsmcheck.model.load_model`, and checks every name against it.
:func:`load` reads any model file once and returns what it holds: a device
:class:`~fsmcheck.model.schema.Model` or an :class:`~.schema.Orchestration`.
Every problem is reported, not only the first -- every structural one, or
when the structure is sound every name that names nothing:
:class:`~fsmcheck.model.ModelError` carries :class:`~fsmcheck.inputs.Diagnostic`
objects rendered as ``file:line: key: message`` (the same shape as device models).
"""

from __future__ import annotations

from pathlib import Path

from ..inputs import InputError, Text, directory_of
from ..inputs.positions import KeyLines
from ..inputs.schema import diagnostics, problems, read_toml
from ..model.extends import resolve
from ..model.loader import ModelError, load_model
from ..model.schema import Model
from .format import FORMAT_VERSION, PROPERTIES, SCHEMA
from .schema import RECOVER_CURRENT, Orchestration, Phase, Rule, Run

__all__ = ["FORMAT_VERSION", "MATCH", "PROPERTIES", "load", "load_orchestration"]

#: The arrays of tables a variant's entries match by key (``extends``: see
#: :mod:`fsmcheck.model.extends`).
MATCH = {"phases": ("name",), "runs": ("name",)}


def _parse(source: str | Path | Text) -> tuple[Text, dict, KeyLines]:
    """The file (read unless already a :class:`Text`), its document and key lines."""
    try:
        return read_toml(source)
    except InputError as exc:  # one error type for every model file: ModelError is an InputError
        raise ModelError(list(exc.diagnostics)) from None


def load(path: str | Path) -> Model | Orchestration:
    """The model file at ``path`` (a file, ``-`` or a device such as
    ``/dev/stdin``), read once: an :class:`~.schema.Orchestration` when it has
    an ``[orchestration]`` table, else a device model.

    Raises:
        fsmcheck.model.ModelError: as :func:`load_orchestration` or
            :func:`fsmcheck.model.load_model`.
    """
    doc, data, _ = _parse(path)
    if isinstance(data.get("orchestration"), dict):
        return load_orchestration(path, text=doc)
    return load_model(path, text=doc)


def load_orchestration(path: str | Path, *, text: Text | None = None) -> Orchestration:
    """Read, validate and return the orchestration model at ``path`` (``text``:
    the file, already read).

    A variant may state only its change: ``extends = "qemu_orchestration"`` (a
    shipped name or a path) with the phases and runs it adds or changes, matched
    by ``name`` (:data:`MATCH`; :mod:`fsmcheck.model.extends` merges them). A
    relative ``device_model`` is taken from the file that declares it (from the
    current directory when that is standard input or a device).

    Returns:
        The :class:`~.schema.Orchestration`, its ``device`` model loaded and
        ``digest`` the SHA-256 of the orchestration file's bytes.

    Raises:
        fsmcheck.model.ModelError: the file (or its device model) is missing,
            not TOML, or invalid; each problem as ``file:line: key: message``.
    """
    path = Path(path)
    doc, data, lines = _parse(text or path)
    data, lines = resolve(path, data, lines, lambda p: _parse(p)[1:], match=MATCH)
    found = problems(data, SCHEMA)
    if type(data.get("format")) is int and data["format"] != FORMAT_VERSION:
        found.append((("format",), f"unsupported format {data['format']} (this fsmcheck reads format "
                                   f"{FORMAT_VERSION})"))
    result = None if found else _build(found.append, path, data, lines, doc.sha256)
    if found:
        raise ModelError(diagnostics(doc.path, found, lines))
    return result


def _device(bad, path: Path, meta: dict, lines: KeyLines) -> Model | None:
    """The device model ``device_model`` names, with a [p2p] and a [combination] rule."""
    ref, key = meta["device_model"], ("orchestration", "device_model")
    declared = Path(lines.where(key)[0] or path)
    base = directory_of(declared)
    try:
        device = load_model(base / ref)
    except ModelError as exc:
        here = "" if base == declared.parent else \
            f" (taken from the current directory {base}: the file is standard input or a device)"
        bad((key, f"device model {ref!r} does not load{here}: " + "; ".join(str(x) for x in exc.diagnostics[:3])))
        return None
    if device.p2p is None or device.combination is None:
        bad((key, f"device model {device.name!r} needs a [p2p] rule and a [combination] rule"))
        return None
    return device


def _build(bad, path: Path, d: dict, lines: KeyLines, digest: str) -> Orchestration | None:
    """The orchestration of a document the schema accepts; ``bad((key path,
    message))`` for each name that names nothing."""
    meta = d["orchestration"]
    device = _device(bad, path, meta, lines)
    if device is None:
        return None
    states = set(device.state_names)

    local_groups: dict[str, tuple[str, ...]] = {}
    for g, members in d.get("groups", {}).items():
        for m in members:
            if m not in states:
                bad((("groups", g), f"unknown state {m!r} of {device.name}"))
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
                bad((keypath, f"unknown state or group {n!r} (states of {device.name}: "
                              f"{', '.join(device.state_names)})"))
        return frozenset(out)

    if "default_flags" not in meta:
        default = max(device.flag_sets, key=len)
    else:
        default = frozenset(meta["default_flags"])
        if default not in device.flag_sets:
            bad((("orchestration", "default_flags"), f"{sorted(default)} is not a flag set of {device.name}"))

    phases: dict[str, Phase] = {}
    for i, ph in enumerate(d["phases"]):
        key = ("phases", i)
        rkey, rules = key + ("rules",), []
        for j, rule in enumerate(ph["rules"]):
            request, recover = rule["request"], rule.get("recover", device.error)
            if request not in states:
                bad((rkey, f"rule {j}: request must name a state of {device.name}, got {request!r}"))
                continue
            if not device.state(request).requestable:
                bad((rkey, f"rule {j}: {request} cannot be requested"))
            if recover != RECOVER_CURRENT and recover not in states:
                bad((rkey, f"rule {j}: recover must be a state of {device.name} or \"current\", got {recover!r}"))
                continue
            needs = rule.get("needs", [])
            unknown = [f for f in needs if f not in device.flag_bits]
            if unknown:
                bad((rkey, f"rule {j}: unknown flag(s) {unknown} (flags of {device.name}: "
                           f"{', '.join(device.flag_order)})"))
            rules.append(Rule(expand(rule.get("in", []), rkey), frozenset(needs) - set(unknown),
                              frozenset(rule.get("runstate", [])), request, recover, lines.line(rkey)))
        name = ph["name"]
        if name in phases:
            bad((key + ("name",), f"phase {name!r} is declared twice"))
        on_error = ph.get("on_error", "continue")
        phases[name] = Phase(name, ph.get("callback", ""), ph.get("event", ""), tuple(rules),
                             on_error if on_error != "continue" else "", ph.get("closes_data_fd", False),
                             ph.get("source", ""), lines.line(key), ph.get("vm", ""))

    runs = []
    for i, run in enumerate(d["runs"]):
        key = ("runs", i)

        def phase_list(k, names):
            out = []
            for n in names:
                if n not in phases:
                    bad((key + (k,), f"unknown phase {n!r} (declared: {', '.join(phases)})"))
                else:
                    out.append(phases[n])
            return tuple(out)

        seq, abort = phase_list("phases", run.get("phases", [])), phase_list("abort", run.get("abort", []))
        abort_from = {}
        for origin, names in run.get("abort_from", {}).items():
            if origin not in {ph.name for ph in seq}:
                bad((key + ("abort_from", origin), f"{origin!r} is not a phase of this run"))
            else:
                abort_from[origin] = phase_list("abort_from", names)
        target = expand(run["target"], key + ("target",))
        if not target:
            bad((key + ("target",), "no state to end in (states every device must end in)"))
        abort_target = expand(run.get("abort_target", []), key + ("abort_target",))
        p2p_from = run.get("p2p_from", "")
        if p2p_from and p2p_from not in {ph.name for ph in seq}:
            bad((key + ("p2p_from",), f"{p2p_from!r} is not a phase of this run"))
        if any(r.name == run["name"] for r in runs):
            bad((key + ("name",), f"run {run['name']!r} is declared twice"))
        runs.append(Run(run["name"], run.get("runstate", "") or "paused", seq, abort, target, abort_target,
                        abort_from, p2p_from, run.get("source", ""), lines.line(key)))
    return Orchestration(meta["name"], meta.get("title", ""), path, digest, device, default, phases, tuple(runs),
                         tuple(meta.get("properties", PROPERTIES)), tuple(meta.get("sources", [])), lines)
