"""Chinese typography of the book: find what a Chinese reader would trip over, and fix the mechanical cases.

    python tools/zh_typography.py --check                   # every Chinese source; exit 1 if anything is found
    python tools/zh_typography.py --check book/zh/running.md
    python tools/zh_typography.py --fix notebooks/zh/05_cbam.ipynb            # every fixable rule
    python tools/zh_typography.py --fix --only break notebooks/zh/*.ipynb     # join the lines of paragraphs only
    python tools/zh_typography.py --rules                   # what each rule asks for

The sources (with no path given): the markdown cells of ``notebooks/zh/*.ipynb``, ``book/zh/*.md`` and the
Chinese paragraphs of ``book/index.md``. The Chinese strings of the i18n table are checked by
``tests/test_zh_typography.py`` with :func:`check_string` (a string may break its lines on purpose, for a
figure).

Code (fenced and inline), maths (``$...$``, ``$$...$$``), link targets, URLs, HTML and MyST directive blocks
are never read as prose and never changed. Only a paragraph, list item, table row or heading that contains
Chinese is checked, so the English paragraphs of a bilingual page are left alone.

The chapter rules (``skeleton``, ``stub``) read ``book/skeleton.yml``: section titles, the twin link, the
run-ins, the exercise instructions and labels, the "next chapter" line, the Chinese answer stubs
(``tests/test_skeleton.py`` runs them on both languages; ``--fix`` applies the Chinese side).
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- characters

CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Full-width punctuation: no space is written next to it, on either side.
FW_CHARS = "，。、；：？！“”‘’（）《》〈〉【】「」『』〔〕…—～\u3000-\u3003\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f"
CJK = re.compile(f"[{CJK_CHARS}]")
_TIGHT = re.compile(f"[{CJK_CHARS}{FW_CHARS}]")    # a character that takes no space next to a CJK one
_FW = re.compile(f"[{FW_CHARS}]")

RULES = {
    "break": "a Chinese paragraph or list item is one source line: a line break inside it renders as a space "
             "in Chromium and Safari (join the lines)",
    "space": "no space between two Chinese characters, or next to full-width punctuation （），：；。！？“”",
    "quotes": "Chinese quotes “…” (‘…’ inside them): no ASCII \" or ' and no 「」『』 in Chinese prose",
    "punct": "full-width punctuation next to Chinese text: ，：；！？。（） (not , : ; ! ? . ( ))",
    "ellipsis": "the Chinese ellipsis is …… (two), not ... or a single …",
    "dash": "the Chinese dash is —— (two em dashes), not a single —",
    "leadin": "a run-in label is **标签**： (bold without punctuation inside, then a full-width colon)",
    "label": "exercise labels are **练习 N**： and **练习 N（开放题）**：",
    "citation": "a citation's link text is 'Hu 等，2018', 'Abnar 和 Zuidema，2020' or 'Itti、Koch 和 Niebur，1998' "
                "(no 'et al.', no 'and', no year in parentheses, no parentheses inside the link)",
    "narrative": "a citation stands in parentheses after its claim, （[Hu 等，2018](…)）: a citation link followed "
                 "directly by a Chinese character reads as the sentence's subject (Mnih 等，2014让网络…)",
    "times": "a multiplication sign between numbers or letters has a space on each side: 3 × 3, C × C (not 3×3)",
    "thousands": "no thousands separator in Chinese prose: 4096, 21696 (not 4,096)",
    "pagelink": "a link to a side page reads its name: 符号约定, 术语表, 参考文献, 速查表, 教师指南 (book/skeleton.yml)",
    "skeleton": "a chapter's fixed words come from book/skeleton.yml: section titles, twin link, run-ins, "
                "exercise instructions and labels, the 'next chapter' line (both languages)",
    "stub": "an answer cell's stub comment says in Chinese what to type (book/skeleton.yml answer_stubs; "
            "tools/sync_twins.py writes it)",
}
#: What --fix changes (everything else is reported for a writer to rewrite).
FIXABLE = ("break", "space", "quotes", "punct", "ellipsis", "dash", "leadin", "label", "citation", "skeleton",
           "times", "thousands")


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int           # 1-based line of the text (of the cell, for a notebook)
    excerpt: str

    def __str__(self) -> str:
        return f"{f'line {self.line}: ' if self.line else ''}[{self.rule}] {self.excerpt}"


# ---------------------------------------------------------------- what is not prose

_INLINE_PROTECTED = re.compile(
    r"<!--.*?-->"                               # HTML comments
    r"|(`+)(?:(?!\1)[^\n])+?\1"                 # inline code
    r"|\$\$.+?\$\$"                             # display maths on one line
    r"|(?<![\\$])\$(?!\s)[^$\n]*?[^\\\s$]\$"     # inline maths
    r"|(?<=\])\([^)\s]*\)"                      # link targets ](...)
    r"|<https?://[^>\s]+>"                      # autolinks
    r"|https?://[^\s)）>\]]+"                   # bare URLs
    r"|</?[A-Za-z][^>\n]*>",                    # HTML tags
    re.S)
_FORMAT_FIELD = re.compile(r"\{[^{}\s]*\}")    # str.format fields of i18n strings: {name:>30}
_FENCE = re.compile(r"^\s*(?:>\s*)*(`{3,}|~{3,}|:{3,})")
_TABLE = re.compile(r"^\s*\|")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_MARKER = re.compile(r"^(\s*(?:>\s*)*)((?:[-*+]|\d+[.)])\s+)?")   # quote prefix, then a list marker
_PLACEHOLDER = "\ue000"


def _protected_spans(text: str, strings: bool = False) -> list[tuple[int, int]]:
    spans = [m.span() for m in _INLINE_PROTECTED.finditer(text)]
    if strings:
        spans += [m.span() for m in _FORMAT_FIELD.finditer(text)]
        spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _visible(text: str, strings: bool = False) -> str:
    """``text`` with every protected character replaced by ``X`` (newlines kept): same length, same lines."""
    chars = list(text)
    for a, b in _protected_spans(text, strings):
        for i in range(a, b):
            if chars[i] != "\n":
                chars[i] = "X"
    return "".join(chars)


def _apply(text: str, edit, strings: bool = False) -> str:
    """``edit(masked) -> masked`` on ``text`` with each protected span replaced by one placeholder character."""
    spans = _protected_spans(text, strings)
    pieces, last = [], 0
    for a, b in spans:
        pieces.append(text[last:a].replace(_PLACEHOLDER, ""))
        pieces.append(_PLACEHOLDER)
        last = b
    pieces.append(text[last:])
    masked = edit("".join(pieces))
    kept = iter(text[a:b] for a, b in spans)
    return re.sub(_PLACEHOLDER, lambda m: next(kept), masked)


# ---------------------------------------------------------------- blocks of a markdown text

@dataclass
class Block:
    kind: str           # "para" (paragraph or list item), "table", "heading", "other" (code, maths, HTML, ...)
    start: int          # index of its first line
    lines: list[str]


def blocks(text: str) -> list[Block]:
    """Split markdown into blocks: paragraphs and list items (with their continuation lines), table rows,
    headings, and everything that is not prose (fenced code and directives, display maths, HTML)."""
    lines = text.split("\n")
    out: list[Block] = []
    i, para = 0, None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = _FENCE.match(line)
        if fence:                                   # ``` ~~~ ::: until the same fence closes it
            mark, j = fence.group(1), i + 1
            while j < len(lines) and not lines[j].strip().lstrip("> ").startswith(mark):
                j += 1
            out.append(Block("other", i, lines[i:j + 1]))
            para, i = None, j + 1
            continue
        if stripped.lstrip("> ").startswith("$$"):  # display maths, possibly over several lines
            j = i
            rest = stripped.lstrip("> ")[2:]
            while "$$" not in rest and j + 1 < len(lines):
                j += 1
                rest = lines[j]
            out.append(Block("other", i, lines[i:j + 1]))
            para, i = None, j + 1
            continue
        if stripped.startswith("<!--") and "-->" not in stripped:
            j = i
            while j + 1 < len(lines) and "-->" not in lines[j]:
                j += 1
            out.append(Block("other", i, lines[i:j + 1]))
            para, i = None, j + 1
            continue
        if not stripped.lstrip(">").strip():        # blank (or an empty quote line): ends a paragraph
            para, i = None, i + 1
            continue
        if _TABLE.match(line) or _HEADING.match(line) or stripped.startswith("<"):
            kind = "table" if _TABLE.match(line) else "heading" if _HEADING.match(line) else "other"
            out.append(Block(kind, i, [line]))
            para, i = None, i + 1
            continue
        if para is None or _MARKER.match(line).group(2):   # a new paragraph or a new list item
            para = Block("para", i, [line])
            out.append(para)
        else:
            para.lines.append(line)
        i += 1
    return out


def _joinable(prev: str, nxt: str) -> bool:
    return not (prev.endswith("  ") or prev.endswith("\\") or prev.rstrip().endswith("<br>"))


def _last_visible(line: str) -> str:
    vis = _visible(line).rstrip()
    link = re.search(r"\]X+$", vis)                 # ...[text](target): the last character of the text
    if link:
        vis = vis[:link.start()]
    vis = vis.rstrip("*_]")
    return vis[-1:] if vis else ""


def _first_visible(content: str) -> str:
    vis = _visible(content).lstrip().lstrip("*_[")
    return vis[:1]


def _content(line: str) -> str:
    """A continuation line without its quote prefix and indentation."""
    return re.sub(r"^\s*(?:>\s?)*\s*", "", line)


def join_lines(lines: list[str]) -> str:
    """The lines of one paragraph as one line: no space where both sides are Chinese or one side is
    full-width punctuation, one space elsewhere (Chinese next to Latin letters, digits, code or maths)."""
    out = lines[0].rstrip()
    for nxt in lines[1:]:
        content = _content(nxt).rstrip()
        if not content:
            continue
        left, right = _last_visible(out), _first_visible(content)
        tight = bool(_FW.match(left) or _FW.match(right) or (CJK.match(left) and CJK.match(right)))
        out = out.rstrip() + ("" if tight else " ") + content
    return out


# ---------------------------------------------------------------- the typography rules

_SPACE_RULES = [
    # space before full-width punctuation (not the space after a list or quote marker, not table padding)
    re.compile(rf"(?<=[^\s|])[ \t\u00a0]+(?=[*\[]*[{FW_CHARS}])"),
    # space after full-width punctuation (not before a table pipe or the end of the line)
    re.compile(rf"(?<=[{FW_CHARS}])[*\]]*[ \t\u00a0]+(?=[^\s|])"),
    # space between two Chinese characters (through emphasis markers and link brackets)
    re.compile(rf"(?<=[{CJK_CHARS}])[*\]]*[ \t\u00a0]+[*\[]*(?=[{CJK_CHARS}])"),
    re.compile("\u3000"),
]
_QUOTES = re.compile(r"[\"「」『』]|(?<=[" + CJK_CHARS + r"])'|'(?=[" + CJK_CHARS + r"])")
#: half-width punctuation touching Chinese; a parenthesis after Chinese text (attached, or after a space when
#: it holds Chinese or an English gloss: 词元 (token)); not a shape, a formula or an interval: (B, C), (0, 1)
_PAREN = (rf"(?<=[{CJK_CHARS}])\(([^()\n]*)\)|\(([^()\n]*)\)(?=[{CJK_CHARS}])"
          rf"|(?<=[{CJK_CHARS}]) \(([^()\n]*[{CJK_CHARS}][^()\n]*|[A-Za-z][A-Za-z' -]+)\)")
_PUNCT = re.compile(rf"(?<=[{CJK_CHARS}])[,;:!?]|[,;:!?](?=[{CJK_CHARS}])|{_PAREN}|(?<=[{CJK_CHARS}])\.(?=\s|$)")
#: an ellipsis touching Chinese text (``把 ... 换成`` names Python's ``...``), or a lone …
_ELLIPSIS = re.compile(rf"(?<=[{CJK_CHARS}])\.\.\.|\.\.\.(?=[{CJK_CHARS}])|(?<!…)…(?!…)")
_DASH = re.compile(rf"(?<=[{CJK_CHARS}])\s*(?<!—)—(?!—)|(?<!—)—(?!—)(?=\s*[{CJK_CHARS}])")
#: a run-in label with its punctuation inside the bold, or a period after it: **参数量。** / **参数量**。
_LEADIN = re.compile(r"^(\s*(?:[-*+]\s+|\d+\.\s+|>\s*)*)\*\*([^*\n]+?)\s*[。.：:；;]\*\*[ \t]*(?=\S|$)"
                     r"|^(\s*(?:[-*+]\s+|>\s*)*)\*\*([^*\n]+?)\*\*\s*[。.]\s*(?=\S)")
_LABEL = re.compile(r"\*\*练习\s*(\d+)\s*(（开放题?）|\(开放题?\))?\s*[.。:：]?\*\*\s*[.。:：]?\s*")
_LABEL_OK = re.compile(r"\*\*练习 \d+(（开放题）)?\*\*：")
#: a multiplication sign touching a number or a letter (maths and code are masked before this is applied)
_TIMES = re.compile(r"(?<=[0-9A-Za-z])[ \t]*×[ \t]*(?=[0-9A-Za-z])")
_TIMES_BAD = re.compile(r"(?<=[0-9A-Za-z])×|×(?=[0-9A-Za-z])")
#: a number with thousands separators (d2l-zh writes 4096)
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_CITATION = re.compile(r"\[([^\]\n]*?(?:19|20)\d\d[a-z]?[^\]\n]*?)\]\((https?://[^)\s]+)\)")
_AUTHOR = r"[A-Z][A-Za-z\u00c0-\u017f'’\-]+(?: [A-Z][A-Za-z\u00c0-\u017f'’\-]+)*"
_CITATION_OK = re.compile(rf"^{_AUTHOR}(?: 等|(?:、{_AUTHOR})* 和 {_AUTHOR})?，(?:19|20)\d\d[a-z]?$")
#: a link to a side page of the Chinese part (not to book/en/, which the landing page links too)
_PAGE_LINK = re.compile(r"\[([^\]\n]*)\]\(((?![^)\s]*\ben/)[^)\s]*?"
                        r"(notation|glossary|references|cheatsheet|teaching|running)\.md(?:#[^)\s]*)?)\)")


def _excerpt(text: str, start: int, end: int, width: int = 14) -> str:
    return text[max(0, start - width):end + width].replace("\n", "⏎")


#: A multiplication sign written tight between two operands, in either language: 3×3, H×W, {S}×{S} (a format
#: field reads as an operand), or 3 ×3 between digits. A factor such as 1.5× or ×2 is not a product.
_TIGHT_PRODUCT = re.compile(r"(?<=[0-9A-Za-z])×(?=[0-9A-Za-z])|(?<=[0-9])(?: +×|× +)(?=[0-9])")


def tight_products(text: str, strings: bool = True) -> list[str]:
    """An excerpt of every tight product in one line or i18n string ``text`` (code spans, maths, URLs and, in a
    string, format fields masked): the book's prose writes 3 × 3, in English as in Chinese."""
    return [_excerpt(text, *m.span()) for m in _TIGHT_PRODUCT.finditer(_visible(text, strings))]


