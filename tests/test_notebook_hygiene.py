"""Notebook hygiene: twins in both languages with the same code, stored clean, the same set-up cell first.

The twins' code cells are identical but for lines ending in ``# i18n``, exactly the rule of the project's
before-stop hook: the set-up line, and each answer stub (``answer_1 = ...   # your answer: an integer  # i18n``),
whose comment each twin writes in its own language from ``book/skeleton.yml`` (``tools/sync_twins.py`` does it;
``tests/test_skeleton.py`` checks it). No other exemption: a stub without the mark fails.

These checks read the notebooks as JSON (no kernel), so they run in well under a second.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from .tool_modules import load

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("editions", ROOT / "tools" / "editions.py")
editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(editions)
NOTEBOOKS = ROOT / "notebooks"
LANGS = ("en", "zh")
I18N = "# i18n"

#: The first code cell of every notebook; only the ``lang`` differs (its line ends in ``# i18n``).
SETUP_CELL = '''import subprocess, sys
if "google.colab" in sys.modules:  # Colab keeps its own torch
    url = "git+https://github.com/attention-book/attention-mechanisms-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"attention_lib[book] @ {url}"], check=True)
import attention_lib
device = attention_lib.setup(lang="{lang}")  # i18n
device'''

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _names(lang: str) -> set[str]:
    return {p.name for p in (NOTEBOOKS / lang).glob("*.ipynb")}


ALL = sorted(NOTEBOOKS.glob("*/*.ipynb"))
CHAPTERS = sorted(_names("en") | _names("zh"))


def _read(path: Path):
    """The notebook as git stores it: a reader who ran it (outputs in the file) commits it clean when the clean
    filter is configured (``make venv``), so only what would be committed is checked."""
    return editions.committed(path)


def _code_cells(path: Path) -> list[str]:
    return [c.source for c in _read(path).cells if c.cell_type == "code"]


#: The first line of a solution cell, the title Colab shows over the collapsed code (tools/editions.py writes
#: it, the same in both twins): the one comment line of a code cell that may hold Chinese.
TITLE = "# @title "


zh_typography = load("zh_typography")


def _drop_i18n(source: str) -> str:
    """The code the twins share: the cell without its lines ending in ``# i18n`` (the hook's rule, no other)."""
    return "\n".join(line for line in source.splitlines() if not line.rstrip().endswith(I18N))


def _differing(en_cells: list[str], zh_cells: list[str]) -> list[int]:
    """The code cells (by index) whose shared code differs between the twins."""
    return [i for i, (a, b) in enumerate(zip(en_cells, zh_cells)) if _drop_i18n(a) != _drop_i18n(b)]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_there_are_notebooks_in_both_languages():
    assert _names("en") and _names("zh"), f"no notebooks under {NOTEBOOKS}/en or /zh"


@pytest.mark.parametrize("lang,other", [("en", "zh"), ("zh", "en")])
def test_every_notebook_has_a_twin_in_the_other_language(lang, other):
    missing = sorted(_names(lang) - _names(other))
    assert not missing, f"notebooks/{lang} has {missing} but notebooks/{other} has no twin of the same name"


@pytest.mark.parametrize("name", CHAPTERS)
def test_twins_have_identical_code_cells_apart_from_i18n_lines(name):
    en, zh = NOTEBOOKS / "en" / name, NOTEBOOKS / "zh" / name
    if not (en.exists() and zh.exists()):
        pytest.skip(f"{name}: twin missing (reported by the twin test)")
    en_cells, zh_cells = _code_cells(en), _code_cells(zh)
    assert len(en_cells) == len(zh_cells), \
        f"{name}: {len(en_cells)} code cells in English, {len(zh_cells)} in Chinese"
    for i in _differing(en_cells, zh_cells):
        assert False, (
            f"{name}: code cell {i} differs between en and zh (only lines ending in '{I18N}' may differ; "
            f"python tools/sync_twins.py {name[:-6]} copies them)\n--- en\n{en_cells[i]}\n--- zh\n{zh_cells[i]}")


