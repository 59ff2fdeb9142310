"""The rule catalogue as a section of the HTML review report."""

from __future__ import annotations

import html
from collections import Counter

from .catalogue import rule_table, uncovered_musts

__all__ = ["rules_section"]


def _tests(ids: list[str]) -> str:
    """Test functions grouped: ``test_pair (4 modules)``."""
    by_name = Counter(i.split("::", 1)[1] for i in ids)
    return ", ".join(f"{name}" + (f" ({n} modules)" if n > 1 else "") for name, n in sorted(by_name.items()))


def rules_section(models) -> str:
    """``<section>`` with every catalogue rule of the protocols of ``models``
    (loaded :class:`~fsmcheck.model.schema.Model` objects), its source
    sentence and the tests of their packs that can kill a violation of it.
    Pass models whose properties hold (a pack compiles only from those);
    models the pack compiler does not take are left out."""
    from ..generate.pack import pack_files

    texts: dict[str, str] = {}
    for model in models:
        try:
            texts.update(pack_files(model))
        except ValueError:
            continue
    if not texts:
        return ""
    protocols = {"v1" if "v1_checks" in t else "v2" for t in texts.values()}
    rows = [r for r in rule_table(texts) if r.rule.protocol in protocols]
    missing = uncovered_musts(rows)
    counts = Counter(r.status for r in rows)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    body = "".join(
        f"<tr><td><code>{html.escape(r.rule.id)}</code></td><td>{r.rule.level}</td>"
        f"<td>{html.escape(r.rule.source)}: {html.escape(r.rule.section)}</td>"
        f"<td>&ldquo;{html.escape(r.rule.sentence)}&rdquo;</td><td>{html.escape(r.status)}</td>"
        f"<td class='small'>{html.escape(_tests(r.kills) or _tests(r.advises) or r.rule.unobservable or r.rule.note)}"
        f"</td></tr>" for r in rows)
    warn = (f"<p><strong>{len(missing)} MUST rule(s) with no killing test:</strong> "
            f"{html.escape(', '.join(r.rule.id for r in missing))}</p>") if missing else ""
    return (f"<section id='rules'><h2>Rule catalogue</h2><p class='small'>{len(rows)} rules ({summary}); "
            f"killing tests derived from the checks' citations (<code>fsmcheck rules</code>)</p>{warn}"
            f"<table><thead><tr><th>rule</th><th>level</th><th>source</th><th>sentence</th><th>status</th>"
            f"<th>tests that kill a violation (or why none)</th></tr></thead><tbody>{body}</tbody></table></section>")