def space_products(text: str, strings: bool = True) -> str:
    """``text`` with every tight product spaced (3×3 -> 3 × 3), code spans, maths, URLs and format fields kept."""
    product = re.compile(_TIGHT_PRODUCT.pattern.replace("A-Za-z]", "A-Za-z" + _PLACEHOLDER + "]"))
    return _apply(text, lambda masked: product.sub(" × ", masked), strings)


def _chinese(text: str) -> bool:
    return bool(CJK.search(_visible(text)))


@lru_cache(maxsize=1)
def skeleton() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "book" / "skeleton.yml").read_text(encoding="utf-8"))


def _line_findings(rule: str, pattern: re.Pattern, line: str, vis: str, number: int) -> list[Finding]:
    return [Finding(rule, number, _excerpt(line, *m.span())) for m in pattern.finditer(vis)]


def check_markdown(text: str, chinese_document: bool = True) -> list[Finding]:
    """Every typography finding in one markdown text (a page, or a notebook's markdown cell). Only blocks
    with Chinese text are read, except that in a ``chinese_document`` (not the bilingual landing page) the
    citations and side-page links of every block are."""
    found: list[Finding] = []
    for block in blocks(text):
        if block.kind == "other":
            continue
        joined = "\n".join(block.lines)
        if not _chinese(joined):
            if chinese_document:
                for k, line in enumerate(block.lines):
                    found += _link_findings(line, block.start + k + 1)
            continue
        if block.kind == "para" and len(block.lines) > 1:
            found.append(Finding("break", block.start + 1,
                                 f"{len(block.lines)} lines: " + _excerpt(joined, len(block.lines[0]) - 8,
                                                                          len(block.lines[0]) + 1, 8)))
        for k, line in enumerate(block.lines):
            number, vis = block.start + k + 1, _visible(line)
            prefix = len(_MARKER.match(line).group(0)) if block.kind == "para" else 0
            body = " " * prefix + vis[prefix:]
            for pattern in _SPACE_RULES:
                found += _line_findings("space", pattern, line, body, number)
            found += _line_findings("quotes", _QUOTES, line, body, number)
            found += _line_findings("punct", _PUNCT, line, body, number)
            found += _line_findings("ellipsis", _ELLIPSIS, line, body, number)
            found += _line_findings("dash", _DASH, line, body, number)
            found += _line_findings("times", _TIMES_BAD, line, body, number)
            found += _line_findings("thousands", _THOUSANDS, line, body, number)
            found += [Finding("narrative", number, _excerpt(line, m.start(), m.end() + 2)) for m in _CITATION.finditer(line)
                      if CJK.match(line[m.end():m.end() + 1])]
            found += _line_findings("leadin", _LEADIN, line, vis, number)
            found += [Finding("label", number, m.group(0).strip()) for m in _LABEL.finditer(line)
                      if not _LABEL_OK.fullmatch(m.group(0).rstrip())]
            found += _link_findings(line, number)
    return found


