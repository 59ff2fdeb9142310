"""``fsmcheck export --format promela`` of an orchestration model (one run, N devices, budget F)."""

from __future__ import annotations

import sys

from ..verifier.exit_codes import EXIT_INPUT

__all__ = ["export_orchestration"]


def export_orchestration(orch, fmt: str, output, run_name, devices: int, failures: int, err) -> None:
    """Write the Promela model of ``run_name`` (default: the first run) of the
    loaded orchestration model ``orch`` over ``devices`` devices with
    ``failures`` failures allowed; exits the process (0, or 2 for bad input:
    an unknown run, a format other than promela)."""
    from ..orchestration.semantics import System
    from .command import write_or_echo
    from .orchestration_promela import orchestration_promela

    if fmt != "promela":
        err.print(f"error: an orchestration model exports as promela only (not {fmt})", markup=False)
        sys.exit(EXIT_INPUT)
    try:
        run = orch.run(run_name) if run_name else orch.runs[0]
    except KeyError:
        err.print(f"error: no run {run_name!r} (runs: {', '.join(r.name for r in orch.runs)})", markup=False)
        sys.exit(EXIT_INPUT)
    write_or_echo(orchestration_promela(System(orch, run, (orch.default_flags,) * devices, failures)), output, err)
