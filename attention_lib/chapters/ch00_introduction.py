"""Chapter 00 · Introduction: a trained gate on two images, the registry as a table, the two axes of the family
tree measured from the modules, what each family reweights, a browser widget, and three exercises.

Everything here is computed from :data:`attention_lib.MECHANISMS` (real modules, real shapes, real parameter
counts; each entry's chapter, family and names) or from chapter 5's trained CBAM (loaded through
``trained_demo`` with the same configuration, so it is trained once), and drawn in the language chosen by
``attention_lib.setup``. The notebook imports it as ``ch``: ``from attention_lib.chapters import
ch00_introduction as ch``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch

from ..registry import FAMILIES, MECHANISMS, by_chapter
from ..toolkit import data
from ..toolkit import readings as rd
from ..toolkit.exercises import as_count, as_function, as_shape, call, describe, exercise
from ..toolkit.format import Table, format_count, format_shape
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyCNN
from ..toolkit.train import CueCNN, one_thread, trained_demo



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
    # the trained gate on two images
    "ch00.two.title": {"en": "A trained CBAM (chapter 5) on two validation images",
                       "zh": "训练后的 CBAM（第 5 章）作用于两张验证图像"},
    "ch00.two.image": {"en": "image {i}: M_s over it", "zh": "图像 {i} 及其上的 M_s"},
    "ch00.two.channel": {"en": "channel c (sorted by image 0's weight)", "zh": "通道 c（按图像 0 的权重排序）"},
    "ch00.two.gate": {"en": "M_c: channel gate", "zh": "M_c：通道门控"},
    "ch00.two.weight": {"en": "weight", "zh": "权重"},
    "ch00.two.legend": {"en": "image {i}", "zh": "图像 {i}"},
    "ch00.two.x": {"en": "x (pixels)", "zh": "x（像素）"},
    "ch00.two.y": {"en": "y (pixels)", "zh": "y（像素）"},
    "ch00.two.value": {"en": "spatial weight", "zh": "空间权重"},
    "ch00.two.numbers": {"en": "largest difference between the two images' weights: trained CBAM M_c {c:.2f}, "
                               "M_s {s:.2f}; randomly initialised CBAM M_c {rc:.3f}, M_s {rs:.3f}",
                         "zh": "两张图像的权重之间的最大差值：训练后的 CBAM，M_c 为 {c:.2f}，M_s 为 {s:.2f}；"
                               "随机初始化的 CBAM，M_c 为 {rc:.3f}，M_s 为 {rs:.3f}"},
    "ch00.two.attention": {"en": "randomly initialised self-attention (head 1, two random inputs): largest difference "
                                 "{d:.3f}, its weights range from {low:.3f} to {high:.3f}",
                           "zh": "随机初始化的自注意力（第 1 个头，两个随机输入）：最大差值 {d:.3f}，"
                                 "其权重范围为 {low:.3f} 到 {high:.3f}"},
    # the two axes
    "ch00.axes.what": {"en": "what is reweighted", "zh": "对什么加权"},
    "ch00.axes.gate": {"en": "gate: each weight in (0, 1)", "zh": "门控：每个权重在 (0, 1) 之间"},
    "ch00.axes.residual": {"en": "residual gate: 1 + weight", "zh": "残差门控：1 + 权重"},
    "ch00.axes.distribution": {"en": "distribution: weights sum to 1", "zh": "概率分布：权重之和为 1"},
    "ch00.axes.entry": {"en": "{name}, ch. {n}", "zh": "{name}，第 {n} 章"},
    "ch00.axes.sep": {"en": "; ", "zh": "；"},
    "ch00.axes.spatial_map": {"en": "({name}'s spatial map M_s)", "zh": "（{name} 的空间图 M_s）"},
    "ch00.axes.spatial_joint": {"en": "({name}'s spatial branch, inside its joint map)",
                                "zh": "（{name} 的空间分支，在它的联合图之内）"},
    # exercises
    "ex.ch00.shapes.not_three": {"en": "give three shapes, (SE, CBAM's spatial map, BAM), each a tuple of integers; "
                                       "you gave {what}.",
                                 "zh": "请给出三个形状，即（SE，CBAM 的空间图，BAM），每个都是整数元组；你给出的是 {what}。"},
    "ex.ch00.shapes.batch": {"en": "every map keeps the batch axis first: one set of weights per example.",
                             "zh": "每张图的第一维都是批量维度：每个样本一组权重。"},
    "ex.ch00.shapes.squeezed": {"en": "keep the axes of length 1: each map must broadcast against (B, C, H, W).",
                                "zh": "请保留长度为 1 的轴：每张图都要能与 (B, C, H, W) 广播。"},
    "ex.ch00.shapes.se": {"en": "SE's gate: what does it weigh, channels or positions? It has no spatial extent.",
                          "zh": "SE 的门控给什么加权，通道还是位置？它没有空间上的延展。"},
    "ex.ch00.shapes.cbam": {"en": "CBAM's spatial map is one weight per position, shared by all channels.",
                            "zh": "CBAM 的空间图每个位置一个权重，所有通道共用。"},
    "ex.ch00.shapes.bam": {"en": "BAM adds its channel and spatial branches into one map: what shape does that "
                                 "broadcast give?",
                           "zh": "BAM 把通道分支和空间分支相加成一张图：广播之后是什么形状？"},
    "ex.ch00.dist.not_bool": {"en": "return one truth value, True or False; your function returned {what}.",
                              "zh": "请返回一个布尔值（True 或 False）；你的函数返回的是 {what}。"},
    "ex.ch00.dist.tolerance": {"en": "a true distribution was rejected: its sums are computed in floating point and "
                                     "need not be exactly 1; compare within a tolerance.",
                               "zh": "一个真正的概率分布被判成了“不是”：它的和是用浮点数算出来的，不一定恰好等于 1；"
                                     "请在一定容差内比较。"},
    "ex.ch00.dist.axis": {"en": "weights that sum to 1 along dim = 1 were rejected: sum along the axis dim you are "
                                  "given, whichever it is.",
                            "zh": "一组沿 dim = 1 加起来等于 1 的权重被判成了“不是”：请沿传入的 dim 求和，无论它是哪个轴。"},
    "ex.ch00.dist.gate": {"en": "a sigmoid gate was accepted: its weights lie in (0, 1), but do they sum to 1?",
                          "zh": "一个 sigmoid 门控被判成了概率分布：它的权重都在 (0, 1) 之间，但加起来等于 1 吗？"},
    "ex.ch00.dist.negative": {"en": "weights that sum to 1 but include negative values were accepted.",
                              "zh": "一组加起来等于 1、但含有负值的权重被判成了概率分布。"},
    "ex.ch00.dist.dim": {"en": "the weights sum to 1 along another axis than dim, and your function said yes: sum "
                               "along dim only.",
                         "zh": "这些权重是沿 dim 以外的另一个轴加起来等于 1 的，而你的函数判成了“是”：只沿 dim 求和。"},
    "ex.ch00.dist.zero": {"en": "a true distribution with some weights exactly 0 (the rows of a causal mask's softmax) "
                                "was rejected: is 0 a non-negative weight in your test?",
                          "zh": "一个真正的概率分布被判成了“不是”：它有些权重恰好为 0（因果掩码之后 softmax 的各行就是这样）。"
                                "在你的判断里，0 算不算非负？"},
    "ex.ch00.dist.close": {"en": "weights that sum to 1.01 were accepted: the tolerance is too loose.",
                           "zh": "一组和为 1.01 的权重被判成了概率分布：容差太宽了。"},
    "ex.ch00.bytes.heads": {"en": "your count does not grow with the number of heads h: every head has its own map.",
                            "zh": "你的结果不随头数 h 增长：每个头都有自己的一张注意力图。"},
    "ex.ch00.bytes.batch": {"en": "your count does not grow with the batch size B: every example has its own maps.",
                            "zh": "你的结果不随批量大小 B 增长：每个样本都有自己的注意力图。"},
    "ex.ch00.bytes.linear": {"en": "your count grows linearly with N; how many weights does one map of N tokens hold?",
                             "zh": "你的结果随 N 线性增长；N 个词元的一张注意力图里有多少个权重？"},
    "ex.ch00.bytes.count": {"en": "that is the number of weights; the question asks for bytes (float32).",
                            "zh": "这是权重的个数；题目问的是字节数（float32）。"},
    "ex.ch00.bytes.unit": {"en": "your function returns {got}, which looks like a number of {unit}: return the "
                                 "number of bytes, a whole number.",
                           "zh": "你的函数返回 {got}，看起来是以 {unit} 为单位的数：请返回字节数，它是一个整数。"},
    "ex.ch00.bytes.width": {"en": "check the number of bytes per value: the maps are float32.",
                            "zh": "检查一下每个值占几个字节：这些注意力图是 float32。"},
    "ex.ch00.bytes.other": {"en": "for B = {B}, h = {h}, N = {N} your function gives {got}; count the weights of the "
                                  "maps, then their bytes.",
                            "zh": "B = {B}、h = {h}、N = {N} 时，你的函数给出 {got}；先数出注意力图中的权重个数，再换算成字节数。"},
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
    from matplotlib.ticker import MaxNLocator

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
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # indices: a few whole numbers
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        fig.colorbar(im, ax=ax, label=t("ch00.fig.weight"))
    fig.suptitle(t("ch00.fig.title"), wrap=True)
    return fig


def mechanism_browser():
    """Tabs (``al.format.Tabs``), one per family, listing its mechanisms, chapters and papers.

    Plain HTML with its own small script: the website shows it without a widget manager.
    """
    from ..toolkit.format import Tabs

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
        pages.append(f"<p>{note}</p><ul>{''.join(items)}</ul>")
    return Tabs([t(f"ch00.family.{f}") for f in FAMILIES], pages)


# ---------------------------------------------------------------- a trained gate on two images

#: Chapter 5's trained CBAM (seed 0) on the cue images: the same configuration as ``ch05_cbam.CBAM_DEMO`` (a test
#: checks it), so the model is trained once and cached for both chapters.
DEMO = CueCNN(attention="cbam")


@dataclass(frozen=True)
class TwoImages:
    """The CBAM maps of two validation images, trained and untrained: ``images`` (2, 3, H, W), ``boxes`` (2, 4);
    ``channel`` (2, C) and ``spatial`` (2, h, w) of the trained module; ``random_channel`` and
    ``random_spatial`` the same for a randomly initialised one (the same seed)."""
    images: torch.Tensor
    boxes: torch.Tensor
    channel: torch.Tensor
    spatial: torch.Tensor
    random_channel: torch.Tensor
    random_spatial: torch.Tensor

    def differences(self) -> dict:
        """The largest difference between the two images' weights, per map: trained and random."""
        diff = lambda m: (m[0] - m[1]).abs().max().item()   # noqa: E731
        return {"channel": diff(self.channel), "spatial": diff(self.spatial),
                "random_channel": diff(self.random_channel), "random_spatial": diff(self.random_spatial)}


