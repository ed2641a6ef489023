"""A built site served locally, headless Chromium, and the map viewers of a page driven in it (playwright):
used by the viewer and site tests.

Generic: every ``.attention-viewer`` on the page, whatever chapter added it, is found by its class and its
pointable elements by ``[data-query]``; nothing here names a chapter or a viewer kind.
"""
from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):   # keep pytest's output clean
        pass


class _GzipHandler(_QuietHandler):
    """Text files gzip-compressed when the browser accepts it, as GitHub Pages and most hosts serve them."""

    TEXT = (".html", ".js", ".css", ".json", ".svg", ".txt", ".map")

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if (path.suffix not in self.TEXT or not path.is_file()
                or "gzip" not in self.headers.get("Accept-Encoding", "")):
            return super().send_head()
        import gzip
        import io
        body = gzip.compress(path.read_bytes(), compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@contextmanager
def serve(directory: Path, gzip: bool = False):
    """Serve ``directory`` on a free local port; yields its base URL. ``gzip``: compress text files."""
    handler = _GzipHandler if gzip else _QuietHandler
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def chromium(require: bool):
    """Debian's headless Chromium through playwright; a missing browser fails when ``require``, else skips."""
    if not Path(CHROMIUM).exists():
        if require:
            pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`.ci/run` does)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()

#: Two pointable elements of one viewer that share a parent (two patches, two tokens, two slots, two
#: channels, two images) and point at different queries: [index of the first, index of the second].
_PICK = """root => {
  const els = [...root.querySelectorAll('[data-query]')];
  for (let i = 0; i < els.length; i++) {
    for (let j = i + 1; j < els.length; j++) {
      if (els[j].parentElement === els[i].parentElement
          && els[j].getAttribute('data-query') !== els[i].getAttribute('data-query')) { return [i, j]; }
    }
  }
  return null;
}"""

#: What the viewer draws: every canvas's pixels and the colours of its pointable elements.
_DRAWN = """root => [...root.querySelectorAll('canvas')].map(c => c.toDataURL()).join('|')
  + [...root.querySelectorAll('[data-query]')].map(e => e.style.background).join('|')"""

_READY = "() => [...document.querySelectorAll('.attention-viewer')].every(v => v.getAttribute('data-ready'))"

#: The site draws a viewer when it nears the window: bring each into view in turn, as a reader scrolling does.
_SCROLL_TO_VIEWERS = """async () => {
  for (const v of document.querySelectorAll('.attention-viewer')) {
    v.scrollIntoView({block: 'center'});
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 30)));
  }
  window.scrollTo(0, 0);
}"""


#: Every formula of the page typeset (MathJax typesets lazily, as formulas near the window; this is what
#: it does before printing), then a moment for book.js to bind and measure the new batch.
_TYPESET_ALL = """async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
  await MathJax.startup.promise;
  const doc = MathJax.startup.document;
  if (doc && doc.lazyTypesetAll) await doc.lazyTypesetAll();
  await new Promise(r => setTimeout(r, 250));
  return true;
}"""


#: Scroll from the top to the end of the page and back, as a reader does: what is drawn, typeset or measured
#: as it nears the window (formulas, viewers, code cells) has been.
_SCROLL_THROUGH = """async () => {
  for (let y = 0; y < document.documentElement.scrollHeight; y += Math.round(window.innerHeight * 0.8)) {
    window.scrollTo(0, y);
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 20)));
  }
  window.scrollTo(0, 0);
  await new Promise(r => setTimeout(r, 200));
}"""


def scroll_through(page) -> None:
    """Scroll ``page`` to its end and back to the top (see :data:`_SCROLL_THROUGH`)."""
    page.evaluate(_SCROLL_THROUGH)


def typeset_all(page) -> bool:
    """Typeset every formula of ``page`` now (False: the page loads no MathJax)."""
    return page.evaluate(_TYPESET_ALL)


def wait_for_viewers(page, timeout_ms: int = 15_000) -> None:
    """Every viewer of ``page`` drawn (scrolled past first: the site draws viewers as they near the window)."""
    page.evaluate(_SCROLL_TO_VIEWERS)
    page.wait_for_function(_READY, timeout=timeout_ms)


def drive_viewers(page, where: str, timeout_ms: int = 15_000) -> int:
    """Point at two different queries of every viewer on ``page``; assert that its drawn map changes each time.

    Returns the number of viewers driven (0 when the page has none).
    """
    viewers = page.locator(".attention-viewer")
    n = viewers.count()
    if n:
        wait_for_viewers(page, timeout_ms)
    for i in range(n):
        v = viewers.nth(i)
        kind = v.get_attribute("data-kind")
        pair = v.evaluate(_PICK)
        assert pair, f"{where}: viewer {i} ({kind}) has no two elements with different data-query to point at"
        points = v.locator("[data-query]")
        before = v.evaluate(_DRAWN)
        points.nth(pair[1]).hover()
        second = v.evaluate(_DRAWN)
        points.nth(pair[0]).hover()
        first = v.evaluate(_DRAWN)
        assert second != before or first != before, f"{where}: viewer {i} ({kind}) draws nothing new when pointed at"
        assert first != second, (f"{where}: viewer {i} ({kind}) draws the same map for data-query="
                                 f"{points.nth(pair[0]).get_attribute('data-query')} and "
                                 f"{points.nth(pair[1]).get_attribute('data-query')}")
        assert v.get_attribute("data-query") == points.nth(pair[0]).get_attribute("data-query"), \
            f"{where}: viewer {i} ({kind}) does not report the query pointed at"
    return n


