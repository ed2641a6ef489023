"""Chapter 00's module: the overview measured from the registry, drawn in the chosen language."""
import matplotlib

matplotlib.use("Agg")

import re

import pytest
import torch

import attention_lib
from attention_lib import i18n
from attention_lib.chapters import ch00_introduction as overview
from attention_lib.registry import FAMILIES
from attention_lib.toolkit import readings as rd
from attention_lib.toolkit.exercises import verdict


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


# ---------------------------------------------------------------- the two axes, measured

def test_taxonomy_places_every_module_on_both_axes():
    cells = overview.taxonomy()
    placed = sorted(n for names in cells.values() for n in names)
    assert placed == sorted(attention_lib.MECHANISMS)
    assert cells[("channels", "gate")] == ["squeeze_excitation", "eca"]
    assert cells[("channels", "distribution")] == ["selective_kernel"]
    assert cells[("both", "gate")] == ["cbam"] and cells[("both", "residual")] == ["bam"]
    assert set(cells[("tokens", "distribution")]) == {"self_attention", "external_attention",
                                                      "multi_head_external_attention"}


def test_kind_tells_a_gate_from_a_distribution_by_measuring():
    # SE's map: one weight per channel in (0, 1), summing to 1 along no axis; BAM's forward is x (1 + map)
    assert overview.kind("squeeze_excitation") == "gate" and overview.kind("bam") == "residual"
    assert overview.kind("self_attention") == "distribution"


def test_taxonomy_table_has_a_row_per_family_and_a_column_per_kind(lang):
    table = overview.taxonomy_table()
    assert len(table) == len(FAMILIES) and len(table.headers) == 1 + len(overview.KINDS)
    spatial = table.rows[FAMILIES.index("spatial")]
    assert spatial[1] == i18n.t("ch00.axes.spatial_map", name="CBAM")
    assert spatial[2] == i18n.t("ch00.axes.spatial_joint", name="BAM") and spatial[3] == ""


def test_spatial_part_is_measured_on_each_modules_map():
    # CBAM: a spatial map of its own, (B, 1, H, W); BAM: one (B, C, H, W) map that varies over the positions
    assert overview.spatial_part("cbam") == "map" and overview.spatial_part("bam") == "joint"
    # SE's map is (B, C, 1, 1) and self-attention's is token by token: no weight per spatial position
    assert overview.spatial_part("squeeze_excitation") is None and overview.spatial_part("self_attention") is None


# ---------------------------------------------------------------- a trained gate on two images

def test_the_demo_is_chapter_5s_seed_0_cbam():
    from attention_lib.chapters import ch05_cbam
    assert overview.DEMO == ch05_cbam.CBAM_DEMO


def _two(channel_diff=0.9, spatial_diff=0.7, random_diff=0.004, spatial_peak=(1, 1)):
    c = torch.tensor([[0.05, 0.5], [0.05 + channel_diff, 0.5]])
    s = torch.zeros(2, 2, 2)
    s[0, 0, 0] = spatial_diff                           # image 0's target is in the top-left cell
    s[1][spatial_peak] = spatial_diff                   # image 1's in the bottom-right one
    rc = torch.tensor([[0.5, 0.5], [0.5, 0.5 + random_diff]])
    rs = torch.zeros(2, 2, 2)
    return overview.TwoImages(torch.rand(2, 3, 32, 32), torch.tensor([[2, 2, 9, 9], [20, 20, 28, 28]]), c, s, rc, rs)


PAIR = overview.AttentionPair(0.095, 0.017, 0.153)        # the chapter's numbers


