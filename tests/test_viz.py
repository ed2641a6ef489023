"""Every plot draws without a warning in both languages, with titles, labelled axes and colour bars, and
follows the site's rule for figures (at most the page's width, no text smaller than a caption, not mostly
white, no empty panel; measured on the PNG a notebook shows)."""
import re
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import environment, i18n, viz  # noqa: E402
from attention_lib.toolkit import figure_output  # noqa: E402
from attention_lib.toolkit.instruments import trace_shapes  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(params=["en", "zh"])
def lang(request):
    saved = mpl.rcParams.copy()
    if request.param == "zh" and environment.cjk_font_family() is None:
        pytest.skip("no CJK font installed")
    al.setup(request.param)
    yield request.param
    plt.close("all")
    mpl.rcParams.update(saved)
    i18n.set_language("en")


def draw(make):
    """Build and render a figure; return it with every warning raised while drawing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = make()
        fig.canvas.draw()
    return fig, [str(w.message) for w in caught]


def colorbars(fig):
    return [a for a in fig.axes if getattr(a, "_colorbar", None) is not None]


def plot_axes(fig):
    return [a for a in fig.axes if getattr(a, "_colorbar", None) is None]


def boxes(ax):
    """Text artists that are not arrows (annotations)."""
    return [tx for tx in ax.texts if not isinstance(tx, Annotation)]


def texts(fig):
    out = [fig.get_suptitle(), fig.get_supxlabel(), fig.get_supylabel()]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            out += [tx.get_text() for tx in legend.get_texts()]
        out += [tx.get_text() for tx in ax.texts]
    return [s for s in out if s]


def follows_page_rule(fig):
    """The figure as a notebook shows it breaks none of the site's rules (figure_output.rule_breaks)."""
    chunks = figure_output.read_png(figure_output.png(fig))
    assert figure_output.rule_breaks(chunks) == []
    return chunks


