"""book/cache.py: editing a chapter's module re-executes that chapter alone; the library, everything."""
import importlib.util
import os
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("book_cache", Path(__file__).resolve().parents[1] / "book" / "cache.py")
book_cache = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_cache)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    lib = tmp_path / "attention_lib"
    (lib / "chapters").mkdir(parents=True)
    (lib / "toolkit").mkdir()
    for rel in ("__init__.py", "se.py", "toolkit/viz.py", "chapters/__init__.py",
                "chapters/ch03_squeeze_excitation.py", "chapters/_ch03_demos.py", "chapters/ch08_comparison.py"):
        (lib / rel).write_text(f"# {rel}\n")
    for lang in ("en", "zh"):
        (tmp_path / "notebooks" / lang).mkdir(parents=True)
        for stem in ("03_squeeze_excitation", "08_comparison"):
            path = tmp_path / "notebooks" / lang / f"{stem}.ipynb"
            path.write_text("{}")
            os.utime(path, (1_000_000, 1_000_000))
    monkeypatch.setattr(book_cache, "ROOT", tmp_path)
    monkeypatch.setattr(book_cache, "LIBRARY", lib)
    monkeypatch.setattr(book_cache, "CACHE", tmp_path / "_build" / ".jupyter_cache")
    monkeypatch.setattr(book_cache, "STAMP", tmp_path / "_build" / "stamp.json")
    return tmp_path


def _touched(root):
    return sorted(p.relative_to(root).as_posix() for p in root.glob("notebooks/*/*.ipynb")
                  if p.stat().st_mtime > 1_000_000)


def test_first_build_and_library_changes_re_execute_everything(tree):
    (tree / "_build" / ".jupyter_cache").mkdir(parents=True)
    assert book_cache.prepare() == ["--all"] and not (tree / "_build" / ".jupyter_cache").exists()
    book_cache.record()
    assert book_cache.prepare() == [] and _touched(tree) == []          # nothing changed: nothing runs
    (tree / "attention_lib" / "toolkit" / "viz.py").write_text("# changed\n")
    assert book_cache.prepare() == ["--all"]
    book_cache.record()
    (tree / "attention_lib" / "chapters" / "__init__.py").write_text("# changed\n")
    assert book_cache.prepare() == ["--all"]


def test_a_chapter_module_change_re_executes_only_that_chapter(tree):
    book_cache.record()
    (tree / "attention_lib" / "chapters" / "ch03_squeeze_excitation.py").write_text("# changed\n")
    assert book_cache.prepare() == []
    assert _touched(tree) == ["notebooks/en/03_squeeze_excitation.ipynb", "notebooks/zh/03_squeeze_excitation.ipynb"]


def test_a_chapter_helper_module_belongs_to_its_chapter(tree):
    book_cache.record()
    (tree / "attention_lib" / "chapters" / "_ch03_demos.py").write_text("# changed\n")
    assert book_cache.prepare() == []
    assert _touched(tree) == ["notebooks/en/03_squeeze_excitation.ipynb", "notebooks/zh/03_squeeze_excitation.ipynb"]
