"""One schema-driven reader for every input file kind (issue 25, item 3):
each kind's structure is a JSON Schema checked by fsmcheck.inputs.schema,
every problem one ``file:line: key: message``; the format references are
rendered from the schemas; a model file is read once and its kind taken from
that one read, so standard input works for verify, report and export."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from fsmcheck.inputs import InputError, Text
from fsmcheck.inputs.schema import entries, load_toml, names, problems, reference, string, table

from .conftest import MODELS, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import docs_gen  # noqa: E402

TOY = table("a toy", {
    "item": entries("items", {
        "id": string("a name", minLength=1),
        "kind": string("the kind", enum=["a", "b"]),
        "tags": names("tags", item=string("", minLength=1), minItems=1),
    }, ["id"]),
}, ["item"])


def _diagnostics(text: str, schema: dict = TOY) -> list[str]:
    with pytest.raises(InputError) as exc:
        load_toml(Text("f.toml", text.encode(), text), schema)
    return [str(d) for d in exc.value.diagnostics]


def test_each_schema_keyword_is_one_diagnostic_at_its_line():
    text = '[[item]]\nid = ""\nkind = "c"\ntags = []\ncolour = 1\n[[item]]\nkind = ["a"]\ntags = ["", 3]\n'
    assert _diagnostics(text) == [
        "f.toml:2: item[0].id: expected a non-empty string, got a string ''",
        'f.toml:3: item[0].kind: expected "a" or "b", got a string \'c\'',
        "f.toml:4: item[0].tags: expected a non-empty array of non-empty strings, got an array []",
        "f.toml:5: item[0].colour: unknown key (expected one of: id, kind, tags)",
        "f.toml:6: item[1]: missing required key 'id'",
        'f.toml:7: item[1].kind: expected "a" or "b", got an array [\'a\']',  # one diagnostic, not type and enum
        "f.toml:8: item[1].tags[0]: expected a non-empty string, got a string ''",
        "f.toml:8: item[1].tags[1]: expected a non-empty string, got an integer 3",
    ]
    assert _diagnostics("") == ["f.toml:1: item: missing required key 'item'"]
    assert _diagnostics("item = 5\n") == ["f.toml:1: item: expected an array of tables, got an integer 5"]
    assert problems({"item": [{"id": True}]}, TOY) == [(("item", 0, "id"), "expected a non-empty string, got a boolean True")]


@pytest.mark.parametrize("page", sorted(docs_gen.FORMAT_PAGES))
def test_every_format_reference_is_its_schema(page):
    module, title = docs_gen.FORMAT_PAGES[page]
    schema = importlib.import_module(module).SCHEMA
    text = docs_gen.format_page(page)
    assert text.startswith(f"# {title}\n") and text == reference(schema, title)
    for key, spec in schema["properties"].items():
        assert f"## `{key}`" in text
        inner = spec.get("items") or spec
        for sub in inner.get("properties", {}):
            assert f"- `{sub}` ({inner['properties'][sub]['type']}" in text


# -- errata: the pack's and vfio-user's, one loader --------------------------------------------
def test_vfio_user_errata_are_the_pack_format_with_the_evidence_required(tmp_path):
    from fsmcheck.pack.errata import ErrataError, load_errata, read_errata

    for path in sorted((ROOT / "vfio-user" / "errata").glob("*.toml")):
        data = read_errata(path, evidence=True)
        assert [e.id for e in load_errata(path)] == [e["id"] for e in data.get("erratum", [])]
    bad = tmp_path / "e.toml"
    bad.write_text('[[crash]]\nid = "c"\nsignal = "SIGABRT"\nmatch = ["m"]\nreason = "r"\nvfio_h = "s"\n'
                   'upstream = "somewhere"\n')
    assert read_errata(bad)["crash"][0]["signal"] == "SIGABRT"  # the evidence is not required of a vendor
    with pytest.raises(ErrataError) as exc:
        read_errata(bad, evidence=True)
    assert [str(d) for d in exc.value.diagnostics] == [
        f"{bad}:7: crash[0].upstream: expected a file:line of the upstream source (`lib/x.c:12`), got 'somewhere'"]


# -- the rule catalogue -------------------------------------------------------------------------
def test_a_malformed_catalogue_is_every_problem_at_its_line(tmp_path):
    from fsmcheck.rules.catalogue import CATALOGUE, CatalogueError, load_catalogue

    text = CATALOGUE.read_text()
    first = text.index("[[rule]]")
    body = (text[first:].replace('id = "v2.flags-defined"', 'id = "x2.flags-defined"', 1)
            .replace('pack_rules = ["flags-defined"]', 'pack_rules = ["nope"]', 1))
    head = text[:first].count("\n")
    path = tmp_path / "c.toml"
    path.write_text(text[:first] + body)
    with pytest.raises(CatalogueError) as exc:
        load_catalogue(path)
    assert isinstance(exc.value, InputError)
    [d] = exc.value.diagnostics  # the structure first: "nope" is not looked up in a malformed file
    assert (d.line, d.key) == (head + 2, "rule[0].id") and d.message.startswith("expected a unique id")
    path.write_text(text.replace('pack_rules = ["flags-defined"]', 'pack_rules = ["nope"]', 1))  # after the schema
    with pytest.raises(CatalogueError) as exc:
        load_catalogue(path)
    assert [(d.key, d.message) for d in exc.value.diagnostics] == [
        ("rule[0].pack_rules", "pack rule(s) nope not in the v2 RULES")]


# -- orchestration files ------------------------------------------------------------------------
def test_orchestration_structure_comes_from_its_schema(tmp_path):
    from fsmcheck.model import ModelError
    from fsmcheck.orchestration import load_orchestration

    for name in ("vfio_v1.toml", "vfio_v2.toml"):
        shutil.copy(MODELS / name, tmp_path / name)
    text = (MODELS / "qemu_orchestration.toml").read_text()
    text = text.replace('on_error = "abort-now"\n', 'on_error = "abort-now"\ncolour = "red"\n', 1)
    text = text.replace("target = [", "tagret = [", 1)
    path = tmp_path / "o.toml"
    path.write_text(text)
    with pytest.raises(ModelError) as exc:
        load_orchestration(path)
    lines = text.splitlines()
    found = {d.key: d for d in exc.value.diagnostics}
    assert found["phases[0].colour"].message.startswith("unknown key (expected one of: callback, closes_data_fd")
    assert lines[found["phases[0].colour"].line - 1] == 'colour = "red"'
    [run] = [d for d in exc.value.diagnostics if d.message == "missing required key 'target'"]
    assert lines[run.line - 1] == "[[runs]]"


# -- read once, dispatch by kind: standard input ------------------------------------------------
COMMANDS = {
    "verify": (["verify", "--devices", "2", "/dev/stdin"], "qemu_orchestration: 6 property instances"),
    "report": (["report", "-o", "r.html", "/dev/stdin"], "wrote r.html"),
    "export": (["export", "--format", "promela", "/dev/stdin"], "#define N 2"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_orchestration_model_piped_on_stdin_is_read_once(tmp_path, command):
    """A pipe cannot be read twice: the kind is taken from the one read. Its
    relative device_model is taken from the current directory."""
    args, expected = COMMANDS[command]
    data = (MODELS / "qemu_orchestration.toml").read_bytes()

    def run(cwd):
        return subprocess.run([sys.executable, "-m", "fsmcheck.cli", *args], input=data, capture_output=True,
                              cwd=cwd, timeout=300)

    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run(empty)
    assert refused.returncode == 2, refused.stderr
    assert (b"/dev/stdin:23: orchestration.device_model: device model 'vfio_v2.toml' does not load (taken from "
            b"the current directory " + str(empty).encode() + b": the file is standard input") in refused.stderr
    for name in ("vfio_v1.toml", "vfio_v2.toml"):
        shutil.copy(MODELS / name, tmp_path / name)
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert expected.encode() in done.stdout + done.stderr
    if command == "report":
        assert b"qemu_orchestration" in (tmp_path / "r.html").read_bytes()


def test_a_device_model_piped_on_stdin_is_verified():
    done = subprocess.run([sys.executable, "-m", "fsmcheck.cli", "verify", "/dev/stdin"],
                          input=(MODELS / "vfio_v1.toml").read_bytes(), capture_output=True, timeout=300)
    assert done.returncode == 0 and b"vfio_v1: 9 property instances: 9 holds" in done.stdout, done.stderr
