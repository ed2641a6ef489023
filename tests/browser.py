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


def run_axe(page, require: bool = True, tags=AXE_TAGS) -> list[dict]:
    """axe-core's violations on ``page`` as it is now: [{id, impact, nodes: [target, ...]}]."""
    script = npm_package(f"axe-core@{AXE_VERSION}", require) / "axe.min.js"
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(script))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                           " resultTypes: ['violations']})", tags)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [" ".join(map(str, n["target"])) + " :: " + n["html"][:160] for n in v["nodes"]]}
            for v in result["violations"]]


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
