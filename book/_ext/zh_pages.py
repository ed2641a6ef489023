"""The Chinese pages say they are Chinese, and Chinese search finds the book's own words.

- **Language.** Every page under ``zh/`` is served as ``<html lang="zh-CN">`` (browsers then set Chinese in
  its Simplified Chinese glyph forms, not the Japanese ones they pick for CJK text in an English page), and
  the themes' own labels on it (search, contents, previous/next, the download, launch and print buttons,
  the colour-mode switch, the heading links) read in Chinese: the Sphinx, PyData and Book themes' zh_CN
  catalogs are swapped in for the page. On every other page, each run of Chinese text in the body gets
  ``lang="zh-CN"``, and ``zh.css`` puts Simplified Chinese faces first in the font stacks, so the sidebar's
  Chinese titles and the landing page's Chinese paragraphs use the same forms. The cheat sheet's PDF is
  printed from the page, so it follows.
- **Search.** The book is one Sphinx project with two languages, indexed by the Chinese search language
  (jieba for Chinese, the English stemmer for Latin words). jieba does not know the book's terms: it cuts
  自注意力 into 自 + 注意力, so a search for the title of chapter 1 found nothing. The index is built
  with a dictionary of the book's own words (every Chinese glossary term, every chapter's and side page's
  Chinese title), keeps the glossary's one-character terms (键, 值, 头), and the search page splits a
  Chinese query into the words the index knows (a whole title, or a phrase, finds its page). Result
  snippets show formulas without their raw LaTeX.
"""
from __future__ import annotations

import gettext
import json
import logging
import re
from pathlib import Path

import yaml
from sphinx.locale import translators
from sphinx.search.zh import SearchChinese