def _link_findings(line: str, number: int) -> list[Finding]:
    """Citations in the book's Chinese style, and links to the side pages that read the page's name."""
    found = [Finding("citation", number, f"[{m.group(1)}]") for m in _CITATION.finditer(line)
             if not _CITATION_OK.match(m.group(1))]
    names = skeleton()["pages"]
    found += [Finding("pagelink", number, f"[{m.group(1)}]({m.group(2)}) should read {names[m.group(3)]}")
              for m in _PAGE_LINK.finditer(line) if names[m.group(3)] not in m.group(1)]
    return found


def check_string(text: str) -> list[Finding]:
    """The typography of one i18n string (its line breaks are the author's, for a figure)."""
    if not CJK.search(_visible(text, strings=True)):
        return []
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        vis = _visible(line, strings=True)
        for pattern in _SPACE_RULES:
            found += _line_findings("space", pattern, line, vis, number)
        for rule, pattern in (("quotes", _QUOTES), ("punct", _PUNCT), ("ellipsis", _ELLIPSIS), ("dash", _DASH)):
            found += _line_findings(rule, pattern, line, vis, number)
    return found


# ---------------------------------------------------------------- fixing

_PUNCT_MAP = {",": "，", ";": "；", ":": "：", "!": "！", "?": "？"}


