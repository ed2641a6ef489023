"""Plots of every kind of attention map, one function per kind, in the language chosen by ``setup``.

Each function takes the map as a tensor or array (any device, any float dtype), draws with a title,
labelled axes and a colour bar wherever colour carries a value, and returns the matplotlib Figure.
``ax=None`` makes a new figure; pass an Axes to draw into an existing one.
In a notebook, end the call with ``;`` (or assign it) so the figure is not shown twice.

Every new figure follows the site's rule (:mod:`~attention_lib.toolkit.figure_output`): at most
``PAGE_WIDTH_IN`` wide, no text under ``MIN_FONT_PT``. :func:`page_grid` lays panels out in rows that fit
the width, and :func:`fit_ticks` thins tick labels so that they do not collide at that size.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.cm import ScalarMappable
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .figure_output import MIN_FONT_PT, PAGE_WIDTH_IN
from .i18n import register, t

register({
    "viz.heads.title": {"en": "Self-attention weights per head", "zh": "各注意力头的自注意力权重"},
    "viz.heads.head": {"en": "head {i}", "zh": "头 {i}"},
    "viz.query": {"en": "query token", "zh": "查询词元"},
    "viz.key": {"en": "key token", "zh": "键词元"},
    "viz.weight": {"en": "attention weight", "zh": "注意力权重"},
    "viz.memory.title": {"en": "External Attention: tokens → memory slots",
                         "zh": "外部注意力：词元 → 槽位"},
    "viz.memory.slot": {"en": "memory slot", "zh": "槽位"},
    "viz.token": {"en": "token", "zh": "词元"},
    "viz.gate.title": {"en": "Channel attention gate", "zh": "通道注意力门控"},
    "viz.gate.channel": {"en": "channel", "zh": "通道"},
    "viz.gate.channel_sorted": {"en": "channel (sorted by gate value)", "zh": "通道（按门控值排序）"},
    "viz.gate.value": {"en": "gate value", "zh": "门控值"},
    "viz.gate.first": {"en": "gate", "zh": "门控"},
    "viz.gate.second": {"en": "comparison", "zh": "对照"},
    "viz.spatial.title": {"en": "Spatial attention map", "zh": "空间注意力图"},
    "viz.spatial.x": {"en": "x (pixels)", "zh": "x（像素）"},
    "viz.spatial.y": {"en": "y (pixels)", "zh": "y（像素）"},
    "viz.spatial.value": {"en": "spatial weight", "zh": "空间权重"},
    "viz.gallery.title": {"en": "Spatial attention maps (the target's box outlined)",
                          "zh": "空间注意力图（方框为目标框）"},
    "viz.gallery.image": {"en": "image", "zh": "图像"},
    "viz.gallery.index": {"en": "image {i}", "zh": "图像 {i}"},
    "viz.sk.title": {"en": "Selective Kernel: branch weights per channel",
                     "zh": "选择性卷积核：各通道的分支权重"},
    "viz.sk.branch": {"en": "branch (kernel size)", "zh": "分支（卷积核大小）"},
    "viz.sk.branch_i": {"en": "branch {i}", "zh": "分支 {i}"},
    "viz.sk.weight": {"en": "branch weight", "zh": "分支权重"},
    "viz.trace.title": {"en": "Shape trace: {name}", "zh": "形状追踪：{name}"},
    "viz.trace.input": {"en": "input", "zh": "输入"},
    "viz.trace.output": {"en": "output", "zh": "输出"},
    "viz.trace.module": {"en": "module", "zh": "模块"},
    "viz.trace.function": {"en": "tensor operation", "zh": "张量运算"},
    "viz.trace.view": {"en": "reshape / index", "zh": "变形 / 索引"},
    "viz.trace.params": {"en": "{n} parameters", "zh": "{n} 个参数"},
    "viz.trace.more": {"en": "… {n} more steps", "zh": "……另有 {n} 步"},
    "viz.all_zero": {"en": "all entries are 0", "zh": "所有元素均为 0"},
})

_KIND_COLOURS = {"module": "#cfe2f3", "function": "#fce5cd", "view": "#eeeeee"}
MAX_TICK_LABELS = 40


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a tensor or array, got {type(x).__name__}") from None


def _new_axes(ax: Axes | None, figsize) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH_IN, figsize[0]), figsize[1]), layout="constrained")
    return fig, ax


def page_grid(n: int, panel: tuple[float, float], *, max_cols: int | None = None, extra: tuple[float, float] = (0.6, 0.8),
              **subplots) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels in rows that fit the page: as many columns of ``panel`` = (width, height)
    inches as the page width allows (at most ``max_cols``), then more rows; ``extra`` = (width, height)
    inches for what surrounds the panels (labels, colour bar, title). Returns the figure and the ``n``
    axes in reading order (unused grid cells are removed)."""
    if n < 1:
        raise ValueError(f"page_grid: expected at least one panel, got {n}")
    fit = max(1, int((PAGE_WIDTH_IN - extra[0]) / panel[0] + 1e-9))
    cols = max(1, min(n, fit, max_cols or n))
    rows = -(-n // cols)
    size = (min(PAGE_WIDTH_IN, cols * panel[0] + extra[0]), rows * panel[1] + extra[1])
    fig, axes = plt.subplots(rows, cols, figsize=size, layout="constrained", squeeze=False, **subplots)
    flat = list(axes.ravel())
    for unused in flat[n:]:
        unused.remove()
    return fig, flat[:n]


def fit_ticks(ax: Axes, positions: Sequence[float], labels: Sequence[str], axis: str = "x", *,
              length_in: float, rotation: float = 0, **kw) -> None:
    """Tick labels on ``axis`` at the figures' smallest font, every k-th one so that neighbours do not
    collide over ``length_in`` inches of axis (a rotated label needs its line height, a flat one its width)."""
    labels = [str(v) for v in labels]
    if not labels:
        return
    per_char = 0.62 * MIN_FONT_PT / 72                # inches per character, near enough for DejaVu and CJK
    need = 1.6 * MIN_FONT_PT / 72 if rotation else max(len(v) for v in labels) * per_char + 0.12
    step = max(1, int(np.ceil(need * len(labels) / max(length_in, 1e-3))))
    idx = list(range(0, len(labels), step))
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks([positions[i] for i in idx], [labels[i] for i in idx], rotation=rotation, **kw)


#: CJK punctuation, ideographs and full-width forms, as a regex class (written as escapes for ``re``).
_CJK_CLASS = "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in
                     ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF)))
