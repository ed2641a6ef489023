"""The built book in a real browser: headless Chromium on a local static server, with the network cut off.

Needs the site in ``_build/html`` (``make book``; ``make test`` builds it first and sets
``ATTENTION_BOOK_REQUIRE_SITE=1`` so that a missing site fails instead of skipping), Debian's
``chromium`` and the ``playwright`` Python package (no downloaded browser). Screenshots land in
``_build/screenshots/``.
"""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .browser import chromium, drive_viewers, scroll_through, serve, typeset_all, wait_for_viewers

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("ATTENTION_BOOK_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = SITE.parent / "screenshots"
REQUIRE_SITE = os.environ.get("ATTENTION_BOOK_REQUIRE_SITE") == "1"

if not (SITE / "index.html").exists():
    if REQUIRE_SITE:
        raise RuntimeError(f"{SITE} has no built site; `make test` builds it with `make book` first")
    pytest.skip(f"no built book in {SITE}: run `make book` first (or `make test`, which builds it)",
                allow_module_level=True)


CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def server():
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(REQUIRE_SITE) as b:
        yield b


def _built(rel: str) -> bool:
    return (SITE / rel).exists()


# (page, what its <title> must contain, whether its text must contain Chinese, whether it has equations)
PAGES = [
    ("book/index.html", "Attention Mechanisms", True, False),
    ("notebooks/en/00_introduction.html", "Introduction", False, True),
    ("notebooks/zh/00_introduction.html", "引言", True, True),
]
# The pilot mechanism chapter, once it is built: it carries the toolkit's static explorer.
PAGES += [(f"notebooks/{lang}/03_squeeze_excitation.html", title, lang == "zh", True)
          for lang, title in (("en", "Squeeze"), ("zh", "挤压")) if _built(f"notebooks/{lang}/03_squeeze_excitation.html")]


SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"")
MATHJAX = "_static/vendor/mathjax/startup.js"
WIDGET_SCRIPTS = ["_static/widgets-config.js", "_static/vendor/requirejs/require.js",
                  "_static/vendor/html-manager/embed-amd.js"]
HTML_PAGES = sorted(p for p in SITE.rglob("*.html") if "_static" not in p.parts and "reports" not in p.parts)


def _scripts(page: Path) -> list[str]:
    """The page's script sources, relative to the site root, without cache-busting queries."""
    out = []
    for src in SCRIPT_SRC.findall(page.read_text(encoding="utf-8")):
        src = src.split("?", 1)[0]
        if "://" not in src and not src.startswith("//"):
            src = (page.parent / src).resolve().relative_to(SITE.resolve()).as_posix()
        out.append(src)
    return out


@pytest.mark.parametrize("page", [p for p in HTML_PAGES if p.stat().st_size > 2000],
                         ids=lambda p: p.relative_to(SITE).as_posix())
def test_page_loads_exactly_the_intended_local_scripts(page):
    scripts = _scripts(page)
    rel = page.relative_to(SITE).as_posix()
    assert not [s for s in scripts if "://" in s or s.startswith("//")], f"{rel}: external scripts {scripts}"
    assert len(scripts) == len(set(scripts)), f"{rel}: a script is loaded twice: {scripts}"
    missing = [s for s in scripts if not (SITE / s).is_file()]
    assert not missing, f"{rel}: scripts missing from the site: {missing}"
    vendor = [s for s in scripts if s.startswith("_static/vendor/") or s == WIDGET_SCRIPTS[0]]
    text = page.read_text(encoding="utf-8")
    has_maths = "math notranslate" in text
    has_widgets = "application/vnd.jupyter.widget-state+json" in text
    assert (MATHJAX in vendor) == has_maths, f"{rel}: MathJax must load exactly on pages with equations: {scripts}"
    others = [s for s in vendor if s != MATHJAX]
    expected = WIDGET_SCRIPTS if has_widgets else []
    assert others == expected, (f"{rel}: vendored scripts {others} besides MathJax, expected {expected} "
                                "(the widget manager, in this order, only on pages with saved widget state)")
    # Light pages: no icon script (the stylesheet's webfonts draw the icons), the search index only where
    # the search runs, the viewers' engine once and only with viewers.
    assert "_static/scripts/fontawesome.js" not in scripts, f"{rel}: loads the 1.4 MB FontAwesome script"
    assert ("searchindex.js" in scripts) == (rel == "search.html"), f"{rel}: the search index outside search.html"
    has_viewers = 'class="attention-viewer"' in text
    assert ("_static/attention-viewer.js" in scripts) == has_viewers, f"{rel}: the viewers' engine file"
    from attention_lib.toolkit.viewer import _engine
    assert _engine() not in text, f"{rel}: a viewer still carries its own copy of the engine"


#: The stylesheets a page waits for before its first paint, in bytes (the theme's full sheets were 560 kB:
#: pydata-sphinx-theme 397, sphinx-design 55, MyST-NB 43, basic via an @import, pygments; lean, about 210).
BLOCKING_CSS_BYTES = 250_000
STYLESHEET = re.compile(r"<link\b(?=[^>]*\brel=\"stylesheet\")[^>]*\bhref=\"([^\"?]+)[^>]*>")
FULL_THEME_SHEETS = ("_static/styles/theme.css", "_static/styles/pydata-sphinx-theme.css", "_static/basic.css",
                     "_static/sphinx-design.min.css", "_static/pygments.css")


@pytest.mark.parametrize("page", [p for p in HTML_PAGES if p.stat().st_size > 2000],
                         ids=lambda p: p.relative_to(SITE).as_posix())
