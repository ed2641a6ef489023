"""Keep every page's scripts to the intended, local ones: the published book must load nothing from a CDN.

- Drops sphinx-thebe's scripts (Jupyter Book 1 always loads the extension; this book has no Thebe
  button, and the scripts only hold a URL on unpkg.com that nothing calls).
- Warns (an error under ``-W``) when any remaining script or stylesheet of a page points outside the
  site, so a new extension or option that adds a CDN URL fails the build instead of reaching readers.
"""
from __future__ import annotations

from sphinx.util import logging

logger = logging.getLogger(__name__)

_DROP_FILES = ("sphinx-thebe.js",)
_DROP_BODIES = ("THEBE_JS_URL",)


def _is_external(url: str) -> bool:
    return "://" in url or url.startswith("//")


def _keep_script(js) -> bool:
    filename = getattr(js, "filename", str(js)) or ""
    body = (getattr(js, "attributes", None) or {}).get("body", "")
    if filename.endswith(_DROP_FILES) or any(marker in body for marker in _DROP_BODIES):
        return False
    return True


def _check_page(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        scripts[:] = [js for js in scripts if _keep_script(js)]
        for js in scripts:
            filename = getattr(js, "filename", str(js)) or ""
            if _is_external(filename):
                logger.warning("page %s loads a script from outside the site: %s", pagename, filename,
                               type="offline_site", subtype="script")
    for css in context.get("css_files") or []:
        filename = getattr(css, "filename", str(css)) or ""
        if _is_external(filename):
            logger.warning("page %s loads a stylesheet from outside the site: %s", pagename, filename,
                           type="offline_site", subtype="css")


def setup(app):
    # After MyST-NB (priority 500) has added a page's widget scripts.
    app.connect("html-page-context", _check_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
