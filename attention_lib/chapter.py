"""Figures and helpers that the chapters share beyond the attention-map plots of :mod:`attention_lib.viz`.

``show_source`` shows the library's real source in a notebook (never a second copy); the plot
functions draw the chapters' explanatory figures with every label from the i18n table.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .i18n import register, t

register({
    "chapter.squeeze.title": {"en": "Squeeze: each channel becomes one number (its mean)",
                              "zh": "挤压：每个通道变成一个数（它的均值）"},
    "chapter.squeeze.value": {"en": "mean z = {z:.3f}", "zh": "均值 z = {z:.3f}"},
    "chapter.squeeze.bar_title": {"en": "The descriptor z", "zh": "描述向量 z"},
    "chapter.squeeze.bar_y": {"en": "channel mean z_c", "zh": "通道均值 z_c"},
    "chapter.squeeze.bar_x": {"en": "channel", "zh": "通道"},
    "chapter.squeeze.colorbar": {"en": "activation", "zh": "激活值"},
    "chapter.channel.red": {"en": "red", "zh": "红色"},
    "chapter.channel.green": {"en": "green", "zh": "绿色"},
    "chapter.channel.blue": {"en": "blue", "zh": "蓝色"},
    "chapter.channel.edges": {"en": "horizontal edges", "zh": "水平边缘"},
    "chapter.gate.trained": {"en": "trained", "zh": "训练后"},
    "chapter.gate.random": {"en": "random initialisation", "zh": "随机初始化"},
    "chapter.gate.photo_title": {"en": "Gate of the trained SE block on a photograph",
                                 "zh": "训练后的 SE 模块在照片上的门控"},
    "chapter.cost.flops_title": {"en": "FLOPs vs input side (C = {C})", "zh": "FLOPs 随输入边长的变化（C = {C}）"},
    "chapter.cost.params_title": {"en": "Parameters vs channels", "zh": "参数量随通道数的变化"},
    "chapter.cost.side": {"en": "input side H = W (pixels)", "zh": "输入边长 H = W（像素）"},
    "chapter.cost.channels": {"en": "channels C", "zh": "通道数 C"},
    "chapter.cost.flops": {"en": "FLOPs per sample", "zh": "每个样本的 FLOPs"},
    "chapter.cost.params": {"en": "parameters", "zh": "参数量"},
    "chapter.cost.module": {"en": "attention block", "zh": "注意力模块"},
    "chapter.cost.reference": {"en": "3×3 convolution C → C", "zh": "3×3 卷积 C → C"},
    "chapter.shape.square": {"en": "square", "zh": "正方形"},
    "chapter.shape.circle": {"en": "circle", "zh": "圆形"},
    "chapter.shape.cross": {"en": "cross", "zh": "十字"},
    "chapter.shape.triangle": {"en": "triangle", "zh": "三角形"},
    "chapter.gate_by_class.title": {"en": "Learned gate, averaged per class", "zh": "学到的门控（按类别平均）"},
    "chapter.gate_by_class.x": {"en": "channel", "zh": "通道"},
    "chapter.gate_by_class.y": {"en": "class of the target shape", "zh": "目标形状的类别"},
    "chapter.gate_by_class.colorbar": {"en": "gate value s_c", "zh": "门控值 s_c"},
})


def show_source(obj) -> object:
    """The source of a library class or function, syntax-highlighted in a notebook (plain text elsewhere)."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
        return Code(source, language="python")
    except ImportError:                       # pragma: no cover - IPython ships with Jupyter
        return source