CJK = re.compile(f"[{_CJK_CLASS}]")
#: a CJK character, a product such as ``(16 × 16):`` (never broken at its spaced ×), a word, a space
_LABEL_TOKENS = re.compile(f"[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+(?: × [^\\s{_CJK_CLASS}]+)+|[^\\s{_CJK_CLASS}]+|\\s+")
_NO_LINE_START = "：，、）。；！？”"
_PHRASE_END = "，、；："                  # CJK marks after which a line may end early
_PHRASE_START = "（“"                     # and before which one may


def wrap_label(text: str, width: int = 16) -> str:
    """``text`` in lines of at most ``width`` columns (a CJK character counts as two; a longer word keeps its
    own line), broken between words or CJK characters, never before closing punctuation, and after a CJK
    comma or enumeration mark, or before an opening bracket, where one falls in the line's second half (so that
    取平均 is not cut into 取 / 平均): a row, panel or tick label that fits beside a small panel."""
    lines, line, used = [], [], 0          # line: (token, columns) pairs of the line being filled
    for token in _LABEL_TOKENS.findall(text):
        if token.isspace():
            if line:
                line, used = line + [(" ", 1)], used + 1
            continue
        size = 2 * len(token) if CJK.match(token) else len(token)
        if any(not tok.isspace() for tok, _ in line) and used + size > width and token not in _NO_LINE_START:
            cut, upto = len(line), 0       # a phrase break in the line's second half, if any
            for i, (tok, cols) in enumerate(line):
                if tok in _PHRASE_START and 2 * upto >= width and i > 0:
                    cut = i
                upto += cols
                if tok in _PHRASE_END and 2 * upto >= width and i + 1 < len(line):
                    cut = i + 1
            lines.append("".join(tok for tok, _ in line[:cut]).rstrip())
            line = line[cut:]
            while line and line[0][0].isspace():
                line = line[1:]
            used = sum(cols for _, cols in line)
        line, used = line + [(token, size)], used + size
    lines.append("".join(tok for tok, _ in line).rstrip())
    return "\n".join(x for x in lines if x)