def _fix_spaces(masked: str) -> str:
    for pattern in _SPACE_RULES[:3]:
        masked = pattern.sub(lambda m: re.sub(r"[ \t\u00a0]+", "", m.group(0)), masked)
    return masked.replace("\u3000", "")


def _fix_quotes(masked: str) -> str:
    masked = masked.translate(str.maketrans({"「": "“", "」": "”", "『": "‘", "』": "’"}))
    masked = re.sub(r'"([^"\n]*)"', r"“\1”", masked)
    return re.sub(rf"'([^'\n]*[{CJK_CHARS}][^'\n]*)'", r"“\1”", masked)


def _fix_punct(masked: str) -> str:
    masked = re.sub(_PAREN, lambda m: "（" + next(g for g in m.groups() if g is not None) + "）", masked)
    masked = re.sub(rf"(?<=[{CJK_CHARS}])([,;:!?])[ ]*", lambda m: _PUNCT_MAP[m.group(1)], masked)
    masked = re.sub(rf"[ ]*([,;:!?])[ ]*(?=[{CJK_CHARS}])", lambda m: _PUNCT_MAP[m.group(1)], masked)
    return re.sub(rf"(?<=[{CJK_CHARS}])\.(?=\s|$)", "。", masked)


def _fix_ellipsis(masked: str) -> str:
    return _ELLIPSIS.sub("……", masked)


