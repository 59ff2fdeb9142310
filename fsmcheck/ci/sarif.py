"""SARIF 2.1.0 output of ``fsmcheck verify --sarif``.

One run per ``fsmcheck verify`` call. The tool's rules are the properties
(rule id = property name, with its statement and source); there is one
result per property instance that does not hold:

* ``level`` ``error`` for ``fails``, ``disagree`` and ``error``, ``warning``
  for ``unknown``;
* ``message.text``: the counterexample's summary (or the reason for a
  disagreement, error or unknown), the configuration and the trace;
* ``locations``: the model file (relative to the working directory when it
  lies below it, with ``uriBaseId`` ``%SRCROOT%``) at the line where the
  offending state, arc or rule is declared, so that a code-review UI
  annotates the model file;
* ``codeFlows``: the trace, one ``threadFlowLocation`` per state;
* ``partialFingerprints``: model, property and configuration, so a review
  tool can track a result across runs.

SARIF: OASIS Static Analysis Results Interchange Format 2.1.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import __version__
from ..inputs.positions import file_of
from ..model.schema import Model
from ..verifier.verify import Result
from ..semantics.verdict import HOLDS, UNKNOWN

__all__ = ["SARIF_SCHEMA", "artifact_location", "sarif_log"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _uri(path: Path) -> tuple[str, str | None]:
    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd()).as_posix(), "%SRCROOT%"
    except ValueError:
        return path.as_uri(), None


def artifact_location(path: Path) -> dict:
    """A SARIF ``artifactLocation`` for ``path``: relative to the working
    directory with ``uriBaseId`` ``%SRCROOT%`` when it lies below it, else a
    ``file:`` URI."""
    uri, base = _uri(path)
    return {"uri": uri, "uriBaseId": base} if base else {"uri": uri}


def _location(model: Model, line: int, text: str | None = None) -> dict:
    uri, base = _uri(file_of(line, model.path))
    artifact = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    loc = {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": max(line, 1)}}}
    if text:
        loc["message"] = {"text": text}
    return loc


def sarif_log(verified: Sequence[tuple[Model, Sequence[Result]]]) -> dict:
    """The SARIF 2.1.0 log of one verify run.

    Args:
        verified: ``(model, results)`` for each verified model.

    Returns:
        A JSON-ready dict (``version`` ``2.1.0``, one run).
    """
    rules, index = [], {}
    results = []
    for model, model_results in verified:
        for r in model_results:
            if r.prop.name not in index:
                index[r.prop.name] = len(rules)
                rules.append({
                    "id": r.prop.name,
                    "name": "".join(w.capitalize() for w in r.prop.name.split("-")),
                    "shortDescription": {"text": r.statement},
                    "fullDescription": {"text": f"{r.statement} (source: {r.prop.source})"},
                    "defaultConfiguration": {"level": "error"},
                    "properties": {"source": r.prop.source},
                })
            if r.status == HOLDS:
                continue
            cex = r.counterexample
            what = cex.summary if cex is not None else (r.detail or r.status)
            text = f"{r.prop.name} {r.status} [{r.config}]: {what}"
            if cex is not None and cex.trace:
                text += "; trace: " + " -> ".join(cex.trace)
            line = cex.line if cex is not None and cex.line else model.line_of("model")
            result = {
                "ruleId": r.prop.name,
                "ruleIndex": index[r.prop.name],
                "level": "warning" if r.status == UNKNOWN else "error",
                "message": {"text": text},
                "locations": [_location(model, line)],
                "partialFingerprints": {"fsmcheck/v1": f"{model.name}:{r.prop.name}:{r.config}"},
                "properties": {"model": model.name, "configuration": r.config, "status": r.status,
                               "engines": {n: v.status for n, v in r.verdicts.items()}},
            }
            if cex is not None and cex.trace:
                result["codeFlows"] = [{"threadFlows": [{"locations": [
                    {"location": _location(model, line, step), "executionOrder": i}
                    for i, step in enumerate(cex.trace)]}]}]
            results.append(result)
    root = Path.cwd().as_uri() + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "fsmcheck", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "invocations": [{"executionSuccessful": True, "workingDirectory": {"uri": root}}],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
            "results": results,
        }],
    }
