"""Notebook markdown reads well in Jupyter and on Colab, not only on the website.

Jupyter shows MyST roles and directives raw ("{cite:p}`hu2018squeeze`"), so notebook markdown uses plain
Markdown: citations as links with author-year text, cross-references as relative links, notes as
blockquotes; no parenthesis inside a parenthesis. Every cited work stays listed on the references pages: each arXiv id or DOI a notebook links
to must be in ``book/references.bib`` (the pages print the whole file with ``:all:``).
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from .test_glossary import markdown_prose

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
BIB = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")

ROLE = re.compile(r"\{[A-Za-z][\w:+.-]*\}`")                    # {cite:p}`key`, {ref}`label`, {doc}`page`
DIRECTIVE = re.compile(r"^[ \t>]*(`{3,}|~{3,}|:{3,})[ \t]*\{", re.M)   # ```{note}, :::{admonition}
ARXIV = re.compile(r"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})", re.I)
DOI = re.compile(r"doi\.org/(10\.\d{4,9}/[^\s)\]>]+)", re.I)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$|`[^`\n]*`", re.S | re.M)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _markdown(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def _bib_ids(pattern: re.Pattern) -> set[str]:
    return {m.lower() for m in pattern.findall(BIB)} | {
        m.group(1).lower() for m in re.finditer(r"(?:eprint|doi)\s*=\s*\{([^}]*)\}", BIB, re.I)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_notebook_markdown_has_no_myst_roles_or_directives(path):
    found = [(i, m.group(0)) for i, src in _markdown(path) for m in ROLE.finditer(src)]
    found += [(i, m.group(0).strip()) for i, src in _markdown(path) for m in DIRECTIVE.finditer(src)]
    assert not found, (
        f"{_rel(path)}: MyST roles or directives in markdown cells {found}. Jupyter and Colab show them raw: "
        "cite as [Hu et al., 2018](https://arxiv.org/abs/1709.01507), cross-reference with a relative link "
        "such as [chapter 3](03_squeeze_excitation.ipynb), and write notes as blockquotes ('> **Note.** ...')")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_every_work_a_notebook_links_to_is_in_references_bib(path):
    arxiv, doi = _bib_ids(ARXIV), _bib_ids(DOI)
    missing = [(i, f"arXiv:{m}") for i, src in _markdown(path) for m in ARXIV.findall(src) if m.lower() not in arxiv]
    missing += [(i, f"doi:{m}") for i, src in _markdown(path) for m in DOI.findall(src) if m.lower() not in doi]
    assert not missing, (
        f"{_rel(path)}: works linked in markdown cells but missing from book/references.bib {missing}; "
        "add an entry with its eprint (arXiv id) or doi, so that the references pages list it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_relative_links_in_notebook_markdown_point_to_existing_files(path):
    broken = []
    for i, src in _markdown(path):
        for target in LINK.findall(CODE.sub("", src)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue                                   # https:, mailto:, in-page anchors
            file = unquote(target.split("#", 1)[0])
            if file and not (path.parent / file).exists():
                broken.append((i, target))
    assert not broken, (f"{_rel(path)}: relative links to files that do not exist {broken} "
                        "(link a chapter only once its notebook exists; write 'chapter 5' without a link before)")


def nested_parentheses(text: str) -> list[str]:
    """Each place where a parenthesis opens inside another one, in prose (code, maths, link targets and
    link texts aside; a blank line ends any unclosed parenthesis)."""
    text = re.sub(r"\[[^\]\n]*\]", lambda m: " " * len(m.group(0)), markdown_prose(text))
    found, depth = [], 0
    for i, ch in enumerate(text):
        if ch in "(（":
            depth += 1
            if depth == 2:
                found.append(text[max(0, i - 30):i + 30].replace("\n", " ").strip())
        elif ch in ")）":
            depth = max(0, depth - 1)
        elif ch == "\n" and text[i - 1:i] == "\n":
            depth = 0
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_notebook_prose_has_no_parenthesis_inside_a_parenthesis(path):
    found = [(i, hit) for i, src in _markdown(path) for hit in nested_parentheses(src)]
    assert not found, (f"{_rel(path)}: a parenthesis inside a parenthesis in markdown cells {found}; "
                       "rewrite as two sentences, or use a comma or a colon for the inner one")


def test_the_checks_recognise_roles_directives_and_arxiv_ids():
    assert ROLE.search("as shown by {cite:p}`hu2018squeeze`") and ROLE.search("see {ref}`sec-cost`")
    assert not ROLE.search("a set {1, 2} and `code`")
    assert DIRECTIVE.search(":::{note}\ntext\n:::") and DIRECTIVE.search("```{admonition} Title\n```")
    assert not DIRECTIVE.search("```python\nx = {1: 2}\n```")
    assert ARXIV.findall("[Hu et al., 2018](https://arxiv.org/abs/1709.01507)") == ["1709.01507"]
    assert "1709.01507" in _bib_ids(ARXIV) and "0000.00000" not in _bib_ids(ARXIV)
    assert nested_parentheses("用多个随机种子（seed（种子））来看") and nested_parentheses("a (b (c) d)")
    assert not nested_parentheses("a (b) c (`f(x)`), $g(h(x))$, [Mnih 等（2014）](https://x.org/(y))")
