"""Chinese typography, enforced: every Chinese source reads as a Chinese reader expects.

``tools/zh_typography.py`` holds the rules (``--rules`` lists them) and fixes their mechanical cases. These
tests run it over

* the markdown cells of every ``notebooks/zh/*.ipynb``, every ``book/zh/*.md`` and the Chinese paragraphs of
  ``book/index.md`` (line breaks inside a paragraph, spaces, quotes, punctuation, run-in labels, exercise
  labels, citations, links to the side pages);
* every Chinese string literal of the library, the book's extensions and tools (figure and widget strings,
  check verdicts, the classroom kit's labels): spaces, quotes, punctuation (a string's own line breaks are
  the author's, for a figure); the student archive's Chinese README as markdown.

A chapter that does not meet a rule yet is listed in ``tests/zh_pending.yml``. The first tests show that the
checks and the fixer do what they say, on sentences of the book's kind.
"""
from __future__ import annotations

import pytest

from .pending import verdict
from .test_glossary import PY_WITH_CHINESE, _rel, chinese_literals
from .tool_modules import load

zt = load("zh_typography")

TYPOGRAPHY = {"break", "space", "quotes", "punct", "ellipsis", "dash", "leadin", "label", "citation", "pagelink",
              "narrative", "times", "thousands"}


def rules(text: str) -> list[str]:
    return [f.rule for f in zt.check_markdown(text)]


# ---------------------------------------------------------------- the checks can fail, and the fixer is right

def test_a_line_break_inside_a_chinese_paragraph_is_found_and_joined():
    text = "卷积核大小不同的\n几个分支，由 `forward`\n计算；它用\nPyTorch 写成，\n$x$ 是输入。"
    assert rules(text) == ["break"]
    assert zt.fix_markdown(text) == "卷积核大小不同的几个分支，由 `forward` 计算；它用 PyTorch 写成，$x$ 是输入。"


def test_joining_keeps_list_items_quotes_tables_code_and_maths_apart():
    text = ("- 第一项，\n  接着写\n- 第二项\n\n> 引用的\n> 一段话\n\n| 中文 | 说明 |\n|---|---|\n| 甲 | 乙 |\n\n"
            "```python\nx = 1  # 中文\ny = 2\n```\n\n$$\na\n=\nb\n$$\n\n硬换行  \n保留\n\nEnglish\nparagraph")
    fixed = zt.fix_markdown(text)
    assert "- 第一项，接着写\n- 第二项" in fixed
    assert "> 引用的一段话" in fixed
    assert "| 中文 | 说明 |\n|---|---|\n| 甲 | 乙 |" in fixed
    assert "```python\nx = 1  # 中文\ny = 2\n```" in fixed and "$$\na\n=\nb\n$$" in fixed
    assert "硬换行  \n保留" in fixed and "English\nparagraph" in fixed


def test_spaces_next_to_full_width_punctuation_and_between_chinese_characters():
    for bad, good in [("**因果掩码** （causal mask）", "**因果掩码**（causal mask）"),
                      ("分数上： $A$", "分数上：$A$"), ("例如 注意力图", "例如注意力图"),
                      ("结束。 `attention_map` 返回", "结束。`attention_map` 返回"), ("改为 4 （这样", "改为 4（这样")]:
        assert "space" in rules(bad), bad
        assert zt.fix_markdown(bad) == good
    for fine in ("第 3 章用 $k$ 个权重", "- （a）列表项", "| 中文 | （说明） |", "见[第 3 章](03_x.ipynb)。"):
        assert "space" not in rules(fine), fine


def test_quotes_and_half_width_punctuation_in_chinese_prose():
    assert rules('需要"针对这张图"的任务') == ["quotes", "quotes"]
    assert zt.fix_markdown('需要"针对这张图"的任务') == "需要“针对这张图”的任务"
    assert zt.fix_markdown("数值与「先做 softmax」不一致") == "数值与“先做 softmax”不一致"
    assert zt.fix_markdown("词元(token)和查询:键，值 (value)") == "词元（token）和查询：键，值（value）"
    assert zt.check_markdown("把 `...` 换成答案") == [] and zt.check_string("把 ... 换成答案") == []
    assert [f.rule for f in zt.check_markdown("总之...结束")] == ["ellipsis"]
    kept = '`setup(lang="zh")` 见 `x = "a"` 和 <https://example.org/"q"> 与 $f(x)$：取值 (0, 1)'
    assert rules(kept) == []
    assert zt.fix_markdown(kept) == kept