def _fix_dash(masked: str) -> str:
    return _DASH.sub("——", masked)


def _fix_times(masked: str) -> str:
    return _TIMES.sub(" × ", masked)


def _fix_thousands(masked: str) -> str:
    return _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), masked)


def _fix_leadin(line: str) -> str:
    line = _LEADIN.sub(lambda m: (m.group(1) or m.group(3) or "") + f"**{m.group(2) or m.group(4)}**：", line)
    return line


def _fix_label(line: str) -> str:
    def label(m):
        open_ = "（开放题）" if m.group(2) else ""
        return f"**练习 {m.group(1)}{open_}**："
    return _LABEL.sub(lambda m: m.group(0) if _LABEL_OK.fullmatch(m.group(0).rstrip()) else label(m), line)


def fix_citation_text(text: str) -> str:
    """'Guo et al., 2022' -> 'Guo 等，2022'; 'Hu 等（2018）' -> 'Hu 等，2018'; 'A and B' -> 'A 和 B'."""
    t = text.strip()
    if t[:1] in "（(" and t[-1:] in "）)":                # the whole citation in parentheses inside the link
        t = t[1:-1]
    t = re.sub(r"\s*et al\.?,?\s*", " 等，", t)
    t = re.sub(r"\s*[（(]((?:19|20)\d\d[a-z]?)[）)]$", r"，\1", t)
    t = re.sub(r"\s*,\s*((?:19|20)\d\d[a-z]?)$", r"，\1", t)
    t = re.sub(r"\s+(?:and|与|和)\s+", " 和 ", t)
    t = re.sub(r",\s*(?=[A-Z])", "、", t)
    t = re.sub(r"等，\s*", "等，", t).replace(" 等， 等，", " 等，")
    return t


def _fix_citations(line: str) -> str:
    def one(m):
        text, url = m.group(1), m.group(2)
        if _CITATION_OK.match(text):
            return m.group(0)
        fixed = fix_citation_text(text)
        wrapped = text.strip().startswith(("（", "(")) and text.strip().endswith(("）", ")"))
        link = f"[{fixed}]({url})"
        return f"（{link}）" if wrapped else link
    return _CITATION.sub(one, line)


