"""Chapter 06 · BAM: the chapter's strings, figures, the two-stage network, demos, exercises and explorer.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch06_bam as ch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..bam import BAM
from ..registry import MECHANISMS
from ..toolkit import data, viewer, viz
from ..toolkit.exercises import as_count, as_function, as_shape, call, case, exercise, expect_close
from ..toolkit.format import Table, format_count, format_si
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyCNN
from ..toolkit.train import DemoConfig, ShapesCNN
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch06.explorer.dilation": {"en": "dilation d", "zh": "空洞率 d"},
    "ch06.explorer.fusion": {"en": "fusion", "zh": "融合方式"},
    "ch06.explorer.fusion.sum": {"en": "sum (paper)", "zh": "相加（论文）"},
    "ch06.explorer.fusion.product": {"en": "product (official code)", "zh": "相乘（官方代码）"},
    # §1
    "ch06.rf.title": {"en": "Where one output of two 3×3 convolutions looks: dilation 1 against 4",
                      "zh": "两层 3×3 卷积的一个输出看到哪里：空洞率 1 与 4 对比"},
    "ch06.rf.panel": {"en": "dilation {d}: {n} pixels read, spanning {s}×{s}",
                      "zh": "空洞率 {d}：读取 {n} 个像素，跨越 {s}×{s}"},
    "ch06.rf.x": {"en": "x (pixels)", "zh": "x（像素）"},
    "ch06.rf.y": {"en": "y (pixels)", "zh": "y（像素）"},
    "ch06.rf.taps": {"en": "times an input pixel is read", "zh": "输入像素被读取的次数"},
    # §3, §5
    "ch06.counts": {"en": "parameters {params} (formula {params_formula}); FLOPs {flops} (formula {flops_formula})",
                    "zh": "参数量 {params}（公式 {params_formula}）；浮点运算次数 {flops}（公式 {flops_formula}）"},
    "ch06.cost.where": {"en": "where", "zh": "位置"},
    "ch06.cost.count": {"en": "modules", "zh": "模块数"},
    "ch06.cost.params": {"en": "parameters", "zh": "参数量"},
    "ch06.cost.flops": {"en": "FLOPs per image", "zh": "每张图像的浮点运算次数"},
    "ch06.cost.cbam": {"en": "CBAM in every bottleneck block", "zh": "CBAM：每个瓶颈残差块一个"},
    "ch06.cost.bam": {"en": "BAM after stages 1, 2, 3", "zh": "BAM：第 1、2、3 阶段之后各一个"},
    "ch06.cost.tiny": {"en": "{name} in the tiny CNN (C = {C}, {H}×{W})", "zh": "{name}，在小型 CNN 中（C = {C}，{H}×{W}）"},
    # §6
    "ch06.fusion.title": {"en": "Sum against product on the same input: three channels of one image",
                          "zh": "同一输入上的相加与相乘：一张图像的三个通道"},
    "ch06.fusion.sum": {"en": "σ(M_c + M_s)", "zh": "σ(M_c + M_s)"},
    "ch06.fusion.product": {"en": "σ(M_c · M_s)", "zh": "σ(M_c · M_s)"},
    "ch06.fusion.channel": {"en": "channel {c}: M_c = {v:+.2f}", "zh": "通道 {c}：M_c = {v:+.2f}"},
    "ch06.fusion.value": {"en": "map value", "zh": "图的取值"},
    "ch06.fusion.x": {"en": "position on the feature map", "zh": "特征图上的位置"},
    "ch06.accuracy": {"en": "validation accuracy, seed 0: BAM {acc:.1%}, CBAM {cbam:.1%} (chance 25%)",
                      "zh": "验证集准确率（随机种子 0）：BAM {acc:.1%}，CBAM {cbam:.1%}（随机猜测 25%）"},
    "ch06.random": {"en": "random BAM", "zh": "随机初始化的 BAM"},
    "ch06.trained": {"en": "trained BAM", "zh": "训练后的 BAM"},
    "ch06.gallery.title": {"en": "BAM's map σ(M), averaged over channels (target box in cyan)",
                           "zh": "BAM 的图 σ(M)，对通道取平均（青色方框为目标）"},
    "ch06.stages.early": {"en": "early BAM (16×16)", "zh": "前面的 BAM（16×16）"},
    "ch06.stages.late": {"en": "late BAM (8×8)", "zh": "后面的 BAM（8×8）"},
    "ch06.stages.title": {"en": "BAM at two stage boundaries of one network (target box in cyan)",
                          "zh": "同一个网络中两个阶段边界上的 BAM（青色方框为目标）"},
    "ch06.compare.title": {"en": "CBAM against BAM: same backbone, same images (target box in cyan)",
                           "zh": "CBAM 与 BAM：同一骨干网络，同一批图像（青色方框为目标）"},
    "ch06.compare.cbam": {"en": "CBAM M_s", "zh": "CBAM 的 M_s"},
    "ch06.compare.bam": {"en": "BAM σ(M), sum", "zh": "BAM 的 σ(M)，相加"},
    "ch06.compare.product": {"en": "BAM σ(M), product", "zh": "BAM 的 σ(M)，相乘"},
    "ch06.score.who": {"en": "map (3 seeds)", "zh": "图（3 个随机种子）"},
    "ch06.score.acc": {"en": "accuracy", "zh": "准确率"},
    "ch06.score.peak": {"en": "peak in box", "zh": "峰值落在框内"},
    "ch06.score.mass": {"en": "mass in box", "zh": "框内质量占比"},
    "ch06.score.area": {"en": "box area", "zh": "目标框面积占比"},
    "ch06.m_s_peaks": {"en": "{name}, seed {seed}: M_s peaks in the box for {plus:.1%} of the images, -M_s for {minus:.1%}",
                       "zh": "{name}，随机种子 {seed}：M_s 的峰值落在框内的图像占 {plus:.1%}，-M_s 的占 {minus:.1%}"},
    "ch06.photo.title": {"en": "{name}, photograph {s}×{s} (map {h}×{w})",
                         "zh": "{name}，照片 {s}×{s}（空间图 {h}×{w}）"},
    "ch06.viewer.title": {"en": "BAM's σ(M) (mean over channels) over validation images",
                          "zh": "BAM 的 σ(M)（通道平均）在验证图像上"},
    "ch06.bam_share": {"en": "the two BAMs hold {share:.1%} of the network's parameters",
                       "zh": "两个 BAM 占整个网络参数量的 {share:.1%}"},
    # §8
    "ch06.bn1": {"en": "training mode, batch size 1: {error}", "zh": "训练模式、批量大小为 1：{error}"},
    "ch06.bn1.fix": {"en": "eval mode, batch size 1: output {shape}", "zh": "推理模式、批量大小为 1：输出形状 {shape}"},
    "ch06.dilation": {"en": "padding {p}, dilation {d}, two convolutions: {h}×{w} in, {out} out",
                      "zh": "填充 {p}、空洞率 {d}、两个卷积：输入 {h}×{w}，输出 {out}"},
    "ch06.three_fc": {"en": "channel branch with {fc} FC layers: {params} parameters",
                      "zh": "通道分支有 {fc} 个全连接层：{params} 个参数"},
    # exercises
    "ex.bam.shape.channel": {"en": "(B, C, 1, 1) is M_c alone; the sum broadcasts it with M_s (B, 1, H, W).",
                             "zh": "(B, C, 1, 1) 只是 M_c；相加时它会与 M_s (B, 1, H, W) 广播。"},
    "ex.bam.shape.spatial": {"en": "(B, 1, H, W) is M_s alone; the sum broadcasts it with M_c (B, C, 1, 1).",
                             "zh": "(B, 1, H, W) 只是 M_s；相加时它会与 M_c (B, C, 1, 1) 广播。"},
    "ex.bam.shape.reduced": {"en": "C/r is the width inside the spatial branch; the map BAM applies has one value per "
                                   "channel of F.",
                             "zh": "C/r 是空间分支内部的宽度；BAM 施加的图对 F 的每个通道都有一个值。"},
    "ex.bam.shape.channels_last": {"en": "that is a channels-last layout; PyTorch keeps the channels at dim 1.",
                                   "zh": "这是通道在最后的布局；PyTorch 把通道放在 dim 1。"},
    "ex.bam.shape.other": {"en": "M(F) has one value per sample, channel and position.",
                           "zh": "M(F) 每个样本、每个通道、每个位置各有一个值。"},
    "ex.bam.params.no_bn": {"en": "the official layout has four BatchNorms (2 parameters per channel each): "
                                  "one in the MLP, three in the spatial branch.",
                            "zh": "官方结构有四个 BatchNorm（每个通道 2 个参数）：MLP 里一个，空间分支里三个。"},
    "ex.bam.params.three_fc": {"en": "that is a channel MLP with two hidden layers; the paper's has one (C → C/r → C).",
                               "zh": "这是带两个隐藏层的通道 MLP；论文的只有一个（C → C/r → C）。"},
    "ex.bam.params.no_bias": {"en": "every FC and convolution of BAM has a bias.", "zh": "BAM 的每个全连接层和卷积都有偏置。"},
    "ex.bam.params.one_dilated": {"en": "the spatial branch has two dilated 3×3 convolutions, each with its BatchNorm.",
                                  "zh": "空间分支有两个 3×3 空洞卷积，各自带一个 BatchNorm。"},
    "ex.bam.params.dense": {"en": "a dilated 3×3 kernel has 9 weights per input and output channel, however far apart "
                                  "they are spread.",
                            "zh": "3×3 空洞卷积核对每一对输入、输出通道只有 9 个权重，无论它们分布得多开。"},
    "ex.bam.params.no_final": {"en": "the spatial branch ends with a 1×1 convolution down to one map (with its bias).",
                               "zh": "空间分支最后还有一个把通道压成一张图的 1×1 卷积（带偏置）。"},
    "ex.bam.params.one_branch": {"en": "that is one branch alone; BAM has a channel branch and a spatial branch.",
                                 "zh": "这只是其中一个分支；BAM 既有通道分支，也有空间分支。"},
    "ex.bam.params.other": {"en": "count every layer of both branches in §5's breakdown, each with its bias and, where "
                                  "it has one, its BatchNorm; C = 256, r = 16.",
                            "zh": "按 §5 的分解把两个分支的每一层都数一遍，包括偏置，以及有 BatchNorm 的层的 BatchNorm；"
                                  "C = 256，r = 16。"},
    "ex.bam.combine.product": {"en": "that is the official code's product σ(M_c · M_s); the paper sums the branches.",
                               "zh": "这是官方代码的相乘 σ(M_c · M_s)；论文是把两个分支相加。"},
    "ex.bam.combine.no_residual": {"en": "the residual is missing: BAM adds the input back, F' = F + F ⊗ σ(M(F)).",
                                   "zh": "缺了残差：BAM 还要把输入加回去，F' = F + F ⊗ σ(M(F))。"},
    "ex.bam.combine.two_sigmoids": {"en": "one sigmoid of the sum, not a sigmoid per branch.",
                                    "zh": "对两者之和取一次 sigmoid，而不是每个分支各取一次。"},
    "ex.bam.combine.added": {"en": "the map multiplies F: F + F ⊗ σ(M), not F + σ(M).",
                             "zh": "图是乘到 F 上的：F + F ⊗ σ(M)，而不是 F + σ(M)。"},
    "ex.bam.combine.other": {"en": "the values differ from the paper's F' of §2: one sigmoid of the summed branches, "
                                   "applied to F, with the residual.",
                             "zh": "数值与 §2 中论文的 F' 不一致：对两个分支之和取一次 sigmoid，作用在 F 上，再加上残差。"},
    "ex.bam.combine.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: does "
                                    "a .squeeze() remove the batch axis too?",
                              "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.bam.combine.channels": {"en": "It passed the first test; this one differs only in the number of channels, "
                                      "C = {C}: is C fixed in your code?",
                                "zh": "第一组测试通过了；这一组只是把通道数换成了 C = {C}：代码里是不是写死了 C？"},
})


# ---------------------------------------------------------------- demos

#: The same training settings as chapter 05 (a test checks it), so the CBAM runs are shared with it.
QUICK = dict(n_train=600, epochs=4, batch_size=16, lr=1e-2)
SEEDS = (0, 1, 2)

#: The tiny CNN with BAM (and with CBAM) right before its global pool.
BAM_DEMO = ShapesCNN(attention="bam", **QUICK)
CBAM_DEMO = ShapesCNN(attention="cbam", **QUICK)


@dataclass(frozen=True)
class ShapesBAM(ShapesCNN):
    """The tiny CNN with BAM and a choice of fusion."""
    kind: ClassVar[str] = "shapes_bam"
    attention: str = "bam"
    fusion: str = "product"          # "sum" (paper) or "product" (official code)

    def build(self) -> nn.Module:
        return TinyCNN("bam", width=self.width, reduction=self.reduction, fusion=self.fusion)


PRODUCT_DEMO = ShapesBAM(fusion="product", **QUICK)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class StagedBAMNet(nn.Module):
    """The tiny CNN's backbone with BAM at both of its stage boundaries, as the paper places it.

    stage 1 (to H/2) -> BAM 1 -> max pool, stage 2 (to H/4) -> BAM 2 -> global average pool -> linear.
    Each BAM sits where the feature map is about to be pooled: the network's bottlenecks.
    """

    def __init__(self, num_classes: int = 4, width: int = 16, reduction: int = 4, dilation: int = 4,
                 fusion: str = "sum"):
        super().__init__()
        c = 2 * width
        self.stage1 = nn.Sequential(_conv_bn_relu(3, width, stride=2), _conv_bn_relu(width, c))   # (B, 2w, H/2, W/2)
        self.bam1 = BAM(c, reduction, dilation, fusion)
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), _conv_bn_relu(c, c))                         # (B, 2w, H/4, W/4)
        self.bam2 = BAM(c, reduction, dilation, fusion)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bam2(self.stage2(self.bam1(self.stage1(x)))))

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both BAMs' ``σ(M)``: ``(B, 2w, H/2, W/2)`` and ``(B, 2w, H/4, W/4)`` (call in eval mode)."""
        f1 = self.stage1(x)
        f2 = self.stage2(self.bam1(f1))
        return self.bam1.attention_map(f1), self.bam2.attention_map(f2)


