"""What the published pages give every reader beyond the theme's defaults (issue 22).

- **Figures.** Each plot a notebook shows is a PNG from ``attention_lib.toolkit.figure_output`` that carries
  a text alternative (``Title``) and, for a figure that shows a result, a caption (``Description``). The
  image gets that text as its ``alt`` (never its file name), the caption as a ``<figcaption>``, lazy
  loading, and its intrinsic width and height (no layout shift while it loads).
- **Wide content** (display maths, tables, code, a figure on a phone) scrolls inside the column with a
  visible cue (``book.css``, ``book.js``).
- **Navigation.** Previous/next never leads into the other language (the first page of a language goes back
  to the landing page); each side page of ``book/en`` and ``book/zh`` links to its twin with the chapters'
  wording ("中文版本" / "English version").
- **Light pages.** The map viewers' engine is one deferred file instead of a copy in every viewer; MathJax
  loads only on pages with maths, as its loader and the components it needs (no menu: formulas are not Tab
  stops); the theme's icon fonts are cut to the icons used; the theme's FontAwesome script (its
  icons are drawn by the webfonts the stylesheet already loads) and Sphinx's search index (used by the search
  page only) are left out of every other page; each page has a meta description; the theme's stylesheets are
  linked as lean copies without the rules no page can use (``lean_css.py``).
- **Names and roles.** Controls are named by their visible text (the search button, the code toggles), and
  the bibliography is a list of list items.
"""
from __future__ import annotations

import posixpath
import re
import struct
from pathlib import Path

from docutils import nodes
from lean_css import link_lean, write_lean          # book/_ext is on the path (local_extensions)
from sphinx.util import logging

logger = logging.getLogger(__name__)

ENGINE_FILE = "attention-viewer.js"
TWIN_TEXT = {"en": "中文版本", "zh": "English version"}
TWIN_LANG = {"en": "zh-Hans", "zh": "en"}
DESCRIPTION_CHARS = 160


def language_of(docname: str) -> str | None:
    """"en" or "zh" for the pages of one language part; None for the landing page, search and indices."""
    parts = docname.split("/")
    return parts[1] if len(parts) == 3 and parts[0] in ("book", "notebooks") and parts[1] in TWIN_TEXT else None


# ---------------------------------------------------------------- figures

def _png_chunks(path: Path) -> dict:
    """The text chunks of a PNG (``{}`` when it has none or is not a PNG)."""
    from attention_lib.toolkit.figure_output import read_png
    try:
        return read_png(path.read_bytes())
    except (OSError, ValueError):
        return {}


def _png_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def _source_of(app, uri: str) -> Path:
    return Path(app.srcdir) / uri.lstrip("/")


#: A chapter figure's number as its caption says it, in the page's language.
FIGURE_LABEL = {"en": "Figure {n}", "zh": "图 {n}"}
FIGURE_SEP = {"en": ". ", "zh": "："}
_SENTENCE = re.compile(r"(?<=\.)\s+|(?<=。)")        # "0.5" and "e.g.x" stay whole


def figure_caption(title: str, description: str | None, n: int, lang: str) -> str:
    """The caption of a chapter's ``n``-th figure: its number, then the result it shows (``description``,
    what :func:`attention_lib.toolkit.figure_output.describe` gave) or else its title, the first sentence of
    its text alternative (the figure's suptitle or single title; for a figure without one, its panels' titles)."""
    text = description or ""
    if not text:
        parts = [p for p in _SENTENCE.split(title.strip()) if p]
        if parts and parts[0] in ("Figure.", "图。"):        # figure_output's word for a figure without a title
            parts = parts[1:]
        text = parts[0] if parts else ""
    label = FIGURE_LABEL[lang].format(n=n)
    return label + FIGURE_SEP[lang] + text if text else label


