"""MkDocs hooks (``mkdocs.yml``: ``hooks:``): the pages derived from the code.

* the navigation, from the pages present in ``docs/`` (an order for the
  known ones, the rest alphabetically after them), so a page another change
  adds appears without editing ``mkdocs.yml`` and a missing one cannot break
  ``mkdocs build --strict``;
* ``model-format-reference.md`` and the other input file kinds' references
  (``docs_gen.FORMAT_PAGES``): every table and key a file may hold, from the
  JSON Schema its loader checks against;
  in ``commands.md`` the exit-code tables (``docs_gen.FRAGMENTS``);
* ``benchmarks.md``: the figures of the last ``make bench`` / ``make
  bench-ci`` run, read from its output files in ``build/bench/``.

The CLI reference (``cli-reference.md``) is written by mkdocs-click from
the click commands themselves.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import docs_gen  # noqa: E402

#: The order of the pages this repository is known to have; any other page
#: present follows them, alphabetically; absent ones are left out.
ORDER = [
    "index.md", "install.md", "quick-start.md", "commands.md", "cli-reference.md", "model-format.md", "model-format-reference.md",
    "orchestration-format-reference.md", "errata-format-reference.md", "catalogue-format-reference.md", "properties.md", "review-outputs.md", "diff.md", "packs.md", "conformance-pack.md",
    "kernel-c.md", "vm.md", "qemu-traces.md", "check-trace.md", "vfio-user.md",
    "orchestration.md", "every-run-ends.md", "robustness.md", "fuzz.md", "findings.md",
    "benchmarks.md", "layout.md", "architecture.md",
]

GENERATED = {
    **{name: functools.partial(docs_gen.format_page, name) for name in docs_gen.FORMAT_PAGES},
    "benchmarks.md": functools.lru_cache(maxsize=None)(lambda: docs_gen.benchmarks_page(ROOT / "build" / "bench")),
}


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def on_config(config, **kwargs):
    """The navigation from the pages present (and the generated ones)."""
    docs = Path(config["docs_dir"])
    present = {p.name for p in docs.glob("*.md")} | set(GENERATED)
    ordered = [name for name in ORDER if name in present] + sorted(present - set(ORDER))
    titles = {name: docs_gen.title_of(GENERATED[name]()) if name in GENERATED else _title(docs / name)
              for name in ordered}
    config["nav"] = [{titles[name]: name} for name in ordered]
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Fill the ``<!-- generated: NAME -->`` markers (the exit-code tables)."""
    for name, make in docs_gen.FRAGMENTS.items():
        markdown = markdown.replace(f"<!-- generated: {name} -->", make())
    return markdown


def on_files(files, config, **kwargs):
    """Add the generated pages."""
    for name, make in GENERATED.items():
        files.append(File.generated(config, name, content=make()))
    return files
