"""What the model loader reports: diagnostics (:class:`fsmcheck.inputs.Diagnostic`)
carried by a :class:`ModelError`."""

from __future__ import annotations

from ..inputs import Diagnostic, InputError

__all__ = ["Diagnostic", "ModelError"]


class ModelError(InputError):
    """Raised by :func:`fsmcheck.model.load_model` for a file that is not a
    valid model.

    ``diagnostics`` lists every problem found (at least one).
    """
