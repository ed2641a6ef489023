"""Chapter 00's view of the whole book: the registry as a table, what each family reweights, a browser widget.

Everything here is computed from :data:`attention_lib.MECHANISMS` (real modules, real shapes, real parameter
counts) and drawn in the language chosen by ``attention_lib.setup``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ._checks import format_shape
from .i18n import register, t
from .registry import MECHANISMS

#: The four families of the book's family tree, by what the attention weights rescale.
FAMILIES = ("channels", "spatial", "both", "tokens")

#: The chapter that teaches each registered mechanism.
CHAPTER_OF = {
    "self_attention": 1, "external_attention": 2, "multi_head_external_attention": 2,
    "squeeze_excitation": 3, "selective_kernel": 4, "cbam": 5, "bam": 6, "eca": 7,
}

#: The family each mechanism belongs to (no chapter is purely spatial: CBAM and BAM carry the spatial branch).
FAMILY_OF = {
    "squeeze_excitation": "channels", "eca": "channels", "selective_kernel": "channels",
    "cbam": "both", "bam": "both",
    "self_attention": "tokens", "external_attention": "tokens", "multi_head_external_attention": "tokens",
}

#: Mechanisms listed under each family in the browser; CBAM and BAM also own a spatial branch.
MEMBERS = {
    "channels": ("squeeze_excitation", "eca", "selective_kernel"),
    "spatial": ("cbam", "bam"),
    "both": ("cbam", "bam"),
    "tokens": ("self_attention", "external_attention", "multi_head_external_attention"),
}

register({
    "overview.family.channels": {"en": "channels", "zh": "通道"},
    "overview.family.spatial": {"en": "spatial positions", "zh": "空间位置"},
    "overview.family.both": {"en": "channels and positions", "zh": "通道与空间位置"},
    "overview.family.tokens": {"en": "tokens", "zh": "词元"},
    "overview.family.channels.note": {
        "en": "One weight per channel: which feature detectors matter for this input.",
        "zh": "每个通道一个权重：对当前输入，哪些特征检测器更重要。"},
    "overview.family.spatial.note": {
        "en": "One weight per position (H × W): where to look. No chapter is purely spatial; "
              "CBAM and BAM each contain a spatial branch.",
        "zh": "每个空间位置（H × W）一个权重：看哪里。本书没有单独讲纯空间注意力的章节，"
              "CBAM 和 BAM 各自包含一个空间分支。"},
    "overview.family.both.note": {
        "en": "Weights over channels and positions, in sequence (CBAM) or combined in one map (BAM).",
        "zh": "同时对通道和空间位置加权：CBAM 先通道后空间，BAM 把两者合成一张图。"},
    "overview.family.tokens.note": {
        "en": "Each token mixes information from the other tokens (or from a learned memory) "
              "with weights that sum to 1.",
        "zh": "每个词元按一组和为 1 的权重，汇集其他词元（或一块可学习的外部记忆）的信息。"},
    "overview.name.self_attention": {"en": "Multi-head self-attention", "zh": "多头自注意力"},
    "overview.name.external_attention": {"en": "External attention", "zh": "外部注意力"},
    "overview.name.multi_head_external_attention": {"en": "Multi-head external attention",
                                                    "zh": "多头外部注意力"},
    "overview.name.squeeze_excitation": {"en": "Squeeze-and-Excitation (SE)", "zh": "挤压-激励（SE）"},
    "overview.name.selective_kernel": {"en": "Selective Kernel (SK)", "zh": "选择性卷积核（SK）"},
    "overview.name.cbam": {"en": "CBAM", "zh": "CBAM（卷积块注意力模块）"},
    "overview.name.bam": {"en": "BAM", "zh": "BAM（瓶颈注意力模块）"},
    "overview.name.eca": {"en": "ECA", "zh": "ECA（高效通道注意力）"},
    "overview.col.chapter": {"en": "Chapter", "zh": "章节"},
    "overview.col.mechanism": {"en": "Mechanism", "zh": "机制"},
    "overview.col.family": {"en": "Reweights", "zh": "加权对象"},
    "overview.col.input": {"en": "Input shape", "zh": "输入形状"},
    "overview.col.weights": {"en": "Weights shape", "zh": "权重形状"},
    "overview.col.params": {"en": "Parameters", "zh": "参数量"},
    "overview.col.paper": {"en": "Paper", "zh": "论文"},
    "overview.chapter": {"en": "Chapter {n:02d}", "zh": "第 {n:02d} 章"},
    "overview.fig.title": {"en": "What the attention weights rescale (randomly initialised modules)",
                           "zh": "注意力权重作用在哪里（随机初始化的模块）"},
    "overview.fig.channels": {"en": "Channels: SE gate s", "zh": "通道：SE 门控 s"},
    "overview.fig.spatial": {"en": "Spatial positions: CBAM's map M_s", "zh": "空间位置：CBAM 的空间图 M_s"},
    "overview.fig.both": {"en": "Both: BAM's map M(F)", "zh": "通道与空间：BAM 的注意力图 M(F)"},
    "overview.fig.tokens": {"en": "Tokens: self-attention, head 1", "zh": "词元：自注意力，第 1 个头"},
    "overview.fig.channel": {"en": "channel c", "zh": "通道 c"},
    "overview.fig.weight": {"en": "weight", "zh": "权重"},
    "overview.fig.width": {"en": "width w", "zh": "宽度 w"},
    "overview.fig.height": {"en": "height h", "zh": "高度 h"},
    "overview.fig.position": {"en": "position h·W + w", "zh": "位置 h·W + w"},
    "overview.fig.key": {"en": "key token j", "zh": "键词元 j"},
    "overview.fig.query": {"en": "query token i", "zh": "查询词元 i"},
    "overview.browser.chapter": {"en": "chapter {n:02d}", "zh": "第 {n:02d} 章"},
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
    return Row(name, CHAPTER_OF[name], FAMILY_OF[name], tuple(x.shape), weights_shape,
               sum(p.numel() for p in module.parameters()))


class MechanismTable:
    """The registry as a table (HTML in a notebook, aligned text elsewhere), in the current language."""

    def __init__(self, rows: list[Row]):
        self.rows = rows

    def _cells(self, row: Row) -> list[str]:
        mech = MECHANISMS[row.name]
        return [f"{row.chapter:02d}", t(f"overview.name.{row.name}"), t(f"overview.family.{row.family}"),
                format_shape(row.input_shape), row.weights_shape, f"{row.parameters:,}",
                f"{mech.venue} {mech.year}, arXiv:{mech.arxiv}"]

    def _header(self) -> list[str]:
        return [t(f"overview.col.{c}") for c in
                ("chapter", "mechanism", "family", "input", "weights", "params", "paper")]

    def _repr_html_(self) -> str:
        nowrap = ' style="white-space: nowrap"'
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._header())
        body = []
        for r in self.rows:
            mech = MECHANISMS[r.name]
            chapter, name, family, shape_in, shape_w, params, _ = (html.escape(c) for c in self._cells(r))
            shape_w = shape_w.replace(" + ", " +<br>")       # CBAM's two maps on two lines
            paper = f'<a href="{mech.url}">{html.escape(mech.venue)} {mech.year}</a>'
            cells = [chapter, name, family, f"<code{nowrap}>{shape_in}</code>",
                     f"<code{nowrap}>{shape_w}</code>", params, f"<span{nowrap}>{paper}</span>"]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (f'<table class="attention-overview"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')

    def __repr__(self) -> str:
        table = [self._header()] + [self._cells(r) for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table)


def mechanism_table() -> MechanismTable:
    """Every registered mechanism, in chapter order, measured on its example input."""
    names = sorted(MECHANISMS, key=lambda n: (CHAPTER_OF[n], n))
    return MechanismTable([measure(n) for n in names])


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

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), gridspec_kw=dict(width_ratios=[1.3, 1, 1, 1]))
    se = maps["squeeze_excitation"][0, :, 0, 0]                        # (C,)
    axes[0].bar(range(se.numel()), se.numpy(), color="tab:blue")
    axes[0].set(title=t("overview.fig.channels"), xlabel=t("overview.fig.channel"),
                ylabel=t("overview.fig.weight"), ylim=(0, 1))

    panels = [
        (axes[1], maps["cbam"].spatial[0, 0], "overview.fig.spatial",          # (H, W)
         "overview.fig.width", "overview.fig.height"),
        (axes[2], maps["bam"][0].flatten(1), "overview.fig.both",              # (C, H*W)
         "overview.fig.position", "overview.fig.channel"),
        (axes[3], maps["self_attention"][0, 0], "overview.fig.tokens",         # (N, N)
         "overview.fig.key", "overview.fig.query"),
    ]
    for ax, image, title, xlabel, ylabel in panels:
        im = ax.imshow(image.numpy(), cmap="viridis", aspect="auto")
        ax.set(title=t(title), xlabel=t(xlabel), ylabel=t(ylabel))
        fig.colorbar(im, ax=ax, label=t("overview.fig.weight"))
    fig.suptitle(t("overview.fig.title"))
    fig.tight_layout()
    return fig


def mechanism_browser():
    """An ipywidgets ``Tab``: one tab per family, listing its mechanisms, chapters and papers.

    It holds only HTML, so the widget state saved by the book build renders fully on the static site.
    """
    import ipywidgets as widgets

    pages = []
    for family in FAMILIES:
        items = []
        for name in MEMBERS[family]:
            mech = MECHANISMS[name]
            items.append(
                f"<li><b>{html.escape(t(f'overview.name.{name}'))}</b> · "
                f"{html.escape(t('overview.browser.chapter', n=CHAPTER_OF[name]))} · "
                f'<a href="{mech.url}">{html.escape(mech.title)}</a> '
                f"({html.escape(mech.authors)}; {html.escape(mech.venue)} {mech.year})</li>")
        note = html.escape(t(f"overview.family.{family}.note"))
        pages.append(widgets.HTML(f"<p>{note}</p><ul>{''.join(items)}</ul>"))
    tab = widgets.Tab(children=pages)
    tab.titles = tuple(t(f"overview.family.{f}") for f in FAMILIES)
    return tab
