"""Chapter 00 · Introduction: the registry as a table, what each family reweights, a browser widget.

Everything here is computed from :data:`attention_lib.MECHANISMS` (real modules, real shapes, real parameter
counts; each entry's chapter, family and names) and drawn in the language chosen by ``attention_lib.setup``.
The notebook imports it as ``ch``: ``from attention_lib.chapters import ch00_introduction as ch``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ..registry import FAMILIES, MECHANISMS, by_chapter
from ..toolkit.format import Table, format_count, format_shape
from ..toolkit.i18n import register, t



def members(family: str) -> list[str]:
    """The mechanisms listed under ``family`` in the browser: its own, and for "spatial" the mechanisms
    that carry a spatial branch (CBAM and BAM belong to "both"; no chapter is purely spatial)."""
    own = [m.name for m in by_chapter() if m.family == family]
    return own if family != "spatial" else [m.name for m in by_chapter() if m.family == "both"]


register({
    "ch00.family.channels": {"en": "channels", "zh": "通道"},
    "ch00.family.spatial": {"en": "spatial positions", "zh": "空间位置"},
    "ch00.family.both": {"en": "channels and positions", "zh": "通道与空间位置"},
    "ch00.family.tokens": {"en": "tokens", "zh": "词元"},
    "ch00.family.channels.note": {
        "en": "One weight per channel: which feature detectors matter for this input.",
        "zh": "每个通道一个权重：对当前输入，哪些特征检测器更重要。"},
    "ch00.family.spatial.note": {
        "en": "One weight per position (H × W): where to look. No chapter is purely spatial; "
              "CBAM and BAM each contain a spatial branch.",
        "zh": "每个空间位置（H × W）一个权重：看哪里。本书没有单独讲纯空间注意力的章节，"
              "CBAM 和 BAM 各自包含一个空间分支。"},
    "ch00.family.both.note": {
        "en": "Weights over channels and positions, in sequence (CBAM) or combined in one map (BAM).",
        "zh": "同时对通道和空间位置加权：CBAM 先通道后空间，BAM 把两者合成一张图。"},
    "ch00.family.tokens.note": {
        "en": "Each token mixes information from the other tokens (or from a learned memory) "
              "with weights that sum to 1.",
        "zh": "每个词元按一组和为 1 的权重，汇集其他词元（或一块可学习的外部记忆）的信息。"},
    "ch00.col.chapter": {"en": "Chapter", "zh": "章节"},
    "ch00.col.mechanism": {"en": "Mechanism", "zh": "机制"},
    "ch00.col.family": {"en": "Reweights", "zh": "加权对象"},
    "ch00.col.input": {"en": "Input shape", "zh": "输入形状"},
    "ch00.col.weights": {"en": "Weights shape", "zh": "权重形状"},
    "ch00.col.params": {"en": "Parameters", "zh": "参数量"},
    "ch00.col.paper": {"en": "Paper", "zh": "论文"},
    "ch00.chapter": {"en": "Chapter {n}", "zh": "第 {n} 章"},
    "ch00.fig.title": {"en": "What the attention weights rescale (randomly initialised modules)",
                           "zh": "注意力权重作用在哪里（随机初始化的模块）"},
    "ch00.fig.channels": {"en": "Channels: SE gate s", "zh": "通道：SE 门控 s"},
    "ch00.fig.spatial": {"en": "Spatial positions: CBAM's map M_s", "zh": "空间位置：CBAM 的空间图 M_s"},
    "ch00.fig.both": {"en": "Both: BAM's map M(F)", "zh": "通道与空间：BAM 的注意力图 M(F)"},
    "ch00.fig.tokens": {"en": "Tokens: self-attention, head 1", "zh": "词元：自注意力，第 1 个头"},
    "ch00.fig.channel": {"en": "channel c", "zh": "通道 c"},
    "ch00.fig.weight": {"en": "weight", "zh": "权重"},
    "ch00.fig.width": {"en": "width w", "zh": "宽度 w"},
    "ch00.fig.height": {"en": "height h", "zh": "高度 h"},
    "ch00.fig.position": {"en": "position h·W + w", "zh": "位置 h·W + w"},
    "ch00.fig.key": {"en": "key token j", "zh": "键词元 j"},
    "ch00.fig.query": {"en": "query token i", "zh": "查询词元 i"},
    "ch00.browser.chapter": {"en": "chapter {n}", "zh": "第 {n} 章"},
})


@dataclass(frozen=True)
class Row:
    """One mechanism measured on its registry example input (batch size 1)."""
    name: str
    chapter: int
    family: str
    input_shape: tuple
    weights_shape: str
    parameters: int


def measure(name: str) -> Row:
    """Build ``name`` at its example size, run ``attention_map`` once, and record the shapes and parameters."""
    mech = MECHANISMS[name]
    module = mech.build().eval()
    x = mech.example_input(1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        weights = module.attention_map(x)
    if isinstance(weights, torch.Tensor):
        weights_shape = format_shape(weights.shape)
    else:    # CBAM: a channel map and a spatial map
        weights_shape = " + ".join(format_shape(w.shape) for w in weights)
    return Row(name, mech.chapter, mech.family, tuple(x.shape), weights_shape,
               sum(p.numel() for p in module.parameters()))


class MechanismTable(Table):
    """The registry as a table (HTML in a notebook, aligned text elsewhere), in the current language.

    ``records`` holds the measured :class:`Row` of each mechanism, in chapter order.
    """

    def __init__(self, records: list[Row]):
        self.records = records
        header = [t(f"ch00.col.{c}") for c in ("chapter", "mechanism", "family", "input", "weights", "params",
                                                   "paper")]
        nowrap = ' style="white-space: nowrap"'
        text_rows, html_rows = [], []
        for r in records:
            mech = MECHANISMS[r.name]
            cells = [f"{r.chapter:02d}", mech.display_name(), t(f"ch00.family.{r.family}"),
                     format_shape(r.input_shape), r.weights_shape, format_count(r.parameters),
                     f"{mech.venue} {mech.year}, arXiv:{mech.arxiv}"]
            text_rows.append(cells)
            escaped = [html.escape(c) for c in cells]
            escaped[3] = f"<code{nowrap}>{escaped[3]}</code>"
            escaped[4] = f"<code{nowrap}>{escaped[4].replace(' + ', ' +<br>')}</code>"   # CBAM's two maps
            escaped[6] = f'<span{nowrap}><a href="{mech.url}">{html.escape(mech.venue)} {mech.year}</a></span>'
            html_rows.append(escaped)
        super().__init__(header, text_rows, html_rows=html_rows, css_class="attention-overview")


def mechanism_table() -> MechanismTable:
    """Every registered mechanism, in chapter order, measured on its example input."""
    return MechanismTable([measure(m.name) for m in by_chapter()])


def plot_what_is_reweighted(seed: int = 0):
    """Four panels, one per family: the real weights of SE, CBAM (spatial), BAM and self-attention.

    The modules are randomly initialised: the figure shows *what* is weighted (the shape of the map),
    not what a trained model learns (later chapters train them).
    """
    import matplotlib.pyplot as plt

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    maps = {}
    for name in ("squeeze_excitation", "cbam", "bam", "self_attention"):
        mech = MECHANISMS[name]
        module = mech.build().eval()
        with torch.no_grad():
            maps[name] = module.attention_map(mech.example_input(1, generator=gen))

    from ..toolkit.figure_output import PAGE_WIDTH_IN

    fig, axes = plt.subplots(2, 2, figsize=(PAGE_WIDTH_IN, 6.2), layout="constrained")   # two by two
    axes = axes.ravel()
    se = maps["squeeze_excitation"][0, :, 0, 0]                        # (C,)
    axes[0].bar(range(se.numel()), se.numpy(), color="tab:blue")
    axes[0].set(title=t("ch00.fig.channels"), xlabel=t("ch00.fig.channel"),
                ylabel=t("ch00.fig.weight"), ylim=(0, 1))

    panels = [
        (axes[1], maps["cbam"].spatial[0, 0], "ch00.fig.spatial",          # (H, W)
         "ch00.fig.width", "ch00.fig.height"),
        (axes[2], maps["bam"][0].flatten(1), "ch00.fig.both",              # (C, H*W)
         "ch00.fig.position", "ch00.fig.channel"),
        (axes[3], maps["self_attention"][0, 0], "ch00.fig.tokens",         # (N, N)
         "ch00.fig.key", "ch00.fig.query"),
    ]
    for ax, image, title, xlabel, ylabel in panels:
        im = ax.imshow(image.numpy(), cmap="viridis", aspect="auto")
        ax.set(title=t(title), xlabel=t(xlabel), ylabel=t(ylabel))
        fig.colorbar(im, ax=ax, label=t("ch00.fig.weight"))
    fig.suptitle(t("ch00.fig.title"), wrap=True)
    return fig


def mechanism_browser():
    """An ipywidgets ``Tab``: one tab per family, listing its mechanisms, chapters and papers.

    It holds only HTML, so the widget state saved by the book build renders fully on the static site.
    """
    import ipywidgets as widgets

    pages = []
    for family in FAMILIES:
        items = []
        for name in members(family):
            mech = MECHANISMS[name]
            items.append(
                f"<li><b>{html.escape(MECHANISMS[name].display_name())}</b> · "
                f"{html.escape(t('ch00.browser.chapter', n=mech.chapter))} · "
                f'<a href="{mech.url}">{html.escape(mech.title)}</a> '
                f"({html.escape(mech.authors)}; {html.escape(mech.venue)} {mech.year})</li>")
        note = html.escape(t(f"ch00.family.{family}.note"))
        pages.append(widgets.HTML(f"<p>{note}</p><ul>{''.join(items)}</ul>"))
    tab = widgets.Tab(children=pages)
    tab.titles = tuple(t(f"ch00.family.{f}") for f in FAMILIES)
    return tab
