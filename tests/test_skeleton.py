"""Every chapter says its fixed words the same way, in both languages: ``book/skeleton.yml``.

The section titles of the mechanism chapters, "## N. Title" headings everywhere, the link to the twin, the
opening run-ins, section 5's run-ins, the exercise instructions and labels, the line to the next chapter,
and the answer stubs, whose comment each twin writes in its own language (``tools/sync_twins.py``). A
chapter that does not meet the table yet is listed in ``tests/zh_pending.yml``.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from .pending import verdict
from .test_glossary import _rel
from .tool_modules import load

zt = load("zh_typography")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
TABLE = zt.skeleton()


def test_the_table_is_complete_in_both_languages():
    numbers = [s["n"] for s in TABLE["sections"]]
    assert numbers == list(range(1, 11)) + [None]
    for entry in [*TABLE["sections"], TABLE["twin_link"], TABLE["next"], *TABLE["run_ins"].values(),
                  TABLE["exercises"]["instructions"], TABLE["exercises"]["label"], TABLE["exercises"]["open_label"],
                  TABLE["explore_note"], TABLE["references_line"]]:
        assert entry.get("en") and entry.get("zh"), entry


def test_every_answer_stub_of_the_english_chapters_has_a_chinese_comment():
    stubs = TABLE["exercises"]["answer_stubs"]
    comments = {m.group("comment") for path in NOTEBOOKS if path.parent.name == "en"
                for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"
                for line in cell.source.splitlines() if (m := zt.STUB.match(line))}
    assert comments, "found no answer stub in the English chapters"
    assert comments <= set(stubs), f"add to answer_stubs in book/skeleton.yml: {sorted(comments - set(stubs))}"
    assert all(re.search(r"[\u4e00-\u9fff]", zh) for zh in stubs.values())


def test_the_checker_finds_a_chapter_that_breaks_the_table():
    cells = [("markdown", "# 03 · 挤压-激励\n\n[英文版](../en/03_x.ipynb)\n\n**本章内容。** 内容"),
             ("markdown", "## 1. 直观理解\n\n## 2. 数学表述"),
             ("markdown", "## 9. 练习\n\n每道练习自己做。\n\n**练习 1.** 题目"),
             ("code", "answer_1 = ...   # your answer: an integer"),
             ("markdown", "**动手探索**：改变输入大小。（网站上是算好的。）"),
             ("markdown", "下一步：第 4 章")]
    found = [f.excerpt for _, f in zt.chapter_findings(cells, "03_x", "zh")]
    for expected in ("twin link", "section headings", "本章内容", "exercise instructions", "exercise label",
                     "下一章", "你的答案", "探索器会实时重新计算", "参考文献"):
        assert any(expected in text for text in found), (expected, found)
    title = {s["n"]: s["zh"] for s in TABLE["sections"]}
    heading = "\n\n".join
    good = [("markdown", "# 03 · 挤压-激励\n\n[English version](../en/03_x.ipynb)\n\n"
                         "**本章内容**：内容\n\n**预备知识**：卷积\n\n**所需时间**：30 分钟"),
            ("markdown", heading(f"## {n}. {title[n]}" for n in range(1, 5))),
            ("markdown", f"## 5. {title[5]}\n\n**参数量**：$P$\n\n**浮点运算次数**（FLOPs）：$F$"),
            ("markdown", heading(f"## {n}. {title[n]}" for n in range(6, 9))),
            ("markdown", f"## 9. {title[9]}\n\n{TABLE['exercises']['instructions']['zh']}\n\n**练习 1**：题目"),
            ("code", "answer_1 = ...   # 你的答案：一个整数  # i18n"),
            ("markdown", f"**动手探索**：改变输入大小。{TABLE['explore_note']['zh']}"),
            ("markdown", f"## 10. {title[10]}\n\n下一章：第 4 章\n\n## {title[None]}\n\n"
                         f"本章的论文是 Hu 等的。{TABLE['references_line']['zh']}")]
    assert zt.chapter_findings(good, "03_x", "zh") == []
    unmarked = [(kind, src.replace("  # i18n", "")) for kind, src in good]    # a stub must end in the mark
    assert [f.rule for _, f in zt.chapter_findings(unmarked, "03_x", "zh")] == ["stub"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_chapter_follows_the_skeleton_table(path):
    findings = [(f.rule, f"{where}: {f.excerpt}") for where, f in zt.chapter_findings_of(path)]
    failure = verdict(_rel(path), findings, {"skeleton", "stub"})
    assert not failure, f"the chapter's fixed words differ from book/skeleton.yml:\n{failure}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_teachers_guide_quotes_the_section_titles_of_the_table(lang):
    """The guide names sections by number and title (第 3 节“逐步计算”, §3 *Step by step*): a title of the
    mechanism chapters' table is quoted at its own number."""
    text = (ROOT / "book" / lang / "teaching.md").read_text(encoding="utf-8")
    quoted = re.findall(r"第 (\d+) 节“([^”]+)”" if lang == "zh" else r"§(\d+) \*([^*]+)\*", text)
    assert quoted, f"book/{lang}/teaching.md quotes no section title"
    number_of = {s[lang]: s["n"] for s in TABLE["sections"] if s["n"]}
    variants = {"数学表述", "计算代价", "实现", "放进网络", "在网络中的位置"} if lang == "zh" else set()
    wrong = [(n, title) for n, title in quoted
             if (title in number_of and number_of[title] != int(n)) or title in variants]
    assert not wrong, f"book/{lang}/teaching.md: section titles that are not the table's: {wrong}"
