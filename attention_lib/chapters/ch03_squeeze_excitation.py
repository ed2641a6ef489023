"""Chapter 03 · Squeeze-and-Excitation: the chapter's strings, figures, exercises, explorer and demos.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch03_squeeze_excitation as ch``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer, viz
from ..toolkit.exercises import exercise
from ..toolkit.i18n import register, t
from ..toolkit.train import ShapesCNN
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch03.squeeze.title": {"en": "Squeeze: each channel becomes one number (its mean)",
                           "zh": "挤压：每个通道变成一个数（它的均值）"},
    "ch03.squeeze.value": {"en": "mean z = {z:.3f}", "zh": "均值 z = {z:.3f}"},
    "ch03.squeeze.bar_title": {"en": "The descriptor z", "zh": "描述向量 z"},
    "ch03.squeeze.bar_y": {"en": "channel mean z_c", "zh": "通道均值 z_c"},
    "ch03.squeeze.bar_x": {"en": "channel", "zh": "通道"},
    "ch03.squeeze.colorbar": {"en": "activation", "zh": "激活值"},
    "ch03.channel.red": {"en": "red", "zh": "红色"},
    "ch03.channel.green": {"en": "green", "zh": "绿色"},
    "ch03.channel.blue": {"en": "blue", "zh": "蓝色"},
    "ch03.channel.edges": {"en": "horizontal edges", "zh": "水平边缘"},
    "ch03.gate.trained": {"en": "trained", "zh": "训练后"},
    "ch03.gate.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch03.gate.photo_title": {"en": "Gate of the trained SE block on a photograph",
                              "zh": "训练后的 SE 模块在照片上的门控"},
    "ch03.gate_by_class.title": {"en": "Learned gate, averaged per class", "zh": "学到的门控（按类别平均）"},
    "ch03.gate_by_class.x": {"en": "channel", "zh": "通道"},
    "ch03.gate_by_class.y": {"en": "class of the target shape", "zh": "目标形状的类别"},
    "ch03.gate_by_class.colorbar": {"en": "gate value s_c", "zh": "门控值 s_c"},
    "ch03.counts": {"en": "parameters: {params} (formula {params_formula}); FLOPs: {flops} "
                          "(formula {flops_formula})",
                    "zh": "参数量：{params}（公式 {params_formula}）；FLOPs：{flops}（公式 {flops_formula}）"},
    "ch03.by_operator": {"en": "FLOPs by operator: {ops}", "zh": "按算子统计的 FLOPs：{ops}"},
    "ch03.share": {"en": "SE / 3×3 convolution FLOPs at C = {C}, {S}×{S}: {share:.2%}",
                   "zh": "C = {C}、{S}×{S} 时，SE 与 3×3 卷积的 FLOPs 之比：{share:.2%}"},
    "ch03.accuracy": {"en": "validation accuracy with SE: {acc:.1%}; without attention: {base:.1%}; chance: 25%",
                      "zh": "验证集准确率：带 SE {acc:.1%}；不带注意力 {base:.1%}；随机猜测 25%"},
    "ch03.gate_range": {"en": "{which}: gate values from {low:.3f} to {high:.3f}; {damped:.1%} of them below 0.9",
                        "zh": "{which}：门控值从 {low:.3f} 到 {high:.3f}；其中 {damped:.1%} 低于 0.9"},
    "ch03.spread": {"en": "mean spread of the gate across classes: trained {trained:.3g}, random {random:.3g}",
                    "zh": "门控在各类别之间的平均离散程度：训练后 {trained:.3g}，随机初始化 {random:.3g}"},
    "ch03.block_share": {"en": "output {shape}; SE adds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；SE 占该残差块参数量的 {share:.1%}"},
    # exercise verdicts
    "ex.se.params.no_bias": {"en": "that is W1 and W2 alone; both FC layers also have a bias (C/r and C values).",
                             "zh": "这只算了 W1 和 W2；两个全连接层还各有偏置（分别是 C/r 和 C 个值）。"},
    "ex.se.params.one_fc": {"en": "SE has two FC layers: C -> C/r and C/r -> C.",
                            "zh": "SE 有两个全连接层：C -> C/r 和 C/r -> C。"},
    "ex.se.params.other": {"en": "count W1 (C/r x C), b1 (C/r), W2 (C x C/r) and b2 (C) with C = 256, r = 16.",
                           "zh": "分别数出 W1（C/r × C）、b1（C/r）、W2（C × C/r）和 b2（C），其中 C = 256，r = 16。"},
    "ex.se.shape.not_shape": {"en": "give the shape as a tuple of four integers, e.g. (1, 2, 3, 4).",
                              "zh": "请把形状写成四个整数的元组，例如 (1, 2, 3, 4)。"},
    "ex.se.shape.flat": {"en": "(B, C) is the excitation s before reshaping; the gate keeps two singleton axes so that "
                               "x * gate broadcasts over H and W.",
                         "zh": "(B, C) 是变形之前的激励 s；门控保留两个长度为 1 的轴，x * gate 才能在 H 和 W 上广播。"},
    "ex.se.shape.full": {"en": "the gate holds one number per channel, not one per pixel.",
                         "zh": "门控每个通道只有一个数，而不是每个像素一个。"},
    "ex.se.shape.other": {"en": "one weight per sample and per channel, shaped to broadcast against (B, C, H, W).",
                          "zh": "每个样本、每个通道一个权重，形状要能与 (B, C, H, W) 广播。"},
    "ex.se.gate.not_callable": {"en": "the answer is a function se_gate(x, fc1, fc2) returning a (B, C, 1, 1) tensor.",
                                "zh": "答案应是函数 se_gate(x, fc1, fc2)，返回形状为 (B, C, 1, 1) 的张量。"},
    "ex.se.gate.raised": {"en": "your function raised {error} for an input of shape {shape}{extra}",
                          "zh": "输入形状为 {shape} 时，你的函数抛出了 {error}{extra}"},
    "ex.se.gate.batch1": {"en": " (batch size 1: does a .squeeze() remove the batch axis too?).",
                          "zh": "（批大小为 1：是不是 .squeeze() 把批维度也挤掉了？）"},
    "ex.se.gate.shape": {"en": "the result has shape {got}; expected {expected}.",
                         "zh": "结果的形状是 {got}，应为 {expected}。"},
    "ex.se.gate.softmax": {"en": "the channel weights come from a sigmoid, not a softmax: channels do not compete "
                                 "for a fixed budget.",
                           "zh": "通道权重来自 sigmoid 而不是 softmax：各通道并不争夺一份固定的总量。"},
    "ex.se.gate.no_relu": {"en": "the ReLU (δ) between the two FC layers is missing.",
                           "zh": "两个全连接层之间缺了 ReLU（δ）。"},
    "ex.se.gate.max_pool": {"en": "the squeeze is a global AVERAGE pool, not a max pool.",
                            "zh": "挤压（squeeze）是全局平均池化，而不是最大池化。"},
    "ex.se.gate.no_sigmoid": {"en": "the sigmoid (σ) at the end is missing: the gate must lie in (0, 1).",
                              "zh": "末尾缺了 sigmoid（σ）：门控值必须落在 (0, 1) 之间。"},
    "ex.se.gate.other": {"en": "the values differ from sigma(W2 relu(W1 z)) with z the channel means.",
                         "zh": "数值与 σ(W2 ReLU(W1 z)) 不一致（z 为各通道的均值）。"},

})

#: The tiny CNN of §6 with an SE block, and the same network without attention (the toolkit's shapes demo).
SE_DEMO = ShapesCNN(attention="squeeze_excitation")
BASELINE_DEMO = ShapesCNN(attention=None)


# ---------------------------------------------------------------- figures

def plot_squeeze(channels: Sequence[torch.Tensor], names: Optional[Sequence[str]] = None):
    """Each ``(H, W)`` channel as an image with its mean, then the descriptor z as bars: SE's squeeze."""
    channels = [torch.as_tensor(c, dtype=torch.float32).detach().cpu() for c in channels]
    if not channels or any(c.dim() != 2 for c in channels):
        raise ValueError(f"plot_squeeze expects a list of (H, W) tensors, got shapes {[tuple(c.shape) for c in channels]}")
    names = list(names) if names is not None else [f"{t('ch03.squeeze.bar_x')} {i}" for i in range(len(channels))]
    z = [c.mean().item() for c in channels]
    fig, axes = plt.subplots(1, len(channels) + 2, figsize=(2.6 * (len(channels) + 1) + 0.6, 3.1),
                             layout="constrained",
                             gridspec_kw=dict(width_ratios=[1] * len(channels) + [0.08, 1.4]))
    vmin, vmax = min(c.min().item() for c in channels), max(c.max().item() for c in channels)
    for ax, c, name, value in zip(axes, channels, names, z):
        im = ax.imshow(c.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(t("ch03.squeeze.value", z=value), fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, cax=axes[-2], label=t("ch03.squeeze.colorbar"))
    bar = axes[-1]
    bar.bar(range(len(z)), z, color="tab:blue")
    bar.set_xticks(range(len(z)), names, rotation=30, ha="right", fontsize=8)
    bar.set_title(t("ch03.squeeze.bar_title"), fontsize=10)
    bar.set_ylabel(t("ch03.squeeze.bar_y"))
    bar.set_xlabel(t("ch03.squeeze.bar_x"))
    fig.suptitle(t("ch03.squeeze.title"))
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
    ax.set_title(t("ch03.gate_by_class.title"))
    ax.set_xlabel(t("ch03.gate_by_class.x"))
    ax.set_ylabel(t("ch03.gate_by_class.y"))
    fig.colorbar(im, ax=ax, label=t("ch03.gate_by_class.colorbar"))
    fig.tight_layout()
    return fig



# ---------------------------------------------------------------- the explorer

def _explorer_module(s) -> nn.Module:
    return MECHANISMS["squeeze_excitation"].cls(s["channels"], reduction=s["reduction"])


def _explorer_plot(module, x, s):
    return viewer.channel_gallery(x.mean(1, keepdim=True), module.attention_map(x)[:, :, 0, 0],
                                  labels=input_labels(len(x)))                   # (G, C)


EXPLORER = register_explorer(ExplorerSpec(
    "squeeze_excitation", "feature_map",
    map_controls() + (Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 8, 16)),),
    build=_explorer_module, plot=_explorer_plot))


