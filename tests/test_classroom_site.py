"""The classroom kit in the built site: student archives that run, links, the cheat sheet's PDFs, pages that print.

Needs the site in ``_build/html`` (``make book``); ``make site-test`` sets ``ATTENTION_BOOK_REQUIRE_SITE=1`` so that
a missing site, archive or browser fails instead of skipping. The archive test executes every student notebook of
both languages in a fresh kernel (nbclient), after the build, so the trained demos load from their cache; its time
per notebook is written to ``_build/classroom-archive-times.json`` (``ATTENTION_CLASSROOM_RUN=en`` runs one language).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest

from .browser import chromium, serve

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("ATTENTION_BOOK_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = SITE.parent / "screenshots"
REQUIRE_SITE = os.environ.get("ATTENTION_BOOK_REQUIRE_SITE") == "1"
LANGS = ("en", "zh")
KIT = SITE / "_static" / "classroom"

if not (SITE / "index.html").exists():
    if REQUIRE_SITE:
        raise RuntimeError(f"{SITE} has no built site; `make test` builds it with `make book` first")
    pytest.skip(f"no built book in {SITE}: run `make book` first", allow_module_level=True)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


editions = _load("editions", ROOT / "tools" / "editions.py")
classroom = _load("classroom_ext", ROOT / "book" / "_ext" / "classroom.py")
CHAPTERS = {lang: sorted(p.name for p in (ROOT / "notebooks" / lang).glob("*.ipynb")) for lang in LANGS}
CHECK = re.compile(r"""\.check\(\s*["']([\w.]+)["']""")


def _strings():
    from attention_lib.toolkit import i18n
    import attention_lib
    attention_lib.chapters.load_all()
    return i18n


def _shown(cell) -> str:
    """What a code cell shows: its printed text and the plain text of what it displayed (a check's verdict block)."""
    parts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
    parts += [o.get("data", {}).get("text/plain", "") for o in cell.outputs if o.output_type == "display_data"]
    return "".join(parts).strip()


# ---------------------------------------------------------------- the archives


def _archive(lang) -> zipfile.ZipFile:
    path = KIT / f"notebooks-{lang}.zip"
    assert path.is_file(), f"the build did not write {path.relative_to(SITE)}"
    return zipfile.ZipFile(path)


@pytest.mark.parametrize("lang", LANGS)
def test_each_archive_holds_every_chapter_without_its_solutions(lang):
    with _archive(lang) as zf:
        names = set(zf.namelist())
        expected = {f"notebooks/{lang}/{name}" for name in CHAPTERS[lang]}
        assert expected <= names, f"missing from notebooks-{lang}.zip: {sorted(expected - names)}"
        pages = {f"book/{lang}/{page}.ipynb" for page in editions.PAGES}
        assert names - expected - pages == {f"notebooks/{lang}/README.md"}, \
            f"unexpected files: {sorted(names - expected - pages)}"
        for name in CHAPTERS[lang]:
            student = nbformat.reads(zf.read(f"notebooks/{lang}/{name}").decode("utf-8"), as_version=4)
            full = nbformat.read(ROOT / "notebooks" / lang / name, as_version=4)
            assert not [c for c in student.cells if editions.is_solution(c) or editions.looks_like_a_solution(c)]
            kept = [c for c in full.cells if not editions.is_solution(c)]
            assert [c.source for c in student.cells if c.cell_type == "code"] == \
                [c.source for c in kept if c.cell_type == "code"] and len(student.cells) == len(kept), \
                f"{name}: the student edition is not the chapter without its solution cells"
            assert not any(c.get("outputs") for c in student.cells if c.cell_type == "code")


#: the languages whose student notebooks are executed (both by default; ``ATTENTION_CLASSROOM_RUN=en`` halves the
#: time: the twins' code cells are identical, and the build executes both languages' full notebooks anyway)
RUN = os.environ.get("ATTENTION_CLASSROOM_RUN", " ".join(LANGS)).split()


def _student_notebooks():
    return [pytest.param(lang, name, id=f"{lang}-{name[:-6]}") for lang in LANGS if lang in RUN
            for name in CHAPTERS[lang]]


@pytest.fixture(scope="module")
def archive_times():
    times = {}
    yield times
    out = SITE.parent / "classroom-archive-times.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **times}, indent=1, sort_keys=True))


@pytest.mark.parametrize("lang,name", _student_notebooks())
def test_each_student_notebook_runs_top_to_bottom_with_its_checks_unanswered(lang, name, tmp_path, monkeypatch,
                                                                          archive_times):
    from nbclient import NotebookClient

    with _archive(lang) as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / "notebooks" / lang
    nb = nbformat.read(folder / name, as_version=4)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("ATTENTION_BOOK_STATIC", raising=False)    # a student's kernel: live explorers
    start = time.perf_counter()
    # 120 s per cell: the build has trained and cached the demos, so no cell here takes more than ~15 s. Now and then
    # (about one run in 30 of a chapter, with ipykernel 6 and 7 alike) nbclient stalls on a cell for exactly its
    # timeout and then goes on correctly, without an error: a short timeout bounds what such a stall costs.
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    archive_times[f"{lang}/{name[:-6]}"] = round(time.perf_counter() - start, 1)

    i18n = _strings()
    i18n.set_language(lang)
    try:
        unanswered = i18n.t("ex.unanswered")
    finally:
        i18n.set_language("en")
    checks = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"]
        assert not errors, f"{lang}/{name}, cell {i}: {errors}"
        if CHECK.search(cell.source):
            checks += 1
            text = _shown(cell)
            assert text == unanswered, f"{lang}/{name}, cell {i}: the check said {text!r}"
            blocks = [o for o in cell.outputs if o.output_type == "display_data"]
            assert blocks and "attention-verdict-unanswered" in blocks[0]["data"].get("text/html", ""), \
                f"{lang}/{name}, cell {i}: the verdict is not shown as a block"
    full = nbformat.read(ROOT / "notebooks" / lang / name, as_version=4)
    assert checks == sum(1 for c in full.cells if c.cell_type == "code" and not editions.is_solution(c)
                         and CHECK.search(c.source))


# ---------------------------------------------------------------- what the build executed


def _executed():
    from jupyter_cache import get_cache

    cache = get_cache(str(SITE.parent / ".jupyter_cache"))
    for record in cache.list_cache_records():
        path = Path(record.uri)
        if path.parent.parent.name == "notebooks":
            yield path.parent.name, path.name, cache.get_cache_bundle(record.pk).nb


def test_in_the_built_book_every_answer_is_unanswered_and_every_solution_correct():
    i18n = _strings()
    seen = 0
    for lang, name, nb in _executed():
        i18n.set_language(lang)
        try:
            unanswered, correct = i18n.t("ex.unanswered"), i18n.t("ex.reference", verdict=i18n.t("ex.correct"))
        finally:
            i18n.set_language("en")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not CHECK.search(cell.source):
                continue
            text = _shown(cell)
            solution = "solution" in cell.metadata.get("tags", [])
            assert text == (correct if solution else unanswered), f"{lang}/{name}, cell {i}: {text!r}"
            seen += solution
    assert seen, "no executed solution cell found in the build's cache"


# ---------------------------------------------------------------- links


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.classes = [], []
        self._stack = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append((attrs["href"], " ".join(self._stack)))
        self._stack.append(attrs.get("class") or "")

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()


def _links(rel: str) -> list[tuple[str, str]]:
    """``(absolute site path, classes of the enclosing elements)`` of every link of a page."""
    parser = _Links()
    parser.feed((SITE / rel).read_text(encoding="utf-8"))
    base = f"http://site/{rel}"
    return [(urljoin(base, href).split("#")[0].replace("http://site/", ""), classes)
            for href, classes in parser.hrefs if "://" not in href]


KIT_FILES = [f"_static/classroom/notebooks-{lang}.zip" for lang in LANGS] + \
            [f"_static/classroom/cheatsheet-{lang}.pdf" for lang in LANGS]


@pytest.mark.parametrize("rel", ["book/index.html", "book/en/teaching.html", "book/zh/teaching.html"])
def test_the_landing_page_and_the_guide_offer_every_download(rel):
    links = {href for href, _ in _links(rel)}
    missing = [f for f in KIT_FILES if f not in links]
    assert not missing, f"{rel} does not link {missing}"
    assert all((SITE / f).is_file() for f in KIT_FILES)


def _chapter_pages():
    return [f"notebooks/{lang}/{name[:-6]}.html" for lang in LANGS for name in CHAPTERS[lang]]


@pytest.mark.parametrize("rel", _chapter_pages())
def test_every_chapter_page_offers_its_languages_student_archive(rel):
    lang = rel.split("/")[1]
    links = _links(rel)
    archive = f"_static/classroom/notebooks-{lang}.zip"
    assert any(href == archive and "classroom-downloads" in classes for href, classes in links), \
        f"{rel}: no link to {archive} under the title"
    assert any(href == archive and "dropdown" in classes for href, classes in links), \
        f"{rel}: no entry for {archive} in the download menu"
    assert any(href.endswith(".ipynb") and "_sources" in href for href, _ in links), \
        f"{rel}: the full notebook is no longer downloadable"


# ---------------------------------------------------------------- the cheat sheet


@pytest.mark.parametrize("lang", LANGS)
def test_the_cheat_sheet_is_printed_to_one_pdf_page_and_linked(lang, capsys):
    pdf = KIT / f"cheatsheet-{lang}.pdf"
    assert pdf.is_file(), f"the build did not print {pdf.relative_to(SITE)}"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and classroom.pdf_pages(data) == 1
    assert f"_static/classroom/cheatsheet-{lang}.pdf" in {h for h, _ in _links(f"book/{lang}/cheatsheet.html")}
    with capsys.disabled():
        print(f"\n{pdf.relative_to(SITE)}: {len(data) / 1024:.0f} kB, 1 page")


@pytest.mark.parametrize("lang", LANGS)
def test_the_cheat_sheet_page_shows_every_mechanism_of_the_registry(lang):
    from attention_lib.registry import MECHANISMS

    html = (SITE / "book" / lang / "cheatsheet.html").read_text(encoding="utf-8")
    for m in MECHANISMS.values():
        assert m.display_name(lang) in html and m.display_name(lang, short=True) in html, m.name
        assert m.params.latex.replace("^", "") .split()[0][:3] in html.replace("^", "") or m.params.latex in html
    rows = len(re.findall(r"<tr class=\"row-(?:odd|even)\">", html))
    assert rows >= 2 * len(MECHANISMS), f"{rows} table rows for {len(MECHANISMS)} mechanisms"


# ---------------------------------------------------------------- the guide's commands, as written

SERVE = "python -m http.server 8000 --directory _build/html"


def test_the_guides_command_serves_the_built_site():
    for lang in LANGS:
        assert SERVE in (ROOT / "book" / lang / "teaching.md").read_text(encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, *SERVE.split()[1:]]
    argv[argv.index("8000")] = str(port)
    server = subprocess.Popen(argv + ["--bind", "127.0.0.1"], cwd=SITE.parent.parent, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/book/index.html", timeout=2) as response:
                    assert response.status == 200 and b"classroom-downloads" in response.read()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"`{SERVE}` did not serve the site")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_static/classroom/notebooks-en.zip", timeout=5) as r:
            assert r.read(2) == b"PK"
    finally:
        server.terminate()
        server.wait(timeout=10)


# ---------------------------------------------------------------- pages that print


@pytest.fixture(scope="module")
def server():
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(REQUIRE_SITE) as b:
        yield b


PRINT_PAGES = [f"notebooks/{lang}/03_squeeze_excitation.html" for lang in LANGS] + \
              [f"book/{lang}/cheatsheet.html" for lang in LANGS]

_MEASURE = """() => {
  const shown = sel => [...document.querySelectorAll(sel)].filter(e => {
      const s = getComputedStyle(e), r = e.getBoundingClientRect();
      return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0; }).length;
  const width = document.documentElement.clientWidth;
  const pres = [...document.querySelectorAll('main pre')];
  return {
    chrome: shown('.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .prev-next-area, '
                  + '.article-header-buttons, .header-article-items, .classroom-downloads, button'),
    solutions: shown('.cell.tag_solution'),
    nowrap: pres.filter(p => !getComputedStyle(p).whiteSpace.startsWith('pre-wrap')).length,
    cut: pres.filter(p => p.scrollWidth > p.clientWidth + 1).length,
    wide: [...document.querySelectorAll('main *')]
          .filter(e => !e.closest('mjx-assistive-mml') && e.getBoundingClientRect().right > width + 2)
          .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + e.className),
    explorers: [...document.querySelectorAll('.attention-explorer-static')].map(e =>
        [...e.querySelectorAll('img, canvas, svg')].some(p => {
            const r = p.getBoundingClientRect(), s = getComputedStyle(p);
            return r.height > 50 && r.width > 50 && s.display !== 'none' && s.visibility !== 'hidden'; })),
    figures: [...document.querySelectorAll('figure, .figure')].map(f => getComputedStyle(f).breakInside),
  };
}"""


@pytest.mark.parametrize("rel", PRINT_PAGES)
def test_pages_print_without_chrome_with_wrapped_code_and_the_explorers_picture(browser, server, rel):
    a4 = {"width": 794, "height": 1123}                                  # A4 at 96 dpi; the cheat sheet is landscape
    page = browser.new_page(viewport={"width": a4["height"], "height": a4["width"]} if "cheatsheet" in rel else a4)
    try:
        page.goto(f"{server}/{rel}", wait_until="networkidle")
        page.emulate_media(media="print")
        # a browser fires beforeprint when a reader prints; emulating the print media alone does not, and the site
        # draws its off-screen viewers and explorers on that event (they are otherwise drawn as they near the screen)
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        page.wait_for_timeout(300)
        found = page.evaluate(_MEASURE)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / ("print__" + rel.replace("/", "__").replace(".html", ".png"))),
                        full_page=True)
    finally:
        page.close()
    assert found["chrome"] == 0, f"{rel}: sidebars, buttons or the header still print"
    assert found["solutions"] == 0, f"{rel}: a solution cell prints"
    assert found["nowrap"] == 0 and found["cut"] == 0, f"{rel}: code is cut instead of wrapped: {found}"
    assert not found["wide"], f"{rel}: elements wider than the page: {found['wide']}"
    assert all(found["explorers"]), f"{rel}: an explorer prints without its picture"
    assert all(b == "avoid" for b in found["figures"]), f"{rel}: a figure may break across pages"
    if "03_" in rel:
        assert found["explorers"], f"{rel}: the chapter's explorer is missing"


