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


@contextmanager
def serve(directory: Path):
    """Serve ``directory`` on a free local port; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
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


def drive_viewers(page, where: str, timeout_ms: int = 15_000) -> int:
    """Point at two different queries of every viewer on ``page``; assert that its drawn map changes each time.

    Returns the number of viewers driven (0 when the page has none).
    """
    viewers = page.locator(".attention-viewer")
    n = viewers.count()
    if n:
        page.wait_for_function(_READY, timeout=timeout_ms)
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
