"""The figure rule of the site and the PNGs that carry it: sizes measured while drawing, a text alternative in
the figure's language, a caption when one is given; in a Jupyter kernel every figure goes through it."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib.toolkit import environment, figure_output as fo, i18n, viz  # noqa: E402,F401  (viz: its strings)


@pytest.fixture(autouse=True)
def _book_style():
    saved = mpl.rcParams.copy()
    al.setup("en")
    yield
    plt.close("all")
    mpl.rcParams.update(saved)
    i18n.set_language("en")


def _chunks(fig):
    return fo.read_png(fo.png(fig))


def test_the_rule_is_consistent_with_the_page_it_was_measured_on():
    margins = 2 * mpl.rcParams["savefig.pad_inches"]
    assert (fo.PAGE_WIDTH_IN + margins) * fo.DISPLAY_DPI <= fo.PAGE_WIDTH_PX     # shown at its own size
    assert fo.MIN_FONT_PT * fo.DISPLAY_DPI / 72 >= fo.CAPTION_PX                 # as large as a caption
    style = environment.plot_style()
    sizes = [style[k] for k in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                                "ytick.labelsize", "legend.fontsize", "figure.titlesize", "figure.labelsize")]
    assert min(sizes) == fo.MIN_FONT_PT and style["figure.dpi"] == fo.DISPLAY_DPI
    assert style["figure.figsize"][0] <= fo.PAGE_WIDTH_IN


def test_a_figure_at_the_page_width_with_the_book_sizes_follows_the_rule():
    fig, ax = plt.subplots(figsize=(fo.PAGE_WIDTH_IN, 3), layout="constrained")
    ax.plot(np.arange(10), np.arange(10) ** 2)
    ax.set(title="growth", xlabel="n", ylabel="n squared")
    chunks = _chunks(fig)
    facts = chunks[fo.FACTS_KEY]
    assert facts["width_px"] <= fo.PAGE_WIDTH_PX and facts["min_font_pt"] == fo.MIN_FONT_PT
    assert facts["dpi"] == fo.DISPLAY_DPI and facts["texts"] >= 3
    assert fo.rule_breaks(chunks) == []


def test_small_text_is_measured_where_it_is_drawn():
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("title")
    ax.text(0.5, 0.5, "a small note", fontsize=7)
    chunks = _chunks(fig)
    assert chunks[fo.FACTS_KEY]["min_font_pt"] == 7
    assert any("smallest text 7" in b for b in fo.rule_breaks(chunks))


def test_a_wide_figure_is_shown_smaller_so_its_text_breaks_the_rule():
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax in axes:
        ax.plot([0, 1], [1, 0])
        ax.set_title("panel")
    chunks = _chunks(fig)
    assert chunks[fo.FACTS_KEY]["width_px"] > fo.PAGE_WIDTH_PX
    assert any("under the 14 px" in b for b in fo.rule_breaks(chunks))
    assert any("wider than the page's 688 px column" in b for b in fo.rule_breaks(chunks))
    # the same picture shown at its own width (a phone that scrolls it) has legible text, but is still too wide
    assert [b for b in fo.rule_breaks(chunks, shown_px=chunks[fo.FACTS_KEY]["width_px"])
            if "wider than" not in b] == []


def test_a_mostly_white_figure_and_an_empty_panel_are_found():
    fig, ax = plt.subplots(figsize=(3, 9))
    ax.axis("off")
    ax.text(0.5, 0.98, "one box at the top", ha="center", transform=ax.transAxes)
    assert any("mostly white" in b for b in fo.rule_breaks(_chunks(fig)))
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    axes[0].imshow(np.random.default_rng(0).random((8, 8)))
    axes[1].set_title("nothing drawn here")
    assert _chunks(fig)[fo.FACTS_KEY]["blank_panels"] == 1


def test_the_text_alternative_names_title_panels_axes_and_colour_in_the_figures_language():
    def make():
        fig, axes = plt.subplots(1, 2, figsize=(6, 3), layout="constrained")
        for ax, name in zip(axes, ("a", "b")):
            im = ax.imshow(np.eye(3))
            ax.set(title=i18n.t("viz.heads.head", i=name), xlabel=i18n.t("viz.key"), ylabel=i18n.t("viz.query"))
        fig.colorbar(im, ax=axes, label=i18n.t("viz.weight"))
        fig.suptitle(i18n.t("viz.heads.title"))
        return fig
    alt = _chunks(make())["Title"]
    assert alt == ("Self-attention weights per head. 2 panels: head a; head b. horizontal axis key token, "
                   "vertical axis query token. colour shows attention weight.")
    al.setup("zh")
    alt = _chunks(make())["Title"]
    assert alt.startswith("各注意力头的自注意力权重。共 2 个子图：头 a；头 b。横轴为键词元，纵轴为查询词元。")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_text_alternative_spaces_latin_after_chinese_and_leaves_an_unlabelled_axis_out(lang):
    al.setup(lang)
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.plot([0, 1], [0, 1])
    ax.set(title="t", xlabel="x (px)")
    assert _chunks(fig)["Title"] == {"en": "t. horizontal axis x (px).", "zh": "t。横轴为 x (px)。"}[lang]
    ax.set(xlabel="", ylabel="训练轮次")
    assert _chunks(fig)["Title"] == {"en": "t. vertical axis 训练轮次.", "zh": "t。纵轴为训练轮次。"}[lang]


def test_describe_gives_the_alt_text_and_the_caption():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1])
    ax.set_title("t")
    fo.describe(fig, alt="A line from 0 to 1.", caption="It rises.")
    chunks = _chunks(fig)
    assert chunks["Title"] == "A line from 0 to 1." and chunks["Description"] == "It rises."


def test_the_png_is_a_palette_image_of_the_tight_figure():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(np.random.default_rng(0).random((16, 16)))
    data = fo.png(fig)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "P"
    assert image.size == tuple(fo.read_png(data)[fo.FACTS_KEY][k] for k in ("width_px", "height_px"))
    plain = io.BytesIO()
    fig.savefig(plain, format="png", bbox_inches="tight", dpi=fig.dpi)
    assert Image.open(plain).size == image.size and len(data) < len(plain.getvalue())


def test_an_image_without_the_chunks_is_reported():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(buf, format="PNG")
    assert fo.rule_breaks(fo.read_png(buf.getvalue())) == [
        "no facts: the figure was not displayed through attention_lib's figure output (al.setup)"]


def test_in_an_ipython_shell_figures_are_displayed_through_the_figure_output():
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    try:
        assert fo.install()
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1])
        ax.set_title("shown")
        data, _ = shell.display_formatter.format(fig)
        import base64
        png = data["image/png"]
        chunks = fo.read_png(png if isinstance(png, bytes) else base64.b64decode(png))
        assert chunks["Title"] == "shown." and fo.FACTS_KEY in chunks
        # a later formatter registered by the inline backend is replaced again before the next cell runs
        shell.display_formatter.formatters["image/png"].for_type(Figure, lambda f: b"other")
        shell.events.trigger("pre_run_cell", None)
        data, _ = shell.display_formatter.format(fig)
        assert data["image/png"] != b"other"
    finally:
        InteractiveShell.clear_instance()


def test_no_chinese_string_mixes_mathtext_with_chinese_text():
    """matplotlib renders a string that holds ``$...$`` entirely with mathtext, whose fonts have no CJK glyphs:
    such a string with Chinese in it draws boxes (a missing-glyph warning fails the build only if a cell draws it)."""
    import importlib
    import pkgutil

    import attention_lib.chapters as chapters
    from attention_lib.toolkit import i18n
    from attention_lib.toolkit.viz import CJK

    for module in pkgutil.iter_modules(chapters.__path__):
        importlib.import_module(f"attention_lib.chapters.{module.name}")
    mixed = {key: text["zh"] for key, text in i18n._strings.items()
             if text.get("zh", "").count("$") >= 2 and CJK.search(text["zh"])}
    assert not mixed, mixed
    assert CJK.search("特征（$W^Q$ 的列）") and "特征（$W^Q$ 的列）".count("$") == 2   # the test would see one
