"""The exit codes of fsmcheck's commands, for a CI to gate on.

``EXIT_OK`` (0) everything holds; ``EXIT_FAIL`` (1) a property fails or a
check found a defect; ``EXIT_INPUT`` (2) bad input (a model, a file, an
option); ``EXIT_INTERNAL`` (3) the engines disagree or fsmcheck itself
failed. A leaf module: the CLI reads it without importing the engines.
"""

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

__all__ = ["EXIT_OK", "EXIT_FAIL", "EXIT_INPUT", "EXIT_INTERNAL"]
