"""The VM's initramfs without booting it (vm/vmimage.py): the packages come
from the project's virtual environment and every ELF file packed has every
shared library ``ldd`` asks for (issue 12: hypothesis 6.170's
``hypothesis._native`` needs libgcc_s.so.1, which python3's closure lacks)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("ldd"), reason="needs ldd (glibc)")

sys.path.insert(0, str(ROOT / "vm"))
spec = importlib.util.spec_from_file_location("vmimage", ROOT / "vm" / "vmimage.py")
vmimage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vmimage)

IMPORTS = ["pytest", "hypothesis.stateful", "_hypothesis_pytestplugin"]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The Python part of the vm-e2e initramfs, built from this interpreter's environment."""
    stage = tmp_path_factory.mktemp("stage")
    info = vmimage.probe_environment(IMPORTS, python=Path(sys.executable))
    roots = vmimage.stage_python(stage, info)
    return stage, info, roots


def test_packages_come_from_the_environment_that_runs_the_tests(staged):
    stage, info, roots = staged
    assert Path(info["site"]).is_relative_to(sys.prefix)
    assert {r.name for r in roots} >= {"pytest", "hypothesis", "_pytest", "pluggy"}
    assert all(r.is_relative_to(info["site"]) for r in roots)
    import hypothesis
    assert info["dists"]["hypothesis"] == hypothesis.__version__
    assert (stage / "opt/site/hypothesis/__init__.py").exists()
    # nothing from the system's site-packages, nor the venv's own .pth helpers
    assert not (stage / "usr/lib/python3/dist-packages").exists()
    assert not any(p.name.startswith("__editable__") for p in (stage / "opt/site").iterdir())


def test_every_packed_elf_has_its_library_closure(staged):
    stage, _, _ = staged
    elves = vmimage.staged_elves(stage)
    extensions = [e for e in elves if e.is_relative_to(stage / "opt/site")]
    assert elves and (stage / "usr/bin/python3").exists()
    assert vmimage.missing_libraries(stage) == {}
    # the library that only an extension module asks for is there too
    for ext in extensions:
        for lib in vmimage.ldd(ext):
            assert (stage / str(lib).lstrip("/")).exists(), f"{ext.name} needs {lib}"


def test_a_missing_library_is_found(staged, tmp_path):
    stage, _, _ = staged
    small = tmp_path / "stage"
    shutil.copytree(stage / "usr/bin", small / "usr/bin", symlinks=True)
    gaps = vmimage.missing_libraries(small)
    assert gaps and all(libs for libs in gaps.values())
    copied = vmimage.copy_library_closure(small)
    assert copied and vmimage.missing_libraries(small) == {}


def test_an_extension_needing_a_library_python3_does_not_gets_it(tmp_path):
    """hypothesis._native (when installed) needs libgcc_s.so.1; the closure of
    python3 and lib-dynload alone (the old vm-e2e) does not contain it."""
    native = next(Path(p) for p in sys.path if (Path(p) / "hypothesis").is_dir()) / "hypothesis"
    found = sorted(native.glob("_native*.so"))
    if not found:
        pytest.skip("this hypothesis has no _native extension")
    needs = {lib.name for lib in vmimage.ldd(found[0])}
    interpreter = set()
    for elf in [Path(sys._base_executable).resolve(),
                *sorted((Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                         / "lib-dynload").glob("*.so"))]:
        interpreter |= {lib.name for lib in vmimage.ldd(elf)}
    assert needs - interpreter, "the _native extension needs nothing python3 lacks: the test proves nothing"
    stage = tmp_path / "stage"
    vmimage.copy_into(found[0], stage, Path("/opt/site/hypothesis") / found[0].name)
    vmimage.copy_library_closure(stage)
    for name in needs - interpreter:
        assert list(stage.rglob(name)), f"{name} not packed"


def test_payload_round_trip_and_damage():
    import base64
    import gzip
    body = base64.b64encode(gzip.compress(b"data")).decode()
    lines = ["x", "fsmcheck-vm: thing begin", body, "fsmcheck-vm: thing end"]
    assert vmimage.payload(lines, "thing") == b"data"
    assert vmimage.payload(lines, "other") is None
    assert vmimage.payload(["fsmcheck-vm: thing begin", "**", "fsmcheck-vm: thing end"], "thing") is None