@dataclass(frozen=True)
class BAMStages(DemoConfig):
    """:class:`StagedBAMNet` on the shapes images."""
    kind: ClassVar[str] = "bam_stages"
    width: int = 16                  # channels of the first convolution; both BAMs see 2 * width
    reduction: int = 4               # BAM's reduction ratio r (the paper's 16 would leave 2 hidden units)
    dilation: int = 4                # dilation of the spatial branch's 3x3 convolutions (the paper's 4)
    size: int = 32                   # image side in pixels
    n_train: int = 2000              # training images
    n_val: int = 500                 # held-out images

    def build(self) -> nn.Module:
        return StagedBAMNet(len(data.SHAPE_CLASSES), self.width, self.reduction, self.dilation)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return data.shapes_dataset(n, size=self.size, seed=self._split_seed(split))


STAGES_DEMO = BAMStages(**QUICK)


# ---------------------------------------------------------------- maps and scores

def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Branches(NamedTuple):
    """BAM's two branches before the fusion: ``m_c`` (B, C) and ``m_s`` (B, H, W)."""
    m_c: torch.Tensor
    m_s: torch.Tensor


@torch.no_grad()
def branches(bam: BAM, f: torch.Tensor) -> Branches:
    """``M_c(F)`` and ``M_s(F)`` of a library ``BAM`` on features ``f``, from its own submodules."""
    return Branches(bam.channel_mlp(f.mean((2, 3))), bam.spatial(f)[:, 0])


