"""The scripts of ``tools/`` as modules for the tests (``tools/`` is not a package)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load(name: str):
    """``tools/<name>.py``, imported once (the tools import each other by name, as they do when run)."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module(name)
