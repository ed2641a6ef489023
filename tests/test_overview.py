"""Chapter 00's overview: measured from the registry, drawn in the chosen language."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import attention_lib
from attention_lib import i18n, overview


@pytest.fixture(params=["en", "zh"])
def lang(request):
    attention_lib.setup(lang=request.param)     # language and the font list with a CJK face
    yield request.param
    attention_lib.setup(lang="en")


def test_every_mechanism_has_a_chapter_and_a_family():
    assert set(overview.CHAPTER_OF) == set(attention_lib.MECHANISMS)
    assert set(overview.FAMILY_OF) == set(attention_lib.MECHANISMS)
    assert set(overview.FAMILY_OF.values()) <= set(overview.FAMILIES)


def test_table_measures_the_real_attention_map_shapes():
    rows = {r.name: r for r in overview.mechanism_table().rows}
    assert [r.chapter for r in overview.mechanism_table().rows] == sorted(r.chapter for r in rows.values())
    assert rows["squeeze_excitation"].weights_shape == "(1, 64, 1, 1)"
    assert rows["self_attention"].weights_shape == "(1, 8, 16, 16)"          # (B, heads, N, N)
    assert rows["cbam"].weights_shape == "(1, 64, 1, 1) + (1, 1, 8, 8)"     # channel, then spatial
    se = attention_lib.MECHANISMS["squeeze_excitation"].build()
    assert rows["squeeze_excitation"].parameters == sum(p.numel() for p in se.parameters())


def test_every_overview_string_has_a_chinese_text():
    missing = [k for k in i18n.missing_translations("zh") if k.startswith("overview.")]
    assert not missing


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
    assert len(tab.children) == len(overview.FAMILIES)
    assert tab.titles[0] == i18n.t("overview.family.channels")
    assert "arxiv.org/abs/1709.01507" in tab.children[0].value