@torch.no_grad()
def spatial_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The tiny CNN's spatial map on ``images`` (CBAM's M_s, BAM's σ(M) averaged over channels), on the CPU."""
    return model.spatial_map(images.to(_device(model))).cpu()


def _mean_std(values: Sequence[float]) -> str:
    """``mean ± std (min–max)`` over seeds: with three seeds the range says as much as the spread."""
    v = torch.tensor(values, dtype=torch.float64)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    return f"{v.mean():.3f} ± {v.std():.3f} ({v.min():.2f}–{v.max():.2f})"


def score_table(runs: dict, stages: bool = False) -> Table:
    """Accuracy and box scores, mean ± std over runs: ``{label: [Demo per seed]}``. With ``stages``, the runs are
    :class:`StagedBAMNet` runs and each gives two rows, its early and its late map."""
    rows, area = [], {}
    for label, demos in runs.items():
        per_row = {}
        for demo in demos:
            val = demo.val_data
            images = val.images
            if stages:
                early, late = (m.cpu() for m in demo.model.attention_maps(images.to(_device(demo.model))))
                maps = {t("ch06.stages.early"): early.mean(1), t("ch06.stages.late"): late.mean(1)}
            else:
                maps = {label: spatial_maps(demo.model, images)}
            acc = demo.history["val_acc"][-1]                           # the trained model on val
            for name, m in maps.items():
                s = data.box_scores(m, val.boxes, images.shape[-1])
                per_row.setdefault(name, []).append((acc, s.peak_in_box, s.mass_in_box, s.box_area))
        for name, values in per_row.items():
            v = np.array(values)
            rows.append([name, _mean_std(v[:, 0]), _mean_std(v[:, 1]), _mean_std(v[:, 2]), f"{v[:, 3].mean():.3f}"])
    return Table([t("ch06.score.who"), t("ch06.score.acc"), t("ch06.score.peak"), t("ch06.score.mass"),
                  t("ch06.score.area")], rows)