def plot_squeeze(channels: Sequence[torch.Tensor], names: Optional[Sequence[str]] = None):
    """Each ``(H, W)`` channel as an image with its mean, then the descriptor z as bars: SE's squeeze."""
    channels = [torch.as_tensor(c, dtype=torch.float32).detach().cpu() for c in channels]
    if not channels or any(c.dim() != 2 for c in channels):
        raise ValueError(f"plot_squeeze expects a list of (H, W) tensors, got shapes {[tuple(c.shape) for c in channels]}")
    names = list(names) if names is not None else [f"{t('chapter.squeeze.bar_x')} {i}" for i in range(len(channels))]
    z = [c.mean().item() for c in channels]
    fig, axes = plt.subplots(1, len(channels) + 2, figsize=(2.6 * (len(channels) + 1) + 0.6, 3.1),
                             layout="constrained",
                             gridspec_kw=dict(width_ratios=[1] * len(channels) + [0.08, 1.4]))
    vmin, vmax = min(c.min().item() for c in channels), max(c.max().item() for c in channels)
    for ax, c, name, value in zip(axes, channels, names, z):
        im = ax.imshow(c.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(t("chapter.squeeze.value", z=value), fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, cax=axes[-2], label=t("chapter.squeeze.colorbar"))
    bar = axes[-1]
    bar.bar(range(len(z)), z, color="tab:blue")
    bar.set_xticks(range(len(z)), names, rotation=30, ha="right", fontsize=8)
    bar.set_title(t("chapter.squeeze.bar_title"), fontsize=10)
    bar.set_ylabel(t("chapter.squeeze.bar_y"))
    bar.set_xlabel(t("chapter.squeeze.bar_x"))
    fig.suptitle(t("chapter.squeeze.title"))
    return fig


def plot_cost_growth(sizes: Sequence[int], channels: Sequence[int], flops: Callable[[int, int], float],
                     params: Callable[[int], float], reference_flops: Optional[Callable[[int, int], float]] = None,
                     fixed_channels: int = 64):
    """Two log-log panels: FLOPs against the input side at ``fixed_channels``, parameters against C."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.loglog(sizes, [flops(fixed_channels, s) for s in sizes], "o-", label=t("chapter.cost.module"))
    if reference_flops is not None:
        left.loglog(sizes, [reference_flops(fixed_channels, s) for s in sizes], "s--", color="gray",
                    label=t("chapter.cost.reference"))
    left.set_title(t("chapter.cost.flops_title", C=fixed_channels))
    left.set_xlabel(t("chapter.cost.side"))
    left.set_ylabel(t("chapter.cost.flops"))
    left.legend()
    right.loglog(channels, [params(c) for c in channels], "o-", color="tab:orange")
    right.set_title(t("chapter.cost.params_title"))
    right.set_xlabel(t("chapter.cost.channels"))
    right.set_ylabel(t("chapter.cost.params"))
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_gate_by_class(per_class: torch.Tensor, class_names: Optional[Sequence[str]] = None):
    """A heat map of channel gates ``(classes, C)``: one row per class, one column per channel."""
    per_class = torch.as_tensor(per_class).detach().cpu().float()
    if per_class.dim() != 2:
        raise ValueError(f"plot_gate_by_class expects (classes, C), got {tuple(per_class.shape)}")
    fig, ax = plt.subplots(figsize=(10, 0.5 * per_class.shape[0] + 1.6))
    im = ax.imshow(per_class.numpy(), aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set_yticks(np.arange(per_class.shape[0]),
                  class_names if class_names is not None else [str(i) for i in range(per_class.shape[0])])
    ax.set_title(t("chapter.gate_by_class.title"))
    ax.set_xlabel(t("chapter.gate_by_class.x"))
    ax.set_ylabel(t("chapter.gate_by_class.y"))
    fig.colorbar(im, ax=ax, label=t("chapter.gate_by_class.colorbar"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- cost formulas (chapter 08)

#: Parameters and leading FLOP terms per sample, in the chapters' notation (LaTeX). Feature maps: C channels,
#: H x W, reduction r, ECA kernel k, CBAM spatial kernel k_s, K branches of groups g, d = max(C/r, L).
#: Tokens: N tokens of width D, h heads, S memory slots, coef c, head width d = D/heads.
#: FLOPs count a multiply-add as 2 and one per element for pooling, activations and gating.
COST_FORMULAS = {
    "self_attention": dict(params=r"4D^2 + D", flops=r"8ND^2 + 4N^2D"),
    "external_attention": dict(params=r"2SD", flops=r"4NSD"),
    "multi_head_external_attention": dict(params=r"2cD^2 + cD + D + 2dS + S + d", flops=r"4cND^2 + 4cNSD"),
    "squeeze_excitation": dict(params=r"2C^2/r + C/r + C", flops=r"2CHW + 4C^2/r"),
    "eca": dict(params=r"k", flops=r"2CHW + 2kC"),
    "cbam": dict(params=r"2C^2/r + C/r + C + 2k_s^2 + 2", flops=r"6CHW + 4k_s^2HW + 8C^2/r"),
    "bam": dict(params=r"3C^2/r + 18C^2/r^2 + 13C/r + C + 1", flops=r"5CHW + 2C^2HW/r + 36C^2HW/r^2"),
    "selective_kernel": dict(params=r"9KC^2/g + 2KC + Cd + 2d + dKC", flops=r"18KC^2HW/g + (6K - 1)CHW"),
}