def describe_figures(app, doctree, docname):
    """Alt text and caption from each notebook figure's own PNG; lazy loading. On a chapter page every
    figure is numbered and captioned (its result, or its title) in the page's language."""
    lang = language_of(docname) if docname.startswith("notebooks/") else None
    number = 0
    for image in list(doctree.findall(nodes.image)):
        uri = image.get("candidates", {}).get("image/png") or image.get("uri", "")
        if not uri.endswith(".png"):
            continue
        path = _source_of(app, uri)
        chunks = _png_chunks(path) if path.is_file() else {}
        if not chunks.get("Title"):
            continue                                   # not a figure of the book's toolkit: left as it is
        image["alt"] = chunks["Title"]
        image["loading"] = "lazy"
        output = image.parent
        if "cell_output" in output.get("classes", []) and "book-figures" not in output["classes"]:
            output["classes"].append("book-figures")              # on a phone: scrolls, figure at full size
        caption = chunks.get("Description")
        if lang is not None:
            number += 1
            caption = figure_caption(chunks["Title"], caption, number, lang)
        if caption and not isinstance(image.parent, nodes.figure):
            figure = nodes.figure("", classes=["book-figure"], ids=[f"figure-{path.stem[:12]}"])
            image.replace_self(figure)
            figure += image
            figure += nodes.caption(caption, caption)


_IMG = re.compile(r'<img ([^>]*?)src="([^"]*?_images/([^"/]+\.png))"([^>]*?)/?>')


def _size_images(app, body: str) -> str:
    """``width`` and ``height`` on every image of the page, from the file: the browser keeps its place."""
    sources = {name: src for src, name in getattr(app.builder, "images", {}).items()}

    def add_size(m: re.Match) -> str:
        before, src, name, after = m.groups()
        if "width=" in before + after or name not in sources:
            return m.group(0)
        size = _png_size(_source_of(app, sources[name]))
        if size is None:
            return m.group(0)
        return f'<img {before}src="{src}" width="{size[0]}" height="{size[1]}" decoding="async"{after}/>'

    return _IMG.sub(add_size, body)


# ---------------------------------------------------------------- navigation

def link_twins(app, doctree, docname):
    """A link to the twin page under the title of each side page (the notebooks carry theirs)."""
    lang = language_of(docname)
    if lang is None or not docname.startswith("book/"):
        return
    twin = docname.replace(f"/{lang}/", f"/{'zh' if lang == 'en' else 'en'}/", 1)
    if twin not in app.env.all_docs:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    uri = app.builder.get_relative_uri(docname, twin)
    ref = nodes.reference("", TWIN_TEXT[lang], refuri=uri, internal=True)
    ref["classes"].append("book-twin-link")
    para = nodes.paragraph("", "", ref, classes=["book-twin"])
    section.insert(1, para)


def _target_doc(pagename: str, link: str) -> str:
    path = posixpath.normpath(posixpath.join(posixpath.dirname(pagename), link.split("#")[0]))
    return path[:-5] if path.endswith(".html") else path


def keep_language(app, pagename, context):
    """Previous/next stay in the page's language: across the border, back to the landing page or nothing."""
    lang = language_of(pagename)
    if lang is None:
        return
    for key in ("prev", "next"):
        item = context.get(key)
        if not item or not item.get("link"):
            continue
        other = language_of(_target_doc(pagename, item["link"]))
        if other is None or other == lang:
            continue
        if key == "prev" and app.config.root_doc in app.env.all_docs:
            context[key] = {"link": app.builder.get_relative_uri(pagename, app.config.root_doc),
                            "title": app.env.titles[app.config.root_doc].astext()}
        else:
            context[key] = None


# ---------------------------------------------------------------- the head of each page

def _description(doctree) -> str:
    """The page's first paragraph of some length, cut at a word near DESCRIPTION_CHARS characters."""
    if doctree is None:
        return ""
    for para in doctree.findall(nodes.paragraph):
        classes = " ".join(para.get("classes", []))
        links = sum(len(r.astext()) for r in para.findall(nodes.reference))
        if "book-twin" in classes or "classroom" in classes or links > len(para.astext()) / 2:
            continue                           # the twin link, the download banner, a list of links
        text = " ".join(para.astext().split())
        if len(text) >= 40:
            if len(text) > DESCRIPTION_CHARS:
                cut = text[:DESCRIPTION_CHARS]
                text = (cut.rsplit(" ", 1)[0] if " " in cut[-40:] else cut) + "…"
            return text
    return ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def page_context(app, pagename, templatename, context, doctree):
    """Per page: previous/next, the meta description, MathJax only with maths, the viewers' one engine."""
    keep_language(app, pagename, context)
    book = app.config.html_title or app.config.project
    title = re.sub(r"<[^>]+>", "", context.get("title") or "") or pagename.rsplit("/", 1)[-1].capitalize()
    description = _description(doctree) or (f"{title} · {book}" if pagename != app.config.root_doc else book)
    context["metatags"] = context.get("metatags", "") + f'\n<meta name="description" content="{_escape(description)}" />'
    body = context.get("body") or ""
    scripts = context.get("script_files")
    if isinstance(scripts, list) and "math notranslate" not in body and 'class="math' not in body:
        scripts[:] = [js for js in scripts if not _is_mathjax(js)]
    if "_images/" in body:
        body = _size_images(app, body)
    if 'class="attention-viewer"' in body:
        from attention_lib.toolkit.viewer import _engine
        copy = f"<script>{_engine()}</script>"
        if copy in body:
            body = body.replace(copy, "")
            app.add_js_file(ENGINE_FILE, loading_method="defer")
    context["body"] = body


