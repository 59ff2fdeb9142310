"""Build step: the shipped models travel inside the wheel.

The checkout's ``models/`` is the one source of the shipped models. Building
the package copies its ``*.toml`` files (``variants/`` too, keeping the tree so
the relative references between models still resolve) into the built package
as ``fsmcheck/models/``, which fsmcheck reads with importlib.resources
(fsmcheck/model/shipped.py). Nothing is copied inside the checkout. The rest
of the configuration is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).resolve().parent / "models"


class build_py_with_models(build_py):
    """build_py, then models/**/*.toml into BUILD_LIB/fsmcheck/models/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's models/ directly
        target = Path(self.build_lib) / "fsmcheck" / "models"
        for source in sorted(MODELS.rglob("*.toml")):
            dest = target / source.relative_to(MODELS)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": build_py_with_models})
