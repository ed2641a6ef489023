"""The classroom kit, built with the book: student archives, their links, the cheat sheet and its PDF, print styles.

- **Student editions.** After the HTML is written, every chapter of each language is written without its
  solution cells (``tools/editions.py``) into ``_static/classroom/notebooks-<lang>.zip``. Each chapter page
  links to its language's archive under its title and in the theme's download menu; the landing page and
  the teacher's guide link to both with the ``classroom-downloads`` directive.
- **Cheat sheet.** The ``cheatsheet`` directive renders every mechanism of ``attention_lib.MECHANISMS``
  (names, shapes, what is reweighted, the equation, the parameter and FLOP formulas, how the cost grows,
  the paper) in the page's language: the page cannot drift from the library. After the HTML is written,
  headless Chromium prints ``book/<lang>/cheatsheet.html`` to ``_static/classroom/cheatsheet-<lang>.pdf``
  (one A4 page, landscape), which the page links to.
- **Teacher's guide.** The ``exercise-slips`` directive lists every registered exercise check and the
  slips it names, by chapter, from the exercise engine's registry.
- **Print.** ``print.css`` (in ``book/_static``) is added to every page.

Pages that use a directive are re-read whenever ``attention_lib`` changed (they read the library, not only their
source).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import os
import posixpath
import re
import string
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

LANGS = ("en", "zh")
STATIC = "_static/classroom"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHAPTER_DOC = re.compile(r"^notebooks/(en|zh)/(\d\d)_[^/]+$")

TEXT = {
    "en": {
        "banner": "For class: the student notebooks of every chapter, without the solutions",
        "cheatsheet": "cheat sheet", "guide": "teacher's guide", "pdf": "PDF",
        "menu": "Student notebooks (.zip)", "menu_tip": "Every chapter without the exercise solutions",
        "downloads": [
            ("notebooks-en.zip", "Student notebooks, English: every chapter without the exercise solutions"),
            ("notebooks-zh.zip", "Student notebooks, Chinese (学生版 Jupyter 笔记本，中文)"),
            ("cheatsheet-en.pdf", "Cheat sheet, English (one A4 page, PDF)"),
            ("cheatsheet-zh.pdf", "Cheat sheet, Chinese (速查表，PDF)"),
        ],
    },
    "zh": {
        "banner": "课堂使用：各章的学生版 Jupyter 笔记本，不含参考答案",
        "cheatsheet": "速查表", "guide": "教师指南", "pdf": "PDF",
        "menu": "学生版（.zip）", "menu_tip": "各章 Jupyter 笔记本，不含练习的参考答案",
        "downloads": [
            ("notebooks-zh.zip", "学生版（中文）：各章 Jupyter 笔记本，不含练习的参考答案"),
            ("notebooks-en.zip", "学生版（英文，Student notebooks in English）"),
            ("cheatsheet-zh.pdf", "速查表（中文，一页 A4，PDF）"),
            ("cheatsheet-en.pdf", "速查表（英文，Cheat sheet in English，PDF）"),
        ],
    },
}


def language_of(docname: str) -> str:
    return "zh" if "/zh/" in f"/{docname}" else "en"


def _static_uri(docname: str, filename: str) -> str:
    """The relative URL of ``_static/classroom/<filename>`` from the page of ``docname``."""
    return posixpath.relpath(f"{STATIC}/{filename}", posixpath.dirname(docname) or ".")


def _editions(app):
    """``tools/editions.py`` of the book's repository (one implementation for the build, the tool and the tests)."""
    path = Path(app.srcdir) / "tools" / "editions.py"
    spec = importlib.util.spec_from_file_location("attention_book_editions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- links on the pages


def _reference(text: str, uri: str) -> nodes.reference:
    return nodes.reference("", text, refuri=uri, internal=False)


def _add_chapter_banner(app, doctree, docname):
    """Under a chapter's title: its language's student archive, the cheat sheet (and its PDF), the teacher's guide."""
    match = CHAPTER_DOC.match(docname)
    if not match or app.builder.format != "html":
        return
    lang = match.group(1)
    text = TEXT[lang]
    open_, close, sep, end = (" (", ")", "; ", ".") if lang == "en" else ("（", "）", "；", "。")
    para = nodes.paragraph(classes=["classroom-downloads"])
    para += nodes.Text(text["banner"] + open_)
    para += _reference(f"notebooks-{lang}.zip", _static_uri(docname, f"notebooks-{lang}.zip"))
    para += nodes.Text(close)
    for name, key in (("cheatsheet", "cheatsheet"), ("teaching", "guide")):
        target = f"book/{lang}/{name}"
        if target not in app.env.all_docs:
            continue
        para += nodes.Text(sep)
        para += _reference(text[key], app.builder.get_relative_uri(docname, target))
        if name == "cheatsheet":
            para += nodes.Text(open_)
            para += _reference(text["pdf"], _static_uri(docname, f"cheatsheet-{lang}.pdf"))
            para += nodes.Text(close)
    para += nodes.Text(end)
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    # after the title and the first paragraph (the link to the twin)
    index = next((i + 1 for i, child in enumerate(section.children) if isinstance(child, nodes.paragraph)), 1)
    section.insert(index, para)


def _add_menu_entry(app, pagename, templatename, context, doctree):
    """The theme's download menu of every page gains its language's student archive."""
    buttons = context.get("header_buttons")
    if not isinstance(buttons, list):
        return
    lang = language_of(pagename)
    for group in buttons:
        if group.get("label") == "download-buttons":
            group["buttons"].append({
                "type": "link", "url": _static_uri(pagename, f"notebooks-{lang}.zip"),
                "text": TEXT[lang]["menu"], "tooltip": TEXT[lang]["menu_tip"],
                "icon": "fas fa-file-zipper", "label": "download-student-notebooks-button"})


class ClassroomDownloads(SphinxDirective):
    """A list of the kit's downloads (both archives, both cheat-sheet PDFs), in the page's language."""
    has_content = False

    def run(self):
        _track(self.env)
        lang = language_of(self.env.docname)
        items = nodes.bullet_list(classes=["classroom-downloads"])
        for filename, label in TEXT[lang]["downloads"]:
            para = nodes.paragraph()
            para += _reference(filename, _static_uri(self.env.docname, filename))
            para += nodes.Text(f": {label}" if lang == "en" else f"：{label}")
            items += nodes.list_item("", para)
        return [items]


# ---------------------------------------------------------------- the cheat sheet

#: distinct sizes, so that each axis of an attention map can be named by the symbol it equals
_TOKENS = dict(B=3, N=11, D=48)
_MAPS = dict(B=3, C=64, H=5, W=9)
_ORDER = ("B", "C", "H", "W", "N", "D", "h", "S", "K", "d", "e", "M", "G", "r", "k", "k_s", "d_z")

HEAD = {
    "en": dict(what=["Mechanism", "Chapter", "Reweights", "Input = output", "Attention map", "Equation"],
               cost=["Mechanism", "Parameters", "FLOPs per sample", "FLOPs grow as", "Paper"],
               symbols="**Symbols.** ", sep="; ", end=".", paper="{first} et al., {venue} {year}",
               generated="Generated from `attention_lib.MECHANISMS` when the book is built; "
                         "a multiply-add counts as 2 FLOPs.",
               pdf=("Print version: ", "one A4 page (PDF)", "."), chapter="chapter {n}"),
    "zh": dict(what=["机制", "章节", "重新加权的对象", "输入 = 输出", "注意力图", "公式"],
               cost=["机制", "参数量", "每个样本的浮点运算次数", "浮点运算次数的增长", "论文"],
               symbols="**符号**：", sep="；", end="。", paper="{first} 等，{venue} {year}",
               generated="本页在构建本书时由 `attention_lib.MECHANISMS` 生成；一次乘加计为 2 次浮点运算。",
               pdf=("打印版：", "一页 A4（PDF）", "。"), chapter="第 {n} 章"),
}


def _shape_symbols(shape, values) -> str:
    named = []
    for size in shape:
        if size == 1:
            named.append("1")
            continue
        hit = next((s for s in _ORDER if values.get(s) == size), None)
        if hit is None:   # a product of two symbols, e.g. e·h
            hit = next((f"{a}{b}" for a in _ORDER for b in _ORDER
                        if a < b and a != "B" and b != "B" and values.get(a) and values.get(b)
                        and values[a] * values[b] == size), str(size))
        named.append(hit)
    return "(" + ", ".join(named) + ")"


def _shapes(mechanism):
    """``(input, output, attention map)`` as symbolic shapes, from one run of the module at distinct sizes."""
    import torch

    tokens = mechanism.layout == "tokens"
    sizes = _TOKENS if tokens else _MAPS
    overrides = dict(dim=sizes["D"]) if tokens else dict(channels=sizes["C"])
    kwargs = {**mechanism.example_kwargs, **overrides}
    module = mechanism.build(**overrides).eval()
    x = (mechanism.example_input(sizes["B"], num_tokens=sizes["N"], dim=sizes["D"]) if tokens else
         mechanism.example_input(sizes["B"], channels=sizes["C"], height=sizes["H"], width=sizes["W"]))
    values = {"B": sizes["B"], **mechanism.symbols(tuple(x.shape), **kwargs)}
    with torch.no_grad():
        y, a = module(x), module.attention_map(x)
    maps = [a] if isinstance(a, torch.Tensor) else list(a.values() if isinstance(a, dict) else a)
    return (_shape_symbols(x.shape, values), _shape_symbols(y.shape, values),
            ", ".join(_shape_symbols(m.shape, values) for m in maps))


def _growth(mechanism) -> str:
    """How the FLOPs grow with the input, read off the exact formula: O(N^a) or O((HW)^a)."""
    symbols = dict(mechanism.symbols(tuple(mechanism.example_input(1).shape), **mechanism.example_kwargs))
    if mechanism.layout == "tokens":
        big = {**symbols, "N": 2 ** 20}
        twice = {**big, "N": 2 ** 21}
        power, base = math.log2(mechanism.flops(**twice) / mechanism.flops(**big)), "N"
    else:
        big = {**symbols, "H": 2 ** 10, "W": 2 ** 10}
        twice = {**big, "H": 2 ** 11, "W": 2 ** 11}
        power, base = math.log2(mechanism.flops(**twice) / mechanism.flops(**big)) / 2, "HW"
    power = round(power * 2) / 2
    if power == 1:
        return f"$O({base})$"
    exponent = f"{power:g}"
    return f"$O({base}^{{{exponent}}})$" if base == "N" else f"$O((HW)^{{{exponent}}})$"


def _cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def cheatsheet_markdown(lang: str, chapter_link=lambda n: None) -> str:
    """The cheat sheet's tables in MyST Markdown, from the registry (``chapter_link(n)``: a link target or None)."""
    from attention_lib.registry import SYMBOLS, by_chapter

    head = HEAD[lang]
    what = ["| " + " | ".join(head["what"]) + " |", "|" + "---|" * len(head["what"])]
    cost = ["| " + " | ".join(head["cost"]) + " |", "|" + "---|" * len(head["cost"])]
    used = {"B"}
    for m in by_chapter():
        shape_in, shape_out, amap = _shapes(m)
        io = f"`{shape_in}`" if shape_out == shape_in else f"`{shape_in}` → `{shape_out}`"
        target = chapter_link(m.chapter)
        chapter = head["chapter"].format(n=m.chapter)
        what.append("| " + " | ".join(_cell(c) for c in (
            f"**{m.display_name(lang)}**", f"[{chapter}]({target})" if target else chapter,
            m.reweights.get(lang, m.reweights["en"]), io, f"`{amap}`",
            f"${m.equation}$" if m.equation else "")) + " |")
        paper = head["paper"].format(first=m.authors.split(",")[0], venue=m.venue, year=m.year)
        cost.append("| " + " | ".join(_cell(c) for c in (
            f"**{m.display_name(lang, short=True)}**", f"${m.params.latex}$", f"${m.flops.latex}$",
            _growth(m), f"[{paper}]({m.url})")) + " |")
        used |= set(re.findall(r"k_s|d_z|[A-Za-z]", m.params.latex + " " + m.flops.latex + " " + amap))
    legend = head["sep"].join(f"${s}$ {SYMBOLS[s][lang]}" for s in SYMBOLS if s in used)
    return "\n".join(what) + "\n\n" + "\n".join(cost) + "\n\n" + head["symbols"] + legend + head["end"] + "\n"


def _equation_lines(equation: str) -> str:
    """An equation of several parts (``a,\\ b``) as one part per line: a card is narrower than a table row."""
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(equation):
        depth += ch in "([{" and 1 or (ch in ")]}" and -1 or 0)
        if depth == 0 and equation.startswith(",\\ ", i):
            parts.append(equation[last:i])
            last = i + 3
    parts.append(equation[last:])
    parts = [p.strip() for p in parts if p.strip()]
    return parts[0] if len(parts) == 1 else "\\begin{gathered}" + " \\\\ ".join(parts) + "\\end{gathered}"


def cheatsheet_cards(lang: str, chapter_link=lambda n: None) -> str:
    """The cheat sheet for a screen, in MyST Markdown: one card per mechanism, as wide as the column (name,
    chapter and paper; what it reweights; shapes; the equation one part per line; parameters and growth; FLOPs
    on a line of their own, the longest formula), the same facts as the tables, which stay the printed page."""
    from attention_lib.registry import by_chapter

    head = HEAD[lang]
    what, cost = head["what"], head["cost"]
    colon = "：" if lang == "zh" else ": "
    cards = []
    for m in by_chapter():
        shape_in, shape_out, amap = _shapes(m)
        target = chapter_link(m.chapter)
        chapter = head["chapter"].format(n=m.chapter)
        io = f"`{shape_in}`" if shape_out == shape_in else f"`{shape_in}` → `{shape_out}`"
        paper = head["paper"].format(first=m.authors.split(",")[0], venue=m.venue, year=m.year)
        lines = [f"**{m.display_name(lang)}** · " + (f"[{chapter}]({target})" if target else chapter)
                 + f" · [{paper}]({m.url})", "",
                 f"{what[2]}{colon}{m.reweights.get(lang, m.reweights['en'])}", "",
                 f"{what[3]}{colon}{io} · {what[4]}{colon}`{amap}`", ""]
        if m.equation:
            lines += ["$$", _equation_lines(m.equation), "$$", ""]
        lines += [f"{cost[1]}{colon}${m.params.latex}$ · {cost[3]}{colon}{_growth(m)}", "",
                  f"{cost[2]}{colon}${m.flops.latex}$"]
        cards.append(":::{container} cheatsheet-card\n" + "\n".join(lines) + "\n:::")
    return "::::{container} cheatsheet-cards\n" + "\n\n".join(cards) + "\n::::\n"


class Cheatsheet(SphinxDirective):
    """Every mechanism of the registry on one page, in the page's language."""
    has_content = False

    def run(self):
        _track(self.env)
        lang = language_of(self.env.docname)
        here = posixpath.dirname(self.env.docname)

        def chapter_link(n):
            docs = sorted(d for d in self.env.found_docs if re.match(rf"notebooks/{lang}/{n:02d}_", d))
            return posixpath.relpath(docs[0], here) + ".ipynb" if docs else None

        before, label, after = HEAD[lang]["pdf"]
        pdf = nodes.paragraph(classes=["classroom-downloads"])
        pdf += nodes.Text(before)
        pdf += _reference(label, _static_uri(self.env.docname, f"cheatsheet-{lang}.pdf"))
        pdf += nodes.Text(after)
        container = nodes.container(classes=["cheatsheet"])
        # On a screen, one card per mechanism (book.css); printed, the two tables fill one A4 page (print.css).
        text = (cheatsheet_cards(lang, chapter_link) + "\n" + "::::{container} cheatsheet-tables\n"
                + cheatsheet_markdown(lang, chapter_link) + "\n::::\n\n" + HEAD[lang]["generated"] + "\n")
        self.state.nested_parse(StringList(text.splitlines()), self.content_offset, container)
        return [pdf, container]


# ---------------------------------------------------------------- the teacher's guide: what each check names


class _Blank(string.Formatter):
    def get_value(self, key, args, kwargs):
        return "…"

    def format_field(self, value, spec):
        return str(value)


def _slip_text(text: str, lang: str) -> str:
    """A slip as the guide's table shows it: a quoted Python literal ('CBAM') as code, and in Chinese the
    blanked value as a Chinese ellipsis with no space around it (输入是……，结果却是……)."""
    text = re.sub(r"(?<![`\w])('[^'\s]+')(?![`\w])", r"`\1`", text)
    return re.sub(r"[ ]*…[ ]*", "……", text) if lang == "zh" else text


def _keys_named_by(judge) -> set:
    """The string constants of ``judge``'s code and of the functions of its module that it calls, transitively.

    A check names its slips by i18n key; most keys follow ``ex.<exercise key>.<slip>``, but a check may share
    keys with a helper of its chapter (chapter 2's ``ea.double_norm`` says ``ex.ea.norm.*``), so the keys are
    also read off the code that the check runs.
    """
    import inspect
    import types

    module = inspect.getmodule(judge)
    found, seen, todo = set(), set(), [judge]
    while todo:
        fn = inspect.unwrap(todo.pop())
        code = getattr(fn, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        codes = [code]
        while codes:
            c = codes.pop()
            for const in c.co_consts:
                if isinstance(const, str):
                    found.add(const)
                elif isinstance(const, types.CodeType):
                    codes.append(const)
            for name in c.co_names:
                other = getattr(module, name, None)
                if inspect.isfunction(other) and other.__module__ == getattr(module, "__name__", None):
                    todo.append(other)
    return found


def exercise_slips_markdown(lang: str) -> str:
    """Every registered check and the slips it names (its i18n keys ``ex.<key>.<slip>``, and any other
    chapter key its code names), by chapter."""
    import attention_lib
    from attention_lib.toolkit import exercises, i18n

    attention_lib.chapters.load_all()                  # each chapter registers its checks
    texts = dict(i18n._strings)                        # in the order the chapters registered them
    head = {"en": ("Chapter", "Check", "Mistakes it recognises, as the student reads them"),
            "zh": ("章节", "检查", "能认出的错误（学生看到的提示）")}[lang]
    rows = ["| " + " | ".join(head) + " |", "|---|---|---|"]
    for ex in sorted(exercises.EXERCISES.values(), key=lambda e: (e.chapter, e.key)):
        named = _keys_named_by(ex.judge)
        slips = [k for k in texts if k.startswith("ex.") and not k.endswith(".other")
                 and not k.startswith(("ex.fn.", "ex.answer."))
                 and (k.startswith(f"ex.{ex.key}.") or k in named)]
        said = [_slip_text(_Blank().format(texts[k].get(lang, texts[k]["en"])), lang) for k in slips]
        said = [s[0].upper() + s[1:] if lang == "en" and s else s for s in said]
        number = re.match(r"ch(\d\d)", ex.chapter)
        chapter = str(int(number.group(1))) if number else ex.chapter
        said = "<br>".join("• " + x for x in said)
        rows.append("| " + " | ".join(_cell(c) for c in (chapter, f"`{ex.key}`", said)) + " |")
    return "\n".join(rows) + "\n"


class ExerciseSlips(SphinxDirective):
    has_content = False

    def run(self):
        _track(self.env)
        container = nodes.container(classes=["exercise-slips"])
        text = exercise_slips_markdown(language_of(self.env.docname))
        self.state.nested_parse(StringList(text.splitlines()), self.content_offset, container)
        return [container]


# ---------------------------------------------------------------- re-reading generated pages


def _track(env):
    if not hasattr(env, "classroom_generated"):
        env.classroom_generated = set()
    env.classroom_generated.add(env.docname)


def _library_digest(app) -> str:
    """A hash of ``attention_lib``'s sources and of this generator: the generated pages change only when
    one of them does."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted((Path(app.srcdir) / "attention_lib").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def _reread_when_the_library_changed(app, env, added, changed, removed):
    digest = _library_digest(app)
    if getattr(env, "classroom_library", None) == digest:
        return []
    env.classroom_library = digest
    return sorted(getattr(env, "classroom_generated", set()) - set(removed))


def _purge(app, env, docname):
    getattr(env, "classroom_generated", set()).discard(docname)


def _merge(app, env, docnames, other):
    _track_all = getattr(env, "classroom_generated", set())
    env.classroom_generated = _track_all | (getattr(other, "classroom_generated", set()) & set(docnames))


# ---------------------------------------------------------------- after the HTML: archives and PDFs


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(directory: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def pdf_pages(data: bytes) -> int:
    """The number of pages of a PDF (Chromium writes one ``/Type /Page`` object per page)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def print_cheatsheets(outdir: Path, langs=LANGS) -> dict:
    """Print ``book/<lang>/cheatsheet.html`` to ``_static/classroom/cheatsheet-<lang>.pdf``; returns {lang: path}."""
    from playwright.sync_api import sync_playwright

    written = {}
    httpd = _serve(outdir)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                for lang in langs:
                    page = browser.new_page()
                    page.goto(f"{base}/book/{lang}/cheatsheet.html", wait_until="networkidle")
                    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                           timeout=30_000)
                    page.evaluate("() => MathJax.startup.promise")
                    page.emulate_media(media="print")
                    path = outdir / STATIC / f"cheatsheet-{lang}.pdf"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    page.pdf(path=str(path), prefer_css_page_size=True, print_background=True)
                    written[lang] = path
                    page.close()
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return written


def _finish(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    editions = _editions(app)
    for lang in LANGS:
        path = editions.write_archive(lang, outdir / STATIC / f"notebooks-{lang}.zip",
                                      Path(app.srcdir) / "notebooks")
        logger.info("classroom: %s (%d kB)", path.relative_to(outdir), path.stat().st_size // 1024)
    langs = [lang for lang in LANGS if (outdir / "book" / lang / "cheatsheet.html").exists()]
    if not langs:
        return
    if os.environ.get("ATTENTION_BOOK_PDF") == "0":
        logger.info("classroom: ATTENTION_BOOK_PDF=0, the cheat sheets are not printed")
        return
    if not Path(CHROMIUM).exists():
        logger.warning("classroom: %s not found, so the cheat sheets cannot be printed to PDF; install Debian's "
                       "chromium (.ci/run does) or set ATTENTION_BOOK_PDF=0", CHROMIUM,
                       type="classroom", subtype="pdf")
        return
    # print again only what changed: the page (it embeds the registry's facts) or the print styles
    stamp = outdir.parent / ".classroom-pdf.json"
    try:
        printed = json.loads(stamp.read_text())
    except (OSError, ValueError):
        printed = {}
    css = (outdir / "_static" / "print.css").read_bytes() if (outdir / "_static" / "print.css").exists() else b""
    digests = {lang: hashlib.sha256((outdir / "book" / lang / "cheatsheet.html").read_bytes() + css).hexdigest()
               for lang in langs}
    langs = [lang for lang in langs if printed.get(lang) != digests[lang]
             or not (outdir / STATIC / f"cheatsheet-{lang}.pdf").exists()]
    if not langs:
        logger.info("classroom: the cheat sheets' PDFs are up to date")
        return
    for lang, path in print_cheatsheets(outdir, langs).items():
        pages = pdf_pages(path.read_bytes())
        logger.info("classroom: %s (%d kB, %d page%s)", path.relative_to(outdir), path.stat().st_size // 1024,
                    pages, "" if pages == 1 else "s")
        if pages != 1:
            logger.warning("classroom: the %s cheat sheet prints on %d pages, not one", lang, pages,
                           type="classroom", subtype="pdf")
        else:
            printed[lang] = digests[lang]
    stamp.write_text(json.dumps(printed))


def setup(app):
    app.add_css_file("print.css")
    app.add_directive("classroom-downloads", ClassroomDownloads)
    app.add_directive("cheatsheet", Cheatsheet)
    app.add_directive("exercise-slips", ExerciseSlips)
    app.connect("doctree-resolved", _add_chapter_banner)
    app.connect("html-page-context", _add_menu_entry, priority=600)   # after the theme's buttons (501)
    app.connect("env-get-outdated", _reread_when_the_library_changed)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
