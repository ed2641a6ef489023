"""The theme's stylesheets without the rules no page of the site can use (issue 22, page speed).

Every page links pydata-sphinx-theme's stylesheet (397 kB: all of Bootstrap and a rule for each of
FontAwesome's 2,000 icons), sphinx-design's (55 kB) and MyST-NB's (43 kB) before it can paint anything: on a
phone (Lighthouse, mobile) they were most of the time to the first paint and a large share of the style
work on a chapter's 8,000 elements. After the build, this extension writes a lean copy of each next to it
(``pydata-sphinx-theme.lean.css``: same folder, so relative ``url()`` still resolve) holding only the rules
whose selectors can match: a selector is kept when every class and id it names occurs as a word in some
page of the site or in a script the pages load (a script's words include the classes it adds), or starts
with a prefix a script builds class names from (```bs-${...}```). Elements, attributes, custom properties,
``@font-face`` and ``@keyframes`` are kept whole. Pages link the lean copies instead of the originals
(``reader_site.finish_html``; ``reader_site`` also runs :func:`write_lean` after its icon subset), and ``styles/theme.css``, whose only content is ``@import "../basic.css"`` (a second,
serial round trip before the first paint), is replaced by a link to the lean ``basic.css``.

The test suite checks the outcome, not this code's idea of it: the pages still render, axe finds nothing in
either colour scheme, and each page links no render-blocking stylesheet but the lean ones.
"""
from __future__ import annotations

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Stylesheets (under ``_static``) that get a lean copy; a pattern may name a hashed file (MyST-NB's).
SOURCES = ("basic.css", "pygments.css", "styles/pydata-sphinx-theme.css", "sphinx-design.min.css",
           "mystnb.*.css")
#: Stylesheets whose link is replaced by another file's lean copy (theme.css only imports basic.css).
REPLACED = {"styles/theme.css": "basic.css"}
#: Scripts that no page loads (or that name classes of their own only): their words keep nothing.
IGNORED_SCRIPTS = ("scripts/fontawesome.js", "vendor/", "searchindex.js")

_WORD = re.compile(r"[A-Za-z_][\w-]*")
_PREFIX = re.compile(r"""[`"']([a-z][a-z0-9-]*-)(?:\$\{|["']\s*\+)""")      # `bs-${x}`, "toggle-" + x
_NAME = re.compile(r"(?<![\w-])[.#]((?:[\w-]|\\.)+)")                      # .class, #id (escapes kept)
_ATTRIBUTE = re.compile(r"\[[^\]]*\]")
_FUNCTIONAL = re.compile(r":(?:not|is|where|has|nth-child|nth-last-child)\(")


def lean_name(rel: str) -> str:
    """``styles/pydata-sphinx-theme.css`` -> ``styles/pydata-sphinx-theme.lean.css``."""
    return rel[:-4] + ".lean.css"


def _without_functional(selector: str) -> str:
    """The selector less the arguments of :not(), :is(), :where(), :has(): a name there need not be used."""
    out, i = [], 0
    while True:
        m = _FUNCTIONAL.search(selector, i)
        if m is None:
            out.append(selector[i:])
            return "".join(out)
        out.append(selector[i:m.start()])
        depth, j = 1, m.end()
        while j < len(selector) and depth:
            depth += {"(": 1, ")": -1}.get(selector[j], 0)
            j += 1
        i = j


def _split_selectors(prelude: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(prelude):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(prelude[start:i])
            start = i + 1
    parts.append(prelude[start:])
    return [p.strip() for p in parts if p.strip()]


class Usage:
    """The words of the site's pages and scripts, and the prefixes scripts build class names from."""

    def __init__(self, words: set[str], prefixes: tuple[str, ...]):
        self.words, self.prefixes = words, prefixes

    @classmethod
    def of_site(cls, outdir: Path) -> "Usage":
        words: set[str] = set()
        prefixes: set[str] = set()
        for page in outdir.rglob("*.html"):
            words |= set(_WORD.findall(page.read_text(encoding="utf-8", errors="ignore")))
        static = outdir / "_static"
        for script in static.rglob("*.js"):
            rel = script.relative_to(static).as_posix()
            if rel.startswith(IGNORED_SCRIPTS):
                continue
            text = script.read_text(encoding="utf-8", errors="ignore")
            words |= set(_WORD.findall(text))
            prefixes |= set(_PREFIX.findall(text))
        return cls(words, tuple(sorted(prefixes)))

    def used(self, name: str) -> bool:
        name = re.sub(r"\\(.)", r"\1", name)                                  # .md\:col-6 -> md:col-6
        return name in self.words or name.startswith(self.prefixes)

    def keeps(self, selector: str) -> bool:
        bare = _ATTRIBUTE.sub("[]", _without_functional(selector))             # a[href$=".pdf"]: no class
        return all(self.used(n) for n in _NAME.findall(bare))


def lean_stylesheet(css: str, usage: Usage) -> str:
    """``css`` with only the rules ``usage`` can match (a rule keeps its matching selectors only)."""
    import tinycss2

    licence = re.match(r"\s*(?:@charset[^;]*;\s*)?(/\*!.*?\*/)", css, re.S)

    def rules(nodes) -> str:
        out = []
        for rule in nodes:
            if rule.type == "qualified-rule":
                prelude = tinycss2.serialize(rule.prelude).strip()
                if prelude.startswith(("from", "to")) or prelude[:1].isdigit():     # keyframe steps
                    kept = [prelude]
                else:
                    kept = [s for s in _split_selectors(prelude) if usage.keeps(s)]
                if kept:
                    out.append(",".join(kept) + "{" + tinycss2.serialize(rule.content).strip() + "}")
            elif rule.type == "at-rule" and rule.lower_at_keyword != "charset":      # written once, first
                head = "@" + rule.at_keyword + tinycss2.serialize(rule.prelude)
                if rule.content is None:
                    out.append(head.strip() + ";")
                elif rule.lower_at_keyword in ("media", "supports", "layer", "container", "document"):
                    inner = rules(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                                           skip_whitespace=True))
                    if inner:
                        out.append(head.strip() + "{" + inner + "}")
                else:                                          # @font-face, @keyframes, @page: kept whole
                    out.append(head.strip() + "{" + tinycss2.serialize(rule.content).strip() + "}")
        return "\n".join(out)

    sheet = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    body = rules(sheet)
    return '@charset "UTF-8";\n' + (licence.group(1) + "\n" if licence else "") + body + "\n"


def sources(static: Path) -> list[str]:
    """The stylesheets under ``static`` that get a lean copy (relative paths)."""
    found = []
    for pattern in SOURCES:
        found += sorted(p.relative_to(static).as_posix() for p in static.glob(pattern)
                        if not p.name.endswith(".lean.css"))
    return found


def write_lean(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    static = outdir / "_static"
    usage = Usage.of_site(outdir)
    for rel in sources(static):
        source = static / rel
        lean = lean_stylesheet(source.read_text(encoding="utf-8"), usage)
        (static / lean_name(rel)).write_text(lean, encoding="utf-8")
        logger.info("lean_css: %s %d -> %d bytes", rel, source.stat().st_size, len(lean.encode()))


_LINK = re.compile(r'(<link\b[^>]*\bhref=")([^"?]*?_static/)([^"?]+\.css)((?:\?[^"]*)?")')


def link_lean(html: str) -> str:
    """A page's links to the stylesheets of :data:`SOURCES` and :data:`REPLACED` pointed at the lean copies."""
    import fnmatch

    def swap(m: re.Match) -> str:
        start, base, rel, rest = m.groups()
        rel = REPLACED.get(rel, rel)
        if rel.endswith(".lean.css") or not any(fnmatch.fnmatch(rel, p) for p in SOURCES):
            return m.group(0)
        return start + base + lean_name(rel) + rest

    return _LINK.sub(swap, html)