def spatial_branch_peaks(demos) -> list:
    """Per run, how often ``M_s`` and how often ``-M_s`` peaks inside the target's box: ``[(plus, minus)]``."""
    out = []
    for demo in demos:
        model, val = demo.model, demo.val_data
        m_s = branches(model.attention, model.features(val.images.to(_device(model)))).m_s.cpu()   # (n, h, w)
        size = val.images.shape[-1]
        out.append(tuple(data.box_scores(m - m.amin((1, 2), keepdim=True), val.boxes, size).peak_in_box
                         for m in (m_s, -m_s)))
    return out


# ---------------------------------------------------------------- costs

#: ResNet-50's bottleneck blocks per stage, their output channels and map sides (224 × 224 input).
RESNET50 = ((3, 256, 56), (4, 512, 28), (6, 1024, 14), (3, 2048, 7))


def resnet50_costs() -> Table:
    """Parameters and FLOPs CBAM and BAM add to a ResNet-50, from the registry's formulas (r = 16, k_s = 7)."""
    cbam, bam = MECHANISMS["cbam"], MECHANISMS["bam"]
    cbam_p = sum(n * cbam.params(C=C, r=16, k_s=7) for n, C, S in RESNET50)
    cbam_f = sum(n * cbam.flops(C=C, H=S, W=S, r=16, k_s=7) for n, C, S in RESNET50)
    bam_p = sum(bam.params(C=C, r=16) for n, C, S in RESNET50[:3])
    bam_f = sum(bam.flops(C=C, H=S, W=S, r=16) for n, C, S in RESNET50[:3])
    count = sum(n for n, _, _ in RESNET50)
    rows = [[t("ch06.cost.cbam"), str(count), format_count(cbam_p), format_si(cbam_f)],
            [t("ch06.cost.bam"), "3", format_count(bam_p), format_si(bam_f)]]
    return Table([t("ch06.cost.where"), t("ch06.cost.count"), t("ch06.cost.params"), t("ch06.cost.flops")], rows)