# ---------------------------------------------------------------- exercises

@exercise("se.params")
def _se_params(answer):
    C, r = 256, 16
    h = C // r
    if answer == 2 * C * h + h + C:
        return None
    if answer == 2 * C * h:
        return "ex.se.params.no_bias"
    if answer in (C * h, C * h + h, C * h + C):
        return "ex.se.params.one_fc"
    return "ex.se.params.other"


@exercise("se.shape")
def _se_shape(answer):
    try:
        shape = tuple(int(s) for s in answer)
    except (TypeError, ValueError):
        return "ex.se.shape.not_shape"
    if shape == (8, 256, 1, 1):
        return None
    if shape == (8, 256):
        return "ex.se.shape.flat"
    if shape == (8, 256, 14, 14):
        return "ex.se.shape.full"
    return "ex.se.shape.other"


def _se_variants(x, fc1, fc2):
    """What common mistakes compute, to name the mistake a wrong answer made."""
    z_avg, z_max = x.mean((2, 3)), x.amax((2, 3))
    return {
        "ex.se.gate.softmax": torch.softmax(fc2(torch.relu(fc1(z_avg))), dim=1),
        "ex.se.gate.no_relu": torch.sigmoid(fc2(fc1(z_avg))),
        "ex.se.gate.max_pool": torch.sigmoid(fc2(torch.relu(fc1(z_max)))),
        "ex.se.gate.no_sigmoid": fc2(torch.relu(fc1(z_avg))),
    }