_SPACED_TIMES = re.compile(r"(?<=[^\s{0}]) × (?=[^\s{0}])".format(_CJK_CLASS))


def tight_times(text: str) -> str:
    """``text`` with its spaced products closed up (``3 × 3`` -> ``3×3``): for a tick label that must fit a
    narrow slot. Prose, captions and alt text keep the book's spaced ``×``."""
    return _SPACED_TIMES.sub("×", text)


def _integer_ticks(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _token_ticks(ax: Axes, tokens: Sequence[str] | None, n: int, axis: str, length_in: float) -> None:
    if tokens is None:
        return
    if len(tokens) != n:
        raise ValueError(f"tokens: expected {n} labels (one per position), got {len(tokens)}")
    if n > MAX_TICK_LABELS:
        return
    labels = [str(tok) for tok in tokens]
    if axis in ("x", "both"):
        fit_ticks(ax, range(n), labels, "x", length_in=length_in, rotation=90)
    if axis in ("y", "both"):
        fit_ticks(ax, range(n), labels, "y", length_in=length_in, rotation=90)
        ax.tick_params(axis="y", labelrotation=0)


def plot_heads(attn: Any, tokens: Sequence[str] | None = None, *, ax: Axes | Sequence[Axes] | None = None,
               batch_index: int = 0, max_heads: int = 16, cols: int = 4, title: str | None = None) -> Figure:
    """Self-attention weights as a grid of heat maps, one per head, sharing one colour scale.

    ``attn``: ``(heads, N, N)``, ``(B, heads, N, N)`` (``batch_index`` is shown) or ``(N, N)``.
    ``tokens``: N labels for the query (rows) and key (columns) axes. ``ax``: one Axes per head shown.
    """
    a = _to_numpy(attn, "plot_heads")
    if a.ndim == 4:
        a = a[batch_index]
    elif a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"plot_heads: expected attention of shape (heads, N, N) or (B, heads, N, N), "
                         f"got {tuple(np.shape(attn))}")
    a = a[:max_heads]
    heads, n_q, n_k = a.shape
    grid = ax is None
    side = 1.45                              # inches per head: four heads and a colour bar fill the page width
    if grid:
        fig, axes = page_grid(heads, (side, side), max_cols=cols, extra=(1.4, 0.9), sharex=True, sharey=True)
        cols = max(1, min(cols, heads, int((PAGE_WIDTH_IN - 1.4) / side + 1e-9)))
    else:
        axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
        if len(axes) < heads:
            raise ValueError(f"plot_heads: need {heads} Axes (one per head), got {len(axes)}")
        fig = axes[0].figure
    vmax = float(a.max()) if a.size else 1.0
    for i, axis in enumerate(axes[:heads]):
        im = axis.imshow(a[i], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto")
        axis.set_title(t("viz.heads.head", i=i))
        _integer_ticks(axis)
        _token_ticks(axis, tokens, n_k, "x", side)
        _token_ticks(axis, tokens, n_q, "y", side)
        if grid:
            # Shared axes: tick labels on the outer edge only (fewer texts to lay out, easier to read).
            axis.tick_params(labelbottom=(i + cols >= heads), labelleft=(i % cols == 0))
        else:
            axis.set_xlabel(t("viz.key"))
            axis.set_ylabel(t("viz.query"))
    if grid:
        fig.supxlabel(t("viz.key"))
        fig.supylabel(t("viz.query"))
    fig.colorbar(im, ax=axes[:heads], label=t("viz.weight"), shrink=0.9)
    fig.suptitle(title or t("viz.heads.title"))
    return fig


def plot_memory_map(attn: Any, tokens: Sequence[str] | None = None, *, ax: Axes | None = None,
                    batch_index: int = 0, head: int | None = None, title: str | None = None) -> Figure:
    """External attention's token-to-memory-slot weights as a heat map (rows: tokens, columns: slots).

    ``attn``: ``(N, S)``, ``(B, N, S)`` or multi-head ``(B, heads, N, S)`` (``head`` shown, or the
    mean over heads when ``head`` is None).
    """
    a = _to_numpy(attn, "plot_memory_map")
    if a.ndim == 4:
        a = a[batch_index]
        a = a.mean(0) if head is None else a[head]
    elif a.ndim == 3:
        a = a[batch_index]
    if a.ndim != 2:
        raise ValueError(f"plot_memory_map: expected (N, S), (B, N, S) or (B, heads, N, S), got {np.shape(attn)}")
    n, s = a.shape
    height = min(6.0, 2.0 + 0.12 * n)
    fig, ax = _new_axes(ax, (2.5 + 0.12 * s, height))
    im = ax.imshow(a, cmap="viridis", vmin=0.0, interpolation="nearest", aspect="auto")
    ax.set_xlabel(t("viz.memory.slot"))
    ax.set_ylabel(t("viz.token"))
    _integer_ticks(ax)
    _token_ticks(ax, tokens, n, "y", height - 1.2)
    ax.set_title(title or t("viz.memory.title"))
    fig.colorbar(im, ax=ax, label=t("viz.weight"))
    return fig


def _gate_vector(gate: Any, batch_index: int, name: str) -> np.ndarray:
    g = _to_numpy(gate, name)
    if g.ndim == 4:                    # (B, C, 1, 1)
        if g.shape[2:] != (1, 1):
            raise ValueError(f"{name}: expected a channel gate (C,), (B, C) or (B, C, 1, 1), got {g.shape}")
        g = g[batch_index, :, 0, 0]
    elif g.ndim == 2:                  # (B, C)
        g = g[batch_index]
    if g.ndim != 1:
        raise ValueError(f"{name}: expected a channel gate (C,), (B, C) or (B, C, 1, 1), got {g.shape}")
    return g


def plot_channel_gate(gate: Any, *, sort: bool = False, compare: Any = None, labels: Sequence[str] | None = None,
                      ax: Axes | None = None, batch_index: int = 0, title: str | None = None) -> Figure:
    """A channel gate (SE, ECA, CBAM's channel part) as bars, in channel order or sorted by value.

    ``gate``: ``(C,)``, ``(B, C)`` or ``(B, C, 1, 1)``. ``compare``: a second gate of the same C drawn
    beside it (for example a randomly initialised module next to a trained one); ``labels`` name the
    two. With ``sort`` the channels are ordered by the first gate's value, largest first.
    """
    g = _gate_vector(gate, batch_index, "plot_channel_gate")
    other = None if compare is None else _gate_vector(compare, batch_index, "plot_channel_gate(compare)")
    if other is not None and other.shape != g.shape:
        raise ValueError(f"plot_channel_gate: compare must have {g.shape[0]} channels, got {other.shape[0]}")
    order = np.argsort(-g, kind="stable") if sort else np.arange(g.shape[0])
    c = g.shape[0]
    fig, ax = _new_axes(ax, (3.0 + 0.08 * c, 3.2))
    x = np.arange(c)
    names = list(labels) if labels is not None else [t("viz.gate.first"), t("viz.gate.second")]
    if other is None:
        ax.bar(x, g[order], width=0.85, color="#3d85c6", label=names[0])
    else:
        ax.bar(x - 0.2, g[order], width=0.4, color="#3d85c6", label=names[0])
        ax.bar(x + 0.2, other[order], width=0.4, color="#e69138", label=names[1])
        ax.legend(loc="upper center", ncol=2)       # above the bars: the y range leaves room for it
    in_unit = max(g.max(), 0 if other is None else other.max()) <= 1.0
    ax.set_ylim(0.0, (1.0 if other is None else 1.22) if in_unit else None)
    if in_unit:
        ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlim(-0.7, c - 0.3)
    ax.set_xlabel(t("viz.gate.channel_sorted") if sort else t("viz.gate.channel"))
    ax.set_ylabel(t("viz.gate.value"))
    if sort and c <= MAX_TICK_LABELS:
        fit_ticks(ax, x, [str(i) for i in order], "x", length_in=fig.get_figwidth() - 1.0, rotation=90)
    ax.set_title(title or t("viz.gate.title"))
    return fig


def _image_array(image: Any) -> np.ndarray:
    img = _to_numpy(image, "plot_spatial_map(image)")
    if img.ndim == 4:
        img = img[0]
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3, 4):
        img = img.transpose(1, 2, 0)              # (C, H, W) -> (H, W, C)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"plot_spatial_map: image must be (H, W), (H, W, 3) or (3, H, W), got {np.shape(image)}")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