def test_the_twin_rule_fails_on_a_stub_without_the_mark_and_on_any_other_difference():
    stub = {"en": "answer_1 = ...   # your answer: an integer", "zh": "answer_1 = ...   # 你的答案：一个整数"}
    check = 'al.exercises.check("se.params", answer_1)'
    marked = {lang: f"{line}  {I18N}\n{check}" for lang, line in stub.items()}
    assert _differing([marked["en"]], [marked["zh"]]) == []
    assert _differing([f"{stub['en']}\n{check}"], [f"{stub['zh']}\n{check}"]) == [0]      # no exemption for stubs
    assert _differing([marked["en"]], [marked["zh"].replace("se.params", "se.shape")]) == [0]
    assert _differing(["x = 1  # a comment"], ["x = 1  # 注释"]) == [0]                     # nor for comments


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_only_the_setup_line_and_the_answer_stubs_are_marked_i18n(path):
    cells = _code_cells(path)
    marked = [(i, line) for i, src in enumerate(cells) for line in src.splitlines()
              if line.rstrip().endswith(I18N) and not zh_typography.STUB.match(line)]
    assert len(marked) <= 1, f"{_rel(path)}: more than one '{I18N}' line besides the answer stubs: {marked}"
    assert all(i == 0 for i, _ in marked), f"{_rel(path)}: the '{I18N}' line must be in the set-up cell: {marked}"
    stubs = [line for src in cells for line in src.splitlines() if zh_typography.STUB.match(line)]
    assert all(zh_typography.STUB.match(line).group("mark") for line in stubs), \
        f"{_rel(path)}: answer stubs without the '{I18N}' mark: {[s for s in stubs if not s.endswith(I18N)]}"


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{_rel(path)}: code cells {dirty} have outputs or execution counts; clear them before committing"
    assert "widgets" not in nb.metadata, f"{_rel(path)}: saved widget state in the metadata; clear it"


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_first_code_cell_is_the_shared_setup(path):
    lang = path.parent.name
    cells = _code_cells(path)
    assert cells, f"{_rel(path)} has no code cell"
    expected = SETUP_CELL.replace("{lang}", lang)
    assert cells[0].strip() == expected, (
        f"{_rel(path)}: the first code cell must be the shared set-up cell (lang={lang!r}):\n{expected}\n"
        f"--- found\n{cells[0]}")


#: The page's text column holds 80 characters of code; longer lines are cut off on the site.
MAX_LINE = 80


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_code_lines_fit_the_text_column(path):
    wide = [(i, line) for i, src in enumerate(_code_cells(path)) for line in src.splitlines()
            if len(line) > MAX_LINE]
    assert not wide, f"{_rel(path)}: code lines longer than {MAX_LINE} characters (code cell, line): {wide}"


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_code_cells_hold_no_chinese_literals(path):
    own = path.parent.name == "zh"       # a Chinese twin's answer stubs say in Chinese what to type
    found = [(i, line) for i, src in enumerate(_code_cells(path)) for line in src.splitlines()
             if CJK.search(line) and not line.startswith(TITLE) and not (own and zh_typography.STUB.match(line))]
    assert not found, (f"{_rel(path)}: Chinese text in code cells {found}; "
                       "register it in attention_lib.i18n and use t(...), or write it in a markdown cell")


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_chapter_opens_with_a_link_to_its_twin(path):
    nb = _read(path)
    other = "zh" if path.parent.name == "en" else "en"
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    assert first.lstrip().startswith("# "), f"{_rel(path)}: the first markdown cell must start with the '# ' title"
    link = f"](../{other}/{path.name})"
    assert link in first, f"{_rel(path)}: the first markdown cell must link to its twin with '{link}'"


def _toc_files(caption: str) -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    part = next((p for p in toc["parts"] if p["caption"] == caption), None)
    assert part is not None, f"_toc.yml has no part with caption {caption!r}"
    return [c["file"] for c in part["chapters"]]


def test_both_parts_of_the_toc_list_the_same_pages_in_the_same_order():
    en = _toc_files("English")
    zh = _toc_files("中文")
    assert [f.replace("/en/", "/zh/") for f in en] == zh, f"English part {en} and Chinese part {zh} differ"


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    listed = set(_toc_files("English")) | set(_toc_files("中文"))
    on_disk = {_rel(p)[: -len(".ipynb")] for p in ALL}
    assert on_disk <= listed, f"notebooks not in _toc.yml (they would not be built): {sorted(on_disk - listed)}"
    missing = [f for f in listed if not any((ROOT / f).with_suffix(s).exists() for s in (".ipynb", ".md"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