def test_page_waits_for_lean_stylesheets_only(page):
    """Speed on a phone: the render-blocking stylesheets are the lean copies (book/_ext/lean_css.py), none
    imports another (a serial round trip), and together they stay under BLOCKING_CSS_BYTES."""
    rel = page.relative_to(SITE).as_posix()
    head = page.read_text(encoding="utf-8").split("</head>", 1)[0]
    sheets = [(page.parent / h).resolve().relative_to(SITE.resolve()).as_posix()
              for h in STYLESHEET.findall(head) if "media=\"print\"" not in h]
    assert sheets, f"{rel}: no stylesheet found"
    full = [s for s in sheets if s in FULL_THEME_SHEETS or re.fullmatch(r"_static/mystnb\.\w+\.css", s)]
    assert not full, f"{rel}: links the theme's full stylesheets {full} instead of their lean copies"
    imports = [s for s in sheets if "@import" in (SITE / s).read_text(encoding="utf-8")]
    assert not imports, f"{rel}: {imports} import another stylesheet before the page can paint"
    total = sum((SITE / s).stat().st_size for s in sheets)
    assert total <= BLOCKING_CSS_BYTES, f"{rel}: {total} bytes of render-blocking CSS: {sheets}"


class PageVisit:
    """One page opened with every request, console message and page error recorded."""

    def __init__(self, browser, server: str, rel: str):
        self.local = urlparse(server).netloc
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        # The network is off: anything not served by the local server is aborted and recorded.
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.goto(f"{server}/{rel}", wait_until="load")

    def _route(self, route):
        url = route.request.url
        if urlparse(url).netloc == self.local or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    visits = []

    def _open(rel):
        v = PageVisit(browser, server, rel)
        visits.append(v)
        return v

    yield _open
    for v in visits:
        v.close()