# ---------------------------------------------------------------- figures

def plot_dilation_reach(photo: torch.Tensor, dilations: Sequence[int] = (1, 4)):
    """How often each pixel of ``photo`` is read by one output of two stacked 3×3 convolutions with each dilation."""
    gray = photo.mean(0)                                                    # (H, W)
    h, w = gray.shape
    fig, axes = viz.page_grid(len(dilations), (3.2, 3.2), max_cols=2, extra=(0.2, 0.6))
    for ax, d in zip(axes, dilations):
        taps = torch.zeros(1, 1, h, w)
        taps[..., h // 2, w // 2] = 1.0
        kernel = torch.ones(1, 1, 3, 3)
        for _ in range(2):
            taps = nn.functional.conv2d(taps, kernel, padding=d, dilation=d)   # where the output reads
        reach = taps[0, 0]                                                     # (H, W)
        cols = torch.nonzero(reach.sum(0)).flatten()
        span = int(cols.max() - cols.min() + 1)
        ax.imshow(gray.numpy(), cmap="gray")
        shown = np.ma.masked_where(reach.numpy() == 0, reach.numpy())
        im = ax.imshow(shown, cmap="autumn", alpha=0.8, vmin=1)
        ax.set_title(t("ch06.rf.panel", d=d, n=int((reach > 0).sum()), s=span), fontsize="medium", wrap=True)
        ax.set_xlabel(t("ch06.rf.x"))
        ax.set_ylabel(t("ch06.rf.y"))
        fig.colorbar(im, ax=ax, label=t("ch06.rf.taps"), shrink=0.8)
    fig.suptitle(t("ch06.rf.title"), wrap=True)
    return fig


def plot_fusion(parts: Branches, index: int = 0):
    """For one image, three channels (largest, smallest and most negative M_c): the sum and the product map."""
    m_c, m_s = parts.m_c[index], parts.m_s[index]                           # (C,), (H, W)
    order = torch.argsort(m_c)
    picks = [int(order[-1]), int(order[torch.argmin(m_c[order].abs())]), int(order[0])]
    fig, axes = plt.subplots(2, 3, figsize=(PAGE_WIDTH_IN, 5.0), layout="constrained")
    im = None
    for j, c in enumerate(picks):
        for i, (key, m) in enumerate((("ch06.fusion.sum", torch.sigmoid(m_c[c] + m_s)),
                                      ("ch06.fusion.product", torch.sigmoid(m_c[c] * m_s)))):
            ax = axes[i, j]
            im = ax.imshow(m.numpy(), cmap="inferno", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(t("ch06.fusion.channel", c=c, v=m_c[c].item()), fontsize="medium", wrap=True)
            else:
                ax.set_xlabel(t("ch06.fusion.x"), wrap=True)
            if j == 0:
                ax.set_ylabel(t(key))
    fig.colorbar(im, ax=axes.ravel().tolist(), label=t("ch06.fusion.value"), shrink=0.85)
    fig.suptitle(t("ch06.fusion.title"), wrap=True)
    return fig


def plot_photo_maps(models: dict, size: int = 96):
    """Each trained tiny CNN's spatial map over the sample photograph, side by side: ``{name: model}``."""
    photo = data.sample_photo(size=size)
    fig, axes = viz.page_grid(len(models), (5.2, 3.4), max_cols=1, extra=(0.2, 0.3))
    for ax, (name, model) in zip(axes, models.items()):
        m = spatial_maps(model, photo[None])[0]
        viz.plot_spatial_map(m, photo, ax=ax, title=t("ch06.photo.title", name=name, s=size, h=m.shape[0],
                                                      w=m.shape[1]))
    return fig


# ---------------------------------------------------------------- §8: common slips

class DeepChannelMLP(nn.Sequential):
    """A slip: BAM's channel MLP with ``hidden_layers`` hidden layers (the official code's ``num_layers``);
    the paper has one, C -> C/r -> C."""

    def __init__(self, channels: int, reduction: int = 16, hidden_layers: int = 2):
        h = channels // reduction
        layers, width = [], channels
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU()]
            width = h
        super().__init__(*layers, nn.Linear(width, channels))


# ---------------------------------------------------------------- the explorer

def _fusion(value) -> str:
    return t(f"ch06.explorer.fusion.{value}")


def _bam(s) -> nn.Module:
    return MECHANISMS["bam"].cls(s["channels"], reduction=s["reduction"], dilation=s["dilation"],
                                 fusion=s["fusion"])


def _plot_bam(module, x, s):
    a = module.attention_map(x)                                             # (G, C, H, W)
    return viewer.spatial_gallery(x.mean(1, keepdim=True), a.mean(1),       # (G, H, W): mean over channels
                                  labels=input_labels(len(x)))


EXPLORER = register_explorer(ExplorerSpec(
    "bam", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (16,)),
        Control("dilation", "ch06.explorer.dilation", (1, 2, 4), 4, (1, 2, 4)),
        Control("fusion", "ch06.explorer.fusion", ("sum", "product"), "sum", ("sum", "product"), dropdown=True,
                fmt=_fusion)),
    build=_bam, plot=_plot_bam))


