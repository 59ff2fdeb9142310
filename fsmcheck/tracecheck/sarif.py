"""SARIF 2.1.0 output of ``fsmcheck check-trace --sarif``.

One run; the rules are :data:`fsmcheck.tracecheck.rules.RULES` (id, statement,
source); one result per finding, ``level`` ``error``, located in the trace
file (the artifact; relative to the working directory with ``uriBaseId``
``%SRCROOT%`` when below it, as :func:`fsmcheck.ci.sarif.artifact_location`
gives) at the finding's line, with the line as the region's snippet and the
lines around it as ``contextRegion``. ``partialFingerprints`` carry rule,
device and file so a review tool can track a finding across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..ci.sarif import SARIF_SCHEMA, artifact_location
from .check import TraceReport
from .rules import RULES

__all__ = ["sarif_log"]


def sarif_log(traces: Sequence[TraceReport]) -> dict:
    """The SARIF 2.1.0 log of one ``check-trace`` run (a JSON-ready dict)."""
    ids = list(RULES)
    rules = [{"id": r.id, "name": "".join(w.capitalize() for w in r.id.split("-")),
              "shortDescription": {"text": r.statement},
              "fullDescription": {"text": f"{r.statement} (source: {r.source})"},
              "defaultConfiguration": {"level": "error"}, "properties": {"source": r.source}}
             for r in RULES.values()]
    results = []
    for t in traces:
        artifact = artifact_location(Path(t.path))
        for v in t.violations:
            region = {"startLine": max(v.line, 1)}
            own = [text for n, text in v.context if n == v.line]
            if own:
                region["snippet"] = {"text": own[0]}
            location = {"physicalLocation": {"artifactLocation": dict(artifact), "region": region}}
            if v.context:
                lines = [n for n, _ in v.context]
                location["physicalLocation"]["contextRegion"] = {
                    "startLine": max(min(lines), 1), "endLine": max(max(lines), 1),
                    "snippet": {"text": "\n".join(text for _, text in v.context)}}
            results.append({
                "ruleId": v.rule, "ruleIndex": ids.index(v.rule), "level": "error",
                "message": {"text": f"{v.rule}: {v.message}" + (f" (device {v.device})" if v.device else "")},
                "locations": [location],
                "partialFingerprints": {"fsmcheck-trace/v1": f"{v.rule}:{v.device}:{Path(t.path).name}"},
                "properties": {"device": v.device, "format": t.format, "source": v.source},
            })
    root = Path.cwd().as_uri() + "/"
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "fsmcheck check-trace", "version": __version__,
                                "semanticVersion": __version__, "rules": rules}},
            "invocations": [{"executionSuccessful": True, "workingDirectory": {"uri": root}}],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
            "results": results,
        }],
    }
