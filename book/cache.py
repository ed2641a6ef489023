"""Decide what `make book` must re-execute: one chapter when only its module changed, everything when the library did.

The notebooks' execution cache (jupyter-cache, ``_build/.jupyter_cache``) is keyed by each notebook's code cells
only; it cannot see the library the cells import. This script keeps the hashes of the library's sources next to
the site and, before a build, compares them with the sources now:

- a mechanism, the registry, the toolkit or ``chapters/__init__.py`` changed (or no build was recorded): the whole
  cache is dropped and the build is told to re-read every page (prints ``--all``);
- only ``attention_lib/chapters/chNN_<name>.py`` (or a private helper ``_chNN_<what>.py`` of that chapter)
  changed: the cache records of ``notebooks/*/NN_<name>.ipynb`` are removed and those notebooks are touched, so Sphinx re-reads them and MyST-NB re-executes them, and nothing else;
- nothing changed: nothing is done, and the build executes nothing.

    python book/cache.py prepare    # before the build; prints the extra jupyter-book arguments
    python book/cache.py record     # after a successful build: remember the hashes just built
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "attention_lib"
CACHE = ROOT / "_build" / ".jupyter_cache"
STAMP = ROOT / "_build" / ".attention_lib_hashes.json"
#: A chapter's module ``chNN_<name>.py`` and its private helpers ``_chNN_<what>.py`` belong to chapter NN.
CHAPTER = re.compile(r"_?ch(\d\d)_\w+\.py")


def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def current() -> dict:
    """``{"library": hash of everything but the chapters' own modules, "chapters": {"03": hash of chapter 3's}}``."""
    sources = sorted(p for p in LIBRARY.rglob("*") if p.suffix in (".py", ".js"))   # the viewer's script too
    chapters: dict[str, list[Path]] = {}
    for p in sources:
        if p.parent.name == "chapters" and (m := CHAPTER.fullmatch(p.name)):
            chapters.setdefault(m.group(1), []).append(p)
    own = {p for files in chapters.values() for p in files}
    shared = [p for p in sources if p not in own]
    return {"library": _digest(shared), "chapters": {n: _digest(files) for n, files in chapters.items()}}


def _recorded() -> dict:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def _drop_chapter(number: str) -> list[Path]:
    """Remove the cached executions of chapter ``number``'s notebooks and touch them; return the notebooks."""
    notebooks = sorted(ROOT.glob(f"notebooks/*/{number}_*.ipynb"))
    if CACHE.exists():
        from jupyter_cache import get_cache

        cache = get_cache(CACHE)
        names = {p.name for p in notebooks}
        for record in cache.list_cache_records():
            if Path(str(record.uri)).name in names:
                cache.remove_cache(record.pk)
    for path in notebooks:
        os.utime(path)            # newer than the last read: Sphinx reads the page again
    return notebooks


def prepare() -> list[str]:
    """Invalidate what the changed sources require; return the extra arguments for ``jupyter-book build``."""
    now, then = current(), _recorded()
    if now["library"] != then.get("library"):
        reason = "no recorded build" if not then else "attention_lib changed"
        print(f"{reason}: re-executing every notebook", file=sys.stderr)
        shutil.rmtree(CACHE, ignore_errors=True)
        return ["--all"]
    old = then.get("chapters", {})
    for number, digest in sorted(now["chapters"].items()):
        if old.get(number) != digest:
            notebooks = _drop_chapter(number)
            print(f"chapter {number}'s module changed: re-executing "
                  f"{[p.relative_to(ROOT).as_posix() for p in notebooks]}", file=sys.stderr)
    return []


def record() -> None:
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(json.dumps(current(), indent=1, sort_keys=True))


def main(argv: list[str]) -> int:
    if argv[1:] == ["prepare"]:
        print(" ".join(prepare()))
    elif argv[1:] == ["record"]:
        record()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