# ---------------------------------------------------------------- exercises

@exercise("bam.shape")
def _bam_shape(answer):
    shape = as_shape(answer)
    if shape == (8, 512, 28, 28):
        return None
    if shape == (8, 512, 1, 1):
        return "ex.bam.shape.channel"
    if shape == (8, 1, 28, 28):
        return "ex.bam.shape.spatial"
    if shape in ((8, 32, 28, 28), (8, 32, 1, 1)):
        return "ex.bam.shape.reduced"
    if shape == (8, 28, 28, 512):
        return "ex.bam.shape.channels_last"
    return "ex.bam.shape.other"


def bam_params(C: int, r: int, hidden_layers: int = 1, norm: bool = True, bias: bool = True) -> int:
    """BAM's parameter count in the official layout, with the slips of the exercise as options."""
    h = C // r
    b, n = int(bias), 2 * int(norm)
    mlp = C * h + h * b + n * h + (hidden_layers - 1) * (h * h + h * b + n * h) + h * C + C * b
    spatial = C * h + h * b + n * h + 2 * (9 * h * h + h * b + n * h) + h + b
    return mlp + spatial


@exercise("bam.params")
def _bam_params(answer):
    n = as_count(answer)
    C, r = 256, 16
    if n == bam_params(C, r):
        return None
    if n == bam_params(C, r, norm=False):
        return "ex.bam.params.no_bn"
    if n in (bam_params(C, r, hidden_layers=2), bam_params(C, r, hidden_layers=2, norm=False)):
        return "ex.bam.params.three_fc"
    if n in (bam_params(C, r, bias=False), bam_params(C, r, bias=False, norm=False)):
        return "ex.bam.params.no_bias"
    h = C // r
    right, dilated = bam_params(C, r), 9 * h * h + h + 2 * h             # one dilated 3x3 conv with its BatchNorm
    if n == right - dilated:
        return "ex.bam.params.one_dilated"
    if n in (right + 2 * (81 - 9) * h * h, right + 2 * (25 - 9) * h * h):   # counted as 9x9 (or 5x5) kernels
        return "ex.bam.params.dense"
    if n == right - (h + 1):
        return "ex.bam.params.no_final"
    spatial = C * h + 3 * h + 2 * dilated + h + 1
    if n in (right - spatial, spatial):
        return "ex.bam.params.one_branch"
    return "ex.bam.params.other"


