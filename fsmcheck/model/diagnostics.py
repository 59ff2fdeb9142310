"""What the model loader reports: a :class:`Diagnostic` per problem, and the
:class:`ModelError` that carries them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnostic", "ModelError"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a model file: where, which key, and what is wrong."""

    path: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.key}: {self.message}"


class ModelError(Exception):
    """Raised by :func:`load_model` for a file that is not a valid model.

    ``diagnostics`` lists every problem found (at least one).
    """

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
