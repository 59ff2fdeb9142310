"""Diagrams, the HTML review report (in a real headless Chromium) and the
JSON graph export."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from fsmcheck.cli import main
from fsmcheck.export.graph_json import graph_json
from fsmcheck.semantics.graphs import arc_graph
from fsmcheck.model import load_model
from fsmcheck.review.diagram import DotMissingError, diagram, render_bytes
from fsmcheck.review.report import build_report
from fsmcheck.verifier.trace import steps

from .conftest import ARTIFACTS, MODELS, V1_LETS_101_THROUGH, cli, require_tool

V1, V2 = MODELS / "vfio_v1.toml", MODELS / "vfio_v2.toml"


def _edges(source: str) -> list[str]:
    return [line for line in source.splitlines() if "->" in line]


def test_diagram_draws_every_arc_blocked_request_and_group():
    model = load_model(V2)
    for config in model.configs():
        source = diagram(model, [config]).source
        arcs = arc_graph(model, config)
        blocked = [b for b in model.blocked if {b.src, b.dst} <= set(model.supported(config.flags))]
        lines = _edges(source)
        # arcs + blocked requests + the one open/reset entry
        assert len(lines) == arcs.number_of_edges() + len(blocked) + 1, config.label
        assert sum("EINVAL" in line for line in lines) == len(blocked)
        for effect in ("starts", "ends"):
            assert sum(f"label={effect}" in line for line in lines) == sum(
                1 for *_, d in arcs.edges(data=True) if d["session"] == effect)
        assert "cluster_c0_saving" in source and "octagon" in source
        assert "open / reset" in source and "peripheries=2" in source


def test_v1_invalid_values_are_drawn_apart():
    model = load_model(V1)
    source = diagram(model).source
    invalid = [s.name for s in model.states if not s.requestable and s.name != model.error]
    assert invalid and all(source.count(f'label="{name}\\n') == 2 for name in invalid)  # once per profile
    assert source.count("(invalid)") == 2 * len(invalid)


def test_diagram_output_is_stable():
    model = load_model(V2)
    first = render_bytes(diagram(model), "svg")
    assert first == render_bytes(diagram(load_model(V2)), "svg")
    assert first.lstrip().startswith(b"<?xml") and b"<svg" in first


def test_trace_overlay_numbers_arcs_and_marks_a_reset():
    model = load_model(V2)
    config = next(c for c in model.configs() if c.label == "STOP_COPY|P2P")
    trace = steps(model, ["RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY", "RUNNING [reset]"])
    lines = _edges(diagram(model, [config], trace, config).source)
    numbered = sorted(re.search(r'label="?(\d)', line).group(1) for line in lines if "#e36209" in line)
    assert numbered == ["1", "2", "3", "4"]
    assert any("4 (reset)" in line and "dotted" in line for line in lines)


def test_render_cli_formats_and_errors(tmp_path):
    runner = CliRunner()
    for suffix in ("svg", "png", "dot"):
        out = tmp_path / f"v2.{suffix}"
        result = runner.invoke(main, ["render", str(V2), "--flags", "7", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 100
    bad = runner.invoke(main, ["render", str(V2), "--flags", "P2P", "-o", str(tmp_path / "x.svg")])
    assert bad.exit_code == 2 and "not a defined flag set" in bad.output
    bad = runner.invoke(main, ["render", str(V2), "-o", str(tmp_path / "x.gif")])
    assert bad.exit_code == 2 and "unknown format" in bad.output
    assert not (tmp_path / "x.svg").exists() and not (tmp_path / "x.gif").exists()


def test_missing_dot_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    with pytest.raises(DotMissingError, match="apt-get install graphviz"):
        render_bytes(diagram(load_model(V1)), "svg")
    result = cli("render", str(V1), "-o", str(tmp_path / "v1.svg"))
    assert result.exit_code == 2 and "apt-get install graphviz" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind


def test_json_export_is_versioned_and_derived():
    model = load_model(V2)
    doc = graph_json(model)
    assert (doc["schema"], doc["version"]) == ("fsmcheck-graph", 1)
    assert [s["name"] for s in doc["states"]] == list(model.state_names)
    assert len(doc["arcs"]) == len(model.arcs)
    for config, exported in zip(model.configs(), doc["configurations"]):
        assert {(a["from"], a["to"]) for a in exported["arcs"]} == set(arc_graph(model, config).edges)
    assert json.dumps(doc) == json.dumps(graph_json(load_model(V2)))
    result = cli("export", str(V2), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output) == doc


@pytest.mark.browser
@pytest.mark.slow
def test_report_in_headless_chromium(variant, tmp_path):
    """The report opens offline in Debian's Chromium: every diagram renders
    (non-empty SVG boxes), nothing is fetched, nothing is logged as an error.
    The screenshot is kept in artifacts/report.png."""
    chromium = shutil.which("chromium")
    require_tool(chromium is not None, "Debian's chromium", "apt-get install chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    defect = variant(*V1_LETS_101_THROUGH)
    page_html, reports = build_report([str(V1), str(V2), str(defect)])
    report = tmp_path / "report.html"
    report.write_text(page_html)
    assert "http://" not in page_html.replace("http://www.w3.org/", "")
    assert "https://" not in page_html and "<script" not in page_html
    configs = sum(len(r.model.configs()) for r in reports)
    counterexamples = sum(1 for r in reports for x in r.results if x.counterexample is not None)
    assert counterexamples == 3  # the defect's validity, no-invalid-entry and reachability
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            problems, requests = [], []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            boxes = page.eval_on_selector_all(
                "figure.diagram svg",
                "els => els.map(e => { const r = e.getBoundingClientRect();"
                " return [e.closest('figure').dataset.kind, r.width, r.height, e.querySelectorAll('g.node').length]; })")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            matrices = page.locator("table.matrix").count()
        finally:
            browser.close()
    assert [k for k, *_ in boxes].count("configuration") == configs
    assert [k for k, *_ in boxes].count("counterexample") == counterexamples
    assert all(w > 50 and h > 50 and nodes >= 2 for _, w, h, nodes in boxes), boxes
    assert matrices == len(load_model(V2).configs())  # v1 has no combination rule
    assert problems == []
    assert requests == [report.as_uri()]
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