#: The cases of exercise 3: (what the case changes, its fields, B, C); each later case changes one thing.
COMBINE_CASES = ((None, {}, 3, 6), ("ex.bam.combine.batch1", {}, 1, 6), ("ex.bam.combine.channels", dict(C=4), 3, 4))


@exercise("bam.combine")
def _bam_combine(answer):
    bam_output = as_function(answer, usage="bam_output(F, m_c, m_s)")
    g = torch.Generator().manual_seed(0)
    for note, fields, B, C in COMBINE_CASES:
        f = torch.randn(B, C, 4, 5, generator=g)
        m_c, m_s = torch.randn(B, C, 1, 1, generator=g), torch.randn(B, 1, 4, 5, generator=g)
        with case(note, **fields):
            expected = f * (1 + torch.sigmoid(m_c + m_s))       # the reference first, on the originals
            variants = [
                ("ex.bam.combine.product", f * (1 + torch.sigmoid(m_c * m_s))),
                ("ex.bam.combine.no_residual", f * torch.sigmoid(m_c + m_s)),
                ("ex.bam.combine.two_sigmoids", f * (1 + torch.sigmoid(m_c) * torch.sigmoid(m_s))),
                ("ex.bam.combine.two_sigmoids", f * (1 + torch.sigmoid(m_c) + torch.sigmoid(m_s))),
                ("ex.bam.combine.added", f + torch.sigmoid(m_c + m_s)),
            ]
            got = call(bam_output, f, m_c, m_s, names=("F", "m_c", "m_s"))
            expect_close(got, expected, variants, "ex.bam.combine.other")
    return None