@one_thread()
def two_images(indices: tuple = (0, 1), **kwargs) -> TwoImages:
    """Chapter 5's trained CBAM and a random one on two validation images (``kwargs`` go to ``trained_demo``,
    which trains the model on a cold cache: so not under ``no_grad``)."""
    demo = trained_demo(DEMO, **kwargs)
    model, val = demo.model.cpu(), demo.val_data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO.seed)
        random_model = TinyCNN("cbam", width=DEMO.width, reduction=DEMO.reduction).eval()
    images = val.images[list(indices)]                                         # (2, 3, H, W)
    with torch.no_grad():
        a = model.attention.attention_map(model.features(images))
        b = random_model.attention.attention_map(random_model.features(images))
    return TwoImages(images, val.boxes[list(indices)], a.channel[:, :, 0, 0], a.spatial[:, 0],
                     b.channel[:, :, 0, 0], b.spatial[:, 0])


class AttentionPair(NamedTuple):
    """A randomly initialised self-attention layer's map (head 1) on two random inputs: the largest difference
    between them, ``diff``, and the range of their weights, ``low`` .. ``high``."""
    diff: float
    low: float
    high: float


@torch.no_grad()
def random_attention_pair(seed: int = 0) -> AttentionPair:
    """The registry's self-attention at its example size, randomly initialised (``seed``), on two random inputs:
    a dot-product map depends on its input before any training."""
    mech = MECHANISMS["self_attention"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = mech.build().eval()
    g = torch.Generator().manual_seed(seed)
    maps = torch.cat([module.attention_map(mech.example_input(1, generator=g))[:, 0] for _ in range(2)])  # (2, N, N)
    return AttentionPair((maps[0] - maps[1]).abs().max().item(), maps.min().item(), maps.max().item())


def print_differences(two: TwoImages, pair: Optional[AttentionPair] = None) -> None:
    """One line for the two CBAMs and, given ``pair``, one for the random self-attention."""
    d = two.differences()
    print(t("ch00.two.numbers", c=d["channel"], s=d["spatial"], rc=d["random_channel"], rs=d["random_spatial"]))
    if pair is not None:
        print(t("ch00.two.attention", d=pair.diff, low=pair.low, high=pair.high))


def check_gate_readings(two: TwoImages, pair: AttentionPair) -> None:
    """The sentences of §2: this trained CBAM gives two images visibly different weights, the same CBAM untrained
    hardly does, and a randomly initialised self-attention map does."""
    d = two.differences()
    rd.expect("the trained CBAM's two maps differ by more than 0.3, both the channel gate and the spatial map",
              min(d["channel"], d["spatial"]) > 0.3, **d)
    rd.expect("the untrained CBAM's differ by less than 0.01, under a fiftieth of the trained differences",
              max(d["random_channel"], d["random_spatial"]) < min(0.01, min(d["channel"], d["spatial"]) / 50), **d)
    rd.expect("a randomly initialised self-attention map already differs between two random inputs by more than "
              "half the range of its weights", pair.diff > 0.5 * (pair.high - pair.low), pair=pair)
    peaks = data.box_scores(two.spatial, two.boxes, two.images.shape[-1]).peak_in_box
    rd.expect("the trained spatial map is highest on the target in both images", peaks == 1.0, peak_on_target=peaks)
    switched = int(((two.channel.amax(0) > 0.9) & (two.channel.amin(0) < 0.1)).sum())
    rd.expect("the channel gate switches whole channels on in one image and off in the other",
              switched >= 1, channels_switched=switched)


def plot_two_images(two: TwoImages):
    """The two images with the trained M_s over each (box in cyan) and, below, both images' channel gates M_c."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from ..toolkit.figure_output import PAGE_WIDTH_IN

    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 6.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.25, 1))
    axes = top.subplots(1, 2)
    norm = Normalize(0, 1)
    size = two.images.shape[-1]
    for i, ax in enumerate(axes):
        ax.imshow(two.images[i].permute(1, 2, 0).clamp(0, 1).numpy(), extent=(-0.5, size - 0.5, size - 0.5, -0.5))
        ax.imshow(two.spatial[i].numpy(), cmap="inferno", norm=norm, alpha=0.55, interpolation="bilinear",
                  extent=(-0.5, size - 0.5, size - 0.5, -0.5))
        x0, y0, x1, y1 = two.boxes[i].tolist()
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5, edgecolor="cyan"))
        ax.set(title=t("ch00.two.image", i=i), xlabel=t("ch00.two.x"), ylabel=t("ch00.two.y"))
    top.colorbar(ScalarMappable(norm=norm, cmap="inferno"), ax=list(axes), label=t("ch00.two.value"), shrink=0.9)
    ax = bottom.subplots()
    order = torch.argsort(two.channel[0], descending=True)                    # (C,)
    for i, marker in ((0, "o"), (1, "s")):
        ax.plot(range(len(order)), two.channel[i, order].numpy(), marker, ms=4, label=t("ch00.two.legend", i=i))
    ax.set(title=t("ch00.two.gate"), xlabel=t("ch00.two.channel"), ylabel=t("ch00.two.weight"), ylim=(-0.05, 1.05))
    ax.legend(loc="center right")
    ax.grid(True, alpha=0.3)
    fig.suptitle(t("ch00.two.title"))
    return fig


# ---------------------------------------------------------------- the two axes of the family tree

#: The columns of the two-way table: how the weights are normalised and applied.
KINDS = ("gate", "residual", "distribution")


@torch.no_grad()
def kind(name: str) -> str:
    """How mechanism ``name`` normalises and applies its weights, *measured* on its example input:
    ``"distribution"`` when its map is non-negative and sums to 1 along an axis of length > 1, else
    ``"residual"`` when ``forward(x) == x * (1 + map)``, else ``"gate"`` (``forward(x) == x * map``, the map in (0, 1))."""
    mech = MECHANISMS[name]
    torch.manual_seed(0)
    module = mech.build().eval()
    x = mech.example_input(2, generator=torch.Generator().manual_seed(0))
    weights = module.attention_map(x)
    if not isinstance(weights, torch.Tensor):                   # CBAM: the channel gate, then the spatial map
        product = weights.channel * weights.spatial
        if torch.allclose(module(x), x * product, atol=1e-5):
            return "gate"
        raise ValueError(f"kind: {name}'s maps do not reproduce its forward")
    if weights.min() >= 0 and any(weights.shape[d] > 1 and torch.allclose(weights.sum(d), torch.ones(()), atol=1e-5)
                                  for d in range(1, weights.dim())):
        return "distribution"
    if weights.shape == x.shape and torch.allclose(module(x), x * (1 + weights), atol=1e-5):
        return "residual"
    if 0 < weights.min() and weights.max() < 1 and torch.allclose(module(x), x * weights, atol=1e-5):
        return "gate"
    raise ValueError(f"kind: {name}'s map is neither a gate nor a distribution")


@torch.no_grad()
def spatial_part(name: str) -> Optional[str]:
    """How a mechanism that weights channels and positions weights the positions, *measured* on its example
    input: ``"map"`` when its attention holds a spatial map of its own, one weight per position shared by the
    channels (CBAM's ``M_s``, ``(B, 1, H, W)``); ``"joint"`` when it has one map, of the input's shape, that varies
    over the positions (BAM's ``σ(M_c + M_s)``: its spatial branch is a logit added inside the sigmoid, not a
    map of its own); ``None`` when no weight depends on the position."""
    mech = MECHANISMS[name]
    torch.manual_seed(0)
    module = mech.build().eval()
    x = mech.example_input(2, generator=torch.Generator().manual_seed(0))
    weights = module.attention_map(x)
    spatial = getattr(weights, "spatial", None)
    if spatial is not None and spatial.shape[1] == 1 and spatial.shape[2:] == x.shape[2:]:
        return "map"
    if isinstance(weights, torch.Tensor) and weights.shape == x.shape and weights.dim() == 4:
        per_position = weights - weights.mean((2, 3), keepdim=True)                 # (B, C, H, W)
        if per_position.abs().max() > 1e-6:
            return "joint"
    return None


def taxonomy() -> dict:
    """``{(family, kind): [mechanism names]}``: every mechanism of the registry placed on both axes."""
    cells = {}
    for mech in by_chapter():
        cells.setdefault((mech.family, kind(mech.name)), []).append(mech.name)
    return cells


def taxonomy_table() -> Table:
    """The two-way table: rows what is reweighted (the registry's family), columns how the weights are
    normalised and applied (measured by :func:`kind`); each cell names its mechanisms and their chapters. No
    module is purely spatial: the spatial row names the spatial part of each module of the row "channels and
    positions" whose weights depend on the position, in that module's column (measured by :func:`spatial_part`)."""
    cells = taxonomy()
    rows = []
    for family in FAMILIES:
        row = [t(f"ch00.family.{family}")]
        for k in KINDS:
            if family == "spatial":
                parts = [(MECHANISMS[n].display_name(short=True), spatial_part(n)) for n in cells.get(("both", k), [])]
                row.append(t("ch00.axes.sep").join(t(f"ch00.axes.spatial_{part}", name=name)
                                                   for name, part in parts if part))
                continue
            row.append(t("ch00.axes.sep").join(t("ch00.axes.entry", name=MECHANISMS[n].display_name(),
                                                   n=MECHANISMS[n].chapter) for n in cells.get((family, k), [])))
        rows.append(row)
    return Table([t("ch00.axes.what")] + [t(f"ch00.axes.{k}") for k in KINDS], rows)


# ---------------------------------------------------------------- exercises

#: Exercise 1's input: (B, C, H, W).
EXERCISE_INPUT = (8, 256, 14, 14)


@exercise("ch00.shapes")
def _shapes(answer):
    shapes = (tuple, list, torch.Size)
    if not isinstance(answer, (tuple, list)) or len(answer) != 3 or not all(isinstance(a, shapes) for a in answer):
        return "ex.ch00.shapes.not_three", dict(what=describe(answer))
    got = [as_shape(a) for a in answer]
    B, C, H, W = EXERCISE_INPUT
    right = [(B, C, 1, 1), (B, 1, H, W), (B, C, H, W)]
    if got == right:
        return None
    if any(len(g) == len(r) - 1 and g == r[1:] for g, r in zip(got, right)):
        return "ex.ch00.shapes.batch"
    if any(g != r and len(g) < 4 and tuple(d for d in r if d != 1) == g for g, r in zip(got, right)):
        return "ex.ch00.shapes.squeezed"
    for key, g, r in zip(("se", "cbam", "bam"), got, right):
        if g != r:
            return f"ex.ch00.shapes.{key}"
    return None


def _distribution_cases():
    """``(weights, dim, is a distribution, slip a wrong verdict reveals)``, several sizes and axes."""
    g = torch.Generator().manual_seed(0)
    soft = torch.softmax(torch.randn(2, 4, 49, 49, generator=g), dim=-1)         # self-attention-like rows
    branches = torch.softmax(torch.randn(3, 2, 16, 1, 1, generator=g), dim=1)     # SK-like, over 2 branches
    gate = torch.sigmoid(torch.randn(3, 16, 1, 1, generator=g))                   # SE-like
    signed = torch.randn(5, 6, generator=g)
    signed = signed - signed.mean(1, keepdim=True) + 1 / 6                        # sums to 1, some negative
    mild = torch.tensor([[-0.2, 0.6, 0.6], [0.7, -0.3, 0.6]])                    # negative, yet none above 1
    n = 6                                                                         # a causal softmax: exact zeros
    causal = torch.randn(2, n, n, generator=g).masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    # the first case catches an exact comparison (== 1); once that passes, the second catches a fixed axis
    return [(soft, -1, True, "ex.ch00.dist.tolerance"), (branches, 1, True, "ex.ch00.dist.axis"),
            (gate, 1, False, "ex.ch00.dist.gate"), (signed, 1, False, "ex.ch00.dist.negative"),
            (mild, 1, False, "ex.ch00.dist.negative"), (causal.softmax(-1), 2, True, "ex.ch00.dist.zero"),
            (soft, 2, False, "ex.ch00.dist.dim"), (branches.transpose(1, 2), 1, False, "ex.ch00.dist.dim"),
            (soft * 1.01, -1, False, "ex.ch00.dist.close"), (torch.full((4, 5), 0.2), 0, False, "ex.ch00.dist.dim"),
            (torch.full((4, 5), 0.2), 1, True, "ex.ch00.dist.tolerance")]


@exercise("ch00.distribution")
def _is_distribution(answer):
    is_distribution = as_function(answer, usage="is_distribution(w, dim)")
    for w, dim, right, slip in _distribution_cases():
        got = call(is_distribution, w, dim, names=("w", "dim"))
        if isinstance(got, torch.Tensor) and got.numel() == 1 and got.dtype == torch.bool:
            got = bool(got)
        if not isinstance(got, bool):
            return "ex.ch00.dist.not_bool", dict(what=describe(got))
        if got != right:
            return slip
    return None


#: The sizes exercise 3's check tries: (B, h, N).
BYTES_SIZES = ((1, 1, 196), (2, 8, 196), (4, 12, 50), (3, 2, 7))


@exercise("ch00.map_bytes")
def _map_bytes(answer):
    map_bytes = as_function(answer, usage="map_bytes(B, h, N)")
    for B, h, N in BYTES_SIZES:              # a slip that one size hides (B = h = 1), a later size shows
        raw = call(map_bytes, B, h, N, names=("B", "h", "N"))
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):   # bytes divided into a larger unit
            for unit, size in (("KiB", 2 ** 10), ("MiB", 2 ** 20), ("GiB", 2 ** 30), ("kB", 1e3), ("MB", 1e6)):
                if abs(raw - 4 * B * h * N * N / size) <= 1e-6 * 4 * B * h * N * N / size:
                    return "ex.ch00.bytes.unit", dict(got=f"{raw:.4g}", unit=unit)
        got = as_count(raw)
        if got == 4 * B * h * N * N:
            continue
        slips = {2 * B * h * N * N: "ex.ch00.bytes.width", 8 * B * h * N * N: "ex.ch00.bytes.width",
                 B * h * N * N: "ex.ch00.bytes.count", 4 * B * h * N: "ex.ch00.bytes.linear",
                 4 * h * N * N: "ex.ch00.bytes.batch", 4 * B * N * N: "ex.ch00.bytes.heads"}   # later keys win
        return slips.get(got, ("ex.ch00.bytes.other", dict(B=B, h=h, N=N, got=got)))
    return None
