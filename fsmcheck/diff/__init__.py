"""``fsmcheck diff``: what a change of a model does (structure, combination
tables, verdicts, the generated pack), for reviewing a uAPI change as a diff."""

from .compare import ModelDiff, diff_models

__all__ = ["ModelDiff", "diff_models"]
