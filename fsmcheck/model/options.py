"""What the commands share about models: loading one (a malformed file is
reported as ``file:line: key: message``), the MODEL argument (a path or a shipped
name) and choosing configurations from ``--flags`` / ``--profile``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # rich and the model loader are imported when used, not at start-up
    from rich.console import Console

    from .schema import Config, Model

__all__ = ["MODEL", "ModelArgument", "configs_or_exit", "load_or_exit", "load_or_report", "parse_flags", "select_configs"]


def load_or_report(path: str, err: Console, load=None) -> Model | None:
    """The model at ``path`` (read by ``load``, default :func:`~fsmcheck.model.load_model`;
    :func:`fsmcheck.orchestration.load` for either kind), or None after printing each
    diagnostic on ``err``."""
    from . import ModelError, load_model

    try:
        return (load or load_model)(path)
    except ModelError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False, highlight=False, emoji=False, soft_wrap=True)
        return None


def parse_flags(model: Model, text: str) -> frozenset[str]:
    """The flag set named by ``text`` (``STOP_COPY,P2P``, ``STOP_COPY|P2P`` or
    the number ``3``).

    Raises:
        click.BadParameter: an unknown flag, or not one of the model's sets.
    """
    names = [t.strip() for t in text.replace("|", ",").split(",") if t.strip()]
    if len(names) == 1 and names[0].isascii() and names[0].isdigit():
        defined = model.flags_value(model.flag_bits)
        flags = ", ".join(f"{f}={1 << b:#x}" for f, b in model.flag_bits.items()) or "none"
        # Flag bits are 0..63: a number of more than 20 digits cannot name a flag set.
        value = int(names[0]) if len(names[0]) <= 20 else None
        if value is None or value & ~defined:
            shown = f"{value:#x} sets bits" if value is not None else f"a {len(names[0])}-digit number sets bits"
            raise click.BadParameter(f"{shown} the model defines no flag for (flags: {flags})", param_hint="--flags")
        names = list(model.flags_of(value))
    unknown = [n for n in names if n not in model.flag_bits]
    if unknown:
        raise click.BadParameter(f"unknown flag(s) {', '.join(unknown)}; the model has "
                                 f"{', '.join(model.flag_order) or 'no flags'}", param_hint="--flags")
    chosen = frozenset(names)
    if chosen not in model.flag_sets:
        defined = "; ".join(",".join(f for f in model.flag_order if f in s) for s in model.flag_sets)
        raise click.BadParameter(f"{','.join(sorted(chosen)) or '(none)'} is not a defined flag set; "
                                 f"defined: {defined}", param_hint="--flags")
    return chosen


def select_configs(model: Model, flags_text: str | None, profile: str | None) -> list[Config]:
    """The configurations ``--flags`` and ``--profile`` choose (all when both are None).

    Raises:
        click.BadParameter: an unknown flag set or profile.
    """
    configs = model.configs()
    if flags_text:
        flags = parse_flags(model, flags_text)
        configs = [c for c in configs if c.flags == flags]
    if profile is not None:
        names = [p.name for p in model.profiles]
        if profile not in names:
            raise click.BadParameter(f"unknown profile {profile!r}; the model has {', '.join(names)}",
                                     param_hint="--profile")
        configs = [c for c in configs if c.profile == profile]
    return configs


def load_or_exit(path: str, err: Console, load=None) -> Model:
    """The model at ``path`` (read by ``load``, as :func:`load_or_report`); after printing its
    diagnostics, exit 2."""
    model = load_or_report(path, err, load)
    if model is None:
        sys.exit(2)
    return model


def configs_or_exit(model: Model, flags_text: str | None, profile: str | None, err: Console) -> list[Config]:
    """The configurations --flags/--profile choose; on a bad choice, print why and exit 2."""
    try:
        configs = select_configs(model, flags_text, profile)
    except click.BadParameter as exc:
        err.print(f"error: {exc.format_message()}", markup=False)
        sys.exit(2)
    if not configs:
        err.print("error: no configuration matches --flags and --profile", markup=False)
        sys.exit(2)
    return configs


class ModelArgument(click.ParamType):
    """A MODEL argument: a model file's path, or a shipped model's name
    (``vfio_v2``; ``fsmcheck models`` lists them), converted to a path by
    :func:`fsmcheck.model.shipped.resolve_model`. A name that is neither
    fails the command with exit 2 and the shipped models' names."""

    name = "model"

    def convert(self, value, param, ctx):
        from .shipped import UnknownModel, resolve_model

        if not isinstance(value, str):
            return value
        try:
            return resolve_model(value)
        except UnknownModel as exc:
            self.fail(str(exc), param, ctx)


#: The one resolver every command's MODEL parameter uses.
MODEL = ModelArgument()
