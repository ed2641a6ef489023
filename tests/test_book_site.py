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

from .browser import chromium, drive_viewers, serve

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
MATHJAX = "_static/vendor/mathjax/tex-chtml.js"
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
    # Sphinx also loads MathJax on a page whose toctree includes pages with equations (the landing page).
    if has_maths:
        assert MATHJAX in vendor, f"{rel}: equations but no MathJax among {scripts}"
    others = [s for s in vendor if s != MATHJAX]
    expected = WIDGET_SCRIPTS if has_widgets else []
    assert others == expected, (f"{rel}: vendored scripts {others} besides MathJax, expected {expected} "
                                "(the widget manager, in this order, only on pages with saved widget state)")


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
        page.evaluate("() => MathJax.startup.promise")
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
    if explorer:  # the toolkit's static explorer: its script must have shown the first frame
        viewer.wait_for(state="visible", timeout=10_000)
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
        control = viewer.locator("[data-control]:not([disabled])").first
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


# ---------------------------------------------------------------- execution time of each notebook

#: Seconds a notebook may take on a 2-core CPU when the book executes it; the comparison chapter
#: trains its 21 tiny models on its first run and gets three minutes.
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