# ---------------------------------------------------------------- the exercises' verdicts on the page

_VERDICT = """i => { const e = document.querySelectorAll('.attention-verdict')[i];
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const v = rgb(c).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
  return {cls: e.className, text: e.textContent, contrast: (a + 0.05) / (b + 0.05), wordBreak: s.wordBreak,
          wrap: s.overflowWrap, fits: e.scrollWidth <= e.clientWidth + 1, shown: r.width > 0 && r.height > 0};
}"""


def _verdicts(page) -> list:
    """Every verdict block measured as a reader meets it: scrolled into view first (cells far from the window skip
    rendering under `content-visibility: auto`, where a block has no size until the reader comes near)."""
    blocks = []
    for i in range(page.evaluate("() => document.querySelectorAll('.attention-verdict').length")):
        page.evaluate("i => document.querySelectorAll('.attention-verdict')[i].scrollIntoView({block: 'center'})", i)
        page.wait_for_timeout(120)                                 # one rendering update: the cell is drawn
        blocks.append(page.evaluate(_VERDICT, i))
    return blocks


@pytest.mark.parametrize("lang", LANGS)
def test_verdicts_show_as_blocks_that_say_their_outcome_in_words_in_light_and_dark(browser, server, lang):
    i18n = _strings()
    i18n.set_language(lang)
    try:
        reference = i18n.t("ex.reference", verdict=i18n.t("ex.correct"))
        unanswered = i18n.t("ex.unanswered")
    finally:
        i18n.set_language("en")
    page = browser.new_page(viewport={"width": 390, "height": 844})       # a phone: long verdicts must wrap
    try:
        page.goto(f"{server}/notebooks/{lang}/03_squeeze_excitation.html", wait_until="networkidle")
        found = {}
        for scheme in ("light", "dark"):
            page.evaluate(f"() => document.documentElement.dataset.theme = '{scheme}'")
            found[scheme] = _verdicts(page)
    finally:
        page.close()
    for scheme, blocks in found.items():
        right = [b for b in blocks if "attention-verdict-right" in b["cls"]]
        waiting = [b for b in blocks if "attention-verdict-unanswered" in b["cls"]]
        assert right and waiting, f"{lang} {scheme}: the verdict blocks are missing: {blocks}"
        assert all(b["text"].replace("✓", "").strip() == reference for b in right), right
        assert all(b["text"].replace("…", "", 1).strip() == unanswered for b in waiting), waiting
        assert all(b["contrast"] >= 7 and b["wordBreak"] == "normal" and b["fits"] and b["shown"] for b in blocks), \
            f"{lang} {scheme}: {blocks}"
