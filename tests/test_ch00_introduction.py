"""Chapter 00's module: the overview measured from the registry, drawn in the chosen language."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import attention_lib
from attention_lib import i18n
from attention_lib.chapters import ch00_introduction as overview
from attention_lib.registry import FAMILIES


@pytest.fixture(params=["en", "zh"])
def lang(request):
    attention_lib.setup(lang=request.param)     # language and the font list with a CJK face
    yield request.param
    attention_lib.setup(lang="en")


def test_every_family_of_the_browser_lists_its_mechanisms():
    listed = {name for family in FAMILIES for name in overview.members(family)}
    assert listed == set(attention_lib.MECHANISMS)
    assert overview.members("spatial") == overview.members("both") == ["cbam", "bam"]


def test_table_measures_the_real_attention_map_shapes():
    rows = {r.name: r for r in overview.mechanism_table().records}
    assert [r.chapter for r in overview.mechanism_table().records] == sorted(r.chapter for r in rows.values())
    assert rows["squeeze_excitation"].weights_shape == "(1, 64, 1, 1)"
    assert rows["self_attention"].weights_shape == "(1, 8, 16, 16)"          # (B, heads, N, N)
    assert rows["cbam"].weights_shape == "(1, 64, 1, 1) + (1, 1, 8, 8)"     # channel, then spatial
    se = attention_lib.MECHANISMS["squeeze_excitation"].build()
    assert rows["squeeze_excitation"].parameters == sum(p.numel() for p in se.parameters())


def test_table_and_figure_speak_the_chosen_language(lang):
    html = overview.mechanism_table()._repr_html_()
    fig = overview.plot_what_is_reweighted()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in html + "".join(titles))
    assert has_cjk == (lang == "zh")
    assert len(titles) == 4 and html.count("<tr>") == 1 + len(attention_lib.MECHANISMS)
    matplotlib.pyplot.close(fig)


def test_chinese_figure_draws_without_missing_glyphs(recwarn):
    attention_lib.setup(lang="zh")
    try:
        fig = overview.plot_what_is_reweighted()
        fig.canvas.draw()                        # a missing glyph warns here
    finally:
        attention_lib.setup(lang="en")
    assert not [str(w.message) for w in recwarn]
    matplotlib.pyplot.close(fig)


def test_browser_has_one_tab_per_family(lang):
    tab = overview.mechanism_browser()
    assert len(tab) == len(FAMILIES)
    assert tab.titles[0] == i18n.t("ch00.family.channels")
    assert "arxiv.org/abs/1709.01507" in tab.pages[0]
    page = tab._repr_html_()                   # the WAI-ARIA tabs pattern, no widget state to save
    assert page.count('role="tab"') == page.count('role="tabpanel"') == len(FAMILIES)
    assert page.count('aria-selected="true"') == 1 and "widget" not in page
