"""The per-phase diagram of an orchestration model's runs (graphviz).

One cluster per run: a node per phase (its QEMU callback, what calls it, and
each rule as ``in -> request (recover)``), solid edges for the normal
sequence, red dashed edges where an error reported so far aborts the run
(``on_error = "abort"``: after the phase; ``"abort-now"``: right after the
failing callback), and the run's end markers with their targets. Everything
drawn is read from the loaded :class:`~.schema.Orchestration` (the edges
from :class:`~.semantics.System`, the same tables both engines use).
"""

from __future__ import annotations

import graphviz

from .schema import Orchestration
from .semantics import System

__all__ = ["phase_diagram", "phase_svg"]


def _rule_text(rule, device) -> str:
    where = ",".join(sorted(rule.states)) if rule.states else "any"
    extra = []
    if rule.needs:
        extra.append("needs " + ",".join(sorted(rule.needs)))
    if rule.runstates:
        extra.append("runstate " + ",".join(sorted(rule.runstates)))
    recover = "reset" if rule.recover == device.error else rule.recover
    return f"{where} -> {rule.request} (recover {recover})" + (f" [{'; '.join(extra)}]" if extra else "")


def phase_diagram(orch: Orchestration) -> graphviz.Digraph:
    """A :class:`graphviz.Digraph` of every run of ``orch`` (one cluster each)."""
    g = graphviz.Digraph(orch.name, graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11"},
                         node_attr={"shape": "box", "fontname": "Helvetica", "fontsize": "10"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    for r, run in enumerate(orch.runs):
        system = System(orch, run, (orch.default_flags,), 0)
        with g.subgraph(name=f"cluster_{r}") as c:
            c.attr(label=f"run {run.name} (runstate {run.runstate})", style="rounded")
            node = lambda pc: f"r{r}p{pc}"  # noqa: E731
            for pc, phase in enumerate(system.phases):
                rules = "\\l".join(_rule_text(x, orch.device) for x in phase.rules) or "(no request)"
                vm = {"stops": "\\lVM stopped after this phase", "starts": "\\lvm_start(): VM runs"}.get(phase.vm, "")
                tag = " [abort]" if system.in_abort[pc] else ""
                c.node(node(pc), f"{phase.name}{tag}\\l{phase.callback or '-'}\\l{rules}\\l{vm}",
                       style="dashed" if system.in_abort[pc] else "solid")
            target = ",".join(sorted(run.target))
            c.node(node(system.end_ok), f"end: every device {target}", shape="oval")
            abort_target = ",".join(sorted(run.abort_target)) or "QEMU exits"
            c.node(node(system.end_abort), f"end (aborted): {abort_target}", shape="oval", color="red")
            for pc, phase in enumerate(system.phases):
                c.edge(node(pc), node(system.next_ok[pc]))
                if system.next_err[pc] != system.next_ok[pc]:
                    c.edge(node(pc), node(system.next_err[pc]), label="error reported", style="dashed", color="red")
                if phase.on_error == "abort-now" and not system.in_abort[pc]:
                    c.edge(node(pc), node(system.abort_start[pc]), label="callback fails: abort now",
                           style="dashed", color="red")
    return g


def phase_svg(orch: Orchestration) -> str:
    """The diagram as SVG text (needs graphviz's ``dot``).

    Raises:
        graphviz.ExecutableNotFound: ``dot`` is not installed.
    """
    return phase_diagram(orch).pipe(format="svg").decode("utf-8")