def fix_markdown(text: str, rules=FIXABLE, chinese_document: bool = True) -> str:
    """``text`` with the mechanical findings of ``rules`` fixed; code, maths, URLs and HTML untouched."""
    rules = set(rules)
    lines = text.split("\n")
    replaced: dict[int, tuple[int, str]] = {}       # first line -> (number of lines, new text)
    for block in blocks(text):
        if block.kind == "other":
            continue
        if not _chinese("\n".join(block.lines)):
            if chinese_document and "citation" in rules:
                replaced[block.start] = (len(block.lines), "\n".join(_fix_citations(line) for line in block.lines))
            continue
        new = list(block.lines)
        if "break" in rules and block.kind == "para" and len(new) > 1 and all(
                _joinable(a, b) for a, b in zip(new, new[1:])):
            new = [join_lines(new)]
        fixed = []
        for line in new:
            prefix = _MARKER.match(line).group(0) if block.kind == "para" else ""
            head, body = line[:len(prefix)], line[len(prefix):]
            if "leadin" in rules:
                body = _fix_leadin(body)
            if "label" in rules:
                body = _fix_label(body)
            if "citation" in rules:
                body = _fix_citations(body)

            def edit(masked, rules=rules):
                if "quotes" in rules:
                    masked = _fix_quotes(masked)
                if "punct" in rules:
                    masked = _fix_punct(masked)
                if "ellipsis" in rules:
                    masked = _fix_ellipsis(masked)
                if "dash" in rules:
                    masked = _fix_dash(masked)
                if "times" in rules:
                    masked = _fix_times(masked)
                if "thousands" in rules:
                    masked = _fix_thousands(masked)
                if "space" in rules:
                    masked = _fix_spaces(masked)
                return masked
            fixed.append(head + _apply(body, edit))
        replaced[block.start] = (len(block.lines), "\n".join(fixed))
    out, i = [], 0
    while i < len(lines):
        if i in replaced:
            count, new_text = replaced[i]
            out.append(new_text)
            i += count
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def fix_string(text: str) -> str:
    """An i18n string with its spaces, quotes and half-width punctuation fixed (its line breaks kept)."""
    return _apply(text, lambda m: _fix_spaces(_fix_punct(_fix_quotes(m))), strings=True)


# ---------------------------------------------------------------- the chapter skeleton (Chinese side)

def fix_chapter_cell(source: str, index: int, name: str) -> str:
    """One markdown cell of a Chinese chapter with its fixed words taken from book/skeleton.yml."""
    table = skeleton()
    number = name[:2]
    if number in table["mechanism_chapters"]:
        titles = {s["n"]: s["zh"] for s in table["sections"] if s["n"] is not None}
        source = re.sub(r"^## (\d+)\.\s+(.*)$",
                        lambda m: f"## {m.group(1)}. {titles.get(int(m.group(1)), m.group(2))}", source, flags=re.M)
    if index == 0:
        link = table["twin_link"]["zh"].format(name=name)
        source = re.sub(r"^\[[^\]\n]*\]\(\.\./en/" + re.escape(name) + r"\.ipynb\)$", link.replace("\\", r"\\"),
                        source, flags=re.M)
    source = re.sub(r"^下一步：", table["next"]["zh"], source, flags=re.M)
    instructions = table["exercises"]["instructions"]["zh"]
    source = re.sub(r"^每道练习都有一个[^\n]*$", instructions, source, flags=re.M)
    return source


#: ``answer_1 = ...   # your answer: an integer  # i18n``: the stub line of an answer cell. Its comment is the
#: twin's own, so the line ends in the ``# i18n`` mark (``mark``), the one way twins' code lines may differ;
#: a stub without the mark is still recognised (and reported by the ``stub`` rule).
STUB = re.compile(r"^(?P<code>[A-Za-z_]\w* = \.\.\.)(?P<gap>\s+)# (?P<comment>.+?)(?P<mark>\s+# i18n)?\s*$")
STUB_MARK = "  # i18n"


def stub_comment(line: str, lang: str) -> str | None:
    """The comment an answer stub ``line`` should carry in ``lang`` (from book/skeleton.yml), or None when
    ``line`` is not a stub. Raises ``KeyError`` for an English comment the table does not translate."""
    m = STUB.match(line)
    if not m:
        return None
    stubs = skeleton()["exercises"]["answer_stubs"]
    back = {zh: en for en, zh in stubs.items()}
    english = back.get(m.group("comment"), m.group("comment"))
    if lang == "en":
        return english
    return stubs[english]


def stub_line(line: str, lang: str) -> str | None:
    """The answer stub ``line`` as the ``lang`` twin writes it: its comment in ``lang``, then the ``# i18n`` mark
    (``answer_1 = ...   # 你的答案：一个整数  # i18n``); None when ``line`` is not a stub. Raises ``KeyError`` as
    :func:`stub_comment` does."""
    comment = stub_comment(line, lang)
    if comment is None:
        return None
    m = STUB.match(line)
    return f"{m.group('code')}{m.group('gap')}# {comment}{STUB_MARK}"