def _is_mathjax(js) -> bool:
    filename = getattr(js, "filename", str(js)) or ""
    body = (getattr(js, "attributes", None) or {}).get("body", "")
    return "mathjax" in filename.lower() or "window.MathJax" in body


_FONTAWESOME = re.compile(r'\s*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>')
_SEARCH = re.compile(r'\s*<script (?:defer )?src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|searchindex\.js)'
                     r'[^"]*"></script>')


_TWICE_TITLE = re.compile(r"<title>([^<]+?) (?:&#8212;|\u2014) \1</title>")
_SEARCH_LABEL = re.compile(r'(<button class="btn search-button-field[^"]*"[^>]*?) aria-label="[^"]*"')   # any language
_BLOCKING = re.compile(r'<script (?![^>]*\b(?:defer|async)\b)([^>]*)src="(?![^"]*documentation_options\.js)([^"]+)"></script>')


def finish_html(html: str, pagename: str) -> str:
    """The rendered page, before it is written: what the theme's templates put there that no option removes."""
    html = _FONTAWESOME.sub("", html)
    html = link_lean(html)                          # the theme's stylesheets less the rules no page can use
    if pagename != "search":                        # the search dialog submits to search.html, which loads them
        html = _SEARCH.sub("", html)
    # Scripts run after the page is parsed (in order), not while the reader waits for the first paint; the
    # one that inline scripts read right away (DOCUMENTATION_OPTIONS) stays where it is.
    html = _BLOCKING.sub(lambda m: f'<script defer {m.group(1)}src="{m.group(2)}"></script>', html)
    # Named by what they show (WCAG 2.5.3): "Search Ctrl+K", "Show code cell source".
    html = _SEARCH_LABEL.sub(r"\1", html)
    html = html.replace('<summary aria-label="Toggle hidden content">', "<summary>")
    # A bibliography is a list of list items (doc-biblioentry is deprecated and not a list item).
    html = html.replace('role="doc-biblioentry"', 'role="listitem"')
    if language_of(pagename) == "zh":
        html = chinese_part_first(html)
    # The landing page's title is the book's title: "Book — Book" says it twice (tab, search results).
    html = _TWICE_TITLE.sub(r"<title>\1</title>", html, count=1)
    return html


_CAPTION = '<p aria-level="2" class="caption" role="heading"><span class="caption-text">'


def chinese_part_first(html: str) -> str:
    """A Chinese page's sidebar lists the Chinese part first (the table of contents lists English first)."""
    en, zh = html.find(_CAPTION + "English<"), html.find(_CAPTION + "中文<")
    if en < 0 or zh < en:
        return html
    after = [i for i in (html.find(_CAPTION, zh + 1), html.find("</div>", zh)) if i > 0]
    end = min(after) if after else -1
    if end < 0:
        return html
    return html[:en] + html[zh:end].rstrip() + "\n" + html[en:zh].rstrip() + "\n" + html[end:]


def _wrap_renderer(app):
    """Post-process every rendered page (the template bridge is the builder's own object)."""
    templates = getattr(app.builder, "templates", None)
    if templates is None or getattr(templates, "_reader_site", False):
        return
    render = templates.render

    def render_and_finish(template, context):
        return finish_html(render(template, context), context.get("pagename", ""))

    templates.render = render_and_finish
    templates._reader_site = True


