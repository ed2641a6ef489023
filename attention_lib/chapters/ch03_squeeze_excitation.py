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
from ..toolkit import readings as rd
from ..toolkit.train import ContextCNN, ShapesCNN, one_thread, trained_demos
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
    "ch03.share": {"en": "SE / 3 × 3 convolution FLOPs at C = {C}, {S} × {S}: {share:.2%}",
                   "zh": "C = {C}、{S} × {S} 时，SE 与 3 × 3 卷积的浮点运算次数之比：{share:.2%}"},
    "ch03.accuracy": {"en": "validation accuracy with SE: {acc:.1%}; without attention: {base:.1%}; chance: 25%",
                      "zh": "验证集准确率：带 SE {acc:.1%}；不带注意力 {base:.1%}；随机猜测 25%"},
    "ch03.gate_range": {"en": "{which}: gate values from {low:.3f} to {high:.3f}; {damped:.1%} of them below 0.9",
                        "zh": "{which}：门控值从 {low:.3f} 到 {high:.3f}；其中 {damped:.1%} 低于 0.9"},
    "ch03.block_share": {"en": "output {shape}; SE adds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；SE 占该残差块参数量的 {share:.1%}"},
    # exercise verdicts (keys ex.<exercise>.<slip>: the teacher's guide lists them by exercise)
    "ex.se.params.no_bias": {"en": "that is W1 and W2 alone; both FC layers also have a bias.",
                             "zh": "这只算了 W1 和 W2；两个全连接层还各有一个偏置。"},
    "ex.se.params.one_bias": {"en": "one of the two biases is missing: each FC layer has its own.",
                              "zh": "少算了一个偏置：两个全连接层各有自己的偏置。"},
    "ex.se.params.one_fc": {"en": "SE has two FC layers: C -> C/r and C/r -> C.",
                            "zh": "SE 有两个全连接层：C → C/r 和 C/r → C。"},
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

@exercise("se.params", forbid=("count_parameters",))
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


# ---------------------------------------------------------------- §6: readings of the shapes demo

register({
    "ch03.shapes_config": {"en": "the SE block of this network: C = {C} channels, r = {r}, so {h} hidden units",
                           "zh": "这个网络里的 SE 模块：C = {C} 个通道，r = {r}，因此有 {h} 个隐藏单元"},
    "ch03.spread_null": {"en": "spread of the gate across classes: {trained:.4f} with the true labels; with the labels "
                               "shuffled ({n} times): mean {mean:.4f}, largest {high:.4f}",
                         "zh": "门控在各类别之间的离散程度：真实标签下为 {trained:.4f}；把标签随机打乱 {n} 次：均值 {mean:.4f}，"
                               "最大 {high:.4f}"},
})


def class_spread(gate: torch.Tensor, labels: torch.Tensor, classes: int = 4) -> float:
    """How much a gate ``(n, C)`` differs between classes: the standard deviation across the classes of the
    per-class mean gate, averaged over the channels."""
    gate, labels = torch.as_tensor(gate).float(), torch.as_tensor(labels)
    if gate.dim() != 2 or labels.shape != gate.shape[:1]:
        raise ValueError(f"class_spread expects a gate (n, C) and labels (n,), got {tuple(gate.shape)} and "
                         f"{tuple(labels.shape)}")
    means = torch.stack([gate[labels == k].mean(0) for k in range(classes)])     # (classes, C)
    return means.std(0).mean().item()