def test_gate_readings_pass_on_the_chapters_numbers_and_fail_on_contrary_ones():
    overview.check_gate_readings(_two(), PAIR)
    with pytest.raises(rd.ReadingError):          # the trained gates hardly differ (the old random-input demo)
        overview.check_gate_readings(_two(channel_diff=0.0085), PAIR)
    with pytest.raises(rd.ReadingError):          # an untrained module differs almost as much
        overview.check_gate_readings(_two(random_diff=0.1), PAIR)
    with pytest.raises(rd.ReadingError):          # under a fiftieth of the trained ones, but not under 0.01
        overview.check_gate_readings(_two(channel_diff=0.95, spatial_diff=0.9, random_diff=0.015), PAIR)
    with pytest.raises(rd.ReadingError):          # the map peaks away from the target in one image
        overview.check_gate_readings(_two(spatial_peak=(0, 1)), PAIR)
    with pytest.raises(rd.ReadingError):          # no channel is switched on in one image and off in the other
        overview.check_gate_readings(_two(channel_diff=0.5), PAIR)
    with pytest.raises(rd.ReadingError):          # the random self-attention map hardly depends on its input
        overview.check_gate_readings(_two(), overview.AttentionPair(0.02, 0.017, 0.153))


def test_random_attention_pair_measures_head_1_of_two_random_inputs():
    pair = overview.random_attention_pair(seed=0)
    assert pair == overview.random_attention_pair(seed=0)             # seeded: every build prints the same
    assert 0 <= pair.low < pair.high <= 1 and 0 < pair.diff <= pair.high - pair.low


def test_the_self_attention_panel_has_whole_token_indices():
    fig = overview.plot_what_is_reweighted(seed=0)
    fig.canvas.draw()
    tokens = fig.axes[3] if fig.axes[3].get_title() == i18n.t("ch00.fig.tokens") else \
        next(ax for ax in fig.axes if ax.get_title() == i18n.t("ch00.fig.tokens"))
    ticks = list(tokens.get_xticks()) + list(tokens.get_yticks())
    assert ticks and all(float(v).is_integer() for v in ticks)
    from .test_viz import overlapping_texts
    assert overlapping_texts(fig) == []                      # whole numbers, and few enough not to collide
    matplotlib.pyplot.close(fig)


def test_two_images_trains_the_demo_on_a_cold_cache(tmp_path, monkeypatch):
    # chapter 0 run alone, before chapter 5: the demo is trained inside two_images (not under no_grad)
    from attention_lib.toolkit import train
    small = overview.DEMO.replace(n_train=32, n_val=4, epochs=1)
    monkeypatch.setattr(overview, "DEMO", small)
    train.set_cache_dir(tmp_path)
    try:
        two = overview.two_images(progress=False)
    finally:
        train.set_cache_dir(None)
    assert two.channel.shape == (2, 32) and two.spatial.shape == (2, 8, 8)
    assert len(list(tmp_path.glob("cue_cnn-*.pt"))) == 1


def test_two_images_figure_draws_in_the_chosen_language(lang):
    two = _two()
    fig = overview.plot_two_images(two)
    fig.canvas.draw()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert i18n.t("ch00.two.gate") in titles and i18n.t("ch00.two.image", i=1) in titles
    assert fig.get_size_inches()[0] <= 7.5
    matplotlib.pyplot.close(fig)


# ---------------------------------------------------------------- exercises

def _is_distribution(w, dim):
    sums = w.sum(dim)
    return bool((w >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-5))


SOLUTIONS = {"ch00.shapes": ((8, 256, 1, 1), (8, 1, 14, 14), (8, 256, 14, 14)),
             "ch00.distribution": _is_distribution,
             "ch00.map_bytes": lambda B, h, N: 4 * B * h * N * N}