def test_citations_run_in_labels_and_exercise_labels():
    cases = [("[Guo et al., 2022](https://arxiv.org/abs/2105.02358)", "[Guo 等，2022](https://arxiv.org/abs/2105.02358)"),
             ("[Hu 等（2018）](https://a.org/1)", "[Hu 等，2018](https://a.org/1)"),
             ("自注意力[（Vaswani 等，2017）](https://a.org/2)", "自注意力（[Vaswani 等，2017](https://a.org/2)）"),
             ("[Guo, Liu, Mu and Hu, 2022](https://a.org/3)", "[Guo、Liu、Mu 和 Hu，2022](https://a.org/3)"),
             ("[Abnar 与 Zuidema（2020）](https://a.org/4)", "[Abnar 和 Zuidema，2020](https://a.org/4)"),
             ("**参数量。** 每个分支", "**参数量**：每个分支"), ("**动手探索**。改变输入", "**动手探索**：改变输入"),
             ("**练习 1.** 形状", "**练习 1**：形状"), ("**练习 5（开放题）。** 在", "**练习 5（开放题）**：在")]
    for bad, good in cases:
        assert rules(bad), bad
        assert zt.fix_markdown(bad) == good, bad
        assert rules(good) == [], good
    assert rules("[Itti、Koch 和 Niebur，1998](https://a.org/5)；**槽位在看目标吗？**看") == []


def test_citations_in_parentheses_spaced_multiplication_and_no_thousands_separator():
    assert rules("先是 [Mnih 等，2014](https://a.org/7)让网络自己决定") == ["narrative"]
    assert rules("先是有人让网络自己决定（[Mnih 等，2014](https://a.org/7)）。") == []
    assert rules("一个 3×3 卷积和 C×C 矩阵") == ["times", "times"]
    assert zt.fix_markdown("一个 3×3 卷积和 C ×C 矩阵") == "一个 3 × 3 卷积和 C × C 矩阵"
    assert rules("一个 3 × 3 卷积，$3\\times3$ 与 `x.view(3*3)`") == []
    assert rules("参数量为 4,096 和 21,696 个") == ["thousands", "thousands"]
    assert zt.fix_markdown("参数量为 4,096 和 21,696 个") == "参数量为 4096 和 21696 个"
    assert rules("核大小 (3, 5, 5, 7)，`f(1,000)`") == []


def test_links_to_side_pages_read_their_names():
    assert rules("符号见[记号说明](../../book/zh/notation.md)。") == ["pagelink"]
    assert rules("符号见[符号约定](../../book/zh/notation.md)。") == []
    assert rules("[Notation](en/notation.md)") == []                   # an English link on the landing page


def test_the_fixer_is_idempotent_and_leaves_nothing_it_can_fix():
    text = ("**本章内容。** 它先用一个\n通道门控（见[Woo et al., 2018](https://a.org/6)）， 再用\"空间图\"...\n\n"
            "**练习 2.** 写出 `f(x)`\n（提示：$\\sigma$）。")
    once = zt.fix_markdown(text)
    assert zt.fix_markdown(once) == once
    assert [f for f in zt.check_markdown(once) if f.rule in zt.FIXABLE] == []
    assert "`f(x)`" in once and "$\\sigma$" in once and "https://a.org/6" in once


def test_string_checks_mask_format_fields_and_keep_line_breaks():
    assert zt.check_string("{name}：{value:.2f}\n第二行") == []
    assert [f.rule for f in zt.check_string("数值与「先做 softmax」不一致")] == ["quotes", "quotes"]
    assert [f.rule for f in zt.check_string("准确率 ： {acc}")] == ["space", "space"]
    assert zt.fix_string("准确率 ： {acc}") == "准确率：{acc}"


# ---------------------------------------------------------------- the book's Chinese sources

@pytest.mark.parametrize("path", zt.chinese_sources(), ids=_rel)
def test_chinese_source_typography(path):
    findings = [(f.rule, f"{where}, {f}" if where else str(f)) for where, f in zt.check_path(path)]
    failure = verdict(_rel(path), findings, TYPOGRAPHY)
    assert not failure, ("Chinese typography (python tools/zh_typography.py --rules; --fix does the mechanical "
                         f"part):\n{failure}")


@pytest.mark.parametrize("path", PY_WITH_CHINESE, ids=_rel)
def test_chinese_string_literals_typography(path):
    findings = []
    for line, text in chinese_literals(path):
        markdown = "\n\n" in text                        # a whole page, such as the student archive's README
        for f in (zt.check_markdown(text) if markdown else zt.check_string(text)):
            findings.append((f.rule, f"line {line + f.line - 1}: [{f.rule}] {f.excerpt}"))
    failure = verdict(_rel(path), findings, TYPOGRAPHY)
    assert not failure, f"Chinese typography of string literals (tools/zh_typography.py --rules):\n{failure}"


@pytest.mark.parametrize("path", [p for p in zt.chinese_sources() if p.suffix == ".ipynb"], ids=_rel)
def test_a_chinese_chapter_calls_the_other_edition_the_english_one(path):
    """Adapted, not copied: the English "the Chinese chapter loads it from the cache" becomes 英文版 in the Chinese
    twin (zh-r2 found 中文版 in chapter 05, round 1 in chapter 04)."""
    slips = [index for index, text in zt.read_cells(path) if "中文版" in text]
    assert not slips, f"{_rel(path)}: cells {slips} say 中文版 where the other edition, 英文版, is meant"
