"""What every pack run imports, imported once by the fork server
(:mod:`.pool`): pytest with its default and installed plugins, hypothesis's
stateful testing and the pack's modules. Importing this module is its effect."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pytest  # noqa: F401
from _pytest.config import default_plugins

for _name in default_plugins:
    try:
        importlib.import_module(f"_pytest.{_name}")
    except ImportError:
        pass
for _entry in entry_points(group="pytest11"):
    try:
        importlib.import_module(_entry.value.split(":")[0])
    except Exception:  # noqa: BLE001 -- a broken plugin fails the run itself, not the server
        pass

import hypothesis.stateful  # noqa: E402,F401

from ..pack import plugin, precopy_reinit, v1_checks, v2_checks, v2_machine  # noqa: E402,F401
