"""Chapter 01's figures: one named function per figure, with their strings (the notebook calls them through
``ch01_self_attention``, which re-exports them). Kept apart only to keep each file readable in one sitting.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

from ..toolkit import figures, viz  # noqa: F401  (their strings: figures.*, viz.*)
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.viz import page_grid
from ..toolkit.format import fit_slope
from ..toolkit.i18n import register, t

register({
    # §1
    "ch01.lookup.title": {"en": "Patches of a photograph as tokens: where does a query patch look?",
                          "zh": "把照片的图像块当作词元：查询图像块看向哪里？"},
    "ch01.lookup.photo": {"en": "photograph", "zh": "照片"},
    "ch01.lookup.query": {"en": "query: patch ({r}, {c})", "zh": "查询：图像块 ({r}, {c})"},
    # §2
    "ch01.scale.title": {"en": "Why divide by √d_k: random q, k, 32 keys per query",
                         "zh": "为什么要除以 √d_k：随机的 q、k，每个查询 32 个键"},
    "ch01.scale.d_k": {"en": "key width d_k", "zh": "键的维度 d_k"},
    "ch01.scale.raw": {"en": "q·k", "zh": "q·k"},
    "ch01.scale.scaled": {"en": "q·k / √d_k", "zh": "q·k / √d_k"},
    "ch01.scale.var": {"en": "variance of the scores", "zh": "分数的方差"},
    "ch01.scale.var_title": {"en": "Scores spread out", "zh": "分数越来越分散"},
    "ch01.scale.max": {"en": "largest weight (mean)", "zh": "最大权重（均值）"},
    "ch01.scale.max_title": {"en": "Softmax saturates", "zh": "softmax 饱和"},
    "ch01.scale.grad_mean": {"en": "‖∂A/∂q‖, mean", "zh": "‖∂A/∂q‖ 的均值"},
    "ch01.scale.grad_mean_title": {"en": "Mean gradient: a few large", "zh": "梯度均值：少数很大"},
    "ch01.scale.grad_median": {"en": "‖∂A/∂q‖, median", "zh": "‖∂A/∂q‖ 的中位数"},
    "ch01.scale.grad_median_title": {"en": "Median gradient: most vanish", "zh": "梯度中位数：多数消失"},
    "ch01.heads.title": {"en": "Splitting D into h heads: a view, then a transpose",
                         "zh": "把 D 拆成 h 个头：先 view，再 transpose"},
    "ch01.heads.before": {"en": "$Q = XW^Q$: (N, D) = ({N}, {D})", "zh": "$Q = XW^Q$, (N, D) = ({N}, {D})"},
    "ch01.heads.after": {"en": "view(N, h, d_k).transpose(0, 1): (h, N, d_k) = ({h}, {N}, {d})",
                         "zh": "view(N, h, d_k).transpose(0, 1)：(h, N, d_k) = ({h}, {N}, {d})"},
    "ch01.heads.token": {"en": "token", "zh": "词元"},
    "ch01.heads.feature": {"en": "feature (column of $W^Q$)", "zh": "特征（查询投影矩阵的列）"},
    "ch01.heads.per_head": {"en": "each head: d_k = {d} columns, all N tokens", "zh": "每个头：d_k = {d} 列，全部 N 个词元"},
    # (matplotlib's mathtext has no CJK glyphs: a Chinese string never mixes $...$ with Chinese text)
    # §3
    "ch01.masks.title": {"en": "Masks decide which keys each query may see", "zh": "掩码决定每个查询能看到哪些键"},
    "ch01.masks.causal_mask": {"en": "causal mask", "zh": "因果掩码"},
    "ch01.masks.causal_weights": {"en": "weights with the causal mask", "zh": "加因果掩码后的权重"},
    "ch01.masks.padding_mask": {"en": "padding mask (last 2 keys are padding)",
                                "zh": "填充掩码（最后 2 个键是填充）"},
    "ch01.masks.padding_weights": {"en": "weights with the padding mask", "zh": "加填充掩码后的权重"},
    "ch01.masks.allowed": {"en": "True: may attend", "zh": "True：可以关注"},
    "ch01.masks.blocked": {"en": "False: blocked", "zh": "False：被屏蔽"},
    "ch01.patches.title": {"en": "An image becomes a sequence of patch tokens", "zh": "图像变成由图像块组成的词元序列"},
    "ch01.patches.image": {"en": "{H} × {W} image, P = {P}", "zh": "{H} × {W} 的图像，P = {P}"},
    "ch01.patches.sequence": {"en": "the N = {N} patches in token order, each {d} numbers before E",
                              "zh": "按词元顺序排列的 N = {N} 个图像块，每块在乘 E 之前有 {d} 个数"},
    # §5
    "ch01.cost.title": {"en": "FLOPs of one self-attention layer, D = {D}", "zh": "一层自注意力的浮点运算次数（D = {D}）"},
    "ch01.cost.projections": {"en": "projections $W^Q, W^K, W^V, W^O$: $8ND^2$", "zh": "四个投影矩阵：8ND²"},
    "ch01.cost.products": {"en": "QKᵀ and AV: 4N²D", "zh": "QKᵀ 与 AV：4N²D"},
    "ch01.cost.crossover": {"en": "N = 2D = {n}: the two are equal", "zh": "N = 2D = {n}：两者相等"},
    "ch01.cost.marks": {"en": "8ND² + 4N²D for a 224 × 224 image, patches of P", "zh": "224 × 224 图像、图像块边长为 P 时的 8ND² + 4N²D"},
    # §6
    "ch01.vit.title": {"en": "Where the class token looks (heads averaged); cyan: the target's box",
                       "zh": "类别词元看向哪里（各头平均）；青色框：目标的位置"},
    "ch01.vit.title_plain": {"en": "Where the class token looks (heads averaged)", "zh": "类别词元看向哪里（各头平均）"},
    "ch01.path.fused": {"en": "forward (fused kernel)", "zh": "forward（融合核函数）"},
    "ch01.path.explicit": {"en": "forward_explicit (N × N map)", "zh": "forward_explicit（N × N 注意力图）"},
    "ch01.vit.image": {"en": "image", "zh": "图像"},
    "ch01.vit.layer": {"en": "layer {l}", "zh": "第 {l} 层"},
    "ch01.vit.rollout": {"en": "rollout", "zh": "注意力展开"},
    "ch01.vit.share": {"en": "share of the attention", "zh": "注意力所占份额"},
    "ch01.vit.layer_head": {"en": "layer {l}, head {k}", "zh": "第 {l} 层，头 {k}"},
    "ch01.vit.heads_title": {"en": "The class token's attention, head by head", "zh": "类别词元的注意力，逐个头来看"},
    "ch01.pos.title": {"en": "Learned position embeddings: each patch's similarity to all the others",
                       "zh": "学到的位置嵌入：每个图像块与其他所有图像块的相似度"},
    "ch01.pos.row": {"en": "patch row", "zh": "图像块所在行"},
    "ch01.pos.col": {"en": "patch column", "zh": "图像块所在列"},
    "ch01.pos.cosine": {"en": "cosine similarity", "zh": "余弦相似度"},
    "ch01.pairs.title": {"en": "Are the two marked bits equal? Held-out accuracy by their distance",
                         "zh": "两个被标记的比特相等吗？按距离统计的验证准确率"},
    "ch01.pairs.seeds": {"en": "{name}: {n} seeds, one line each", "zh": "{name}：{n} 个随机种子，每个一条线"},
    "ch01.pairs.distance": {"en": "distance between the two marked positions", "zh": "两个被标记位置之间的距离"},
    "ch01.pairs.chance": {"en": "chance (0.5)", "zh": "随机猜测（0.5）"},
    "ch01.pairs.reach": {"en": "reach of the local model ({reach})", "zh": "局部模型的可及范围（{reach}）"},
    "ch01.pairs.global": {"en": "global self-attention", "zh": "全局自注意力"},
    "ch01.pairs.local": {"en": "local self-attention (window ±{w})", "zh": "局部自注意力（窗口 ±{w}）"},
})

# ---------------------------------------------------------------- figures

def _image(ax, image: torch.Tensor) -> None:
    ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([]), ax.set_yticks([])


def _overlay(ax, image: torch.Tensor, weights: torch.Tensor, grid: int, vmax: Optional[float] = None):
    """The image in grey with ``weights`` ``(grid * grid,)`` stretched over it in colour; returns the artist."""
    size = image.shape[-1]
    ax.imshow(image.detach().cpu().mean(0).numpy(), cmap="gray", vmin=0, vmax=1)
    im = ax.imshow(weights.detach().cpu().view(grid, grid).numpy(), cmap="inferno", alpha=0.65,
                   extent=(-0.5, size - 0.5, size - 0.5, -0.5), vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    return im


def _box(ax, box, colour: str = "cyan") -> None:
    x0, y0, x1, y1 = [float(v) for v in box]
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.5))


def patch_tokens(image: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(N, C * P * P)``: the image cut into P x P patches, row-major, each flattened."""
    C, H, W = image.shape
    P = patch_size
    x = image.reshape(C, H // P, P, W // P, P).permute(1, 3, 0, 2, 4)       # (H/P, W/P, C, P, P)
    return x.reshape((H // P) * (W // P), C * P * P)                        # (N, C P^2)


def plot_patch_lookup(photo: torch.Tensor, patch_size: int, queries: Sequence[tuple], temperature: float = 0.2):
    """§1: each patch of a photograph as a token, Q = K = its normalised pixels; where each query looks."""
    grid = photo.shape[-1] // patch_size
    tokens = patch_tokens(photo, patch_size)
    tokens = F.normalize(tokens - tokens.mean(1, keepdim=True), dim=1)      # zero-mean, unit length
    weights = (tokens @ tokens.T / temperature).softmax(-1)                 # (N, N)
    fig, axes = page_grid(len(queries) + 1, (3.2, 3.0), max_cols=2, extra=(0.2, 0.6))
    _image(axes[0], photo)
    axes[0].set_title(t("ch01.lookup.photo"))
    for ax, (r, c) in zip(axes[1:], queries):
        im = _overlay(ax, photo, weights[r * grid + c], grid)
        ax.add_patch(Rectangle((c * patch_size - 0.5, r * patch_size - 0.5), patch_size, patch_size,
                               fill=False, edgecolor="cyan", linewidth=2))
        ax.set_title(t("ch01.lookup.query", r=r, c=c))
        fig.colorbar(im, ax=ax, label=t("viz.weight"), shrink=0.8)
    fig.suptitle(t("ch01.lookup.title"), wrap=True)
    return fig


def plot_scaling_statistics(stats: dict):
    """§2: against d_k, without and with the scale: the variance of q·k, the largest softmax weight, and the
    mean and the median of the gradient that reaches the query, ||dA/dq||."""
    fig, axes = page_grid(4, (3.2, 2.9), max_cols=2, extra=(0.2, 0.9))
    d = stats["d_k"]
    panels = (("var", "ch01.scale.var", True), ("max", "ch01.scale.max", False),
              ("grad_mean", "ch01.scale.grad_mean", False), ("grad_median", "ch01.scale.grad_median", True))
    for ax, (name, key, log) in zip(axes, panels):
        ax.plot(d, stats[f"{name}_raw"], "o-", color="tab:red", label=t("ch01.scale.raw"))
        ax.plot(d, stats[f"{name}_scaled"], "s-", color="tab:blue", label=t("ch01.scale.scaled"))
        ax.set_xscale("log", base=2)
        ax.set_xticks(d, [str(v) for v in d])
        ax.minorticks_off()
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(t("ch01.scale.d_k"))
        ax.set_ylabel(t(key))
        ax.set_title(t(f"{key}_title"))
        ax.grid(True, alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    fig.suptitle(t("ch01.scale.title"), wrap=True)
    return fig


def plot_head_split(num_tokens: int = 4, dim: int = 8, num_heads: int = 2):
    """§2: ``(N, D)`` -> ``view(N, h, d_k)`` -> ``transpose`` -> ``(h, N, d_k)``: the columns of each head."""
    dk = dim // num_heads
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, 5.2), layout="constrained")
    left, right = axes
    for n in range(num_tokens):
        for j in range(dim):
            head = j // dk
            left.add_patch(Rectangle((j, num_tokens - 1 - n), 1, 1, facecolor=colours(head), alpha=0.35 + 0.15 * (n % 2),
                                     edgecolor="white"))
            x = head * (dk + 1) + j % dk
            right.add_patch(Rectangle((x, num_tokens - 1 - n), 1, 1, facecolor=colours(head),
                                      alpha=0.35 + 0.15 * (n % 2), edgecolor="white"))
            right.text(x + 0.5, num_tokens - 0.5 - n, f"{n}", ha="center", va="center")
    for ax, width, title in ((left, dim, t("ch01.heads.before", N=num_tokens, D=dim)),
                             (right, num_heads * (dk + 1) - 1,
                              t("ch01.heads.after", h=num_heads, N=num_tokens, d=dk))):
        ax.set_xlim(0, width), ax.set_ylim(0, num_tokens)
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_yticks([i + 0.5 for i in range(num_tokens)], [str(num_tokens - 1 - i) for i in range(num_tokens)])
        ax.set_ylabel(t("ch01.heads.token"))
    left.set_xticks([j + 0.5 for j in range(dim)], [str(j) for j in range(dim)])
    left.set_xlabel(t("ch01.heads.feature"))
    right.set_xticks([h * (dk + 1) + dk / 2 for h in range(num_heads)],
                     [t("viz.heads.head", i=h) for h in range(num_heads)])
    right.set_xlabel(t("ch01.heads.per_head", d=dk))
    fig.suptitle(t("ch01.heads.title"))
    return fig


def plot_masks(causal: torch.Tensor, padding: torch.Tensor, causal_weights: torch.Tensor,
               padding_weights: torch.Tensor):
    """§3: two boolean masks ``(N, N)`` (True: may attend) and the attention weights ``(N, N)`` under each."""
    fig, axes = page_grid(4, (3.2, 2.9), max_cols=2, extra=(0.2, 1.0))
    n = causal.shape[-1]
    allowed = ListedColormap(["#d9d9d9", "#4c72b0"])
    for ax, data, key in zip(axes, (causal, causal_weights, padding, padding_weights),
                             ("causal_mask", "causal_weights", "padding_mask", "padding_weights")):
        is_mask = key.endswith("mask")
        im = ax.imshow(data.detach().cpu().float().numpy(), cmap=allowed if is_mask else "viridis", vmin=0,
                       vmax=1)
        ax.set_title(t(f"ch01.masks.{key}"), fontsize="medium")
        ax.set_xlabel(t("viz.key"))
        ax.set_ylabel(t("viz.query"))
        ax.set_xticks(range(n)), ax.set_yticks(range(n))
        if not is_mask:
            fig.colorbar(im, ax=ax, label=t("viz.weight"), shrink=0.8)
    handles = [Patch(color="#4c72b0", label=t("ch01.masks.allowed")),
               Patch(color="#d9d9d9", label=t("ch01.masks.blocked"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    fig.suptitle(t("ch01.masks.title"))
    return fig


def plot_patch_grid(image: torch.Tensor, patch_size: int):
    """§3: an image cut into P x P patches, numbered row by row: the order of the N tokens."""
    C, H, W = image.shape
    grid_h, grid_w = H // patch_size, W // patch_size
    tokens = patch_tokens(image, patch_size).view(-1, C, patch_size, patch_size)
    cols = min(len(tokens), 8)
    rows = math.ceil(len(tokens) / cols)
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 3.6 + 0.95 * rows), layout="constrained")
    left, right = fig.subfigures(2, 1, height_ratios=[3.0, 0.95 * rows + 0.5])
    ax = left.subplots()
    _image(ax, image)
    for k in range(1, grid_w):
        ax.axvline(k * patch_size - 0.5, color="white", linewidth=1)
    for k in range(1, grid_h):
        ax.axhline(k * patch_size - 0.5, color="white", linewidth=1)
    for r in range(grid_h):
        for c in range(grid_w):
            ax.text(c * patch_size + 1, r * patch_size + 1, str(r * grid_w + c), color="yellow", va="top")
    ax.set_title(t("ch01.patches.image", H=H, W=W, P=patch_size))
    strip = right.subplots(rows, cols)
    for i, ax in enumerate(strip.flat):
        if i < len(tokens):
            _image(ax, tokens[i])
            ax.set_title(str(i), fontsize="medium", pad=2)
        else:
            ax.axis("off")
    right.suptitle(t("ch01.patches.sequence", N=len(tokens), d=C * patch_size ** 2), fontsize="large", wrap=True)
    fig.suptitle(t("ch01.patches.title"))
    return fig


def plot_flop_terms(ns: Sequence[int], dim: int, marks: Optional[dict] = None):
    """§5: the projections 8ND² against the attention products 4N²D (log-log); they cross at N = 2D."""
    n = np.asarray(ns, dtype=float)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.2), layout="constrained")
    ax.loglog(n, 8 * n * dim ** 2, "-", label=t("ch01.cost.projections"))
    ax.loglog(n, 4 * n ** 2 * dim, "-", label=t("ch01.cost.products"))
    ax.axvline(2 * dim, color="gray", linestyle="--", label=t("ch01.cost.crossover", n=2 * dim))
    for i, (label, value) in enumerate((marks or {}).items()):
        total = 8 * value * dim ** 2 + 4 * value ** 2 * dim                   # both terms: the layer's FLOPs
        ax.plot([value], [total], "k^", label=t("ch01.cost.marks") if i == 0 else None)
        ax.annotate(label, (value, total), textcoords="offset points", xytext=(-8, 6), ha="right")
    ax.set_xlabel(t("figures.scaling.tokens"))
    ax.set_ylabel(t("figures.cost.flops"))
    ax.set_title(t("ch01.cost.title", D=dim))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def plot_vit_attention(images: torch.Tensor, per_layer: Sequence[torch.Tensor], rollout: torch.Tensor,
                       grid: int, boxes: Optional[torch.Tensor] = None):
    """§6: per image, the class token's attention over the patches in each layer (heads averaged) and the
    rollout across layers, over the image in grey; the target's box in cyan. Maps: ``(G, N)`` patches."""
    G, L = len(images), len(per_layer)
    side = min(2.0, (PAGE_WIDTH_IN - 1.2) / (L + 2))
    fig, axes = plt.subplots(G, L + 2, figsize=(PAGE_WIDTH_IN, side * G + 0.9), layout="constrained",
                             squeeze=False)
    titles = [t("ch01.vit.image")] + [t("ch01.vit.layer", l=l + 1) for l in range(L)] + [t("ch01.vit.rollout")]
    maps = [w / w.sum(-1, keepdim=True) for w in list(per_layer) + [rollout]]      # shares of each row
    vmax = max(w.max().item() for w in maps)
    for g in range(G):
        _image(axes[g, 0], images[g])
        for col, w in enumerate(maps, start=1):
            im = _overlay(axes[g, col], images[g], w[g], grid, vmax=vmax)
            if boxes is not None:
                _box(axes[g, col], boxes[g])
        if boxes is not None:
            _box(axes[g, 0], boxes[g])
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize="medium")
    fig.colorbar(im, ax=axes[:, 1:], label=t("ch01.vit.share"), shrink=0.8)
    fig.suptitle(t("ch01.vit.title" if boxes is not None else "ch01.vit.title_plain"), wrap=True)
    return fig