def permuted_spreads(gate: torch.Tensor, labels: torch.Tensor, n: int = 200, seed: int = 0) -> torch.Tensor:
    """:func:`class_spread` with the labels shuffled ``n`` times (a seeded generator): the spread that chance
    alone gives images of these classes, the null against which the trained gate's spread is read."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels)
    return torch.tensor([class_spread(gate, labels[torch.randperm(len(labels), generator=g)]) for _ in range(n)])


def check_shapes_readings(acc: float, base_acc: float, trained_gate: torch.Tensor, random_gate: torch.Tensor,
                          spread: float, null: torch.Tensor) -> None:
    """The sentences of §6 that read the shapes demo (cells after the accuracy, the gate ranges and the spread)."""
    rd.expect("the first cell printed about the same accuracy with and without SE (within 2 points)",
              abs(acc - base_acc) <= 0.02, acc=acc, base=base_acc)
    rd.expect("the random gate stays close to 0.5 for every channel (within 0.1)",
              float((random_gate - 0.5).abs().max()) < 0.1, low=float(random_gate.min()), high=float(random_gate.max()))
    damped = float((trained_gate < 0.9).float().mean())
    rd.expect("the trained gate passes most values almost untouched (at least 0.9) and damps some of them",
              0.02 < damped < 0.5, damped=damped)
    rd.expect("the gates of different classes differ more than with any shuffling of the labels",
              spread > float(null.max()), spread=spread, null_max=float(null.max()))
    rd.expect("they differ by a few hundredths (between 0.01 and 0.1)", 0.01 <= spread <= 0.1, spread=spread)


# ---------------------------------------------------------------- §6: the context task (shared with chapter 7)

register({
    "ch03.context.accuracy": {"en": "{label:>24}: accuracy {seeds}; runs above 3/4: {learned} of {n}, above 90%: "
                                    "{found}; {extra} parameters beyond the baseline",
                              "zh": "{label}：准确率 {seeds}；{n} 次训练中超过 3/4 的 {learned} 次，超过 90% 的 {found} 次；"
                                    "比基线多 {extra} 个参数"},
    "ch03.context.none": {"en": "no attention", "zh": "不带注意力"},
    "ch03.context.mlp": {"en": "no attention, MLP head", "zh": "不带注意力，MLP 分类头"},
    "ch03.context.se": {"en": "SE (r = 1)", "zh": "SE（r = 1）"},
    "ch03.context.paired": {"en": "SE minus MLP head, seed by seed: {diffs}",
                            "zh": "SE 减去 MLP 分类头，逐个随机种子：{diffs}"},
    "ch03.context.readouts": {"en": "read-outs that add one vector per colour, orientation and band, on the {n} "
                                    "validation images: hand-built {rule:.3f}; lowest cross-entropy {ce:.3f}",
                              "zh": "在 {n} 张验证图像上，为颜色、方向和条带各加一个向量的读出：手工构造的 {rule:.3f}；"
                                    "交叉熵最小的 {ce:.3f}"},
    "ch03.context.share": {"en": "SE, seed {seed}: the question explains {share:.0%} of the gate's variation across "
                                 "the {n} validation images",
                           "zh": "SE，随机种子 {seed}：在 {n} 张验证图像上，门控的变化有 {share:.0%} 可由问题解释"},
    "ch03.context.moves": {"en": "channels whose mean gate moves by more than 0.3 between the questions: {up} open "
                                 "with the band, {down} close with it; {closed} stay below 0.25 for both",
                           "zh": "两种问题下门控均值相差超过 0.3 的通道：有条带时打开的 {up} 个，关闭的 {down} 个；"
                                 "另有 {closed} 个在两种问题下都低于 0.25"},
    "ch03.context.swap": {"en": "every image given the mean gate of its own question: accuracy {same:.3f} (images "
                                "with the band {same_band:.3f}, without {same_plain:.3f}); of the other question: "
                                "{other:.3f}, and the other question's answer on {other_answer:.3f} of the images "
                                "(its own gate: {own:.3f})",
                          "zh": "每张图像换上本问题的平均门控：准确率 {same:.3f}（有条带的图像 {same_band:.3f}，没有条带的 "
                                "{same_plain:.3f}）；换上另一问题的平均门控：准确率 {other:.3f}，给出另一问题答案的图像占 "
                                "{other_answer:.3f}（用它自己的门控：{own:.3f}）"},
})

#: The context task of §6: the same TinyCNN (16 channels before the block, one 1x1 conv stage after it) without
#: attention, with an MLP head instead (32 hidden units: 608 parameters beyond the linear head, more than SE's 544)
#: and with SE without reduction (r = 1: the paper's r = 16 would leave one hidden unit; chapter 7 measures it).
CONTEXT_DEMOS = {"none": ContextCNN(attention=None), "mlp": ContextCNN(attention=None, head_hidden=32),
                 "se": ContextCNN(attention="squeeze_excitation", reduction=1)}
CONTEXT_SEEDS = (0, 1, 2, 3, 4)
#: "Learned the switch": a validation accuracy above 3/4, which no read-out blind to the question can pass (the
#: argument of §6); "fully": above 90%.
LEARNED = 0.75
FOUND = 0.9


def trained_runs(groups: dict, **options) -> dict:
    """An experiment's trained demos: ``{variant: [DemoConfig per seed]}`` -> ``{variant: [Demo per seed]}``, in
    the same order. All go through one :func:`~attention_lib.toolkit.train.trained_demos` call, so the uncached
    ones train side by side in one pool of worker processes (bitwise the same weights as one by one). ``options``
    go to ``trained_demos``; by default no progress bar, and one validation, after the last epoch."""
    flat = [c for configs in groups.values() for c in configs]
    options.setdefault("progress", False)
    options.setdefault("val_every", max(c.epochs for c in flat))
    demos = iter(trained_demos(flat, **options))
    return {name: [next(demos) for _ in configs] for name, configs in groups.items()}


def extra_parameters(model: nn.Module, baseline: nn.Module) -> int:
    """Parameters a variant of the context network adds to the one without attention and with a linear head."""
    return sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in baseline.parameters())


def context_lines(runs: dict, accs: dict) -> list:
    """The printed results of the context runs: one line per variant (per-seed accuracies, runs above 90%,
    parameters added to the baseline), then SE minus the MLP head, seed by seed."""
    baseline = runs["none"][0].model
    lines = [t("ch03.context.accuracy", label=t(f"ch03.context.{name}"), seeds=a, learned=a.count(lambda v: v > LEARNED),
               found=a.count(lambda v: v > FOUND), n=a.n, extra=extra_parameters(runs[name][0].model, baseline))
             for name, a in accs.items()]
    lines.append(t("ch03.context.paired", diffs=rd.paired(accs["se"].values, accs["mlp"].values).format(signed=True)))
    return lines


def _bar_features(d) -> torch.Tensor:
    """What a linear read-out of averaged features can add up, written exactly: one-hot colour, one-hot
    orientation and the band (n, 9)."""
    one_hot = nn.functional.one_hot
    return torch.cat([one_hot(d.colour, 4), one_hot(d.orientation, 4), d.context[:, None]], 1).float()


def additive_readouts(train, val) -> tuple[float, float]:
    """Two read-outs of the kind a linear layer on averaged features can be (one vector added per colour, per
    orientation and for the band), scored on ``val`` (a :func:`~attention_lib.toolkit.data.context_dataset`):

    - hand-built: answer the orientation, unless the band is there and the colour's class comes before the
      orientation's in a fixed order (the band vector favours classes 0 > 1 > 2 > 3): right on every image
      without the band and on half of those with it, 3/4 in expectation;
    - the one with the lowest cross-entropy on ``train``: logistic regression on the exact features (a convex
      problem, solved by L-BFGS from zero: one answer, whatever the seed).
    """
    pick_colour = (val.context == 1) & (val.colour < val.orientation)
    rule = (torch.where(pick_colour, val.colour, val.orientation) == val.labels).float().mean().item()
    x, y = _bar_features(train), train.labels
    layer = nn.Linear(x.shape[1], 4)
    nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(layer.parameters(), max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(layer(x), y)
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        ce = (layer(_bar_features(val)).argmax(1) == val.labels).float().mean().item()
    return rule, ce


def check_context_readings(accs: dict, rule: float, ce: float) -> None:
    """The sentences of §6 that read the context runs (``accs``: :func:`context_accuracies`) and the two
    additive read-outs."""
    none, mlp, se = accs["none"], accs["mlp"], accs["se"]
    rd.expect("a hand-built additive read-out is right about 3/4 of the time (0.70 to 0.78)", 0.70 <= rule <= 0.78,
              rule=rule)
    rd.expect("the additive read-out with the lowest cross-entropy is right only about half of the time",
              0.44 <= ce <= 0.56, ce=ce)
    rd.expect("without attention every run stays near one half (0.44 to 0.56), far below 3/4",
              none.low >= 0.44 and none.high <= 0.56, none=none)
    rd.expect("SE learned the switch fully (above 90%) in every run", se.count(lambda a: a > FOUND) == se.n, se=se)
    rd.expect("the MLP head learned it in every run too (above 3/4)", mlp.count(lambda a: a > LEARNED) == mlp.n,
              mlp=mlp)
    rd.expect("... but less completely: above 90% in most runs, not in all",
              mlp.n / 2 < mlp.count(lambda a: a > FOUND) < mlp.n, mlp=mlp)
    change = rd.paired(se.values, mlp.values)
    rd.expect("SE was at least as accurate as the MLP head in every seed, and more accurate on average",
              change.low >= 0 and change.mean > 0, change=change)


def gate_moves(gate: torch.Tensor, context: torch.Tensor, threshold: float = 0.3, closed: float = 0.25) -> dict:
    """How a context gate ``(n, C)`` follows the question: the number of channels whose mean gate rises (``up``)
    or falls (``down``) by more than ``threshold`` with the band, and of those below ``closed`` for both."""
    band = torch.as_tensor(context).bool()
    with_band, without = gate[band].mean(0), gate[~band].mean(0)                    # (C,) each
    diff = with_band - without
    return dict(up=int((diff > threshold).sum()), down=int((diff < -threshold).sum()),
                closed=int(((with_band < closed) & (without < closed)).sum()))


@torch.no_grad()
def gate_swap(model: nn.Module, val) -> dict:
    """Validation accuracy of a trained context network when every image's gate is replaced by the mean gate
    of the images that ask the same question (``same``) or the other one (``other``); ``own``: unchanged.
    If the later layers read the question from the gate, ``same`` stays high and ``other`` collapses."""
    model = model.cpu().eval()
    with one_thread():
        return _gate_swap(model, val)


def _gate_swap(model: nn.Module, val) -> dict:
    f = model.features(val.images)                                  # (n, C, H', W')
    g = model.attention.attention_map(f)                            # (n, C, 1, 1)
    q = val.context.long()                                          # (n,): 1 = the band asks for the colour
    mean = torch.stack([g[q == k].mean(0) for k in (0, 1)])         # (2, C, 1, 1): mean gate per question
    other_answer = torch.where(q == 1, val.orientation, val.colour)  # (n,): the answer to the question not asked

    def answers(gates):
        return model.read_out(f * gates).argmax(1)                  # (n,)

    def acc(pred, target=val.labels, where=None):
        hit = (pred == target).float()
        return (hit if where is None else hit[where]).mean().item()
    same, other = answers(mean[q]), answers(mean[1 - q])
    return dict(own=acc(answers(g)), same=acc(same), same_band=acc(same, where=q == 1),
                same_plain=acc(same, where=q == 0), other=acc(other), other_answer=acc(other, other_answer))


def check_gate_readings(share: float, moves: dict, swap: dict) -> None:
    """The sentences of §6 that read SE's context gate (seed 0): the figure, the share and the swap."""
    rd.expect("the question explains a large share of the gate's variation (at least a third)", share >= 1 / 3,
              share=share)
    rd.expect("a few channels open with the band and another group closes (2 to 8 each)",
              2 <= moves["up"] <= 8 and 2 <= moves["down"] <= 8, **moves)
    rd.expect("several channels stay nearly closed for both questions (at least 3 below 0.25)", moves["closed"] >= 3,
              **moves)
    rd.expect("with the mean gate of its own question the network still answers most images right (above 0.6)",
              swap["same"] > 0.6, **swap)
    rd.expect("... almost all of those without the band (above 0.85), but only about half of those with it "
              "(0.35 to 0.65)", swap["same_plain"] > 0.85 and 0.35 <= swap["same_band"] <= 0.65, **swap)
    rd.expect("with the other question's mean gate it falls to chance, one in four (0.17 to 0.33)",
              0.17 <= swap["other"] <= 0.33, **swap)
    rd.expect("... without switching to the other question: it gives that answer on about a third of the images "
              "(0.25 to 0.42)", 0.25 <= swap["other_answer"] <= 0.42, **swap)
    rd.expect("its own gate does better than the mean gate of its question", swap["own"] > swap["same"] + 0.05,
              **swap)