def _paragraphs(source: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", source) if p.strip()]


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def chapter_findings(cells: list[tuple[str, str]], name: str, lang: str) -> list[tuple[str, Finding]]:
    """The fixed words of one chapter notebook against book/skeleton.yml. ``cells``: ``(cell_type, source)``
    in order; ``name``: the file name without suffix; ``lang``: ``"en"`` or ``"zh"``."""
    table, out = skeleton(), []
    number = name[:2]
    markdown = [(i, src) for i, (kind, src) in enumerate(cells) if kind == "markdown"]

    def add(i, rule, text):
        out.append((f"cell {i}", Finding(rule, 0, text)))

    # the twin link, its own paragraph in the first cell
    first_i, first = markdown[0] if markdown else (0, "")
    link = table["twin_link"][lang].format(name=name)
    if link not in _paragraphs(first):
        add(first_i, "skeleton", f"the first cell needs the twin link, alone in its paragraph: {link}")
    # headings: "## N. Title"; the mechanism chapters' titles from the table, in order
    headings = [(i, m.group(1), m.group(2)) for i, src in markdown
                for m in re.finditer(r"^## (?:(\d+)\.? )?(.+?)\s*$", src, re.M)]
    for i, n, title in headings:
        if n is not None and not re.search(rf"^## {n}\. ", cells[i][1], re.M):
            add(i, "skeleton", f"numbered headings are '## {n}. {title}' (number, full stop, space)")
    if number in table["mechanism_chapters"]:
        expected = [(str(s["n"]) if s["n"] is not None else None, s[lang]) for s in table["sections"]]
        found = [(n, t) for _, n, t in headings]
        if found != expected:
            wrong = [f"'## {n + '. ' if n else ''}{t}'" for n, t in found if (n, t) not in expected]
            missing = [f"'## {n + '. ' if n else ''}{t}'" for n, t in expected if (n, t) not in found]
            add(headings[0][0] if headings else 0, "skeleton",
                f"section headings differ from book/skeleton.yml: not in the table {wrong}; missing {missing}")
    # the opening run-ins (chapters 01-08), each opening a paragraph of the first cell, in order
    if number != "00":
        starts = [p for p in _paragraphs(first)]
        order = []
        for run_in in table["run_ins"]["opening"][lang]:
            hit = next((k for k, p in enumerate(starts) if p.startswith(run_in)), None)
            if hit is None:
                add(first_i, "skeleton", f"the first cell has no paragraph opening with {run_in}")
            order.append(hit)
        present = [k for k in order if k is not None]
        if present != sorted(present):
            add(first_i, "skeleton",
                "the opening run-ins are out of order: " + ", ".join(table["run_ins"]["opening"][lang]))
    # section 5's run-ins (mechanism chapters)
    if number in table["mechanism_chapters"]:
        section5 = _section(markdown, "5")
        for run_in in table["run_ins"]["cost"][lang]:
            if not any(p.startswith(run_in) for _, src in section5 for p in _paragraphs(src)):
                add(section5[0][0] if section5 else 0, "skeleton", f"section 5 has no paragraph opening with {run_in}")
    # the exercises: instructions under the heading, labels
    exercises = table["exercises"]
    heading = {"en": "Exercises", "zh": "练习"}[lang]
    for i, src in markdown:
        m = re.search(rf"^## \d+\. {heading}\s*\n\s*\n(.+?)(?:\n\s*\n|\Z)", src, re.S | re.M)
        if m and _normal(m.group(1)) != _normal(exercises["instructions"][lang]):
            add(i, "skeleton", f"the exercise instructions read: {exercises['instructions'][lang]}")
        for p in _paragraphs(src):
            start = re.match(r"\*\*(Exercise|练习)\s*(\d+)", p)
            if start:
                n = start.group(2)
                labels = (exercises["label"][lang].format(n=n), exercises["open_label"][lang].format(n=n))
                if not p.startswith(labels):
                    add(i, "skeleton", f"exercise label: {labels[0]} (or {labels[1]}), found {p[:24]!r}")
        if lang == "zh":
            for p in _paragraphs(src):
                if re.match(r"下一[步章节个]", p) and not p.startswith(table["next"]["zh"]):
                    add(i, "skeleton", f"the line to the next chapter starts with {table['next']['zh']}")
    # an explorer paragraph ends with the one note; the last markdown cell ends with the references line
    note = table["explore_note"][lang]
    explore = {"en": "**Explore", "zh": "**动手探索**"}[lang]
    for i, src in markdown:
        for p in _paragraphs(src):
            if p.startswith(explore) and not _normal(p).endswith(_normal(note)):
                add(i, "skeleton", f"an explorer paragraph ends with the note: {note}")
    last_i, last = markdown[-1] if markdown else (0, "")
    line = table["references_line"][lang]
    if not _paragraphs(last) or not _normal(_paragraphs(last)[-1]).endswith(_normal(line)):
        add(last_i, "skeleton", f"the last markdown cell ends with the references line: {line}")
    # the answer stubs say what to type in the chapter's language
    for i, (kind, src) in enumerate(cells):
        if kind != "code":
            continue
        for line in src.splitlines():
            m = STUB.match(line)
            if not m:
                continue
            try:
                wanted = stub_comment(line, lang)
            except KeyError:
                add(i, "stub", f"no translation for the stub comment {m.group('comment')!r}: add it to "
                               "book/skeleton.yml answer_stubs")
                continue
            if m.group("comment") != wanted:
                add(i, "stub", f"{line.strip()!r}: the comment should read '# {wanted}' "
                               "(python tools/sync_twins.py NN_name writes it)")
            elif not m.group("mark"):
                add(i, "stub", f"{line.strip()!r}: a stub's comment differs between the twins, so the line ends "
                               f"in '{STUB_MARK.strip()}' (python tools/sync_twins.py NN_name writes it)")
    return out


def _section(markdown: list[tuple[int, str]], n: str) -> list[tuple[int, str]]:
    """The markdown cells from heading '## n.' up to the next '## ' heading (first cell cut at the heading)."""
    out, inside = [], False
    for i, src in markdown:
        parts = re.split(r"^(?=## )", src, flags=re.M)
        for part in parts:
            if part.startswith("## "):
                inside = part.startswith(f"## {n}.")
            if inside:
                out.append((i, part))
    return out


def chapter_findings_of(path: Path) -> list[tuple[str, Finding]]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return chapter_findings([(c.cell_type, c.source) for c in nb.cells], path.stem, path.parent.name)


# ---------------------------------------------------------------- the sources

def chinese_sources() -> list[Path]:
    return (sorted((ROOT / "notebooks" / "zh").glob("*.ipynb")) + sorted((ROOT / "book" / "zh").glob("*.md"))
            + [ROOT / "book" / "index.md"])


def read_cells(path: Path) -> list[tuple[int, str]]:
    """``(cell index, markdown)`` of a notebook, or ``[(0, text)]`` of a page."""
    if path.suffix == ".ipynb":
        import nbformat

        nb = nbformat.read(path, as_version=4)
        return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return [(0, path.read_text(encoding="utf-8"))]


def _is_chinese_document(path: Path) -> bool:
    return path.parent.name == "zh"             # the landing page book/index.md is bilingual


def check_path(path: Path) -> list[tuple[str, Finding]]:
    """Every finding of one source, as ``(where, finding)``; ``where`` names the cell of a notebook."""
    out = []
    for index, text in read_cells(path):
        where = f"cell {index}" if path.suffix == ".ipynb" else ""
        out += [(where, f) for f in check_markdown(text, _is_chinese_document(path))]
    return out


def fix_path(path: Path, rules=FIXABLE) -> bool:
    """Fix one source in place; True if it changed."""
    if path.suffix == ".ipynb":
        import nbformat

        nb = nbformat.read(path, as_version=4)
        changed = False
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown":
                continue
            new = fix_markdown(cell.source, rules, _is_chinese_document(path))
            if "skeleton" in rules:
                new = fix_chapter_cell(new, i, path.stem)
            if new != cell.source:
                cell.source, changed = new, True
        if changed:
            nbformat.write(nb, path)
        return changed
    text = path.read_text(encoding="utf-8")
    new = fix_markdown(text, rules, _is_chinese_document(path))
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="report findings; exit 1 if any")
    action.add_argument("--fix", action="store_true", help="fix the mechanical findings in place")
    action.add_argument("--rules", action="store_true", help="list the rules")
    parser.add_argument("--only", nargs="+", choices=sorted(RULES), help="only these rules")
    parser.add_argument("paths", nargs="*", type=Path, help="files (default: every Chinese source)")
    args = parser.parse_args(argv)
    if args.rules:
        for name, text in RULES.items():
            print(f"{name:9} {text}{'' if name in FIXABLE else '  (report only)'}")
        return 0
    paths = [p.resolve() for p in args.paths] or chinese_sources()
    if args.fix:
        rules = [r for r in (args.only or FIXABLE) if r in FIXABLE]
        changed = [p for p in paths if fix_path(p, rules)]
        for p in changed:
            print(f"fixed {p.relative_to(ROOT)}")
        print(f"{len(changed)} file(s) changed")
    total = 0
    for path in paths:
        findings = check_path(path) + (chapter_findings_of(path) if path.suffix == ".ipynb" else [])
        findings = [(w, f) for w, f in findings if not args.only or f.rule in args.only]
        total += len(findings)
        for where, f in findings:
            print(f"{path.relative_to(ROOT)}{', ' + where if where else ''}, {f}")
    if args.check:
        print(f"{total} finding(s)")
        return 1 if total else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