def plot_cls_heads(image: torch.Tensor, maps: Sequence[torch.Tensor], grid: int, box=None):
    """§6: the class token's attention of every head ``(h, N)`` in every layer, over one image."""
    L, h = len(maps), maps[0].shape[0]
    side = min(2.0, (PAGE_WIDTH_IN - 1.2) / h)
    fig, axes = plt.subplots(L, h, figsize=(PAGE_WIDTH_IN, (side + 0.3) * L + 0.6), layout="constrained",
                             squeeze=False)
    maps = [m / m.sum(-1, keepdim=True) for m in maps]
    vmax = max(m.max().item() for m in maps)
    for l, layer in enumerate(maps):
        for k in range(h):
            im = _overlay(axes[l, k], image, layer[k], grid, vmax=vmax)
            if box is not None:
                _box(axes[l, k], box)
            axes[l, k].set_title(t("ch01.vit.layer_head", l=l + 1, k=k), fontsize="medium")
    fig.colorbar(im, ax=axes, label=t("ch01.vit.share"), shrink=0.8)
    fig.suptitle(t("ch01.vit.heads_title"))
    return fig


def plot_position_similarity(sim: torch.Tensor, grid: int):
    """§6: for each patch (a small tile at its place), the cosine similarity of its position embedding to
    every other patch's. ``sim``: ``(N, N)`` over the ``grid * grid`` patches, tiled into one image."""
    tiles = torch.full((grid, grid, grid + 1, grid + 1), float("nan"))
    tiles[:, :, :grid, :grid] = sim.detach().cpu().view(grid, grid, grid, grid)      # (row, col, r', c')
    mosaic = tiles.permute(0, 2, 1, 3).reshape(grid * (grid + 1), grid * (grid + 1))[:-1, :-1]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 5.8), layout="constrained")
    im = ax.imshow(mosaic.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    centres = [i * (grid + 1) + (grid - 1) / 2 for i in range(grid)]
    ax.set_xticks(centres, [str(i + 1) for i in range(grid)])
    ax.set_yticks(centres, [str(i + 1) for i in range(grid)])
    ax.set_xlabel(t("ch01.pos.col"))
    ax.set_ylabel(t("ch01.pos.row"))
    fig.colorbar(im, ax=ax, label=t("ch01.pos.cosine"), shrink=0.9)
    ax.set_title(t("ch01.pos.title"), wrap=True)
    return fig


def plot_memory(ns: Sequence[int], memory: dict):
    """§5: peak extra memory against N (log-log), one line per path (``"fused"``, ``"explicit"``), labelled
    with its fitted slope."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4), layout="constrained")
    for key, values in memory.items():
        label = t("figures.scaling.slope", name=t(f"ch01.path.{key}"), slope=fit_slope(ns, values, 3))
        ax.loglog(ns, values, "o-", label=label)
    ax.set_xticks(list(ns), [str(n) for n in ns])
    ax.minorticks_off()
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(t("figures.scaling.tokens"))
    ax.set_ylabel(t("figures.scaling.bytes"))
    ax.set_title(t("figures.scaling.memory_title"))
    ax.legend()
    return fig


def plot_pair_accuracy(accuracy: dict, reach: int):
    """§6: held-out accuracy against the distance between the two marked positions, one line per seed.
    ``accuracy``: ``{label: (seeds, L - 1) tensor}``; ``reach``: how far the local model can hear."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.4), layout="constrained")
    markers = "os^vD"
    for i, (label, acc) in enumerate(accuracy.items()):
        acc = torch.as_tensor(acc, dtype=torch.float32)
        d = np.arange(1, acc.shape[1] + 1)
        for k, row in enumerate(acc):
            ax.plot(d, row.numpy(), linestyle="-", marker=markers[k % len(markers)], color=f"C{i}", alpha=0.8,
                    markersize=4, label=t("ch01.pairs.seeds", name=label, n=len(acc)) if k == 0 else None)
    ax.axhline(0.5, color="gray", linestyle=":", label=t("ch01.pairs.chance"))
    ax.axvline(reach + 0.5, color="black", linestyle="--", label=t("ch01.pairs.reach", reach=reach))
    ax.set_xticks(d)
    ax.set_ylim(0.3, 1.04)
    ax.set_xlabel(t("ch01.pairs.distance"))
    ax.set_ylabel(t("figures.accuracy.y"))
    ax.set_title(t("ch01.pairs.title"), wrap=True)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left")                                  # the empty band within the reach
    return fig