def plot_spatial_map(attn: Any, image: Any = None, *, ax: Axes | None = None, alpha: float = 0.55,
                     batch_index: int = 0, title: str | None = None) -> Figure:
    """A spatial attention map (CBAM, BAM), alone or overlaid on the input image.

    ``attn``: ``(H, W)``, ``(1, H, W)`` or ``(B, 1, H, W)`` (BAM's ``(B, C, H, W)`` map: averaged over C).
    ``image``: ``(H', W')``, ``(H', W', 3)`` or ``(3, H', W')``; the map is stretched over it
    (it may be smaller, as after a strided backbone).
    """
    m = _to_numpy(attn, "plot_spatial_map")
    if m.ndim == 4:
        m = m[batch_index]
    if m.ndim == 3:
        m = m.mean(0)
    if m.ndim != 2:
        raise ValueError(f"plot_spatial_map: expected (H, W), (1, H, W) or (B, C, H, W), got {np.shape(attn)}")
    h, w = m.shape
    img = None if image is None else _image_array(image)
    ih, iw = (h, w) if img is None else img.shape[:2]
    fig, ax = _new_axes(ax, (5.6, min(6.0, 4.4 * ih / iw + 0.6)))
    extent = (-0.5, iw - 0.5, ih - 0.5, -0.5)
    if img is not None:
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, extent=extent, interpolation="bilinear")
    im = ax.imshow(m, cmap="inferno", alpha=alpha if img is not None else 1.0, extent=extent,
                   interpolation="bilinear" if img is not None else "nearest")
    ax.set_xlabel(t("viz.spatial.x"))
    ax.set_ylabel(t("viz.spatial.y"))
    ax.set_title(title or t("viz.spatial.title"))
    if img is None:
        _integer_ticks(ax)
    # The colour bar shows the map's colours at full opacity, not faded by the overlay's alpha.
    fig.colorbar(ScalarMappable(norm=im.norm, cmap=im.get_cmap()), ax=ax, label=t("viz.spatial.value"), shrink=0.85)
    return fig


