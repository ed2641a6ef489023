"""The built site in Chromium, as a Chinese reader meets it: pages that say they are Chinese, Simplified Chinese
glyph forms, the themes' labels in Chinese, no stray space inside a Chinese sentence, and a search that finds
the book's own words (``book/_ext/zh_pages.py``).

Needs the site in ``_build/html`` (``make book``; ``make site-test`` runs this file) and Debian's ``chromium``.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

from .browser import ROOT, SITE, require_built_site, site_browser, site_server  # noqa: F401  (fixtures)
from .pending import pending

require_built_site()

PAGES = sorted(p.relative_to(SITE).as_posix() for p in [*(SITE / "book").rglob("*.html"),
                                                         *(SITE / "notebooks").rglob("*.html")])
ZH_PAGES = [p for p in PAGES if "/zh/" in f"/{p}"]
HTML_LANG = re.compile(r"<html\b[^>]*\blang=\"([^\"]+)\"")


def source_of(page: str) -> str:
    """The source a built page comes from (the key of tests/zh_pending.yml)."""
    stem = page[:-len(".html")]
    return f"{stem}.ipynb" if stem.startswith("notebooks/") else f"{stem}.md"


# ---------------------------------------------------------------- lang and labels (no browser needed)

def test_every_page_declares_its_language():
    wrong = []
    for page in PAGES:
        found = HTML_LANG.search((SITE / page).read_text(encoding="utf-8"))
        expected = "zh-CN" if page in ZH_PAGES else "en"
        if not found or found.group(1) != expected:
            wrong.append(f"{page}: lang={found.group(1) if found else None!r}, expected {expected!r}")
    assert ZH_PAGES and not wrong, "\n".join(wrong)


#: Attribute values that stay as they are on a Chinese page: names, file types, keys.
KEEP = {"Colab", "GitHub", "Binder", "JupyterHub", "PDF", "Ctrl", "K", "English", "Attention Mechanisms"}
_CODE = re.compile(r"<pre>.*?</pre>", re.S)          # highlighted code blocks
_LABEL = re.compile(r"\s(?:title|aria-label|placeholder|data-bs-title|alt)=\"([A-Za-z][A-Za-z .'…-]*)\"")


@pytest.mark.parametrize("page", ZH_PAGES)
def test_the_themes_labels_read_in_chinese_on_a_chinese_page(page):
    html = (SITE / page).read_text(encoding="utf-8")
    english = sorted({m.group(1) for m in _LABEL.finditer(html)
                      if m.group(1).strip() not in KEEP and len(m.group(1).strip()) > 1})
    assert not english, f"{page}: labels in English on a Chinese page: {english} (LABELS in book/_ext/zh_pages.py)"
    chrome = _CODE.sub("", html)          # the page less its code: `next(...)` in a cell is Python, not the theme
    for text in ("Skip to main content", ">Contents<", ">previous<", ">next<", "Search this book"):
        assert text not in chrome, f"{page}: the theme's '{text}' is not translated"


def test_the_chrome_check_reads_the_theme_and_not_the_code():
    page = '<div class="highlight"><pre><span class="nb">next</span>(demos)</pre></div><p class="prev-next-title">{}</p>'
    assert ">next<" not in _CODE.sub("", page.format("下一页"))
    assert ">next<" in _CODE.sub("", page.format("next"))


def test_chinese_text_on_english_pages_carries_its_language():
    html = (SITE / "notebooks" / "en" / "03_squeeze_excitation.html").read_text(encoding="utf-8")
    assert '<span lang="zh-CN">' in html, "the English page's Chinese sidebar titles carry no lang"
    landing = (SITE / "book" / "index.html").read_text(encoding="utf-8")
    assert '<span lang="zh-CN">一本关于深度学习中注意力机制的交互式双语教程' in landing


# ---------------------------------------------------------------- glyph forms and stray spaces (Chromium)

#: Where a Chinese reader reads: a chapter's paragraph, its sidebar, the landing page's Chinese paragraph,
#: and the Chinese titles in an English page's sidebar. (page, selector of an element with Chinese text)
GLYPH_PROBES = [("notebooks/zh/03_squeeze_excitation.html", "article p"),
                ("notebooks/zh/03_squeeze_excitation.html", ".bd-sidebar-primary li a"),
                ("book/zh/glossary.html", "article td"),
                ("book/index.html", "article p:nth-of-type(2)"),
                ("notebooks/en/03_squeeze_excitation.html", ".bd-sidebar-primary li:nth-last-child(2) a")]


def _fonts_for(page, selector: str) -> list[str]:
    """The font faces Chromium used to draw the first element matching ``selector`` with Chinese text."""
    client = page.context.new_cdp_session(page)
    client.send("DOM.enable")
    client.send("CSS.enable")
    root = client.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]["nodeId"]
    ids = client.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]
    for node in ids:
        text = client.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]
        if re.search(r"[\u4e00-\u9fff]", re.sub(r"<[^>]*>", "", text)):
            faces = client.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            # the element's own text and its children's (a sidebar link's title sits in a span)
            for child in client.send("DOM.querySelectorAll", {"nodeId": node, "selector": "*"})["nodeIds"]:
                faces += client.send("CSS.getPlatformFontsForNode", {"nodeId": child})["fonts"]
            return sorted({f["familyName"] for f in faces if f["glyphCount"]})
    return []


@pytest.mark.parametrize("where,selector", GLYPH_PROBES)
def test_chinese_text_is_drawn_in_simplified_chinese_forms(server, browser, where, selector):
    page = browser.new_page()
    try:
        page.goto(f"{server}/{where}", wait_until="load")
        faces = _fonts_for(page, selector)
        cjk = [f for f in faces if "CJK" in f or "Han" in f or "Hei" in f]
        assert cjk, f"{where} {selector}: no CJK face drew the Chinese text (faces: {faces})"
        assert all(f.endswith(("SC", "CN")) or "SC " in f for f in cjk), \
            f"{where} {selector}: Chinese drawn with {cjk}, not the Simplified Chinese forms"
        if where in ZH_PAGES:
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
    finally:
        page.close()


#: Text of the page's leaf blocks of prose, code and maths replaced by a placeholder, as a reader sees it.
_PROSE = r"""() => {
  const blocks = [...document.querySelectorAll(
    "article p, article li, article td, article th, article h1, article h2, article h3, article dt, article dd")]
    .filter((el) => !el.closest("pre, .cell_output, .output, script, style, .attention-viewer"))
    .filter((el) => !el.querySelector("p, li, td, th"));
  return blocks.map((el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("code, .math, mjx-container, .katex").forEach((c) => c.replaceWith("X"));
    return copy.innerText;
  });
}"""
_TIGHT = "\u3400-\u9fff，。、；：？！“”‘’（）《》【】…—"
STRAY = re.compile(rf"[{_TIGHT}][ \t\n\u00a0]+[{_TIGHT}]")


def stray_spaces(page) -> list[str]:
    """Every place where the rendered prose of ``page`` shows white space between two Chinese characters or
    next to full-width punctuation (a line break in the source renders so in Chromium)."""
    found = []
    for text in page.evaluate(_PROSE):
        found += [text[max(0, m.start() - 6):m.end() + 6].replace("\n", "⏎") for m in STRAY.finditer(text)]
    return found


@pytest.mark.parametrize("where", ZH_PAGES + ["book/index.html"])
def test_no_stray_space_inside_a_chinese_sentence(server, browser, where):
    waiting = pending().get(source_of(where), set())
    if waiting & {"break", "space", "leadin"}:
        pytest.skip(f"{source_of(where)} is listed in tests/zh_pending.yml ({sorted(waiting)})")
    page = browser.new_page()
    try:
        page.goto(f"{server}/{where}", wait_until="load")
        found = stray_spaces(page)
    finally:
        page.close()
    assert not found, f"{where}: {len(found)} stray spaces in Chinese prose: {found[:20]}"


# ---------------------------------------------------------------- search

def chinese_titles() -> dict[str, list[str]]:
    """``{page: [full title, short title]}`` of every Chinese chapter and side page."""
    titles = {}
    for path in sorted((ROOT / "notebooks" / "zh").glob("*.ipynb")):
        first = next(c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
        title = "".join(first["source"]).split("\n", 1)[0].lstrip("# ").strip()
        short = re.split(r"[：:]", title.split("·", 1)[-1])[0].strip()
        titles[f"notebooks/zh/{path.stem}.html"] = [title, short]
    for path in sorted((ROOT / "book" / "zh").glob("*.md")):
        title = path.read_text(encoding="utf-8").split("\n", 1)[0].lstrip("# ").strip()
        titles[f"book/zh/{path.stem}.html"] = [title]
    return titles


def glossary_terms() -> list[str]:
    glossary = yaml.safe_load((ROOT / "book" / "glossary.yml").read_text(encoding="utf-8"))
    return sorted({part.strip() for t in glossary["terms"] for part in re.split(r" / |（|）", t["zh"]) if part.strip()})


_RESULTS = """q => Search._performSearch(...Search._parseQuery(q)).map(r => r[0])"""


@pytest.fixture(scope="module")
def search_page(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/search.html", wait_until="load")
    page.wait_for_function("() => typeof Search !== 'undefined' && Search.hasIndex()", timeout=30_000)
    yield page
    page.close()


def test_search_finds_every_chinese_title_on_its_own_page(search_page):
    missed = []
    for where, titles in chinese_titles().items():
        docname = where[:-len(".html")]
        for title in titles:
            if docname not in search_page.evaluate(_RESULTS, title):
                missed.append(f"{title!r} does not find {docname}")
    assert not missed, "\n".join(missed)


def test_search_finds_every_glossary_term(search_page):
    missed = [term for term in glossary_terms() if not search_page.evaluate(_RESULTS, term)]
    assert not missed, f"glossary terms the search does not find: {missed}"


def test_search_finds_the_words_the_review_tried(search_page):
    for query in ("自注意力", "外部注意力", "注意力", "门控", "挤压", "通道", "attention", "softmax"):
        assert search_page.evaluate(_RESULTS, query), f"no result for {query!r}"
    assert "notebooks/zh/01_self_attention" in search_page.evaluate(_RESULTS, "自注意力的计算代价")


def test_search_result_snippets_show_no_raw_latex(server, browser):
    page = browser.new_page()
    try:
        page.goto(f"{server}/search.html?q=门控", wait_until="load")
        page.wait_for_function("() => document.querySelectorAll('#search-results li p.context').length >= 5",
                               timeout=60_000)
        snippets = page.eval_on_selector_all("#search-results li p.context", "els => els.map(e => e.innerText)")
    finally:
        page.close()
    raw = [s[:120] for s in snippets if re.search(r"\\\(|\\\)|\\\[|\\[a-zA-Z]{2,}", s)]
    assert not raw, f"search snippets with raw LaTeX: {raw}"


# ---------------------------------------------------------------- the cheat sheet's PDF

def test_the_chinese_cheat_sheet_pdf_uses_simplified_chinese_faces():
    pdf = SITE / "_static" / "classroom" / "cheatsheet-zh.pdf"
    if not pdf.exists():
        pytest.skip("the cheat sheets were not printed (ATTENTION_BOOK_PDF=0)")
    faces = set(re.findall(rb"/(?:BaseFont|FontName)\s*/(?:[A-Z]{6}\+)?([A-Za-z0-9-]+)", pdf.read_bytes()))
    cjk = {f.decode() for f in faces if b"CJK" in f}
    assert cjk and all(re.search(r"CJK(sc|SC)|CN", f) for f in cjk), f"cheatsheet-zh.pdf fonts: {sorted(cjk)}"