def _screenshot(page, rel: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (rel.replace("/", "__").replace(".html", ".png"))
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.parametrize("rel,title,chinese,maths", PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_offline_with_maths_widgets_and_no_errors(visit, rel, title, chinese, maths):
    v = visit(rel)
    page = v.page
    page.wait_for_load_state("networkidle")
    assert title in page.title(), f"{rel}: title {page.title()!r} does not contain {title!r}"

    main = page.locator("main").first
    text = main.inner_text()
    if chinese:
        assert len(CJK.findall(text)) > 20, f"{rel}: expected Chinese text on the page"

    html = page.content()
    if maths:
        page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        typeset_all(page)
        text = main.inner_text()
        assert "\\(" not in text and "\\[" not in text, f"{rel}: raw TeX left on the page (MathJax did not render it)"
        assert page.locator("mjx-merror").count() == 0, f"{rel}: MathJax reported a TeX error"

    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    explorer = "attention-explorer-static" in html
    tabs = page.locator(".jupyter-widgets .lm-TabBar-tab")
    viewer = page.locator(".attention-explorer-static").first
    if views:   # saved ipywidgets views: the vendored html-manager must render every one of them
        page.wait_for_function(
            "n => document.querySelectorAll('.widget-subarea > .jupyter-widgets').length >= n",
            arg=views, timeout=30_000)
    if explorer:  # the toolkit's static explorer: its script shows the first frame once the reader nears it
        viewer.wait_for(state="visible", timeout=10_000)
        viewer.scroll_into_view_if_needed()
        page.wait_for_function("el => el.getAttribute('data-current') !== null", arg=viewer.element_handle(),
                               timeout=10_000)
        assert viewer.get_attribute("data-current") is not None, f"{rel}: the static explorer's script did not run"

    shot = _screenshot(page, rel)
    assert shot.stat().st_size > 10_000

    if views and tabs.count() >= 2:   # a rendered Tab widget must react to a click
        tabs.nth(1).click()
        page.wait_for_function(
            "() => document.querySelectorAll('.jupyter-widgets .lm-TabBar-tab.lm-mod-current')[0]"
            " === document.querySelectorAll('.jupyter-widgets .lm-TabBar-tab')[1]", timeout=10_000)
    if explorer:  # moving a control must show another precomputed frame
        before = viewer.get_attribute("data-current")
        control = viewer.locator("[data-control]:not([disabled]):not([type=hidden])").first
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(index=1)
        else:
            control.evaluate("el => { el.value = String(+el.max > +el.value ? +el.value + 1 : +el.min);"
                             " el.dispatchEvent(new Event('input')); }")
        assert viewer.get_attribute("data-current") != before, f"{rel}: the static explorer did not react"

    assert not v.outside, f"{rel}: requests to outside hosts: {v.outside}"
    assert not v.failed, f"{rel}: failed requests: {v.failed}"
    assert not v.errors, f"{rel}: browser console errors: {v.errors}"


# ---------------------------------------------------------------- the map viewers of every chapter page

#: Every chapter page of the site, in both languages, found on disk (chapters added later are included).
CHAPTER_PAGES = sorted(p.relative_to(SITE).as_posix() for p in SITE.glob("notebooks/*/*.html"))


@pytest.mark.parametrize("rel", CHAPTER_PAGES)
def test_every_viewer_on_every_chapter_page_answers_pointing_offline(visit, rel):
    """Each viewer (found by class, whoever added it): point at two different queries, the drawn map changes."""
    v = visit(rel)
    v.page.wait_for_load_state("networkidle")
    driven = drive_viewers(v.page, rel)
    text = (SITE / rel).read_text(encoding="utf-8")
    assert driven == text.count('class="attention-viewer"'), f"{rel}: not every viewer of the page was found"
    assert not v.outside, f"{rel}: requests to outside hosts: {v.outside}"
    assert not v.failed, f"{rel}: failed requests: {v.failed}"
    assert not v.errors, f"{rel}: browser console errors: {v.errors}"


class _ViewerSpans(HTMLParser):
    """Byte spans of the outermost viewers and explorers of a page (their HTML, data and scripts)."""

    CLASSES = ("attention-viewer", "attention-explorer-static")

    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self.rows, self.lines = text.splitlines(keepends=True), [0]
        for row in self.rows:
            self.lines.append(self.lines[-1] + len(row.encode("utf-8")))
        self.depth, self.start, self.total, self.count = 0, None, 0, 0
        self.feed(text)

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.lines[line - 1] + len(self.rows[line - 1][:col].encode("utf-8"))

    def handle_starttag(self, tag, attrs):
        if tag != "div":
            return
        if self.start is None:
            classes = (dict(attrs).get("class") or "").split()
            if any(c in classes for c in self.CLASSES):
                self.start, self.depth = self._offset(), 0
        if self.start is not None:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.start is not None:
            self.depth -= 1
            if self.depth == 0:
                self.total += self._offset() + len("</div>") - self.start
                self.count += 1
                self.start = None


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_the_viewers_of_a_page_fit_its_budget(page):
    from attention_lib.toolkit.viewer import PAGE_BUDGET_BYTES
    spans = _ViewerSpans((SITE / page).read_text(encoding="utf-8"))
    assert spans.total <= PAGE_BUDGET_BYTES, (f"{page}: its {spans.count} viewers take {spans.total:,} bytes, "
                                              f"more than the {PAGE_BUDGET_BYTES:,} a page may spend on them")


def test_search_finds_a_chinese_word_on_chinese_pages(visit):
    v = visit("search.html?q=" + "注意力")
    v.page.wait_for_selector("#search-results li", timeout=30_000)
    hits = v.page.locator("#search-results li a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert any("/zh/" in h for h in hits), f"searching 注意力 found no Chinese page: {hits}"
    assert not v.outside, f"search: requests to outside hosts: {v.outside}"


def test_search_snippets_quote_formulas_as_text_not_tex(visit):
    v = visit("search.html?q=squeeze")
    v.page.wait_for_selector("#search-results li p.context", timeout=30_000)
    v.page.wait_for_timeout(500)                                     # snippets arrive one fetch at a time
    snippets = v.page.locator("#search-results p.context").all_inner_texts()
    assert len(snippets) >= 3
    tex = [s for s in snippets if re.search(r"\\[()\[\]]|\\[A-Za-z]+\b", s)]
    assert not tex, f"search snippets show TeX: {tex[:3]}"
    plain = v.page.evaluate("""() => [String.raw`\\(\\tilde{X} = g(X) \\odot X\\)`,
      String.raw`\\[f\\big(g(X),\\, X\\big), \\]`, String.raw`\\(\\frac{QK^\\top}{\\sqrt{d_k}}\\)`,
      String.raw`\\(W^{Q} \\in \\mathbb{R}^{D \\times d_k}\\)`].map(window.bookPlainTex)""")
    assert plain == ["X\u0303 = g(X) ⊙ X", "f(g(X), X),", "(QKᵀ)/(√(d_k))", "W^Q ∈ ℝ^(D × d_k)"]


LAZY_PAGE = "notebooks/en/01_self_attention.html"


def test_formulas_and_viewers_are_drawn_as_they_near_the_window(visit):
    """A formula or a viewer far below the window waits; scrolled to, it is typeset or drawn (the page's load
    does not pay for all of them), and book.js binds and measures the formulas of each new batch."""
    v = visit(LAZY_PAGE)
    page = v.page
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")
    page.wait_for_timeout(500)
    typeset = "el => !!el.querySelector('mjx-math')"
    formulas = page.locator(".bd-article div.math, .bd-article span.math")
    n = formulas.count()
    assert n > 20, f"{LAZY_PAGE}: expected many formulas, found {n}"
    first, last = formulas.first, formulas.nth(n - 1)
    waiting = page.evaluate("() => [...document.querySelectorAll('.bd-article .math')].filter(m => !m.querySelector('mjx-math')).length")
    assert waiting > n / 3, f"{LAZY_PAGE}: {n - waiting} of {n} formulas typeset at load: not lazily"
    assert not last.evaluate(typeset), "the page's last formula was typeset at load"
    last.scroll_into_view_if_needed()
    page.wait_for_function("el => !!el.querySelector('mjx-math')", arg=last.element_handle(), timeout=10_000)
    assert "\\(" not in last.inner_text() and "\\[" not in last.inner_text()
    first.scroll_into_view_if_needed()
    page.wait_for_function("el => !!el.querySelector('mjx-math')", arg=first.element_handle(), timeout=10_000)

    viewers = page.locator(".attention-viewer")
    m = viewers.count()
    assert m >= 2, f"{LAZY_PAGE}: expected viewers"
    page.evaluate("() => window.scrollTo(0, 0)")
    far = viewers.nth(m - 1)
    assert far.get_attribute("data-ready") is None, "the page's last viewer was drawn at load"
    far.scroll_into_view_if_needed()
    page.wait_for_function("el => el.getAttribute('data-ready')", arg=far.element_handle(), timeout=10_000)
    assert far.locator("canvas, [data-query]").count() > 0


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_web_cheat_sheet_reads_at_a_glance_at_1280_px(visit, lang):
    """One card per mechanism as wide as the column, every formula and shape whole: nothing in a card
    scrolls, nothing passes its edge, no line is one character wide."""
    v = visit(f"book/{lang}/cheatsheet.html")
    typeset_all(v.page)
    v.page.wait_for_timeout(300)
    found = v.page.evaluate("""() => {
      const cards = [...document.querySelectorAll('.cheatsheet-cards .cheatsheet-card')];
      const column = document.querySelector('.bd-article').getBoundingClientRect().width;
      const bad = [];
      for (const c of cards) {
        const box = c.getBoundingClientRect(), name = c.querySelector('strong').textContent;
        if (box.width < 0.9 * column) bad.push(name + ': card ' + Math.round(box.width) + ' px in a ' + Math.round(column) + ' px column');
        for (const el of c.querySelectorAll('mjx-container, code, p, a')) {
          const r = el.getBoundingClientRect();
          if (r.right > box.right + 1 || r.left < box.left - 1) bad.push(name + ': passes the card: ' + el.textContent.slice(0, 40));
        }
        for (const el of c.querySelectorAll('.book-scrolls')) bad.push(name + ': scrolls: ' + el.textContent.slice(0, 40));
        for (const el of c.querySelectorAll('code')) if (el.getBoundingClientRect().height > 30) bad.push(name + ': wrapped: ' + el.textContent);
      }
      return {n: cards.length, bad};
    }""")
    from attention_lib.registry import by_chapter
    assert found["n"] == len(by_chapter()) and not found["bad"], found


# ---------------------------------------------------------------- execution time of each notebook

#: Seconds a notebook may take on a 2-core CPU when the book executes it; the comparison chapter
#: trains its 24 tiny models on its first run and gets three minutes.
TIME_LIMITS = {"08_comparison": 180.0}
DEFAULT_LIMIT = 60.0


def test_every_notebook_executed_within_its_time_budget():
    from jupyter_cache import get_cache

    records = get_cache(str(SITE.parent / ".jupyter_cache")).list_cache_records()
    times = {"/".join(Path(r.uri).with_suffix("").parts[-2:]): r.data["execution_seconds"]
             for r in records if Path(r.uri).parent.parent.name == "notebooks"}
    expected = {p.relative_to(ROOT / "notebooks").with_suffix("").as_posix()
                for p in (ROOT / "notebooks").glob("*/*.ipynb")}
    assert set(times) == expected, "every notebook is executed (and cached) by the build"
    slow = {name: round(seconds, 1) for name, seconds in times.items()
            if seconds > TIME_LIMITS.get(Path(name).name, DEFAULT_LIMIT)}
    assert not slow, f"notebooks over their time budget (seconds): {slow}"


def test_every_executed_notebook_is_the_current_source():
    """The site shows what the repository says: each executed notebook has the cells of its source, in order (a
    build that kept an older execution of a page, as once happened to three Chinese chapters, fails here)."""
    import json

    executed_dir = SITE.parent / "jupyter_execute" / "notebooks"
    stale = {}
    for source in sorted((ROOT / "notebooks").glob("*/*.ipynb")):
        executed = executed_dir / source.relative_to(ROOT / "notebooks")
        assert executed.exists(), f"{executed} was not written by the build"
        cells = [("".join(c["source"]), c["cell_type"]) for c in json.loads(source.read_text())["cells"]]
        built = [("".join(c["source"]), c["cell_type"]) for c in json.loads(executed.read_text())["cells"]]
        if cells != built:
            first = next((i for i, (a, b) in enumerate(zip(cells, built)) if a != b), min(len(cells), len(built)))
            stale[source.relative_to(ROOT).as_posix()] = f"{len(built)} cells built, {len(cells)} in the source; " \
                                                         f"first difference at cell {first}"
    assert not stale, f"executed notebooks that are not their current source: {stale}"


# ---------------------------------------------------------------- the site for every reader (issue 22)

from attention_lib.toolkit import figure_output  # noqa: E402

from .browser import drive_viewers_by_keyboard, run_axe  # noqa: E402

#: Every page of the site a reader opens (the landing page, both language parts, search).
READER_PAGES = sorted(p.relative_to(SITE).as_posix() for p in HTML_PAGES
                      if p.stat().st_size > 2000 and p.name != "genindex.html")
#: Bytes a cold load may transfer (bodies and headers, as served with no compression).
WEIGHT_LIMITS = {"book/index.html": 1_000_000}
CHAPTER_WEIGHT_LIMIT = 2_500_000
PHONE = {"width": 390, "height": 844}
CJK_TEXT = re.compile(r"[\u4e00-\u9fff]")
LINK = re.compile(r'<a class="(left-prev|right-next)" href="([^"]+)"')


def _language(rel: str):
    parts = rel.split("/")
    return parts[1] if len(parts) == 3 and parts[0] in ("book", "notebooks") and parts[1] in ("en", "zh") else None


@pytest.mark.parametrize("rel", READER_PAGES)
def test_each_page_has_a_description_an_icon_and_stays_in_its_language(rel):
    text = (SITE / rel).read_text(encoding="utf-8")
    desc = re.search(r'<meta name="description" content="([^"]+)"', text)
    assert desc and len(desc.group(1)) >= 30, f"{rel}: no meta description"
    assert re.search(r'<link rel="icon" href="[^"]+"', text), f"{rel}: no favicon link (the browser asks for /favicon.ico)"
    lang = _language(rel)
    for kind, href in LINK.findall(text):
        target = Path(rel).parent.joinpath(href.split("#")[0]).as_posix()
        target = "/".join(p for p in target.split("/") if p != ".")
        while "/../" in f"/{target}":
            target = re.sub(r"[^/]+/\.\./", "", target, count=1)
        other = _language(target)
        assert lang is None or other in (None, lang), f"{rel}: {kind} leads into the other language ({target})"
    caption = '<span class="caption-text">{}</span>'
    if lang == "zh" and caption.format("English") in text:  # a Chinese page's sidebar: its own part first
        assert text.index(caption.format("中文")) < text.index(caption.format("English")), \
            f"{rel}: the sidebar lists the English part first"
    if rel.startswith("book/") and lang:                  # a side page: a link to its twin under its title
        twin = rel.replace(f"/{lang}/", "/zh/" if lang == "en" else "/en/")
        name = {"en": "中文版本", "zh": "English version"}[lang]
        assert re.search(rf'<a class="[^"]*book-twin-link[^"]*" href="\.\./{twin.split("/")[1]}/{Path(twin).name}">'
                         rf'(<span lang="[^"]+">)?{name}(</span>)?</a>', text), f"{rel}: no link '{name}' to its twin {twin}"


_IMG_TAG = re.compile(r'<img ([^>]*)src="([^"]*_images/[^"]+\.png)"([^>]*)/?>')


@pytest.mark.parametrize("rel", CHAPTER_PAGES)
def test_every_plot_has_its_own_alt_text_in_the_pages_language_and_its_caption(rel):
    text = (SITE / rel).read_text(encoding="utf-8")
    images = _IMG_TAG.findall(text)
    for before, src, after in images:
        attrs = before + after
        alt = re.search(r'alt="([^"]*)"', attrs).group(1)
        chunks = figure_output.read_png((SITE / rel).parent.joinpath(src).resolve().read_bytes())
        assert chunks.get("Title"), f"{rel}: {src} was not drawn through the book's figure output"
        assert "_images" not in alt and not alt.endswith(".png"), f"{rel}: alt text is a file name: {alt}"
        assert html_unescape(alt) == chunks["Title"], f"{rel}: alt {alt!r} is not the figure's own text"
        assert bool(CJK_TEXT.search(alt)) == ("/zh/" in rel), f"{rel}: alt text not in the page's language: {alt}"
        assert 'loading="lazy"' in attrs and 'width="' in attrs and 'height="' in attrs, f"{rel}: {src} unsized"
    # Every figure of a chapter is numbered in order and captioned in the page's language: the result it
    # shows (describe(caption=...)) or else its title.
    captions = re.findall(r'_images/[^"]+\.png"[^>]*/?>\s*<figcaption>\s*<p><span class="caption-text">([^<]*)<', text)
    assert len(captions) == len(images), f"{rel}: {len(images)} figures, {len(captions)} captions"
    label = "图 {n}" if "/zh/" in rel else "Figure {n}"
    for n, ((before, src, after), caption) in enumerate(zip(images, captions), start=1):
        chunks = figure_output.read_png((SITE / rel).parent.joinpath(src).resolve().read_bytes())
        caption = html_unescape(caption)
        assert caption.startswith(label.format(n=n)), f"{rel}: figure {n} ({src}) is captioned {caption!r}"
        words = caption[len(label.format(n=n)):].lstrip(".：: ")
        assert words, f"{rel}: figure {n} ({src}) has a number and no caption"
        assert words == chunks.get("Description", words) and (chunks.get("Description") or words in chunks["Title"]), \
            f"{rel}: figure {n} caption {words!r} is neither its result nor its title"


def html_unescape(s: str) -> str:
    import html
    return html.unescape(s)


def html_escape_text(s: str) -> str:
    import html
    return html.escape(s, quote=False)


#: Everything inside the article that reaches past the column: cut (no scroller) or scrolled without a cue.
_OVERFLOW = """() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main');
  const right = art.getBoundingClientRect().right, left = art.getBoundingClientRect().left;
  const name = e => e.tagName.toLowerCase() + (e.className && e.className.baseVal === undefined ? '.' + String(e.className).trim().split(/\\s+/).join('.') : '');
  const cut = new Set(), nocue = new Set(), leftcut = new Set();
  const scroller = el => { for (let a = el.parentElement; a && a !== art; a = a.parentElement) {
    const ox = getComputedStyle(a).overflowX; if (ox === 'auto' || ox === 'scroll') return a; } return null; };
  for (const el of art.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    // Content hidden on the LEFT of its box while the box is at rest (a right-to-left box opens at its end):
    // the reader sees the end of an equation first, and the cue (if any) points the wrong way.
    if (r.width && r.height && !el.closest('mjx-assistive-mml')) {
      const box = scroller(el);
      if (box ? box.scrollLeft === 0 && r.left < box.getBoundingClientRect().left - 1 : r.left < left - 1)
        leftcut.add(name(el) + ' ' + (el.textContent || '').trim().slice(0, 60));
    }
    if (r.width === 0 || r.height === 0 || r.right <= right + 1 || el.closest('mjx-assistive-mml')) continue;
    // Up to the first box that scrolls: a box that hides what passes its edge cuts the element off.
    let a = el.parentElement, clip = null, hidden = false;
    while (a && a !== art) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') { clip = a; break; }
      if (ox !== 'visible' && r.right > a.getBoundingClientRect().right + 1) { hidden = true; break; }
      a = a.parentElement;
    }
    if (!clip) {
      cut.add(name(el) + (hidden ? ' (hidden) ' : ' ') + (el.textContent || '').trim().slice(0, 60));
      continue;
    }
    // A box that overflows shows the cue on the side where more waits (the right one, at rest), and is a
    // Tab stop (a keyboard reader scrolls it).
    const host = clip.closest('.book-scroll-host'), atRest = clip.scrollLeft <= 0;
    if (clip.scrollWidth > clip.clientWidth + 1 && !(host && host.classList.contains(atRest ? 'book-more-right' : 'book-more-left')))
      nocue.add(name(clip) + ' ' + (clip.textContent || '').trim().slice(0, 60));
    if (clip.scrollWidth > clip.clientWidth + 1 && clip.tabIndex < 0)
      nocue.add('not focusable: ' + name(clip) + ' ' + (clip.textContent || '').trim().slice(0, 60));
  }
  return {cut: [...cut].slice(0, 8), nocue: [...nocue].slice(0, 8), left: [...leftcut].slice(0, 8),
          page: document.documentElement.scrollWidth - window.innerWidth};
}"""

#: Open every solution (and every other <details>) of the article, as a reader clicking them does.
_OPEN_SOLUTIONS = """async () => { for (const d of document.querySelectorAll('.bd-article details')) {
  d.scrollIntoView({block: 'center'}); d.open = true;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 60)))); }
  window.scrollTo(0, 0); }"""

#: Pages with wide display maths (at 1280 px and on a phone) and long solution code.
WIDE_PAGES = [rel for rel in ("notebooks/en/01_self_attention.html", "notebooks/en/02_external_attention.html",
                              "notebooks/en/05_cbam.html", "notebooks/zh/02_external_attention.html",
                              "book/en/notation.html") if _built(rel)]


@pytest.mark.parametrize("rel", WIDE_PAGES)
def test_wide_blocks_open_at_their_start_with_their_cue_and_take_focus(browser, server, rel):
    """Wide equations, code and tables open at their start (nothing hidden on the left), show the cue on the
    side where more waits (the right, at rest) and are Tab stops: from a cold load (axe: no scroll region out
    of the keyboard's reach before any scroll), after the formulas are typeset and after the solutions open."""
    problems = []
    for scheme, size in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        context = browser.new_context(viewport=size, is_mobile=scheme == "phone", has_touch=scheme == "phone")
        page = context.new_page()
        page.goto(f"{server}/{rel}", wait_until="load")
        page.wait_for_load_state("networkidle")
        where = f"{rel} ({scheme})"
        if scheme == "desktop":
            problems += [f"{where}, cold: axe {v['id']}: {v['nodes'][:3]}"
                         for v in run_axe(page, require=REQUIRE_SITE) if v["id"] == "scrollable-region-focusable"]
        scroll_through(page)
        typeset_all(page)
        page.evaluate(_OPEN_SOLUTIONS)
        page.wait_for_timeout(400)
        found = page.evaluate(_OVERFLOW)
        problems += [f"{where}: hidden on the left of its box at rest: {c}" for c in found["left"]]
        problems += [f"{where}: scrolls with no visible cue: {c}" for c in found["nocue"]]
        problems += [f"{where}: cut at the column edge: {c}" for c in found["cut"]]
        context.close()
    assert not problems, "\n".join(problems)


def _read_after_scroll(browser, url: str, script: str, size: dict, scheme: str = "light"):
    """``script``'s answer on the page at ``url`` in a fresh window of ``size`` (a phone when it is PHONE),
    after a reader's scroll through it."""
    context = browser.new_context(viewport=size, color_scheme=scheme, is_mobile=size == PHONE, has_touch=size == PHONE)
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        scroll_through(page)
        return page.evaluate(script)
    finally:
        context.close()


#: In the dark scheme, output boxes (not figures) whose background is light: [what, colour].
_LIGHT_PLATES = """() => { const lum = c => { const m = c.match(/[\\d.]+/g); if (!m || (m.length > 3 && +m[3] === 0)) return 0;
    const [r, g, b] = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  return [...document.querySelectorAll('.bd-article .cell_output .output, .bd-article .cell_output .output > pre, '
    + '.bd-article .cell_output .output > table, .bd-article .cell_output .output pre')]
    .filter(e => e.tagName !== 'IMG' && !e.closest('figure, .attention-viewer, .attention-explorer-static'))
    .map(e => [e.tagName.toLowerCase() + '.' + String(e.className).split(' ').join('.'), getComputedStyle(e).backgroundColor])
    .filter(([w, c]) => lum(c) > 0.3).slice(0, 5); }"""


@pytest.mark.parametrize("rel", [r for r in ("notebooks/en/07_eca.html", "notebooks/zh/00_introduction.html") if _built(r)])
def test_dark_scheme_outputs_sit_on_a_dark_ground(browser, server, rel):
    """Printed tables and listings in the dark scheme: no light plate (the theme's #ced6dd) around them (the
    widgets and verdict boxes inside an output keep their own colours)."""
    light = _read_after_scroll(browser, f"{server}/{rel}", _LIGHT_PLATES, {"width": 1280, "height": 900}, "dark")
    assert not light, f"{rel} (dark): outputs on a light plate: {light}"


#: Words broken apart: the Chinese name in a title over two lines; a printed table's header one character a line.
_BROKEN_WORDS = """() => { const bad = [];
  for (const s of document.querySelectorAll('.bd-article h1 span[lang="zh-CN"]'))
    if (s.getClientRects().length > 1) bad.push('title: ' + s.textContent);
  for (const th of document.querySelectorAll('.bd-article .cell_output table th')) {
    const fs = parseFloat(getComputedStyle(th).fontSize), r = th.getBoundingClientRect();
    if (th.textContent.trim().length >= 4 && r.height > 3.5 * fs && r.width < 2.5 * fs) bad.push('header: ' + th.textContent.trim());
  }
  return bad.slice(0, 5); }"""


@pytest.mark.parametrize("rel,size", [(r, s) for r, s in (("book/index.html", {"width": 1280, "height": 900}),
                                                         ("notebooks/zh/02_external_attention.html", PHONE)) if _built(r)])
def test_titles_and_table_headers_keep_their_words_together(browser, server, rel, size):
    broken = _read_after_scroll(browser, f"{server}/{rel}", _BROKEN_WORDS, size)
    assert not broken, f"{rel} at {size['width']} px: {broken}"


#: Outputs that must keep their lines: torchinfo summaries and source listings wrap no row.
_WALLS = """() => {
  const lines = el => { const s = getComputedStyle(el), lh = parseFloat(s.lineHeight) || 1.4 * parseFloat(s.fontSize);
    const h = el.getBoundingClientRect().height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom)
              - (el.scrollWidth > el.clientWidth ? el.offsetHeight - el.clientHeight : 0);
    return Math.round(h / lh); };
  const out = [];
  for (const pre of document.querySelectorAll('.cell_output pre')) {
    const text = pre.textContent.replace(/\\n$/, ''), n = text.split('\\n').length;
    const listing = !!pre.closest('.highlight') && !pre.closest('.cell_input');
    if (!(listing || text.includes('Total params'))) continue;
    if (lines(pre) > n) out.push((listing ? 'listing' : 'summary') + ': ' + n + ' lines shown as ' + lines(pre));
  }
  for (const td of document.querySelectorAll('.cell_output table td:not(:last-child)')) {
    if (parseFloat(getComputedStyle(td).paddingRight) < 8) { out.push('table cells without a gap'); break; }
  }
  return out;
}"""

#: Each figure's width as shown, by its file: the rule is checked against what the reader sees.
_SHOWN = """() => [...document.querySelectorAll('.bd-article img')].filter(i => i.src.includes('_images/'))
  .map(i => [i.getAttribute('src'), i.getBoundingClientRect().width])"""

#: Inline formulas whose following punctuation went to the next line alone.
_ORPHAN_PUNCTUATION = """() => { const bad = [];
  for (const m of document.querySelectorAll('.bd-article mjx-container:not([display=true])')) {
    let box = m;
    while (!box.nextSibling && box.parentElement && box.parentElement.matches('span.math, .book-inline-scroll, .book-nowrap'))
      box = box.parentElement;
    const n = box.nextSibling;
    if (!n || n.nodeType !== 3 || !/^[)\\].,;:，。；：）]/.test(n.data)) continue;
    const r = document.createRange(); r.setStart(n, 0); r.setEnd(n, 1);
    const a = m.getBoundingClientRect(), b = r.getBoundingClientRect();
    if (a.height && b.height && b.top >= a.bottom - 2) bad.push((m.textContent || '').slice(0, 30) + ' | ' + n.data.slice(0, 3));
  }
  return bad.slice(0, 5); }"""

#: The explorers' sliders: each big enough to hit and announcing the value the page shows.
_SLIDERS = """() => [...document.querySelectorAll('.attention-explorer-static input[type=range]')].map(e => {
  const out = e.closest('.attention-explorer-static').querySelector('output[data-for="' + e.getAttribute('data-control') + '"]');
  return {name: e.name, height: e.getBoundingClientRect().height, said: e.getAttribute('aria-valuetext'),
          shown: out ? out.textContent : null};
})"""


def _check_sliders(page, where: str) -> list[str]:
    """Every explorer slider is at least 24 px high and its aria-valuetext is the value shown beside it, also
    after the arrow keys moved it (the first slider of each explorer is moved; the frame follows)."""
    bad = [f"{where}: slider {s['name']} is {s['height']:.0f} px high (24 px at least)"
           for s in page.evaluate(_SLIDERS) if s["height"] < 24]
    bad += [f"{where}: slider {s['name']} announces {s['said']!r} while the page shows {s['shown']!r}"
            for s in page.evaluate(_SLIDERS) if s["said"] != s["shown"]]
    explorers = page.locator(".attention-explorer-static")
    for i in range(explorers.count()):
        ex = explorers.nth(i)
        slider = ex.locator("input[type=range]").first
        if not slider.count():
            continue
        before, frame = slider.get_attribute("aria-valuetext"), ex.get_attribute("data-current")
        slider.focus()
        page.keyboard.press("ArrowRight" if slider.input_value() != slider.get_attribute("max") else "ArrowLeft")
        after = slider.get_attribute("aria-valuetext")
        shown = ex.locator(f'output[data-for="{slider.get_attribute("data-control")}"]').inner_text()
        if after == before or after != shown or ex.get_attribute("data-current") == frame:
            bad.append(f"{where}: explorer {i}: the arrow key moved {slider.get_attribute('name')} from {before!r} "
                       f"to {after!r} (shown {shown!r}), frame {frame} -> {ex.get_attribute('data-current')}")
    return bad


def _focus_walk(page, presses: int) -> list[str]:
    """Press Tab ``presses`` times from the top; the stops whose focus shows nothing, and formulas reached."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    bad = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const a = document.activeElement; if (!a || a === document.body) return null;
          const s = getComputedStyle(a);
          const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'
                       || s.textDecorationLine.includes('underline') && a.tagName === 'A';
          return {ring, formula: !!a.closest('mjx-container'), what: a.tagName + '.' + a.className + ' ' + (a.textContent || '').trim().slice(0, 30)}; }""")
        if info is None:
            continue
        if info["formula"]:
            bad.append("a formula is a Tab stop")
        elif not info["ring"]:
            bad.append(f"no visible focus: {info['what']}")
    return sorted(set(bad))


def _weight(visit_requests) -> int:
    total = 0
    for r in visit_requests:
        try:
            s = r.sizes()
        except Exception:   # noqa: BLE001
            continue
        total += s["responseBodySize"] + s["responseHeadersSize"]
    return total


@pytest.mark.parametrize("rel", READER_PAGES)
def test_every_reader_gets_the_page(browser, server, rel):
    """One page as its readers get it: light and dark scheme (axe-core, WCAG 2.1 A/AA), 1280 px (nothing cut
    off, figures at least as legible as a caption, no wall of wrapped output, visible focus on every Tab stop,
    no formula among them, the viewers from the keyboard, a cold load within its budget) and a 390 px phone
    (no sideways scroll, figures at full size in their scroll box)."""
    problems = []
    for scheme, size in (("light", {"width": 1280, "height": 900}), ("dark", {"width": 1280, "height": 900}),
                         ("phone", PHONE)):
        context = browser.new_context(viewport=size, color_scheme="dark" if scheme == "dark" else "light",
                                      is_mobile=scheme == "phone", has_touch=scheme == "phone")
        requests, errors = [], []
        page = context.new_page()
        page.on("requestfinished", lambda r: requests.append(r))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/{rel}", wait_until="load")
        page.wait_for_load_state("networkidle")
        where = f"{rel} ({scheme})"
        if scheme in ("light", "dark"):                              # as it opens, before any scroll
            # (contrast is read after the scroll below: in a cell not laid out yet (content-visibility) axe reads
            # a caption's background through the figure above it, 1.46:1 on zh/01 dark, nothing there once laid out)
            for v in run_axe(page, require=REQUIRE_SITE):
                if v["id"] == "color-contrast":
                    continue
                problems.append(f"{where}, cold: axe {v['id']} ({v['impact']}): {v['help']}: {v['nodes'][:3]}")
        scroll_through(page)                                         # a reader's scroll: cells laid out and measured
        typeset_all(page)
        if page.locator(".attention-viewer").count():
            wait_for_viewers(page)                                   # drawn as they near the window
        page.evaluate(_OPEN_SOLUTIONS)                               # a reader opens the solutions
        page.wait_for_timeout(300)                                   # book.js marks the scrollers after typesetting
        if scheme in ("light", "dark"):
            for v in run_axe(page, require=REQUIRE_SITE, undecided_contrast=True):
                problems.append(f"{where}: axe {v['id']} ({v['impact']}): {v['help']}: {v['nodes'][:3]}")
        if scheme == "light":
            limit = WEIGHT_LIMITS.get(rel, CHAPTER_WEIGHT_LIMIT)
            weight = _weight(requests)
            if weight > limit:
                problems.append(f"{where}: a cold load transfers {weight:,} bytes, over {limit:,}")
            found = page.evaluate(_OVERFLOW)
            problems += [f"{where}: cut at the column edge: {c}" for c in found["cut"]]
            problems += [f"{where}: scrolls with no visible cue: {c}" for c in found["nocue"]]
            problems += [f"{where}: hidden on the left of its box at rest: {c}" for c in found["left"]]
            problems += [f"{where}: {w}" for w in page.evaluate(_WALLS)]
            problems += [f"{where}: punctuation alone after a formula: {w}" for w in page.evaluate(_ORPHAN_PUNCTUATION)]
            for src, shown in page.evaluate(_SHOWN):
                chunks = figure_output.read_png((SITE / rel).parent.joinpath(src).resolve().read_bytes())
                problems += [f"{where}: figure {src}: {b}" for b in figure_output.rule_breaks(chunks, shown_px=shown)]
            problems += [f"{where}: {b}" for b in _focus_walk(page, 40)]
            stops = page.evaluate("() => document.querySelectorAll('mjx-container[tabindex]:not([tabindex=\"-1\"])').length")
            if stops:
                problems.append(f"{where}: {stops} formulas are Tab stops")
            if page.locator(".attention-viewer").count():
                try:
                    drive_viewers_by_keyboard(page, where)
                except AssertionError as e:
                    problems.append(str(e))
            problems += _check_sliders(page, where)
        if scheme == "phone":
            found = page.evaluate(_OVERFLOW)
            problems += [f"{where}: punctuation alone after a formula: {w}" for w in page.evaluate(_ORPHAN_PUNCTUATION)]
            if found["page"] > 0:
                problems.append(f"{where}: the page scrolls sideways by {found['page']} px")
            problems += [f"{where}: cut at the column edge: {c}" for c in found["cut"]]
            problems += [f"{where}: scrolls with no visible cue: {c}" for c in found["nocue"]]
            problems += [f"{where}: hidden on the left of its box at rest: {c}" for c in found["left"]]
            for src, shown in page.evaluate(_SHOWN):
                chunks = figure_output.read_png((SITE / rel).parent.joinpath(src).resolve().read_bytes())
                problems += [f"{where}: figure {src}: {b}" for b in figure_output.rule_breaks(chunks, shown_px=shown)]
        problems += [f"{where}: page error {e}" for e in errors]
        context.close()
    assert not problems, "\n".join(problems)
