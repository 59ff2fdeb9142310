"""The diagnostic every input problem becomes, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnostic", "InputError"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem in an input file: where (``path``, 1-based ``line``), which
    key (a dotted key path, or ``<file>``, ``<toml>``, ``<json>``, ``<line>``
    for problems below the document's keys), and what is wrong."""

    path: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.key}: {self.message}"


class InputError(Exception):
    """A file that cannot be used as input; ``diagnostics`` lists every problem
    found (at least one). Every command reports them one a line and exits 2."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def at(cls, path: str, line: int, key: str, message: str) -> "InputError":
        """An error of one diagnostic."""
        return cls([Diagnostic(str(path), line, key, message)])
