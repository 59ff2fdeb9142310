"""Which test to try first: the kill order of the pack's modules, and the
killing-order file.

- **Most likely to kill first.** A first-kill run takes the pack's modules in
  :func:`kill_order`: the flag set with the most flags first (every state and
  arc is there, so a mutant's fault is observable there whatever state it is
  in).
- **Killing-order file.** Every score records, per mutant, the test that
  killed it first (:data:`ORDER_FILE` in the cache directory,
  :func:`default_cache_dir`). The next score tries that test alone first, and
  only if it does not kill runs the pack with ``-x``. The file is keyed by
  :func:`order_key`; a file with another key is stale and ignored (and
  replaced at the end of the run). The recorded test is the first killing
  test in pack order, so a run with the file reports the same killing suite
  as a run without it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import platformdirs

__all__ = ["ORDER_FILE", "default_cache_dir", "kill_order", "order_key", "read_order", "write_order"]

#: The killing-order file's name in the cache directory.
ORDER_FILE = "mutate-kills.json"
_ORDER_VERSION = 1


def _flag_count(module: Path) -> int:
    """How many migration flags the flag set of a pack module has (its
    ``SPEC``'s ``flags``, read with ``ast`` -- the module is not imported);
    0 when it has none or cannot be read."""
    try:
        tree = ast.parse(module.read_text())
    except (OSError, SyntaxError, ValueError):
        return 0
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPEC" for t in node.targets)
                and isinstance(node.value, ast.Call) and node.value.args
                and isinstance(node.value.args[0], ast.Dict)):
            for key, value in zip(node.value.args[0].keys, node.value.args[0].values):
                if isinstance(key, ast.Constant) and key.value == "flags" and isinstance(value, ast.List):
                    return len(value.elts)
    return 0


def kill_order(modules: list[Path]) -> list[Path]:
    """The order a first-kill run takes ``modules`` in: the flag set with the
    most flags first (it supports every state and arc the others do, so a
    fault in any of them is observable there), then by name."""
    return sorted(modules, key=lambda m: (-_flag_count(m), m.name))


def default_cache_dir() -> Path:
    """Where the killing-order file is kept: the user's cache directory for
    fsmcheck (platformdirs; on Linux ``$XDG_CACHE_HOME/fsmcheck``, else
    ``~/.cache/fsmcheck``)."""
    return Path(platformdirs.user_cache_dir("fsmcheck", appauthor=False))


def order_key(pack: Path, seed: int) -> str:
    """The digest a killing-order file must carry to be used for ``pack`` and
    ``seed``: SHA-256 over the pack's modules, the seed, every fsmcheck source
    file, the shipped models and the pytest and hypothesis versions (what
    decides which test kills a mutant first)."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    digest = hashlib.sha256(f"fsmcheck-kills {_ORDER_VERSION} {__version__} seed {seed}\n".encode())
    for dist in ("pytest", "hypothesis"):
        try:
            digest.update(f"{dist} {version(dist)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{dist} -\n".encode())
    root = Path(__file__).resolve().parents[1]
    files = [("pack", p) for p in sorted(pack.glob("test_*.py"))]
    files += [("src", p) for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts]
    try:
        from ..model.shipped import shipped_model_path

        files += [("model", shipped_model_path(name)) for name in ("vfio_v1", "vfio_v2")]
    except Exception:  # noqa: BLE001 -- no shipped models: the sources still key the file
        pass
    for kind, path in files:
        name = path.name if kind != "src" else path.relative_to(root).as_posix()
        digest.update(f"{kind} {name} ".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_order(path: Path, key: str) -> dict:
    """The entries of the killing-order file at ``path`` if it carries ``key``;
    {} when it is missing, unreadable, malformed or stale."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != _ORDER_VERSION or doc.get("key") != key:
        return {}
    runs = doc.get("runs")
    return {k: v for k, v in runs.items() if isinstance(v, dict)} if isinstance(runs, dict) else {}


def write_order(path: Path, key: str, runs: dict) -> None:
    """Write the killing-order file atomically (deterministic content, mode
    0666 less the umask); a cache that cannot be written is skipped silently."""
    from ..outputs import write_file

    text = json.dumps({"version": _ORDER_VERSION, "key": key, "runs": runs}, indent=1, sort_keys=True) + "\n"
    try:
        write_file(path, text)
    except OSError:
        pass