#: What a keyboard and a screen reader get from one viewer: its pointable elements (each named, reachable:
#: a button or role=button with a tabindex), the ones in the Tab order, its canvases (each hidden decoration
#: or an image with a text alternative) and its caption's live region.
_ACCESS = """root => {
  const name = e => (e.getAttribute('aria-label') || e.textContent || '').trim();
  const items = [...root.querySelectorAll('[data-query]')];
  return {
    unnamed: items.filter(e => !name(e)).length,
    unreachable: items.filter(e => !(e.tagName === 'BUTTON' || e.getAttribute('role') === 'button')
                                   || !e.hasAttribute('tabindex') && e.tagName !== 'BUTTON').length,
    unpressed: items.filter(e => !e.hasAttribute('aria-pressed')).length,
    stops: items.filter(e => e.tabIndex === 0).length,
    groups: new Set(items.map(e => e.closest('[role=toolbar]')).filter(Boolean)).size,
    canvases: [...root.querySelectorAll('canvas')].filter(c => c.getAttribute('aria-hidden') !== 'true'
              && !(c.getAttribute('role') === 'img' && (c.getAttribute('aria-label') || '').trim())).length,
    live: !!root.querySelector('.av-cap[aria-live]'),
    alts: [...root.querySelectorAll('canvas[role=img]')].map(c => c.getAttribute('aria-label')).join('|'),
  };
}"""

#: The first element of the viewer's query group that is in the Tab order.
_FIRST_STOP = "root => { const e = [...root.querySelectorAll('[data-query]')].find(e => e.tabIndex === 0); " \
              "if (e) { e.focus(); } return e ? e.getAttribute('data-query') : null; }"

_FOCUS = """root => { const a = document.activeElement, s = getComputedStyle(a);
  return {inside: root.contains(a), query: a.getAttribute('data-query'),
          group: a.closest('[role=toolbar]') ? [...root.querySelectorAll('[role=toolbar]')].indexOf(a.closest('[role=toolbar]')) : -1,
          ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2, pressed: a.getAttribute('aria-pressed')}; }"""


def drive_viewers_by_keyboard(page, where: str) -> int:
    """Every viewer on ``page`` from the keyboard, as a screen reader sees it: each pointable element named
    and reachable, one Tab stop per group of them, the arrow keys move the query (the map, its text
    alternative and the caption follow), focus is visible, Tab leaves the group. Returns the viewers driven."""
    viewers = page.locator(".attention-viewer")
    n = viewers.count()
    if n:
        wait_for_viewers(page)
    for i in range(n):
        v = viewers.nth(i)
        kind = v.get_attribute("data-kind")
        if kind == "figure":
            continue
        a = v.evaluate(_ACCESS)
        label = f"{where}: viewer {i} ({kind})"
        assert a["unnamed"] == 0, f"{label}: {a['unnamed']} pointable elements without an accessible name"
        assert a["unreachable"] == 0, f"{label}: {a['unreachable']} pointable elements the keyboard cannot reach"
        assert a["unpressed"] == 0, f"{label}: pointable elements that do not say whether they are selected"
        assert 1 <= a["stops"] <= a["groups"], (f"{label}: {a['stops']} of its pointable elements are Tab stops, "
                                                 f"expected one per group ({a['groups']})")
        assert a["canvases"] == 0, f"{label}: {a['canvases']} canvases with neither a text alternative nor aria-hidden"
        assert a["live"], f"{label}: its caption is not a live region"
        start = v.evaluate(_FIRST_STOP)
        before_alt, before_cap, before_drawn = a["alts"], v.locator(".av-cap").last.inner_text(), v.evaluate(_DRAWN)
        first = v.evaluate(_FOCUS)
        for key in ("ArrowRight", "ArrowDown", "ArrowLeft"):
            page.keyboard.press(key)
            moved = v.evaluate(_FOCUS)
            if moved["query"] != start:
                break
        assert moved["inside"] and moved["query"] != start, f"{label}: the arrow keys do not move the query"
        assert moved["pressed"] == "true" and v.get_attribute("data-query") is not None, \
            f"{label}: the element moved to is not selected"
        assert moved["ring"], f"{label}: the focused element shows no focus ring"
        after = v.evaluate(_ACCESS)
        assert v.evaluate(_DRAWN) != before_drawn, f"{label}: the map does not change when the keys move the query"
        assert (after["alts"] != before_alt or v.locator(".av-cap").last.inner_text() != before_cap), \
            f"{label}: neither the text alternative nor the caption follows the selection"
        page.keyboard.press("Tab")
        left = v.evaluate(_FOCUS)
        assert not (left["inside"] and left["group"] == first["group"] and left["query"] is not None), \
            f"{label}: Tab stays inside the group of pointable elements"
    return n