@exercise("se.gate")
def _se_gate(answer):
    if not callable(answer):
        return "ex.se.gate.not_callable"
    g = torch.Generator().manual_seed(0)
    C, h = 32, 4
    fc1, fc2 = nn.Linear(C, h), nn.Linear(h, C)
    with torch.no_grad():
        for p in (*fc1.parameters(), *fc2.parameters()):
            p.copy_(torch.randn(p.shape, generator=g))
    for B in (3, 1):
        x = torch.randn(B, C, 5, 7, generator=g)
        try:
            with torch.no_grad():
                got = answer(x, fc1, fc2)
        except Exception as error:  # the reader's code: report, never raise
            extra = t("ex.se.gate.batch1") if B == 1 else "."
            return "ex.se.gate.raised", dict(error=type(error).__name__, shape=tuple(x.shape), extra=extra)
        expected = torch.sigmoid(fc2(torch.relu(fc1(x.mean((2, 3))))))[:, :, None, None]
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return "ex.se.gate.shape", dict(got=shape, expected=tuple(expected.shape))
        if not torch.allclose(got, expected, atol=1e-5):
            for key, variant in _se_variants(x, fc1, fc2).items():
                if torch.allclose(got.reshape(variant.shape), variant, atol=1e-5):
                    return key
            return "ex.se.gate.other"
    return None


