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
from ..toolkit import data, viewer, viz
from ..toolkit.exercises import Slip, as_count, as_function, as_shape, call, case, close, exercise, expect_close
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.train import ContextCNN, ShapesCNN
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch03.squeeze.title": {"en": "Squeeze: each channel becomes one number (its mean)",
                           "zh": "挤压：每个通道变成一个数（它的均值）"},
    "ch03.squeeze.value": {"en": "mean z = {z:.3f}", "zh": "均值 z = {z:.3f}"},
    "ch03.squeeze.bar_title": {"en": "The descriptor z", "zh": "描述符 z"},
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
    "ch03.gallery.title": {"en": "Trained SE gates of {n} validation images", "zh": "{n} 张验证图像上训练后的 SE 门控"},
    "ch03.gate_by_class.title": {"en": "Learned gate, averaged per class", "zh": "学到的门控（按类别平均）"},
    "ch03.gate_by_class.x": {"en": "channel", "zh": "通道"},
    "ch03.gate_by_class.y": {"en": "class of the target shape", "zh": "目标形状的类别"},
    "ch03.gate_by_class.colorbar": {"en": "gate value s_c", "zh": "门控值 s_c"},
    "ch03.counts": {"en": "parameters: {params} (formula {params_formula}); FLOPs: {flops} "
                          "(formula {flops_formula})",
                    "zh": "参数量：{params}（公式 {params_formula}）；浮点运算次数：{flops}（公式 {flops_formula}）"},
    "ch03.by_operator": {"en": "FLOPs by operator: {ops}", "zh": "按算子统计的浮点运算次数：{ops}"},
    "ch03.share": {"en": "SE / 3×3 convolution FLOPs at C = {C}, {S}×{S}: {share:.2%}",
                   "zh": "C = {C}、{S}×{S} 时，SE 与 3×3 卷积的浮点运算次数之比：{share:.2%}"},
    "ch03.accuracy": {"en": "validation accuracy with SE: {acc:.1%}; without attention: {base:.1%}; chance: 25%",
                      "zh": "验证集准确率：带 SE {acc:.1%}；不带注意力 {base:.1%}；随机猜测 25%"},
    "ch03.gate_range": {"en": "{which}: gate values from {low:.3f} to {high:.3f}; {damped:.1%} of them below 0.9",
                        "zh": "{which}：门控值从 {low:.3f} 到 {high:.3f}；其中 {damped:.1%} 低于 0.9"},
    "ch03.spread": {"en": "mean spread of the gate across classes: trained {trained:.3g}, random {random:.3g}",
                    "zh": "门控在各类别之间的平均离散程度：训练后 {trained:.3g}，随机初始化 {random:.3g}"},
    "ch03.block_share": {"en": "output {shape}; SE adds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；SE 占该残差块参数量的 {share:.1%}"},
    # exercise verdicts (keys ex.<exercise>.<slip>: the teacher's guide lists them by exercise)
    "ex.se.params.no_bias": {"en": "that is W1 and W2 alone; both FC layers also have a bias.",
                             "zh": "这只算了 W1 和 W2；两个全连接层还各有一个偏置。"},
    "ex.se.params.one_bias": {"en": "one of the two biases is missing: each FC layer has its own.",
                              "zh": "少算了一个偏置：两个全连接层各有自己的偏置。"},
    "ex.se.params.one_fc": {"en": "SE has two FC layers: C -> C/r and C/r -> C.",
                            "zh": "SE 有两个全连接层：C -> C/r 和 C/r -> C。"},
    "ex.se.params.prelu": {"en": "that counts a PReLU's slope parameters; the paper's activation is a ReLU, "
                                 "which has none.",
                           "zh": "这把 PReLU 的斜率参数也算进去了；论文用的激活函数是 ReLU，它没有参数。"},
    "ex.se.params.other": {"en": "count the weights and the bias of each of the two FC layers, with C = 256 and "
                                 "r = 16.",
                           "zh": "分别数出两个全连接层的权重和偏置，其中 C = 256，r = 16。"},
    "ex.se.shape.flat": {"en": "(B, C) is the excitation s before reshaping; the gate keeps two singleton axes so that "
                               "x * gate broadcasts over H and W.",
                         "zh": "(B, C) 是变形之前的激励 s；门控保留两个长度为 1 的轴，x * gate 才能在 H 和 W 上广播。"},
    "ex.se.shape.full": {"en": "the gate holds one number per channel, not one per pixel.",
                         "zh": "门控每个通道只有一个数，而不是每个像素一个。"},
    "ex.se.shape.channels_last": {"en": "that is a channels-last layout; PyTorch keeps the channels at dim 1: "
                                        "(B, C, H, W).",
                                  "zh": "这是通道在最后的布局；PyTorch 把通道放在 dim 1：(B, C, H, W)。"},
    "ex.se.shape.other": {"en": "one weight per sample and per channel, shaped to broadcast against (B, C, H, W).",
                          "zh": "每个样本、每个通道一个权重，形状要能与 (B, C, H, W) 广播。"},
    "ex.se.gate.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: does a "
                                ".squeeze() remove the batch axis too?",
                          "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.se.gate.channels": {"en": "It passed the first test; this one differs only in the number of channels, "
                                  "C = {C} (and the layers made for it): is C fixed in your code? Read it off x.",
                            "zh": "第一组测试通过了；这一组只是把通道数换成了 C = {C}（以及相应的层）：代码里是不是写死了 C？"
                                  "请从 x 读取。"},
    "ex.se.gate.scaled": {"en": "that is x scaled by the gate (F_scale); the exercise asks for the gate s itself.",
                          "zh": "这是经门控缩放后的 x（F_scale）；题目要的是门控 s 本身。"},
    "ex.se.gate.softmax": {"en": "the channel weights come from a sigmoid, not a softmax: channels do not compete "
                                 "for a fixed budget.",
                           "zh": "通道权重来自 sigmoid 而不是 softmax：各通道并不争夺一份固定的总量。"},
    "ex.se.gate.no_relu": {"en": "the ReLU (δ) between the two FC layers is missing.",
                           "zh": "两个全连接层之间缺了 ReLU（δ）。"},
    "ex.se.gate.prelu": {"en": "that is a PReLU between the FC layers; the paper uses a plain ReLU (δ).",
                         "zh": "两个全连接层之间用的是 PReLU；论文用的是普通的 ReLU（δ）。"},
    "ex.se.gate.max_pool": {"en": "the squeeze is a global AVERAGE pool, not a max pool.",
                            "zh": "挤压（squeeze）是全局平均池化，而不是最大池化。"},
    "ex.se.gate.square_pool": {"en": "the pooling window is H × H, so the map is not averaged over its full width "
                                     "(the input is 5 × 7): average over both spatial axes.",
                               "zh": "池化窗口是 H × H，没有覆盖整个宽度（输入是 5 × 7）：请在两个空间轴上求平均。"},
    "ex.se.gate.no_bias": {"en": "the biases of the FC layers are missing: call fc1(z) and fc2(...) rather than "
                                 "multiplying by their .weight alone.",
                           "zh": "缺了全连接层的偏置：请直接调用 fc1(z) 和 fc2(...)，而不是只乘以它们的 .weight。"},
    "ex.se.gate.one_bias": {"en": "one FC layer's bias is missing.", "zh": "有一个全连接层缺了偏置。"},
    "ex.se.gate.no_sigmoid": {"en": "the sigmoid (σ) at the end is missing: the gate must lie in (0, 1).",
                              "zh": "末尾缺了 sigmoid（σ）：门控值必须落在 (0, 1) 之间。"},
    "ex.se.gate.other": {"en": "the values differ from σ(W2 δ(W1 z)) with z the channel means.",
                         "zh": "数值与 σ(W2 δ(W1 z)) 不一致（z 为各通道的均值）。"},
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
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 5.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])      # the channels, then the descriptor z
    axes = top.subplots(1, len(channels))
    vmin, vmax = min(c.min().item() for c in channels), max(c.max().item() for c in channels)
    for ax, c, name, value in zip(axes, channels, names, z):
        im = ax.imshow(c.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(t("ch03.squeeze.value", z=value))
        ax.set_xticks([]), ax.set_yticks([])
    top.colorbar(im, ax=axes, label=t("ch03.squeeze.colorbar"), shrink=0.9)
    bar = bottom.subplots()
    bar.bar(range(len(z)), z, color="tab:blue")
    bar.set_xticks(range(len(z)), names)
    bar.set_title(t("ch03.squeeze.bar_title"))
    bar.set_ylabel(t("ch03.squeeze.bar_y"))
    bar.set_xlabel(t("ch03.squeeze.bar_x"))
    fig.suptitle(t("ch03.squeeze.title"))
    return fig


def plot_gate_by_class(per_class: torch.Tensor, class_names: Optional[Sequence[str]] = None):
    """A heat map of channel gates ``(classes, C)``: one row per class, one column per channel."""
    per_class = torch.as_tensor(per_class).detach().cpu().float()
    if per_class.dim() != 2:
        raise ValueError(f"plot_gate_by_class expects (classes, C), got {tuple(per_class.shape)}")
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 0.5 * per_class.shape[0] + 1.8), layout="constrained")
    im = ax.imshow(per_class.numpy(), aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set_yticks(np.arange(per_class.shape[0]),
                  class_names if class_names is not None else [str(i) for i in range(per_class.shape[0])])
    ax.set_title(t("ch03.gate_by_class.title"))
    ax.set_xlabel(t("ch03.gate_by_class.x"))
    ax.set_ylabel(t("ch03.gate_by_class.y"))
    fig.colorbar(im, ax=ax, label=t("ch03.gate_by_class.colorbar"))
    return fig


def gallery_indices(labels: torch.Tensor, per_class: int = 2) -> torch.Tensor:
    """The first ``per_class`` images of each class, class by class: the images of :func:`gate_gallery`."""
    labels = torch.as_tensor(labels).cpu()
    return torch.cat([torch.nonzero(labels == k)[:per_class, 0] for k in range(int(labels.max()) + 1)])


def gate_gallery(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, per_class: int = 2):
    """The gates a trained SE network computes for ``per_class`` validation images of each class, as a
    viewer: point at a channel to see its weight in every image (``model.attention_map``: (G, C, 1, 1))."""
    pick = gallery_indices(labels, per_class)
    chosen = images[pick.to(images.device)]
    with torch.no_grad():
        gates = model.attention_map(chosen)[:, :, 0, 0]                      # (G, C)
    names = data.shape_names()
    return viewer.channel_gallery(chosen, gates, labels=[names[int(labels[i])] for i in pick],
                                  title=t("ch03.gallery.title", n=len(pick)))



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
    n = as_count(answer)
    C, r = 256, 16
    h = C // r
    right = 2 * C * h + h + C
    if n == right:
        return None
    if n == 2 * C * h:
        return "ex.se.params.no_bias"
    if n in (2 * C * h + h, 2 * C * h + C):
        return "ex.se.params.one_bias"
    if n in (right + 1, right + h):                   # nn.PReLU() or nn.PReLU(C/r)
        return "ex.se.params.prelu"
    if n in (C * h, C * h + h, C * h + C):
        return "ex.se.params.one_fc"
    return "ex.se.params.other"


@exercise("se.shape")
def _se_shape(answer):
    shape = as_shape(answer)
    if shape == (8, 256, 1, 1):
        return None
    if shape == (8, 256):
        return "ex.se.shape.flat"
    if shape == (8, 256, 14, 14):
        return "ex.se.shape.full"
    if shape in ((8, 1, 1, 256), (8, 14, 14, 256)):
        return "ex.se.shape.channels_last"
    return "ex.se.shape.other"


def _se_variants(x, fc1, fc2):
    """What the common slips compute, to name the slip a wrong answer made (each as (B, C))."""
    z, z_max = x.mean((2, 3)), x.amax((2, 3))
    z_square = torch.nn.functional.avg_pool2d(x, x.size(2)).flatten(1)     # F.avg_pool2d(x, x.size(2))
    W1, b1, W2, b2 = fc1.weight, fc1.bias, fc2.weight, fc2.bias
    lin = torch.nn.functional.linear
    return [
        ("ex.se.gate.softmax", torch.softmax(fc2(torch.relu(fc1(z))), dim=1)),
        ("ex.se.gate.no_relu", torch.sigmoid(fc2(fc1(z)))),
        ("ex.se.gate.prelu", torch.sigmoid(fc2(torch.nn.functional.prelu(fc1(z), torch.tensor([0.25]))))),
        ("ex.se.gate.max_pool", torch.sigmoid(fc2(torch.relu(fc1(z_max))))),
        ("ex.se.gate.square_pool", torch.sigmoid(fc2(torch.relu(fc1(z_square))))),
        ("ex.se.gate.no_bias", torch.sigmoid(lin(torch.relu(lin(z, W1)), W2))),
        ("ex.se.gate.one_bias", torch.sigmoid(lin(torch.relu(lin(z, W1)), W2, b2))),
        ("ex.se.gate.one_bias", torch.sigmoid(lin(torch.relu(lin(z, W1, b1)), W2))),
        ("ex.se.gate.no_sigmoid", fc2(torch.relu(fc1(z)))),
    ]


#: The cases of exercise 3: (what the case changes, its fields, B, C, C/r). The first differs from the notebook's
#: variables (B = 2, C = 64); each later case changes one thing.
GATE_CASES = ((None, {}, 3, 32, 4), ("ex.se.gate.batch1", {}, 1, 32, 4), ("ex.se.gate.channels", dict(C=24), 3, 24, 6))


@exercise("se.gate")
def _se_gate(answer):
    se_gate = as_function(answer, usage="se_gate(x, fc1, fc2)")
    g = torch.Generator().manual_seed(0)
    for note, fields, B, C, h in GATE_CASES:
        fc1, fc2 = nn.Linear(C, h), nn.Linear(h, C)
        with torch.no_grad():
            for p in (*fc1.parameters(), *fc2.parameters()):
                p.copy_(torch.randn(p.shape, generator=g))
        x = torch.randn(B, C, 5, 7, generator=g)
        with case(note, **fields):
            _gate_case(se_gate, x, fc1, fc2)
    return None


def _gate_case(se_gate, x, fc1, fc2):
    with torch.no_grad():                       # the reference first, on the originals
        expected = torch.sigmoid(fc2(torch.relu(fc1(x.mean((2, 3))))))[:, :, None, None]
        variants = _se_variants(x, fc1, fc2)
    got = call(se_gate, x, fc1, fc2, names=("x", "fc1", "fc2"))
    if isinstance(got, torch.Tensor) and got.shape == x.shape and close(got, x * expected):
        raise Slip("ex.se.gate.scaled")
    if isinstance(got, torch.Tensor) and got.numel() == expected.numel() and close(got, expected) \
            and got.shape != expected.shape:
        raise Slip("ex.fn.shape", got=tuple(got.shape), expected=tuple(expected.shape))
    expect_close(got, expected, variants, "ex.se.gate.other")


# ---------------------------------------------------------------- §6: the context task (shared with chapter 7)

register({
    "ch03.context.accuracy": {"en": "{label:>16}: accuracy {mean:.3f} ± {std:.3f} (seeds: {runs}); "
                                    "{found} of {n} runs above 90%",
                              "zh": "{label}：准确率 {mean:.3f} ± {std:.3f}（各随机种子：{runs}）；"
                                    "{n} 次训练中有 {found} 次超过 90%"},
    "ch03.context.none": {"en": "no attention", "zh": "无注意力"},
    "ch03.context.se": {"en": "SE (r = 1)", "zh": "SE（r = 1）"},
    "ch03.context.share": {"en": "SE, seed {seed}: the question explains {share:.0%} of the gate's variation across "
                                 "the {n} validation images",
                           "zh": "SE，随机种子 {seed}：在 {n} 张验证图像上，门控的变化有 {share:.0%} 可由问题解释"},
})

#: The context task of §6: the same TinyCNN without attention and with SE (16 channels, r = 1, so the
#: bottleneck does not starve the gate; chapter 7 compares r = 16, ECA and these same runs).
CONTEXT_DEMOS = {"none": ContextCNN(attention=None), "se": ContextCNN(attention="squeeze_excitation", reduction=1)}
CONTEXT_SEEDS = (0, 1, 2, 3, 4)