def plot_sk_weights(weights: Any, kernel_sizes: Sequence[int] | None = None, *, ax: Axes | None = None,
                    batch_index: int = 0, title: str | None = None) -> Figure:
    """Selective Kernel's attention across branches, per channel, as a heat map (rows: branches).

    ``weights``: ``(K, C)``, ``(B, K, C)`` or ``(B, K, C, 1, 1)``; each column sums to 1.
    ``kernel_sizes`` labels the rows (``3×3``, ``5×5``...).
    """
    a = _to_numpy(weights, "plot_sk_weights")
    if a.ndim == 5:
        a = a[..., 0, 0]
    if a.ndim == 3:
        a = a[batch_index]
    if a.ndim != 2:
        raise ValueError(f"plot_sk_weights: expected (K, C), (B, K, C) or (B, K, C, 1, 1), got {np.shape(weights)}")
    k, c = a.shape
    if kernel_sizes is not None and len(kernel_sizes) != k:
        raise ValueError(f"plot_sk_weights: {k} branches but {len(kernel_sizes)} kernel sizes")
    fig, ax = _new_axes(ax, (3.0 + 0.08 * c, 1.6 + 0.45 * k))
    im = ax.imshow(a, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    names = ([f"{ks}×{ks}" for ks in kernel_sizes] if kernel_sizes is not None
             else [t("viz.sk.branch_i", i=i) for i in range(k)])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(range(k), names)
    ax.set_xlabel(t("viz.gate.channel"))
    ax.set_ylabel(t("viz.sk.branch"))
    ax.set_title(title or t("viz.sk.title"))
    fig.colorbar(im, ax=ax, label=t("viz.sk.weight"))
    return fig


def _shape_text(shapes) -> str:
    """``(2, 4)``; several outputs of one shape as ``3 × (2, 4)`` (unbind, chunk), otherwise one per line."""
    texts = ["(" + ", ".join(str(d) for d in s) + ")" for s in shapes]
    if len(texts) > 1 and len(set(texts)) == 1:
        return f"{len(texts)} × {texts[0]}"
    return ",\n".join(texts)


def plot_shape_trace(records: Sequence[Any], *, ax: Axes | None = None, views: bool = True,
                     max_steps: int = 24, title: str | None = None) -> Figure:
    """A flow diagram of a :func:`~attention_lib.instruments.trace_shapes` trace.

    From the input shape to the output shape, one box per step (leaf modules and tensor operations;
    container modules are left out), each with the shape it produces and, for modules, its parameter
    count. Box colours tell modules, tensor operations and reshapes apart. The boxes are read like
    text: left to right, row after row, as many to a row as the page width holds.
    """
    records = list(records)
    if not records:
        raise ValueError("plot_shape_trace: expected the records of trace_shapes, got an empty list")
    root = records[0]
    steps = [r for r in records[1:] if r.leaf and (views or r.kind != "view")]
    if root.leaf:                       # a single module with no children: it is its own step
        steps = [root]
    hidden = max(0, len(steps) - max_steps)
    steps = steps[:max_steps]

    # (text, colour, bold) of every box, in order: input, the steps, "... n more", output.
    items = [(f"{t('viz.trace.input')}\n{_shape_text(root.inputs)}", "white", True)]
    for rec in steps:
        head = rec.label if rec.label == rec.type else f"{rec.label} · {rec.type}"
        extra = f"\n{t('viz.trace.params', n=f'{rec.params:,}')}" if rec.kind == "module" and rec.params else ""
        items.append((f"{head}\n→ {_shape_text(rec.outputs)}{extra}", _KIND_COLOURS.get(rec.kind, "white"), False))
    if hidden:
        items.append((t("viz.trace.more", n=hidden), "white", False))
    items.append((f"{t('viz.trace.output')}\n{_shape_text(root.outputs)}", "white", True))

    # As many columns as the widest box allows on the page (inches per character at the figures' font).
    chars = max(len(line) for text, _, _ in items for line in text.split("\n"))
    box_in = chars * 0.62 * MIN_FONT_PT / 72 + 0.45
    cols = max(1, min(len(items), int(PAGE_WIDTH_IN // box_in), 4))
    rows = -(-len(items) // cols)
    lines = max(text.count("\n") + 1 for text, _, _ in items)
    row_in = 0.22 * lines + 0.45
    if ax is None:
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN if cols > 1 else box_in + 0.4, rows * row_in + 0.9),
                               layout="constrained")
    fig = ax.figure
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    arrow = dict(arrowstyle="-|>", color="#555555", lw=1.0, shrinkA=0, shrinkB=0)
    gap = 0.5 - (0.11 * lines + 0.12) / row_in              # from a box's edge to the middle of a row gap (rows)
    half_w = min(0.48, box_in / 2 / (PAGE_WIDTH_IN / cols)) if cols > 1 else 0.48   # half a box width (columns)
    for i, (text, colour, bold) in enumerate(items):
        r, c = divmod(i, cols)
        ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", linespacing=1.25,
                fontweight="bold" if bold else "normal",
                bbox=dict(boxstyle="round,pad=0.35", facecolor=colour, edgecolor="#555555"))
        if i + 1 == len(items):
            break
        if c + 1 < cols:                                      # to the right, in the same row
            ax.annotate("", xy=(c + 1.5 - half_w, r + 0.5), xytext=(c + 0.5 + half_w, r + 0.5), arrowprops=arrow)
        else:                                                 # down to the gap, back to the first column, down
            ax.plot([c + 0.5, c + 0.5, 0.5], [r + 1 - gap, r + 1.0, r + 1.0], color="#555555", lw=1.0)
            ax.annotate("", xy=(0.5, r + 1 + gap), xytext=(0.5, r + 1.0), arrowprops=arrow)
    kinds = [k for k in ("module", "function", "view") if any(r.kind == k for r in steps)]
    fig.legend(handles=[Patch(facecolor=_KIND_COLOURS[k], edgecolor="#555555", label=t(f"viz.trace.{k}"))
                        for k in kinds], loc="outside lower center", ncols=max(1, len(kinds)))
    ax.set_title(title or t("viz.trace.title", name=root.type))
    return fig


def plot_map_gallery(images: Any, rows: dict, *, boxes: Any = None, title: str | None = None,
                     vmin: float = 0.0, vmax: float = 1.0) -> Figure:
    """Images in the top row and, below, one row of spatial maps per entry of ``rows`` (label -> maps).

    ``images``: ``(G, 3, H, W)`` in [0, 1]; each ``maps``: ``(G, h, w)``, stretched over its image (a
    strided backbone makes h < H). ``boxes``: ``(G, 4)`` pixel boxes ``(x0, y0, x1, y1)`` (ends exclusive),
    outlined on every panel. All maps share one colour scale, ``vmin``..``vmax``, and one colour bar.
    """
    imgs = _to_numpy(images, "plot_map_gallery(images)")
    if imgs.ndim != 4 or imgs.shape[1] != 3:
        raise ValueError(f"plot_map_gallery: images must be (G, 3, H, W), got {imgs.shape}")
    g, _, ih, iw = imgs.shape
    maps = {label: _to_numpy(m, "plot_map_gallery(rows)") for label, m in rows.items()}
    for label, m in maps.items():
        if m.ndim != 3 or m.shape[0] != g:
            raise ValueError(f"plot_map_gallery: maps {label!r} must be ({g}, h, w), got {m.shape}")
    box = None if boxes is None else _to_numpy(boxes, "plot_map_gallery(boxes)")
    labels = [wrap_label(label) for label in (t("viz.gallery.image"), *maps)]
    label_in = max(len(line) for label in labels for line in label.splitlines()) * 0.62 * MIN_FONT_PT / 72
    label_in *= 2 if CJK.search("".join(labels)) else 1           # a CJK character is about twice as wide
    side = min(1.5, (PAGE_WIDTH_IN - 1.3 - label_in) / g)       # every image in one row, the labels beside
    rows_in = side * ih / iw * (1 + len(maps))
    fig, axes = plt.subplots(1 + len(maps), g, figsize=(min(PAGE_WIDTH_IN, side * g + 1.3 + label_in),
                                                        max(rows_in, 0.45 * sum(len(x.splitlines()) for x in labels))
                                                        + 1.0),
                             layout="compressed", squeeze=False)   # "constrained" let the fixed-aspect
                                                                   # images push a long row label off the page
    extent = (-0.5, iw - 0.5, ih - 0.5, -0.5)
    im = None
    for j in range(g):
        axes[0, j].imshow(np.clip(imgs[j].transpose(1, 2, 0), 0, 1), extent=extent)
        for i, m in enumerate(maps.values(), start=1):
            im = axes[i, j].imshow(m[j], cmap="inferno", vmin=vmin, vmax=vmax, extent=extent,
                                   interpolation="nearest")
        for i in range(1 + len(maps)):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            if box is not None:
                x0, y0, x1, y1 = box[j]
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2,
                                           edgecolor="cyan"))
        axes[-1, j].set_xlabel(str(j) if g > 6 else t("viz.gallery.index", i=j))
    for i, label in enumerate(labels):     # horizontal, beside its row: rotated labels of short rows overlap
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", labelpad=6)
    if im is not None:
        fig.colorbar(im, ax=axes[1:, :].ravel().tolist(), label=t("viz.spatial.value"), shrink=0.9)
    fig.suptitle(wrap_title(fig, title or t("viz.gallery.title")))
    return fig


def wrap_title(fig: Figure, text: str) -> str:
    """``text`` in lines that fit ``fig``'s width at the figure title's size (a long title would widen the
    saved picture past the page's column; about 0.6 em a column, a CJK character two columns)."""
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=plt.rcParams["figure.titlesize"]).get_size_in_points()
    return wrap_label(text, width=max(16, int(fig.get_figwidth() * 72 / (0.6 * size))))


# ---------------------------------------------------------------- block diagrams

def diagram_box(ax: Axes, x: float, y: float, text: str, width: float, height: float = 7.0, colour: str = "#eef3fb",
                edge: str = "#4a6fa5", **kw) -> None:
    """A rounded box centred at (x, y), in data units, with ``text`` in it: the unit of a block diagram."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.4",
                                facecolor=colour, edgecolor=edge, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", **kw)


def diagram_arrow(ax: Axes, start: tuple, end: tuple, **kw) -> None:
    """An arrow from ``start`` to ``end`` (data units) between the boxes of a block diagram."""
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.2, **kw))
