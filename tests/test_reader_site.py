"""book/_ext/reader_site.py without a build: what it changes in a rendered page, and the rules it follows."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import reader_site  # noqa: E402

HEAD = """<head>
  <script defer src="../../_static/scripts/fontawesome.js?digest=55c26ed414f5f8a31ebb"></script>
    <script src="../../_static/documentation_options.js?v=9eb32ce0"></script>
    <script src="../../_static/doctools.js?v=9a2dae69"></script>
    <script src="../../_static/searchtools.js"></script>
    <script src="../../_static/language_data.js"></script>
    <script src="../../searchindex.js"></script>
    <script data-sd-tabs-storage-prefix="sphinx-design-tab-id-" src="../../_static/design-tabs.js?v=fcb327ea"></script>
    <script>DOCUMENTATION_OPTIONS.pagename = 'x';</script>
</head><body>
<button class="btn search-button-field search-button__button pst-js-only" title="Search" aria-label="Search" data-x>
<summary aria-label="Toggle hidden content">
<div role="list" class="citation-list"><div class="citation" id="id15" role="doc-biblioentry"></div></div>
</body>"""


def test_a_page_loses_the_icon_script_and_the_search_index_and_waits_for_nothing():
    out = reader_site.finish_html(HEAD, "notebooks/en/01_self_attention")
    assert "fontawesome.js" not in out and "searchindex.js" not in out and "searchtools.js" not in out
    assert '<script src="../../_static/documentation_options.js' in out            # read by inline scripts at once
    assert '<script defer src="../../_static/doctools.js' in out
    assert '<script defer data-sd-tabs-storage-prefix="sphinx-design-tab-id-" src=' in out
    assert 'aria-label="Search"' not in out and 'aria-label="Toggle hidden content"' not in out
    assert 'role="doc-biblioentry"' not in out and 'role="listitem"' in out
    assert reader_site.finish_html(out, "notebooks/en/01_self_attention") == out      # idempotent


def test_the_landing_page_says_the_book_title_once():
    twice = "<head><title>Attention Mechanisms · 注意力机制 &#8212; Attention Mechanisms · 注意力机制</title></head>"
    assert "<title>Attention Mechanisms · 注意力机制</title>" in reader_site.finish_html(twice, "book/index")
    other = "<head><title>Notation &#8212; Attention Mechanisms · 注意力机制</title></head>"
    assert reader_site.finish_html(other, "book/en/notation") == other


NAV = ('<nav class="bd-docs-nav"><div class="bd-toc-item navbar-nav active">'
       '<p aria-level="2" class="caption" role="heading"><span class="caption-text">English</span></p>\n'
       '<ul class="nav bd-sidenav"><li class="toctree-l1"><a href="../en/00_introduction.html">00</a></li></ul>\n'
       '<p aria-level="2" class="caption" role="heading"><span class="caption-text">中文</span></p>\n'
       '<ul class="current nav bd-sidenav"><li class="toctree-l1"><a href="00_introduction.html">00</a></li></ul>\n'
       '</div></nav>')


def test_a_chinese_pages_sidebar_lists_the_chinese_part_first():
    out = reader_site.finish_html(NAV, "notebooks/zh/02_external_attention")
    assert out.index("中文</span>") < out.index("English</span>") < out.index("../en/00_introduction.html")
    assert out.index('href="00_introduction.html"') < out.index("English</span>") and out.endswith("</div></nav>")
    assert sorted(out) == sorted(NAV)                                   # moved, nothing lost
    assert reader_site.finish_html(NAV, "notebooks/en/02_external_attention") == NAV
    assert reader_site.finish_html(out, "notebooks/zh/02_external_attention") == out      # idempotent


def test_the_search_page_keeps_its_index():
    out = reader_site.finish_html(HEAD, "search")
    assert "searchindex.js" in out and "searchtools.js" in out and "fontawesome.js" not in out


@pytest.mark.parametrize("doc,lang", [("notebooks/en/03_squeeze_excitation", "en"), ("book/zh/glossary", "zh"),
                                      ("book/index", None), ("search", None), ("genindex", None)])
def test_the_language_of_a_page_is_its_part(doc, lang):
    assert reader_site.language_of(doc) == lang


class _App:
    class config:
        root_doc = "book/index"

    class env:
        all_docs = {"book/index": 0}
        titles = {"book/index": type("T", (), {"astext": lambda self: "Attention Mechanisms"})()}

    class builder:
        @staticmethod
        def get_relative_uri(frm, to):
            return "../../book/index.html" if frm.startswith("notebooks/") else "../index.html"


def test_previous_and_next_never_cross_into_the_other_language():
    ctx = {"prev": {"link": "../../book/en/teaching.html", "title": "Teacher's guide"},
           "next": {"link": "01_self_attention.html", "title": "01"}}
    reader_site.keep_language(_App, "notebooks/zh/00_introduction", ctx)
    assert ctx["prev"] == {"link": "../../book/index.html", "title": "Attention Mechanisms"}   # back to the landing page
    assert ctx["next"]["link"] == "01_self_attention.html"
    ctx = {"prev": {"link": "cheatsheet.html", "title": "Cheat sheet"},
           "next": {"link": "../../notebooks/zh/00_introduction.html", "title": "00"}}
    reader_site.keep_language(_App, "book/en/teaching", ctx)
    assert ctx["next"] is None and ctx["prev"]["link"] == "cheatsheet.html"


def test_mathjax_loads_its_components_without_the_menu():
    config = type("C", (), {"mathjax3_config": {"tex": {"macros": {"R": "\\\\mathbb{R}"}}}})()
    reader_site.configure_mathjax(None, config)
    assert config.mathjax3_config["loader"]["load"] == reader_site.MATHJAX_COMPONENTS
    assert "ui/menu" not in reader_site.MATHJAX_COMPONENTS and config.mathjax3_config["tex"]["macros"]


def test_mathjax_typesets_lazily_with_a_margin():
    config = type("C", (), {"mathjax3_config": {}})()
    reader_site.configure_mathjax(None, config)
    assert "ui/lazy" in config.mathjax3_config["loader"]["load"]
    assert config.mathjax3_config["options"]["lazyMargin"] == reader_site.MATHJAX_LAZY_MARGIN


@pytest.mark.parametrize("title,description,lang,caption", [
    ("Attention of query 3 at 0.5 scale. horizontal axis key, vertical axis query.", None, "en",
     "Figure 2. Attention of query 3 at 0.5 scale."),
    ("Figure. 3 panels: SE; CBAM; ECA. horizontal axis x, vertical axis y.", None, "en",
     "Figure 2. 3 panels: SE; CBAM; ECA."),
    ("注意力图（3 个随机种子）。横轴为键，纵轴为查询。", None, "zh", "图 2：注意力图（3 个随机种子）。"),
    ("Gates. horizontal axis channel.", "SE is ahead in every seed.", "en", "Figure 2. SE is ahead in every seed."),
    ("图。", None, "zh", "图 2"),
])
def test_a_chapter_figure_is_captioned_by_its_result_or_its_title(title, description, lang, caption):
    assert reader_site.figure_caption(title, description, 2, lang) == caption


def test_the_site_draws_each_viewer_as_it_nears_the_window():
    engine = reader_site.lazy_engine()
    assert "IntersectionObserver" in engine and 'addEventListener("beforeprint",AV.start)' in engine
    assert "AV.boot=function" in engine.replace(" ", "")            # the whole engine, started lazily


# ---------------------------------------------------------------- lean stylesheets (book/_ext/lean_css.py)

import lean_css  # noqa: E402

SHEET = """@charset "UTF-8";/*! Bootstrap v5 | MIT */:root{--bs-blue:#0d6efd}
.fa-bars:before{content:"\\f0c9"}.fa-anchor:before{content:"\\f13d"}
.btn,.carousel{padding:1px}.btn:not(.unused-state){color:red}a[href$=".pdf"]{color:blue}
@media (min-width:960px){.carousel{margin:0}.bd-sidebar{width:20%}}
.bs-tooltip-top .tooltip-arrow{bottom:0}.md\\:col-6{width:50%}
@keyframes spin{0%{opacity:0}to{opacity:1}}@font-face{font-family:x;src:url(../x.woff)}"""


def test_a_lean_stylesheet_keeps_exactly_the_rules_a_page_or_a_script_can_match():
    usage = lean_css.Usage({"fa-bars", "btn", "bd-sidebar", "tooltip-arrow", "md:col-6"}, ("bs-",))
    lean = lean_css.lean_stylesheet(SHEET, usage)
    assert lean.startswith('@charset "UTF-8";\n/*! Bootstrap v5 | MIT */')       # the licence stays
    for kept in (":root{--bs-blue:#0d6efd}", ".fa-bars:before", ".btn{padding:1px}",   # unused selector cut
                 ".btn:not(.unused-state)", 'a[href$=".pdf"]', "@media (min-width:960px){.bd-sidebar",
                 ".bs-tooltip-top .tooltip-arrow", ".md\\:col-6", "@keyframes spin{0%{opacity:0}to{opacity:1}}",
                 "@font-face{font-family:x;src:url(../x.woff)}"):
        assert kept in lean, kept
    assert "carousel" not in lean and "fa-anchor" not in lean and "\uf0c9" in lean
    assert lean_css.lean_stylesheet(lean, usage) == lean                                 # idempotent


def test_the_words_of_pages_and_scripts_and_the_prefixes_scripts_build_classes_from(tmp_path):
    (tmp_path / "_static" / "scripts").mkdir(parents=True)
    (tmp_path / "index.html").write_text('<div class="bd-page x">', encoding="utf-8")
    (tmp_path / "_static" / "scripts" / "theme.js").write_text(
        'e.classList.add(`bs-${n}-auto`);t.add("show");x="toggle-"+y', encoding="utf-8")
    (tmp_path / "_static" / "scripts" / "fontawesome.js").write_text('"fa-anchor"', encoding="utf-8")
    usage = lean_css.Usage.of_site(tmp_path)
    assert {"bd-page", "show"} <= usage.words and "fa-anchor" not in usage.words     # no page loads that script
    assert usage.prefixes == ("bs-", "toggle-") and usage.used("bs-popover-top")


def test_pages_link_the_lean_stylesheets_and_basic_css_without_an_import():
    head = ('<link href="../../_static/styles/theme.css?digest=55c2" rel="stylesheet" />\n'
            '<link href="../../_static/styles/pydata-sphinx-theme.css?digest=55c2" rel="stylesheet" />\n'
            '<link rel="stylesheet" type="text/css" href="../../_static/mystnb.11b3.css?v=8cd3" />\n'
            '<link rel="stylesheet" type="text/css" href="../../_static/book.css?v=6919" />')
    out = lean_css.link_lean(head)
    assert 'href="../../_static/basic.lean.css?digest=55c2"' in out
    assert 'href="../../_static/styles/pydata-sphinx-theme.lean.css?digest=55c2"' in out
    assert 'href="../../_static/mystnb.11b3.lean.css?v=8cd3"' in out and "_static/book.css?v=6919" in out
    assert lean_css.link_lean(out) == out and reader_site.finish_html(head, "x").count(".lean.css") == 3


def test_the_theme_script_skips_its_scroll_size_pass_over_every_block(tmp_path):
    script = tmp_path / "_static" / reader_site.THEME_SCRIPT
    script.parent.mkdir(parents=True)
    body = 'function I(){const e=()=>{' + reader_site.THEME_SCROLL_PASS + 'e=>{e.tabIndex=e.scrollWidth>1?0:-1})}}'
    script.write_text(body, encoding="utf-8")
    app = type("App", (), {"outdir": str(tmp_path), "builder": type("B", (), {"format": "html"})()})()
    reader_site.quiet_theme_script(app, None)
    once = script.read_text(encoding="utf-8")
    assert "querySelectorAll" not in once and "[].forEach(e=>{e.tabIndex" in once
    reader_site.quiet_theme_script(app, None)
    assert script.read_text(encoding="utf-8") == once
