"""One module per chapter, named after its notebook: ``chNN_<name>.py`` for ``notebooks/*/NN_<name>.ipynb``.

A chapter's module holds what that chapter alone needs: its strings (i18n keys ``chNN.*``), one named
function per figure, its exercise checks, its explorer settings and its demo configurations. A notebook
imports its own::

    from attention_lib.chapters import ch03_squeeze_excitation as ch

Editing a chapter's module re-executes only that chapter's notebooks in ``make book``.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

_PATTERN = re.compile(r"ch(\d\d)_\w+")


def names() -> list[str]:
    """The chapter modules' names, in chapter order (``["ch00_introduction", "ch01_self_attention", ...]``)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if _PATTERN.fullmatch(m.name))


def load(chapter: int | str) -> ModuleType:
    """The module of chapter ``chapter`` (its number, or its module name)."""
    if isinstance(chapter, int) and not isinstance(chapter, bool):
        found = [n for n in names() if n.startswith(f"ch{chapter:02d}_")]
        if not found:
            raise ValueError(f"no chapter {chapter}; the chapters are {names()}")
        chapter = found[0]
    if chapter not in names():
        raise ValueError(f"no chapter module {chapter!r}; the chapters are {names()}")
    return importlib.import_module(f"{__name__}.{chapter}")


def load_all() -> list[ModuleType]:
    """Import every chapter's module (each registers its strings, exercises and explorers)."""
    return [load(name) for name in names()]