ROOT = Path(__file__).resolve().parents[2]
LANG = "zh-CN"
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff][\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                     r"\uff00-\uffef“”‘’…—·\s\w.,:;()/+\-=×]*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
#: The themes' labels that their zh_CN catalogs lack, or translate in Taiwan's usage (列印) or loosely.
LABELS = {
    "Color mode": "颜色模式", "Light": "浅色", "Dark": "深色", "System Settings": "跟随系统",
    "Main": "主导航", "Page": "页面导航", "Site navigation": "网站导航", "Section Navigation": "本节导航",
    "On this page": "本页内容", "Contents": "本页目录", "Skip to main content": "跳到正文",
    "Back to top": "回到顶部", "Search": "搜索", "Search this book...": "搜索本书……", "Search...": "搜索……",
    "Search the docs ...": "搜索本书……", "Toggle primary sidebar": "展开或收起左侧目录",
    "Toggle secondary sidebar": "展开或收起本页目录", "Source repositories": "源代码仓库",
    "Source repository": "源代码仓库", "Open an issue": "提交问题", "Print to PDF": "打印为 PDF",
    "Download this page": "下载本页", "Download source file": "下载源文件",
    "Download notebook file": "下载 Jupyter 笔记本文件", "Fullscreen mode": "全屏模式",
    "Launch interactive content": "在线运行", "Launch on": "在线运行：", "previous": "上一页", "next": "下一页",
    "previous page": "上一页", "next page": "下一页", "Link to this heading": "链接到本标题",
    "Link to this table": "链接到本表", "Link to this code": "链接到本段代码", "Link to this image": "链接到本图",
    "Link to this definition": "链接到本定义", "Link to this equation": "链接到本公式",
    "Toggle hidden content": "展开或折叠隐藏的内容", "Version warning": "版本提示", "Index": "索引",
    "Colab logo": "Colab 标志",
}

#: Labels written in English by a template or a writer without a catalog (the Book theme's sidebar toggles,
#: MyST-NB's hidden cells): translated in the rendered page, as attribute values or whole text nodes.
_LABEL_ATTRIBUTE = re.compile(r'(\s(?:title|aria-label|placeholder|data-bs-title|alt)=")([^"]+)(")')
_LABEL_TEXT = re.compile(r"(>\s*)([A-Z][A-Za-z .]+?)(\s*<)")


def is_chinese(pagename: str) -> bool:
    return "/zh/" in f"/{pagename}"


# ---------------------------------------------------------------- the themes' labels in Chinese

def _catalogs() -> dict[tuple[str, str], list[Path]]:
    """The message catalogs the themes translate with, and where their Chinese ones live."""
    import pydata_sphinx_theme
    import sphinx
    import sphinx_book_theme

    book_theme = Path(sphinx_book_theme.get_html_theme_path()) / "static" / "locales"
    return {("general", "sphinx"): [Path(sphinx.package_dir) / "locale",
                                    Path(pydata_sphinx_theme.__file__).parent / "locale"],
            ("general", "booktheme"): [book_theme]}


class _Labels(gettext.NullTranslations):
    """``LABELS`` first, then the catalogs."""

    def gettext(self, message):
        if message in LABELS:
            return LABELS[message]
        return super().gettext(message)


def _chinese_translators() -> dict[tuple[str, str], gettext.NullTranslations]:
    out = {}
    for (namespace, catalog), dirs in _catalogs().items():
        chain = _Labels()
        for directory in dirs:
            chain.add_fallback(gettext.translation(catalog, localedir=str(directory), languages=["zh_CN"],
                                                   fallback=True))
        out[(namespace, catalog)] = chain
    return out


#: the catalogs of each language: "zh" built at builder-inited, "en" the ones Sphinx loaded (kept at the first swap)
_CATALOGS: dict[str, dict] = {"zh": {}, "en": {}}


def _init(app):
    _CATALOGS["zh"] = _chinese_translators()
    _CATALOGS["en"] = {}


def _use(app, lang: str) -> None:
    """Make the catalogs of ``lang`` the ones Sphinx, the themes and the page templates translate with."""
    if not _CATALOGS["en"]:
        _CATALOGS["en"] = {key: translators[key] for key in _CATALOGS["zh"] if key in translators}
    for key, translator in _CATALOGS[lang].items():
        translators[key] = translator
    chosen = _CATALOGS[lang].get(("general", "sphinx"), app.translator)
    app.builder.templates.environment.install_gettext_translations(chosen)


def _page_language(app, pagename, templatename, context, doctree):
    """Before the themes build their buttons and the template renders: the page's language and catalogs."""
    if app.builder.format != "html" or not hasattr(app.builder, "templates"):
        return
    chinese = is_chinese(pagename)
    _use(app, "zh" if chinese else "en")
    if chinese:
        context["language"] = LANG
        context["theme_search_bar_text"] = LABELS["Search this book..."]


def localise(html: str, pagename: str) -> str:
    """A rendered page: on a Chinese page, the English labels no catalog reached; elsewhere, ``lang`` on every
    run of Chinese text."""
    if not is_chinese(pagename):
        return mark_chinese_runs(html)
    html = _LABEL_ATTRIBUTE.sub(lambda m: m.group(1) + LABELS.get(m.group(2), m.group(2)) + m.group(3), html)
    return _LABEL_TEXT.sub(lambda m: m.group(1) + LABELS.get(m.group(2), m.group(2)) + m.group(3), html)


def _wrap_render(app):
    """Every page the HTML builder renders passes through :func:`localise`."""
    templates = getattr(app.builder, "templates", None)
    if app.builder.format != "html" or templates is None or getattr(templates, "_zh_pages", False):
        return
    render = templates.render

    def localised(template, context):
        return localise(render(template, context), context.get("pagename", ""))

    templates.render = localised
    templates._zh_pages = True


_SKIP = re.compile(r"(<(script|style|textarea|option|title)\b.*?</\2>|<[^>]*>)", re.S | re.I)


def mark_chinese_runs(html: str) -> str:
    """Every run of Chinese text outside tags, scripts and styles wrapped in ``<span lang="zh-CN">``."""
    out, last = [], 0
    for m in _SKIP.finditer(html):
        out.append(_mark_text(html[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_mark_text(html[last:]))
    return "".join(out)


def _mark_text(text: str) -> str:
    if not _HAN.search(text):
        return text
    return CJK_RUN.sub(lambda m: f'<span lang="{LANG}">{m.group(0).rstrip()}</span>'
                       + m.group(0)[len(m.group(0).rstrip()):], text)


def _restore(app, exception):
    for key, translator in _CATALOGS["en"].items():
        translators[key] = translator


# ---------------------------------------------------------------- search

def book_words(root: Path) -> list[str]:
    """The book's own Chinese words: glossary terms, chapter titles, side-page titles (for jieba)."""
    words: list[str] = []
    glossary = yaml.safe_load((root / "book" / "glossary.yml").read_text(encoding="utf-8"))
    for term in glossary["terms"]:
        words += _HAN.findall(term["zh"])
    for path in sorted((root / "notebooks" / "zh").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        first = next((c for c in notebook["cells"] if c["cell_type"] == "markdown"), None)
        if first:
            title = "".join(first["source"]).split("\n", 1)[0]
            words += _HAN.findall(title.split("·", 1)[-1])
    for path in sorted((root / "book" / "zh").glob("*.md")):
        title = path.read_text(encoding="utf-8").split("\n", 1)[0]
        words += _HAN.findall(title)
    seen, unique = set(), []
    for word in words:
        if word not in seen:
            seen.add(word)
            unique.append(word)
    return unique


#: The search page's query splitter (language_data.js): a Chinese query is cut into the longest words the
#: index knows, characters it does not know are dropped; and result snippets lose their raw LaTeX.
JS_SPLITTER = r"""
function splitQuery(query) {
  const words = query.split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu).filter((t) => t);
  const index = (typeof Search !== "undefined" && Search._index) || {};
  const has = (table, w) => table && Object.prototype.hasOwnProperty.call(table, w);
  const known = (w) => has(index.terms, w) || has(index.titleterms, w);
  const out = [];
  for (const word of words) {
    if (!/\p{Script=Han}/u.test(word) || known(word)) { out.push(word); continue; }
    for (const run of word.match(/\p{Script=Han}+|[^\p{Script=Han}]+/gu)) {
      if (!/\p{Script=Han}/u.test(run)) { out.push(run); continue; }
      let i = 0;
      while (i < run.length) {
        let j = Math.min(run.length, i + 12);
        while (j > i + 1 && !known(run.slice(i, j))) j--;
        if (known(run.slice(i, j))) out.push(run.slice(i, j));
        i = j;
      }
    }
  }
  return out.length ? out : words;
}
if (typeof Search !== "undefined" && Search.htmlToText && !Search._withoutLatex) {
  const htmlToText = Search.htmlToText;
  const plain = (tex) => tex.replace(/^\\[(\[]|\\[)\]]$/g, "").replace(/\\[A-Za-z]+/g, " ")
    .replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll("div.math, .MathJax_Display, mjx-container[display]").forEach((el) => el.remove());
    doc.querySelectorAll("span.math").forEach((el) => { el.textContent = plain(el.textContent); });
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
  Search._withoutLatex = true;
}
"""


class BookChinese(SearchChinese):
    """Chinese search with the book's own words (see the module docstring)."""

    js_splitter_code = JS_SPLITTER
    single_words: set[str] = set()

    def init(self, options):
        import jieba

        jieba.setLogLevel(logging.WARNING)        # its "Building prefix dict" lines are not build output
        super().init(options)
        for word in options.get("book_words", []):
            if len(word) > 1:
                jieba.add_word(word)
        BookChinese.single_words = {w for w in options.get("book_words", []) if len(w) == 1}

    def word_filter(self, stemmed_word: str) -> bool:
        return len(stemmed_word) > 1 or stemmed_word in self.single_words


def _search_options(app, config):
    if config.html_search_language != "zh":
        return
    options = dict(config.html_search_options or {})
    options["book_words"] = book_words(ROOT)
    config.html_search_options = options


def _digest() -> str:
    """This file's hash: a config value, so that a change here (a label, the splitter) rewrites every page."""
    import hashlib

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def setup(app):
    app.add_config_value("zh_pages_digest", "", "html")
    app.connect("config-inited", lambda app, config: setattr(config, "zh_pages_digest", _digest()))
    app.add_search_language(BookChinese)
    app.add_css_file("zh.css")
    app.connect("config-inited", _search_options)
    app.connect("builder-inited", _init)
    app.connect("builder-inited", _wrap_render)
    app.connect("html-page-context", _page_language, priority=100)    # before the themes' handlers (500)
    app.connect("build-finished", _restore)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