def overlapping_texts(fig):
    """Pairs of a figure's titles, axis labels and tick labels whose drawn boxes overlap (after a draw)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    artists = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        artists += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):            # the tick labels drawn: those inside the view
            lo, hi = sorted(axis.get_view_interval())
            artists += [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                        if lo - 1e-9 * (hi - lo) <= loc <= hi + 1e-9 * (hi - lo)]
    artists += [getattr(fig, "_supxlabel", None), getattr(fig, "_supylabel", None)]
    shown = [a for a in artists if a is not None and a.get_visible() and a.get_text().strip()]
    boxes = [(a.get_text(), a.get_window_extent(renderer)) for a in shown]
    return [(ta, tb) for i, (ta, a) in enumerate(boxes) for tb, b in boxes[i + 1:]
            if a.overlaps(b) and a.intersection(a, b).width > 1 and a.intersection(a, b).height > 1]


def check_figure(fig, caught, lang, n_colorbars, page_rule=True):
    assert caught == [], caught                     # no missing glyphs, no other warnings
    if page_rule:
        follows_page_rule(fig)
    assert len(colorbars(fig)) == n_colorbars
    for cb_ax in colorbars(fig):
        assert cb_ax.get_ylabel() or cb_ax.get_xlabel()
    for ax in plot_axes(fig):
        assert ax.get_title() or fig.get_suptitle()
        if ax.axison:      # a grid of heat maps may share one label per figure (supxlabel)
            assert ax.get_xlabel() or fig.get_supxlabel()
            assert ax.get_ylabel() or fig.get_supylabel()
    joined = " ".join(texts(fig))
    assert bool(CJK.search(joined)) == (lang == "zh"), joined
    assert mpl.colors.to_hex(fig.get_facecolor()) == "#ffffff"


def test_plot_heads_draws_grid_with_token_labels_and_one_colour_bar(lang):
    torch.manual_seed(0)
    attn = al.MultiHeadSelfAttention(20, num_heads=5).eval().attention_map(torch.randn(2, 6, 20))  # (2, 5, 6, 6)
    tokens = ["the", "cat", "sat", "on", "a", "mat"]
    fig, caught = draw(lambda: viz.plot_heads(attn, tokens=tokens, batch_index=1))
    check_figure(fig, caught, lang, n_colorbars=1)
    axes = plot_axes(fig)
    assert len(axes) == 5
    assert [tx.get_text() for tx in axes[0].get_yticklabels()] == tokens
    assert [tx.get_text() for tx in axes[-1].get_xticklabels()] == tokens
    images = [ax.get_images()[0] for ax in axes]
    assert all(im.get_clim() == images[0].get_clim() for im in images)      # one shared colour scale
    np.testing.assert_allclose(images[2].get_array(), attn[1, 2].detach().numpy(), rtol=1e-6)


def test_plot_memory_map_draws_token_by_slot_heat_map(lang):
    attn = al.ExternalAttention(16, memory_size=12).eval().attention_map(torch.randn(1, 9, 16))  # (1, 9, 12)
    fig, caught = draw(lambda: viz.plot_memory_map(attn))
    check_figure(fig, caught, lang, n_colorbars=1)
    assert plot_axes(fig)[0].get_images()[0].get_array().shape == (9, 12)


def test_plot_memory_map_averages_heads_of_multi_head_external_attention(lang):
    attn = torch.rand(2, 3, 5, 4)
    fig, caught = draw(lambda: viz.plot_memory_map(attn, batch_index=1))
    check_figure(fig, caught, lang, n_colorbars=1)
    np.testing.assert_allclose(plot_axes(fig)[0].get_images()[0].get_array(), attn[1].mean(0).numpy(), rtol=1e-6)


def test_plot_channel_gate_sorts_and_compares(lang):
    x = torch.randn(1, 32, 4, 5)
    gate = al.SqueezeExcitation(32, reduction=4).eval().attention_map(x)        # (1, 32, 1, 1)
    other = al.EfficientChannelAttention(32).eval().attention_map(x)
    fig, caught = draw(lambda: viz.plot_channel_gate(gate, sort=True, compare=other))
    check_figure(fig, caught, lang, n_colorbars=0)
    ax = plot_axes(fig)[0]
    heights = [p.get_height() for p in ax.patches]
    first = np.array(heights[:32])
    assert np.all(np.diff(first) <= 0)                                           # sorted, largest first
    np.testing.assert_allclose(np.sort(first), np.sort(gate.detach().flatten().numpy()), rtol=1e-6)
    assert len(ax.get_legend().get_texts()) == 2


def test_plot_channel_gate_keeps_channel_order_by_default(lang):
    gate = torch.linspace(0.9, 0.1, 8)
    fig, caught = draw(lambda: viz.plot_channel_gate(gate))
    check_figure(fig, caught, lang, n_colorbars=0)
    np.testing.assert_allclose([p.get_height() for p in plot_axes(fig)[0].patches], gate.numpy(), rtol=1e-6)


def test_plot_spatial_map_overlays_map_on_image(lang):
    cbam = al.CBAM(16, reduction=4).eval()
    spatial = cbam.attention_map(torch.randn(1, 16, 6, 8)).spatial                # (1, 1, 6, 8)
    image = np.random.default_rng(0).random((48, 64, 3))
    fig, caught = draw(lambda: viz.plot_spatial_map(spatial, image=image))
    check_figure(fig, caught, lang, n_colorbars=1)
    images = plot_axes(fig)[0].get_images()
    assert len(images) == 2 and images[0].get_extent() == images[1].get_extent()   # map stretched over image
    assert images[0].get_array().shape == (48, 64, 3) and images[1].get_array().shape == (6, 8)


def test_plot_spatial_map_draws_bam_map_without_image_into_given_axes(lang):
    bam_map = al.BAM(16, reduction=4).eval().attention_map(torch.randn(1, 16, 5, 7))   # (1, 16, 5, 7)

    def make():
        fig, ax = plt.subplots()
        assert viz.plot_spatial_map(bam_map, ax=ax) is fig
        return fig
    fig, caught = draw(make)
    check_figure(fig, caught, lang, n_colorbars=1, page_rule=True)
    assert plot_axes(fig)[0].get_images()[0].get_array().shape == (5, 7)


def test_plot_sk_weights_labels_branches_by_kernel_size(lang):
    sk = al.SelectiveKernel(32, kernel_sizes=(3, 5, 7), reduction=4).eval()
    weights = sk.attention_map(torch.randn(1, 32, 6, 6))                       # (1, 3, 32, 1, 1)
    fig, caught = draw(lambda: viz.plot_sk_weights(weights, kernel_sizes=(3, 5, 7)))
    check_figure(fig, caught, lang, n_colorbars=1)
    ax = plot_axes(fig)[0]
    assert [tx.get_text() for tx in ax.get_yticklabels()] == ["3×3", "5×5", "7×7"]
    np.testing.assert_allclose(ax.get_images()[0].get_array().sum(0), np.ones(32), rtol=1e-5)


@pytest.mark.parametrize("name", ["squeeze_excitation", "self_attention"])
def test_plot_shape_trace_draws_one_box_per_step(lang, name):
    entry = al.MECHANISMS[name]
    module = entry.build().eval()
    records = trace_shapes(module, entry.example_input(batch_size=1))
    fig, caught = draw(lambda: viz.plot_shape_trace(records))
    check_figure(fig, caught, lang, n_colorbars=0)
    ax = plot_axes(fig)[0]
    steps = sum(r.leaf for r in records)
    assert len(boxes(ax)) == steps + 2                      # input, one box per step, output
    assert str(tuple(records[0].inputs[0])).replace(",)", ")") in boxes(ax)[0].get_text()


def test_plot_shape_trace_truncates_long_traces():
    records = trace_shapes(al.CBAM(16, reduction=4).eval(), torch.randn(1, 16, 4, 4))
    fig = viz.plot_shape_trace(records, max_steps=5)
    assert len(boxes(fig.axes[0])) == 5 + 3                # input, 5 steps, "... more", output
    plt.close(fig)


def test_plots_reject_wrong_shapes_with_value_error():
    with pytest.raises(ValueError, match=r"\(heads, N, N\)"):
        viz.plot_heads(torch.rand(2, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="6 labels"):
        viz.plot_heads(torch.rand(2, 6, 6), tokens=["a", "b"])
    with pytest.raises(ValueError, match=r"\(B, C, 1, 1\)"):
        viz.plot_channel_gate(torch.rand(1, 8, 2, 2))
    with pytest.raises(ValueError, match="compare"):
        viz.plot_channel_gate(torch.rand(8), compare=torch.rand(7))
    with pytest.raises(ValueError, match="kernel sizes"):
        viz.plot_sk_weights(torch.rand(2, 8), kernel_sizes=(3, 5, 7))
    with pytest.raises(ValueError, match="empty"):
        viz.plot_shape_trace([])
    plt.close("all")


def test_plot_map_gallery_draws_images_and_map_rows_with_boxes(lang):
    images = torch.rand(3, 3, 32, 32)
    rows = {"A": torch.rand(3, 8, 8), "B": torch.rand(3, 16, 16)}
    boxes = torch.tensor([[4, 4, 12, 12], [0, 10, 9, 20], [20, 20, 32, 32]])
    fig, caught = draw(lambda: viz.plot_map_gallery(images, rows, boxes=boxes))
    follows_page_rule(fig)
    assert caught == [] and len(colorbars(fig)) == 1 and colorbars(fig)[0].get_ylabel() == i18n.t("viz.spatial.value")
    axes = plot_axes(fig)
    assert len(axes) == 9 and fig.get_suptitle() == i18n.t("viz.gallery.title")
    assert [axes[i * 3].get_ylabel() for i in range(3)] == [i18n.t("viz.gallery.image"), "A", "B"]
    assert overlapping_texts(fig) == []
    assert all(len(ax.patches) == 1 for ax in axes)                         # the box on every panel
    assert axes[3].get_images()[0].get_extent() == axes[0].get_images()[0].get_extent()   # stretched over the image
    assert bool(CJK.search(" ".join(texts(fig)))) == (lang == "zh")
    with pytest.raises(ValueError, match=r"\(3, h, w\)"):
        viz.plot_map_gallery(images, {"A": torch.rand(2, 8, 8)})


def test_plot_map_gallery_row_labels_of_eight_images_do_not_overlap(lang):
    # chapter 5's gallery: eight images, five rows with long labels (rotated, they ran into each other)
    long = {"en": ["random CBAM: M_s", "trained CBAM: M_s", "brightness (scaled)", "features in (scaled)"],
            "zh": ["随机初始化：M_s", "训练后：M_s", "亮度（缩放到 0–1）", "进入 CBAM 的特征（缩放到 0–1）"]}[lang]
    rows = {label: torch.rand(8, 8, 8) for label in long}
    fig, caught = draw(lambda: viz.plot_map_gallery(torch.rand(8, 3, 32, 32), rows, title="gallery"))
    follows_page_rule(fig)
    assert caught == [] and overlapping_texts(fig) == []
    labels = [ax.yaxis.label for ax in plot_axes(fig)[::8]]
    assert all(label.get_rotation() == 0 for label in labels)


def test_plot_map_gallery_wraps_a_long_title_to_the_figure_width(lang):
    # chapters 5 and 6: a one-line title of 75 characters made the saved picture 709 px wide (column: 688 px)
    title = {"en": "Where CBAM's M_s looks, and two maps without attention (cyan: target box)",
             "zh": "BAM 与 CBAM 在第 1、2 阶段末的门控，以及两张无需注意力的对照图（青色框为目标框）"}[lang]
    rows = {"trained CBAM: M_s": torch.rand(8, 8, 8), "brightness (scaled)": torch.rand(8, 8, 8)}
    fig, caught = draw(lambda: viz.plot_map_gallery(torch.rand(8, 3, 32, 32), rows, title=title))
    chunks = follows_page_rule(fig)
    assert chunks[figure_output.FACTS_KEY]["width_px"] <= figure_output.PAGE_WIDTH_PX
    shown = fig._suptitle.get_text()
    assert "\n" in shown and "".join(shown.split()) == "".join(title.split())      # wrapped, nothing lost


@pytest.mark.parametrize("text,width,lines", [
    ("trained CBAM: M_s", 16, ["trained CBAM:", "M_s"]), ("image", 16, ["image"]),
    ("no attention: class-activation map", 16, ["no attention:", "class-activation", "map"]),
    ("CBAM 的 M_c M_s，第 1 阶段末", 16, ["CBAM 的 M_c M_s，", "第 1 阶段末"]),
    ("3×3 与 5×5，取平均", 15, ["3×3 与 5×5，", "取平均"]),              # the phrase stays whole
    ("SK（3×3 与 5×5，按权重选择）", 15, ["SK（3×3 与 5×5，", "按权重选择）"]),
    ("SE，r = 1（16 个隐藏单元）", 15, ["SE，r = 1", "（16 个隐藏单元）"]),   # a bracket opens a line
    ("甲，乙丙丁戊己庚辛壬癸", 12, ["甲，乙丙丁戊", "己庚辛壬癸"]),   # a comma early in the line is no break
    ("CBAM, stage 1 (16 × 16): M_c·M_s", 16, ["CBAM, stage 1", "(16 × 16):", "M_c·M_s"]),   # 16 × 16 is one word
    ("CBAM，第 1 阶段（16 × 16）：M_c·M_s", 16, ["CBAM，第 1 阶段", "（16 × 16）：", "M_c·M_s"]),
    ("a 3 × 3 × 64 tensor", 8, ["a", "3 × 3 × 64", "tensor"]),
])
def test_wrap_label_breaks_between_words_and_never_before_closing_punctuation(text, width, lines):
    assert viz.wrap_label(text, width).split("\n") == lines


def test_tight_times_closes_up_products_for_narrow_tick_labels_only():
    assert viz.tight_times("SK（3 × 3 与 5 × 5，按权重选择）") == "SK（3×3 与 5×5，按权重选择）"
    assert viz.tight_times("one 3 × 3 branch, {S} × {S}") == "one 3×3 branch, {S}×{S}"
    assert viz.tight_times("卷积 × 2 and 2 ×") == "卷积 × 2 and 2 ×"           # no operand on one side


def test_seed_spread_ticks_close_up_products_and_its_caption_keeps_them_spaced(lang):
    from attention_lib.toolkit import figures
    panels = {"acc": {"SK (3 × 3 and 5 × 5, selected)": [0.8, 0.9], "one 3 × 3 branch": [0.7, 0.8]}}
    fig, caught = draw(lambda: figures.plot_seed_spread(panels))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["SK (3×3 and\n5×5, selected)", "one 3×3 branch"]
    assert "SK (3 × 3 and 5 × 5, selected)" in follows_page_rule(fig)["Description"]


def test_map_gallery_row_labels_stay_inside_the_figure(lang):
    """A long row label beside fixed-aspect images: the constrained layout pushed "BAM 1 (16 × 16):" past the
    figure's left edge (chapter 6's gallery); the compressed layout makes room."""
    rows = {label: torch.rand(4, 8, 8) for label in ("random BAM 2: M(F)", "BAM 1 (16 × 16): M(F)",
                                                     "CBAM, stage 2 (8 × 8): M_c·M_s")}
    fig, caught = draw(lambda: viz.plot_map_gallery(torch.rand(4, 3, 32, 32), rows, title="gates"))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    lefts = [ax.yaxis.label.get_window_extent(renderer).x0 for ax in fig.axes[:-1] if ax.get_ylabel()]   # not the bar
    assert len(lefts) == 4 and min(lefts) >= 0, lefts


def test_plot_seed_spread_draws_every_seed_and_the_reference(lang):
    from attention_lib.toolkit import figures
    panels = {"acc": {"x": [0.8, 0.85, 0.9], "y": [0.7, 0.72, 0.71]}, "peak": {"x": [1.0, 0.9, 0.95], "y": [0.5] * 3}}
    fig, caught = draw(lambda: figures.plot_seed_spread(panels, references={"acc": ("base", 0.75)}))
    chunks = follows_page_rule(fig)
    assert "0.85 ± 0.05" in chunks["Description"] and "0.71 ± 0.01" in chunks["Description"]   # the result in words
    shown, title = fig.get_suptitle(), i18n.t("figures.seeds.title")
    assert caught == [] and len(fig.axes) == 2 and "".join(shown.split()) == "".join(title.split())
    left = fig.axes[0]
    dots = [line for line in left.get_lines() if line.get_marker() == "o"]
    assert len(dots) == 2 and all(len(d.get_ydata()) == 3 for d in dots)
    assert left.get_ylabel() == "acc" and [t.get_text() for t in fig.legends[0].get_texts()] == ["base"]


def test_plot_seed_spread_keeps_long_variant_names_apart(lang):
    """Three long names under one panel (chapter 4's blocks): wrapped flat, no two tick labels overlap."""
    from attention_lib.toolkit import figures
    names = {"en": ["SK (3×3 and 5×5, selected)", "3×3 and 5×5, averaged", "one 3×3 branch"],
             "zh": ["SK（3×3 与 5×5，按权重选择）", "3×3 与 5×5，取平均", "单个 3×3 分支"]}[lang]
    panel = {"acc": {name: [0.8 + 0.01 * i, 0.82, 0.81] for i, name in enumerate(names)}}
    fig, caught = draw(lambda: figures.plot_seed_spread(panel))
    follows_page_rule(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in fig.axes[0].get_xticklabels()]
    texts = [label.get_text() for label in fig.axes[0].get_xticklabels()]
    assert caught == [] and ["".join(x.split()) for x in texts] == ["".join(x.split()) for x in names]
    assert all(label.get_rotation() == 0 for label in fig.axes[0].get_xticklabels())
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [(b.x0, b.x1) for b in boxes]


SHARED_FIGURES = {
    "cost_growth": lambda f: f.plot_cost_growth([8, 16, 32, 64], [16, 32, 64, 128, 256], lambda c, s: c * s * s,
                                                lambda c: c * c / 8, lambda c, s: 9 * c * c * s * s),
    "scaling": lambda f: f.plot_scaling([64, 128, 256, 512], {"fused": [1e-4, 2e-4, 5e-4, 1e-3],
                                                              "explicit": [1e-4, 3e-4, 1e-3, 4e-3]},
                                        {"fused": [1e5, 2e5, 4e5, 8e5], "explicit": [1e5, 4e5, 1.6e6, 6.4e6]}),
    "accuracy_vs_params": lambda f: f.plot_accuracy_vs_params({"none": (0, [0.7, 0.72, 0.71]),
                                                               "SE (r = 16)": (520, [0.8, 0.82, 0.81])}),
    "context_examples": lambda f: f.plot_context_examples(al.data.context_dataset(16, seed=0)),
    "gate_by_context": lambda f: f.plot_gate_by_context(
        {"SE": np.random.default_rng(0).random((16, 32)), "ECA": np.random.default_rng(1).random((16, 32))},
        al.data.context_dataset(16, seed=0).context),
}


@pytest.mark.parametrize("name", SHARED_FIGURES)
def test_the_shared_figures_follow_the_page_rule_in_both_languages(lang, name):
    from attention_lib.toolkit import figures
    fig, caught = draw(lambda: SHARED_FIGURES[name](figures))
    assert caught == []
    chunks = follows_page_rule(fig)
    assert bool(CJK.search(chunks["Title"])) == (lang == "zh")
    if name in ("scaling", "accuracy_vs_params", "gate_by_context"):      # results: a caption says them in words
        assert chunks.get("Description") and bool(CJK.search(chunks["Description"])) == (lang == "zh")
    if name == "accuracy_vs_params":
        assert "0.71 ± 0.01" in chunks["Description"] and "520" in chunks["Description"]   # mean ± sample std


def test_plot_scaling_can_leave_the_time_slopes_out(lang):
    """A page that reads no time slope (chapter 2) shows none: the time legend names the methods, the memory legend
    and the caption keep their slopes."""
    from attention_lib.toolkit import figures
    ns = [64, 128, 256, 512]
    seconds, memory = {"fused": [1e-4, 2e-4, 5e-4, 1e-3]}, {"fused": [n * 10.0 for n in ns]}
    for time_slopes in (True, False):
        fig, caught = draw(lambda: figures.plot_scaling(ns, seconds, memory, time_slopes=time_slopes))
        chunks = follows_page_rule(fig)
        time_legend, memory_legend = ([x.get_text() for x in ax.get_legend().get_texts()] for ax in fig.axes)
        assert caught == [] and memory_legend == [i18n.t("figures.scaling.slope", name="fused", slope=1.0)]
        assert (time_legend == ["fused"]) is (not time_slopes)
        assert ("1.16" in chunks["Description"]) is time_slopes          # the time slope over the last three N