# ---------------------------------------------------------------- tools fetched from npm at test time

#: Where npm packages fetched for the tests and benchmarks live (never shipped in the site).
NPM_CACHE = Path(os.environ.get("ATTENTION_BOOK_NPM_CACHE",
                                Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "attention_book" / "npm"))
AXE_VERSION = "4.14.1"


def npm_package(spec: str, require: bool = True) -> Path:
    """An npm package unpacked under :data:`NPM_CACHE` (``npm pack`` once, then reused); its folder."""
    import json
    import shutil
    import subprocess
    import tarfile

    name, _, version = spec.rpartition("@")
    target = NPM_CACHE / f"{name.replace('/', '+')}-{version}"
    if (target / "package.json").exists():
        return target
    if shutil.which("npm") is None:
        (pytest.fail if require else pytest.skip)(f"npm is needed to fetch {spec} (apt-get install npm)")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(NPM_CACHE)],
                         check=True, capture_output=True, text=True).stdout
    tarball = NPM_CACHE / json.loads(out)[0]["filename"]
    tmp = target.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.isfile() and "/" in member.name:
                path = tmp / member.name.split("/", 1)[1]
                path.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    tarball.unlink()
    tmp.rename(target)
    return target


#: The WCAG 2.1 A and AA rules of axe-core.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def run_axe(page, require: bool = True, tags=AXE_TAGS, undecided_contrast: bool = False) -> list[dict]:
    """axe-core's violations on ``page`` as it is now: [{id, impact, help, nodes: [target :: html, ...]}].

    ``undecided_contrast``: also text whose contrast axe left undecided ("incomplete": overlapping boxes,
    equal colours) but measured below the ratio it needs, as a violation ``color-contrast-measured``."""
    script = npm_package(f"axe-core@{AXE_VERSION}", require) / "axe.min.js"
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(script))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                           " resultTypes: ['violations', 'incomplete']})", tags)
    out = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
            "nodes": [" ".join(map(str, n["target"])) + " :: " + n["html"][:160] for n in v["nodes"]]}
           for v in result["violations"]]
    if undecided_contrast:
        nodes = []
        for item in result["incomplete"]:
            if item["id"] != "color-contrast":
                continue
            for node in item["nodes"]:
                for check in node["any"]:
                    data = check.get("data") or {}
                    ratio, need = data.get("contrastRatio"), data.get("expectedContrastRatio")
                    if data.get("messageKey") == "equalRatio" or (
                            ratio and need and float(ratio) < float(str(need).split(":")[0])):
                        nodes.append(" ".join(map(str, node["target"])) + f" :: contrast {ratio}")
        if nodes:
            out.append({"id": "color-contrast-measured", "impact": "serious",
                        "help": "text axe left undecided has too little contrast", "nodes": nodes})
    return out


def page_weight(browser, url: str, scroll: bool = False, width: int = 1280) -> dict:
    """A cold load of ``url`` in a fresh context: bytes (bodies and headers) and requests, by resource type.

    ``scroll``: scroll to the end first, so that lazily loaded resources count too."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    done: list = []
    page.on("requestfinished", lambda r: done.append(r))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    if scroll:
        page.evaluate("async () => { for (let y = 0; y < document.body.scrollHeight; y += 600)"
                      " { window.scrollTo(0, y); await new Promise(r => setTimeout(r, 30)); } }")
        page.wait_for_load_state("networkidle")
    by_type: dict[str, int] = {}
    total = 0
    for r in done:
        try:
            s = r.sizes()
        except Exception:   # noqa: BLE001  (a request that vanished with the page)
            continue
        n = s["responseBodySize"] + s["responseHeadersSize"]
        total += n
        by_type[r.resource_type] = by_type.get(r.resource_type, 0) + n
    files = sorted(((r.sizes()["responseBodySize"], r.url) for r in done), reverse=True)
    context.close()
    return {"bytes": total, "requests": len(done), "by_type": by_type, "largest": files[:8]}


# ---------------------------------------------------------------- the built site, for a test module

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("ATTENTION_BOOK_SITE", ROOT / "_build" / "html"))
REQUIRE_SITE = os.environ.get("ATTENTION_BOOK_REQUIRE_SITE") == "1"


def require_built_site() -> None:
    """At a site test module's top: skip it without a built site, or fail under ``make site-test``."""
    if not (SITE / "index.html").exists():
        if REQUIRE_SITE:
            raise RuntimeError(f"{SITE} has no built site; `make test` builds it with `make book` first")
        pytest.skip(f"no built book in {SITE}: run `make book` first", allow_module_level=True)


@pytest.fixture(scope="module", name="server")
def site_server():
    """The built site on a local port: the fixture ``server`` of a test module that imports this function."""
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="module", name="browser")
def site_browser():
    """Headless Chromium: the fixture ``browser`` of a test module that imports this function."""
    with chromium(REQUIRE_SITE) as b:
        yield b