#: How the site starts its viewers: each viewer and explorer is drawn when it comes within a window's height
#: of the screen (IntersectionObserver), not all at load (a chapter's viewers took most of a second of the main
#: thread before the reader saw anything). Without IntersectionObserver, everything is drawn at once.
LAZY_START = (
    'var go=function(){var draw=function(el){if(el.classList.contains("attention-explorer-static"))'
    '{AV.explorer(el);}else{AV.boot(el);}};'
    'var all=document.querySelectorAll(".attention-explorer-static:not([data-current]),'
    '.attention-viewer:not([data-ready])");'
    'if(!window.IntersectionObserver){AV.start();return;}'
    'var seen=new IntersectionObserver(function(entries){entries.forEach(function(e){'
    'if(e.isIntersecting){seen.unobserve(e.target);draw(e.target);}});},{rootMargin:"100% 0px"});'
    'for(var i=0;i<all.length;i++){if(!all[i].parentElement.closest(".attention-explorer-static"))'
    '{seen.observe(all[i]);}}'
    'window.addEventListener("beforeprint",AV.start);};'
    'if(document.readyState==="loading"){document.addEventListener("DOMContentLoaded",go);}else{go();}')


def lazy_engine() -> str:
    """The viewers' engine as the site loads it: :func:`~attention_lib.toolkit.viewer.site_engine`'s engine,
    started by :data:`LAZY_START` (a viewer is drawn as it nears the screen; printing draws them all)."""
    from attention_lib.toolkit.viewer import _wrapped
    return _wrapped(LAZY_START)


def write_engine(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / ENGINE_FILE).write_text(lazy_engine(), encoding="utf-8")


#: The theme's FontAwesome faces: (file stem under _static/vendor/fontawesome/webfonts, family, weight).
ICON_FACES = (("fa-solid-900", "Font Awesome 6 Free", 900), ("fa-regular-400", "Font Awesome 6 Free", 400),
              ("fa-brands-400", "Font Awesome 6 Brands", 400))
ICONS_CSS = "book-icons.css"
_PUA = re.compile(r'[\ue000-\uf8ff]|\\([ef][0-9a-f]{3})\b')        # an icon: the character or its CSS escape
_FA_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:+before,?)+)\{content:"([\ue000-\uf8ff]|\\[ef][0-9a-f]{3})"\}')


def _icon(match: str) -> str:
    return chr(int(match[1:], 16)) if match.startswith("\\") else match


def subset_icons(app, exception):
    """The theme's icon fonts cut down to the icons the site shows (270 kB on every page before, a few kB
    after): every icon named by an ``fa-*`` class in a page or a theme script, and every icon the theme's
    stylesheets use directly (admonitions, external links, prev/next). ``book-icons.css`` declares the
    subsets under the same family names, after the theme's stylesheet, so the browser loads them instead."""
    if exception is not None or app.builder.format != "html":
        return
    from fontTools import subset
    from fontTools.ttLib import TTFont

    static = Path(app.outdir) / "_static"
    fonts = static / "vendor" / "fontawesome" / "webfonts"
    css_files = sorted(static.rglob("*.css"))
    by_class, direct = {}, set()
    for css in css_files:
        text = css.read_text(encoding="utf-8", errors="ignore")
        for selectors, char in _FA_RULE.findall(text):
            for name in re.findall(r"\.(fa-[a-z0-9-]+):", selectors):
                by_class[name] = _icon(char)
        direct |= {_icon(m.group(0)) for m in _PUA.finditer(_FA_RULE.sub("", text))}
    used = set()
    for page in list(Path(app.outdir).rglob("*.html")) + list(static.glob("scripts/*.js")) + list(static.glob("*.js")):
        used |= set(re.findall(r"\bfa-[a-z0-9-]+", page.read_text(encoding="utf-8", errors="ignore")))
    chars = direct | {by_class[c] for c in used if c in by_class}
    faces = []
    for stem, family, weight in ICON_FACES:
        source = fonts / f"{stem}.ttf"
        if not source.is_file():
            continue
        font = TTFont(source)
        cmap = font.getBestCmap()
        keep = sorted(ord(c) for c in chars if ord(c) in cmap)
        options = subset.Options()
        options.flavor = "woff"                     # zlib: no brotli needed, a few kB either way
        options.layout_features = ["*"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=keep)
        subsetter.subset(font)
        out = static / f"book-{stem}.woff"
        font.flavor = "woff"
        font.save(out)
        faces.append(f'@font-face{{font-family:"{family}";font-style:normal;font-weight:{weight};font-display:block;'
                     f'src:url(book-{stem}.woff) format("woff")}}')
    (static / ICONS_CSS).write_text("/* generated by book/_ext/reader_site.py: the icons the site uses */\n"
                                    + "\n".join(faces) + "\n", encoding="utf-8")