WRONG = [
    ("ch00.shapes", ((8, 256, 1, 1), (8, 1, 14, 14)), "ex.ch00.shapes.not_three"),
    ("ch00.shapes", ((256, 1, 1), (1, 14, 14), (256, 14, 14)), "ex.ch00.shapes.batch"),
    ("ch00.shapes", ((8, 256), (8, 14, 14), (8, 256, 14, 14)), "ex.ch00.shapes.squeezed"),
    ("ch00.shapes", ((8, 1, 14, 14), (8, 1, 14, 14), (8, 256, 14, 14)), "ex.ch00.shapes.se"),
    ("ch00.shapes", ((8, 256, 1, 1), (8, 256, 14, 14), (8, 256, 14, 14)), "ex.ch00.shapes.cbam"),
    ("ch00.shapes", ((8, 256, 1, 1), (8, 1, 14, 14), (8, 1, 14, 14)), "ex.ch00.shapes.bam"),
    ("ch00.distribution", lambda w, dim: bool((w.sum(dim) == 1).all()), "ex.ch00.dist.tolerance"),
    ("ch00.distribution", lambda w, dim: bool((w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(()),
                                                                                atol=1e-5)), "ex.ch00.dist.axis"),
    ("ch00.distribution", lambda w, dim: bool(torch.allclose(w.sum(dim), torch.ones(()), atol=1e-5)),
     "ex.ch00.dist.negative"),
    ("ch00.distribution", lambda w, dim: bool((w > 0).all() and (w < 1).all()), "ex.ch00.dist.gate"),
    ("ch00.distribution", lambda w, dim: bool((w >= 0).all() and torch.allclose(w.sum(dim), torch.ones(()),
                                                                                atol=0.05)), "ex.ch00.dist.close"),
    ("ch00.distribution", lambda w, dim: (w >= 0) & ((w.sum(dim, keepdim=True) - 1).abs() < 1e-5),
     "ex.ch00.dist.not_bool"),
    ("ch00.map_bytes", lambda B, h, N: 4 * B * N * N, "ex.ch00.bytes.heads"),
    ("ch00.map_bytes", lambda B, h, N: 4 * h * N * N, "ex.ch00.bytes.batch"),
    ("ch00.map_bytes", lambda B, h, N: 4 * B * h * N, "ex.ch00.bytes.linear"),
    ("ch00.map_bytes", lambda B, h, N: B * h * N * N, "ex.ch00.bytes.count"),
    ("ch00.map_bytes", lambda B, h, N: 2 * B * h * N * N, "ex.ch00.bytes.width"),
    ("ch00.map_bytes", lambda B, h, N: 4 * B * h * N * N / 2 ** 20, "ex.ch00.bytes.unit"),     # MiB, not bytes
    ("ch00.map_bytes", lambda B, h, N: 4 * B * h * N * N / 1e6, "ex.ch00.bytes.unit"),         # MB
    ("ch00.map_bytes", lambda B, h, N: 4 * 12 * 196 * 196, "ex.ch00.bytes.other"),    # one size only
    ("ch00.map_bytes", 4 * 12 * 196 * 196, "ex.answer.function.not_callable"),
]


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_solutions_are_accepted(key, lang):
    assert verdict(key, SOLUTIONS[key]) == (True, i18n.t("ex.correct"))


def stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    fields = re.findall(r"{(\w+)", i18n._strings[key]["en"])
    return i18n.t(key, **{f: "@" for f in fields}).split("@")[0]


@pytest.mark.parametrize("key,answer,hint", WRONG)
def test_typical_wrong_answers_are_named(key, answer, hint, lang):
    result, message = verdict(key, answer)
    assert result is False
    assert stem(hint) in message


def test_hints_do_not_give_the_answers_away():
    for lang in ("en", "zh"):
        i18n.set_language(lang)
        hints = " ".join(i18n.t(k, **{f: "@" for f in re.findall(r"{(\w+)", i18n._strings[k]["en"])})
                         for k in i18n._strings if k.startswith("ex.ch00."))
        assert "(8, 256, 1, 1)" not in hints and "4 * B" not in hints and "allclose" not in hints
    i18n.set_language("en")


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_checks_never_raise_on_odd_answers(key):
    for odd in (torch.randn(3, 3), "x", object(), [1, 2], {}, 3.5, (8,), ((8,), "a"), lambda *a: None):
        result, message = verdict(key, odd)
        assert result is False and message


def test_the_notebook_solutions_are_the_tested_ones():
    import nbformat
    from pathlib import Path
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks/en/00_introduction.ipynb", as_version=4)
    solutions = [c.source for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) == 3 and all("check(" in s for s in solutions)