#: What pydata-sphinx-theme's script does once the page is parsed and again after every change to the
#: article (a MutationObserver: each batch of formulas, each viewer drawn): it reads the scroll size of every
#: code block and output, which lays out every code cell that ``content-visibility`` kept off (80 ms of a
#: loaded desktop's main thread on a chapter, 200-400 ms of Lighthouse's phone). ``book.js`` does that job
#: (a wide block becomes a Tab stop with a cue) and measures a cell only as it nears the window, so the
#: theme's pass gets an empty list.
THEME_SCRIPT = "scripts/pydata-sphinx-theme.js"
THEME_SCROLL_PASS = ('document.querySelectorAll(["pre",".nboutput > .output_area",".cell_output > .output",'
                     '".jp-RenderedHTMLCommon",".pst-scrollable-table-container"].join(", ")).forEach(')
THEME_SCROLL_NONE = "[].forEach("


def quiet_theme_script(app, exception):
    """The theme's script without its scroll-size pass over every block (:data:`THEME_SCROLL_PASS`)."""
    if exception is not None or app.builder.format != "html":
        return
    script = Path(app.outdir) / "_static" / THEME_SCRIPT
    if not script.is_file():
        return
    text = script.read_text(encoding="utf-8")
    if THEME_SCROLL_PASS in text:
        script.write_text(text.replace(THEME_SCROLL_PASS, THEME_SCROLL_NONE), encoding="utf-8")
    elif THEME_SCROLL_NONE + "e=>{e.tabIndex=e.scrollWidth" not in text:
        logger.warning("reader_site: %s has no scroll-size pass to quiet (did the theme change?)", THEME_SCRIPT,
                       type="reader_site", subtype="theme")


#: MathJax components the pages load through its loader (``startup.js``): core, TeX input (with autoload for
#: rarer packages), CHTML output, hidden MathML that screen readers read, and lazy typesetting (a formula is
#: typeset when it nears the window: a chapter's 170 formulas took 1.5-4.5 s of the main thread at load;
#: printing typesets them all, and ``book.js`` binds punctuation and marks scrollers after each batch). No
#: context menu (426 kB, and it made every formula a Tab stop).
MATHJAX_COMPONENTS = ["core", "input/tex", "output/chtml", "a11y/assistive-mml", "ui/lazy"]
#: Formulas this far outside the window are typeset before they scroll in (MathJax's default is 200px).
MATHJAX_LAZY_MARGIN = "600px"


def configure_mathjax(app, config):
    """MathJax 3 through its loader, with :data:`MATHJAX_COMPONENTS` only."""
    settings = dict(config.mathjax3_config or {})
    loader = dict(settings.get("loader", {}))
    loader["load"] = list(dict.fromkeys(list(loader.get("load", [])) + MATHJAX_COMPONENTS))
    settings["loader"] = loader
    options = dict(settings.get("options", {}))
    options.setdefault("lazyMargin", MATHJAX_LAZY_MARGIN)
    settings["options"] = options
    config.mathjax3_config = settings


def setup(app):
    app.add_js_file("book.js", loading_method="defer")
    app.connect("config-inited", configure_mathjax)
    app.connect("builder-inited", _wrap_renderer)
    app.connect("doctree-resolved", describe_figures)
    app.connect("doctree-resolved", link_twins)
    app.connect("html-page-context", page_context, priority=900)
    app.connect("build-finished", write_engine)
    app.connect("build-finished", subset_icons)
    app.connect("build-finished", quiet_theme_script)
    app.connect("build-finished", write_lean, priority=800)     # after subset_icons read the full sheets
    app.add_css_file(ICONS_CSS)
    # A new env_version rebuilds every page: what finish_html and page_context do is part of every page.
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 3}
