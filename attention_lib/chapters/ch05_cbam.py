"""Chapter 05 · CBAM: the chapter's strings, figures, ablation variants, demos, exercises and explorer.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch05_cbam as ch``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..cbam import CBAM, CBAMAttention, ChannelGate, SpatialGate
from ..registry import MECHANISMS
from ..toolkit import data, viewer, viz
from ..toolkit.data import brightness_maps, centre_maps
from ..toolkit import readings as rd
from ..toolkit.exercises import Slip, as_count, as_function, as_shape, call, case, describe, exercise, expect_close
from ..toolkit.format import ShowsTable, Table
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyCNN
from ..toolkit.train import CueCNN, one_thread, trained_demos
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer, yes_no

register({
    "ch05.explorer.spatial_kernel": {"en": "spatial kernel", "zh": "空间卷积核"},
    "ch05.explorer.spatial_norm": {"en": "spatial BatchNorm", "zh": "空间分支的批量归一化"},
    # §1
    "ch05.channel.red": {"en": "red", "zh": "红色"},
    "ch05.channel.green": {"en": "green", "zh": "绿色"},
    "ch05.channel.blue": {"en": "blue", "zh": "蓝色"},
    "ch05.channel.edges": {"en": "horizontal edges", "zh": "水平边缘"},
    "ch05.pool.title": {"en": "CBAM pools twice: over space for each channel, over channels for each pixel",
                        "zh": "CBAM 池化两次：对每个通道沿空间池化，对每个像素沿通道池化"},
    "ch05.pool.bars": {"en": "per channel: what (M_c)", "zh": "每个通道一对数：看什么（M_c）"},
    "ch05.pool.avg": {"en": "average", "zh": "平均"},
    "ch05.pool.max": {"en": "max", "zh": "最大"},
    "ch05.pool.value": {"en": "pooled value", "zh": "池化值"},
    "ch05.pool.channel": {"en": "channel", "zh": "通道"},
    "ch05.pool.mean_map": {"en": "mean over channels", "zh": "沿通道取平均"},
    "ch05.pool.max_map": {"en": "max over channels", "zh": "沿通道取最大"},
    "ch05.pool.where": {"en": "per pixel: where (M_s)", "zh": "每个像素一对数：看哪里（M_s）"},
    "ch05.pool.activation": {"en": "activation", "zh": "激活值"},
    "ch05.max_adds": {"en": "{name:>6}: average {avg:.2f}, max {max:.2f}", "zh": "{name:>6}：平均 {avg:.2f}，最大 {max:.2f}"},
    "ch05.blob": {"en": "blob", "zh": "小亮斑"},
    "ch05.flat": {"en": "flat", "zh": "均匀"},
    # the block diagram
    "ch05.diagram.title": {"en": "CBAM inside a residual block: channel gate, then spatial gate",
                           "zh": "残差块中的 CBAM：先通道门控，再空间门控"},
    "ch05.diagram.input": {"en": "x\nC×H×W", "zh": "x\nC×H×W"},
    "ch05.diagram.conv1": {"en": "3×3 conv\nBN, ReLU", "zh": "3×3 卷积\n批量归一化、ReLU"},
    "ch05.diagram.conv2": {"en": "3×3 conv\nBN", "zh": "3×3 卷积\n批量归一化"},
    "ch05.diagram.skip": {"en": "identity: x is added after CBAM", "zh": "恒等映射：x 在 CBAM 之后相加"},
    "ch05.diagram.channel": {"en": "channel gate (what)", "zh": "通道门控（看什么）"},
    "ch05.diagram.spatial": {"en": "spatial gate (where)", "zh": "空间门控（看哪里）"},
    "ch05.diagram.pool_hw": {"en": "avg, max\nover H×W", "zh": "沿 H×W 取\n平均、最大"},
    "ch05.diagram.mlp": {"en": "shared MLP\nadd, σ", "zh": "共享 MLP\n相加、σ"},
    "ch05.diagram.m_c": {"en": "$M_c$\nC×1×1", "zh": "$M_c$\nC×1×1"},
    "ch05.diagram.pool_c": {"en": "mean, max\nover C", "zh": "沿 C 取\n平均、最大"},
    "ch05.diagram.conv7": {"en": "7×7 conv\nBN, σ", "zh": "7×7 卷积\n批量归一化、σ"},
    "ch05.diagram.m_s": {"en": "$M_s$\n1×H×W", "zh": "$M_s$\n1×H×W"},
    # §5
    "ch05.counts": {"en": "parameters {params} (formula {params_formula}); FLOPs for the batch of {B}: {flops} "
                          "(formula {flops_formula}), {per_sample} per sample",
                    "zh": "参数量 {params}（公式 {params_formula}）；这批 {B} 个样本的浮点运算次数 {flops}"
                          "（公式 {flops_formula}），每个样本 {per_sample}"},
    "ch05.versus_se": {"en": "C = {C}, {S} × {S}: SE {se}, CBAM {cbam} FLOPs; CBAM / 3 × 3 convolution: {share:.2%}",
                       "zh": "C = {C}、{S} × {S}：SE 为 {se}，CBAM 为 {cbam} 次浮点运算；CBAM 与 3 × 3 卷积之比：{share:.2%}"},
    # §6
    "ch05.random": {"en": "random CBAM: M_s", "zh": "随机初始化：M_s"},
    "ch05.trained": {"en": "trained CBAM: M_s", "zh": "训练后：M_s"},
    "ch05.gallery.bright": {"en": "brightness (scaled)", "zh": "亮度（缩放到 0–1）"},
    "ch05.gallery.features": {"en": "features in (scaled)", "zh": "进入 CBAM 的特征（缩放到 0–1）"},
    "ch05.gallery.title": {"en": "Where CBAM's M_s looks, and two maps without attention (cyan: target box)",
                           "zh": "CBAM 的 M_s 看向哪里，以及两张无需注意力的图（青色框为目标框）"},
    "ch05.score.who": {"en": "map (3 seeds)", "zh": "注意力图（3 个随机种子）"},
    "ch05.score.peak": {"en": "peak on the target", "zh": "峰值落在目标上"},
    "ch05.score.distractor": {"en": "peak on a distractor", "zh": "峰值落在干扰物上"},
    "ch05.score.mass": {"en": "mass in the target's box", "zh": "目标框内的质量占比"},
    "ch05.score.trained": {"en": "trained CBAM: M_s", "zh": "训练后的 CBAM：M_s"},
    "ch05.score.random": {"en": "random CBAM: M_s", "zh": "随机初始化的 CBAM：M_s"},
    "ch05.score.centre": {"en": "centre guess", "zh": "总猜中心"},
    "ch05.score.bright": {"en": "brightness map (no learning)", "zh": "亮度图（无需学习）"},
    "ch05.score.features": {"en": "features CBAM receives (channel mean)", "zh": "CBAM 收到的特征（通道平均）"},
    "ch05.score.base_features": {"en": "no attention: its features (channel mean)",
                                 "zh": "不带注意力：其特征（通道平均）"},
    "ch05.score.base_cam": {"en": "no attention: class-activation map", "zh": "不带注意力：类激活图"},
    "ch05.score.area": {"en": "the box's share of the map", "zh": "目标框占整张图的比例"},
    "ch05.where.means": {"en": "trained M_s: mean {inside} inside the target's box, {outside} outside it",
                         "zh": "训练后的 M_s：目标框内的均值 {inside}，框外的均值 {outside}"},
    "ch05.mask.region": {"en": "square covered", "zh": "遮住的方块"},
    "ch05.mask.drop": {"en": "drop of the true class's logit", "zh": "真实类别 logit 的下降"},
    "ch05.mask.accuracy": {"en": "accuracy", "zh": "准确率"},
    "ch05.mask.none": {"en": "nothing", "zh": "不遮挡"},
    "ch05.mask.peak": {"en": "{side} × {side} at the peak of M_s", "zh": "M_s 峰值处的 {side} × {side}"},
    "ch05.mask.random": {"en": "{side} × {side} at random", "zh": "随机位置的 {side} × {side}"},
    "ch05.mask.bright": {"en": "{side} × {side} at the brightest cell", "zh": "最亮格子处的 {side} × {side}"},
    "ch05.mask.cam": {"en": "{side} × {side} at the peak of the class-activation map",
                      "zh": "类激活图峰值处的 {side} × {side}"},
    "ch05.mask.row": {"en": "{net}: {region}", "zh": "{net}：{region}"},
    "ch05.mask.net.cbam": {"en": "CBAM", "zh": "CBAM"},
    "ch05.mask.net.none": {"en": "no attention", "zh": "不带注意力"},
    "ch05.mask.example": {"en": "Covering {side} × {side} pixels: p, the true class's probability (seed 0)",
                          "zh": "遮住 {side} × {side} 个像素：p 为真实类别的概率（随机种子 0）"},
    "ch05.mask.prob": {"en": "p = {p:.2f}", "zh": "p = {p:.2f}"},
    "ch05.mask.original": {"en": "uncovered", "zh": "不遮挡"},
    "ch05.mask.short.peak": {"en": "peak of M_s", "zh": "M_s 的峰值处"},
    "ch05.mask.short.random": {"en": "random", "zh": "随机位置"},
    "ch05.mask.short.bright": {"en": "brightest cell", "zh": "最亮的格子"},
    "ch05.photo.corr": {"en": "{s} × {s}: correlation of M_s with each cell's redness {red:.2f}, with its brightness "
                              "{bright:.2f}",
                        "zh": "{s} × {s}：M_s 与各格子红色程度的相关系数 {red:.2f}，与亮度的相关系数 {bright:.2f}"},
    "ch05.acc.who": {"en": "validation accuracy (3 seeds)", "zh": "验证集准确率（3 个随机种子）"},
    "ch05.acc.value": {"en": "mean ± std (per seed)", "zh": "均值 ± 标准差（各随机种子）"},
    "ch05.acc.cbam": {"en": "CBAM", "zh": "CBAM"},
    "ch05.acc.none": {"en": "no attention", "zh": "不带注意力"},
    "ch05.acc.change": {"en": "CBAM minus no attention, per seed", "zh": "CBAM 减去不带注意力（逐个随机种子）"},
    "ch05.photo.title": {"en": "Trained CBAM on a photograph, {s} × {s} pixels (map {h} × {w})",
                         "zh": "训练后的 CBAM 看照片：{s} × {s} 像素（空间图 {h} × {w}）"},
    "ch05.viewer.title": {"en": "CBAM's M_s over validation images", "zh": "CBAM 在验证图像上的 M_s"},
    # the ablation
    "ch05.order.channel_first": {"en": "channel → spatial", "zh": "先通道后空间"},
    "ch05.order.spatial_first": {"en": "spatial → channel", "zh": "先空间后通道"},
    "ch05.order.parallel": {"en": "parallel", "zh": "并行"},
    "ch05.ablation.variant": {"en": "order", "zh": "顺序"},
    "ch05.ablation.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch05.ablation.peak": {"en": "M_s peak on the target", "zh": "M_s 峰值落在目标上"},
    "ch05.ablation.distractor": {"en": "M_s peak on a distractor", "zh": "M_s 峰值落在干扰物上"},
    "ch05.ablation.baseline": {"en": "no attention", "zh": "不带注意力"},
    "ch05.ablation.title": {"en": "The order of CBAM's gates, small: each seed a dot, squares: mean ± std",
                            "zh": "CBAM 门控顺序的小规模消融实验：每个点是一个随机种子，方块为均值 ± 标准差"},
    "ch05.paired.who": {"en": "validation accuracy, seed by seed", "zh": "验证集准确率，逐个随机种子"},
    "ch05.paired.change": {"en": "difference, mean ± std (per seed)", "zh": "差值，均值 ± 标准差（各随机种子）"},
    "ch05.paired.images": {"en": "in images of {n}", "zh": "折合图像数（共 {n} 张）"},
    "ch05.paired.minus": {"en": "{a} minus {b}", "zh": "{a} − {b}"},
    "ch05.recipe": {"en": "r = {r}: the MLP has C/r = {hidden} hidden units for C = {C} channels "
                          "(r = 16 would leave {hidden16}); {n} training images, {epochs} epochs",
                    "zh": "r = {r}：C = {C} 个通道时 MLP 有 C/r = {hidden} 个隐藏单元（r = 16 只剩 {hidden16} 个）；"
                          "{n} 张训练图像，{epochs} 轮"},
    # §7, §8
    "ch05.block_share": {"en": "output {shape}; CBAM adds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；CBAM 占该残差块参数量的 {share:.1%}"},
    "ch05.fold": {"en": "official layout (conv, BN) folded into the equation's (conv with bias): max difference {diff:.1e}",
                  "zh": "把官方结构（卷积 + 批量归一化）折叠成公式的结构（带偏置的卷积）：最大差异 {diff:.1e}"},
    "ch05.residual": {"en": "{which}: weights from {low:.3f} to {high:.3f}; {damped:.0%} of the values damped",
                      "zh": "{which}：权重从 {low:.3f} 到 {high:.3f}；{damped:.0%} 的数值被削弱"},
    "ch05.residual.right": {"en": "CBAM (no residual inside)", "zh": "CBAM（内部没有残差）"},
    "ch05.residual.slip": {"en": "x + CBAM(x) inside the module", "zh": "模块内部写成 x + CBAM(x)"},
    "ch05.unshared": {"en": "channel gate, shared MLP: {shared} parameters; one MLP per descriptor: {unshared}",
                      "zh": "通道门控：共享 MLP 时 {shared} 个参数；每个描述符各用一个 MLP 时 {unshared} 个"},
    # exercises
    "ex.cbam.shapes.not_pair": {"en": "give a pair of shapes, (channel shape, spatial shape), each a tuple of "
                                      "integers; you gave {what}.",
                                "zh": "请给出一对形状，即（通道图的形状，空间图的形状），每个都是整数元组；你给出的是 {what}。"},
    "ex.cbam.shapes.swapped": {"en": "the two shapes are swapped: the channel map comes first.",
                               "zh": "两个形状写反了：通道图在前。"},
    "ex.cbam.shapes.squeezed": {"en": "keep the singleton axes: each map must broadcast against (B, C, H, W).",
                                "zh": "请保留长度为 1 的轴：两张图都要能与 (B, C, H, W) 广播。"},
    "ex.cbam.shapes.channel": {"en": "M_c holds one weight per sample and per channel.", "zh": "M_c 每个样本、每个通道一个权重。"},
    "ex.cbam.shapes.spatial": {"en": "M_s holds one weight per sample and per position, shared by all channels.",
                               "zh": "M_s 每个样本、每个位置一个权重，所有通道共用。"},
    "ex.cbam.params.no_bias": {"en": "the two FC layers of the MLP have biases (C/r and C values).",
                               "zh": "MLP 的两个全连接层都有偏置（分别是 C/r 和 C 个值）。"},
    "ex.cbam.params.unshared": {"en": "the MLP is shared by the average and the max descriptor: count it once.",
                                "zh": "平均描述符和最大描述符共用同一个 MLP：只算一次。"},
    "ex.cbam.params.no_spatial": {"en": "that is the channel gate alone; add the spatial gate (7 × 7 conv on 2 maps, "
                                        "BN).",
                                  "zh": "这只是通道门控；还要加上空间门控（作用在 2 张图上的 7 × 7 卷积，以及批量归一化）。"},
    "ex.cbam.params.conv_in": {"en": "the 7 × 7 conv sees 2 input maps (average and max), so it has 2 · 49 weights.",
                               "zh": "7 × 7 卷积的输入是 2 张图（平均与最大），所以有 2 · 49 个权重。"},
    "ex.cbam.params.norm": {"en": "the official spatial gate: a bias-free 7 × 7 conv, then BatchNorm (2 parameters).",
                            "zh": "官方代码的空间门控：不带偏置的 7 × 7 卷积，后接批量归一化（2 个参数）。"},
    "ex.cbam.params.other": {"en": "count every parameter of §5's breakdown: the weights and biases of the shared MLP, "
                                   "then the spatial gate's convolution and its BatchNorm; C = 256, r = 16.",
                             "zh": "按 §5 的分解把每个参数都数一遍：共享 MLP 的权重和偏置，再加上空间门控的卷积及其批量归一化；"
                                   "C = 256，r = 16。"},
    "ex.cbam.spatial.axis": {"en": "The convolution expects 2 maps: pool over the channel axis (dim 1) and keep it "
                                   "(keepdim=True).",
                             "zh": "卷积要的是 2 张图：应沿通道轴（dim 1）池化，并保留这个轴（keepdim=True）。"},
    "ex.cbam.spatial.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: "
                                     "does a .squeeze() remove the batch axis too?",
                               "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.cbam.spatial.channels": {"en": "It passed the first test; this one differs only in the number of channels, "
                                       "C = {C}: is C fixed in your code?",
                                 "zh": "第一组测试通过了；这一组只是把通道数换成了 C = {C}：代码里是不是写死了 C？"},
    "ex.cbam.spatial.order": {"en": "the paper's order is [average; max] (the official code concatenates [max; mean]: "
                                    "with these weights the order matters).",
                              "zh": "论文的顺序是先平均、后最大（官方代码先拼接最大、再拼接平均；权重固定时，顺序不能调换）。"},
    "ex.cbam.spatial.one_pool": {"en": "the conv needs both maps, the channel average and the channel max.",
                                 "zh": "卷积需要两张图：沿通道的平均和沿通道的最大。"},
    "ex.cbam.spatial.no_sigmoid": {"en": "the sigmoid at the end is missing: M_s must lie in (0, 1).",
                                   "zh": "末尾缺了 sigmoid：M_s 必须落在 (0, 1) 之间。"},
    "ex.cbam.spatial.other": {"en": "the values differ from σ(conv([mean over C; max over C])).",
                              "zh": "数值与 σ(conv(cat([沿通道平均；沿通道最大]))) 不一致。"},
})


# ---------------------------------------------------------------- demos and the ablation's variants

#: The seeds of every experiment of this chapter (each seed: its own images, initialisation and shuffling).
SEEDS = (0, 1, 2)

#: The tiny CNN of §6 with CBAM right before its global pool, and the same network without attention, on the
#: cue images (the red shape is the target). The training recipe is CueCNN's own: 600 images, 4 epochs of
#: batches of 16, peak learning rate 0.01, r = 4. Chapter 00 shows the seed-0 model; chapter 06 does not
#: train CBAM on this backbone.
CBAM_DEMO = CueCNN(attention="cbam")
BASELINE_DEMO = CueCNN(attention=None)

ORDERS = ("channel_first", "spatial_first", "parallel")


class CBAMVariant(nn.Module):
    """CBAM with the order of its two gates as the paper's ablation varies it.

    ``order``: ``"channel_first"`` (CBAM: M_s is computed on F' = M_c(F) F), ``"spatial_first"`` (M_c is
    computed on M_s(F) F) or ``"parallel"`` (both from F). The output is F M_c M_s in every case.
    ``"channel_first"`` computes what :class:`attention_lib.CBAM` computes.
    """

    def __init__(self, channels: int, reduction: int = 16, order: str = "channel_first", spatial_kernel: int = 7):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.channel_gate = ChannelGate(channels, reduction)
        self.spatial_gate = SpatialGate(spatial_kernel)

    def attention_map(self, x: torch.Tensor) -> CBAMAttention:
        if self.order == "channel_first":
            m_c = self.channel_gate(x)                   # (B, C, 1, 1)
            m_s = self.spatial_gate(x * m_c)             # (B, 1, H, W)
        elif self.order == "spatial_first":
            m_s = self.spatial_gate(x)
            m_c = self.channel_gate(x * m_s)
        else:
            m_c, m_s = self.channel_gate(x), self.spatial_gate(x)
        return CBAMAttention(m_c, m_s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_c, m_s = self.attention_map(x)
        return x * m_c * m_s


@dataclass(frozen=True)
class CBAMAblation(CueCNN):
    """The tiny CNN of §6 with a :class:`CBAMVariant` in place of CBAM."""
    kind: ClassVar[str] = "cbam_ablation"
    attention: Optional[str] = "cbam"
    order: str = "channel_first"     # the order of the two gates, one of ORDERS
    spatial_kernel: int = 7          # the side k_s of the spatial gate's convolution (exercise 4)

    def build(self) -> nn.Module:
        model = super().build()
        model.attention = CBAMVariant(2 * self.width, self.reduction, self.order, self.spatial_kernel)
        return model


def ablation_config(order: str = "channel_first", seed: int = 0, spatial_kernel: int = 7) -> CueCNN:
    """One run of the ablation; CBAM itself (channel first, a 7 × 7 kernel) is the §6 demo's run."""
    if (order, spatial_kernel) == ("channel_first", 7):
        return CBAM_DEMO.replace(seed=seed)
    return CBAMAblation(order=order, spatial_kernel=spatial_kernel, seed=seed)


def recipe(config: CueCNN) -> str:
    """One line that says what the demo's reduction ratio leaves of the MLP, and how long it trains."""
    C = 2 * config.width
    return t("ch05.recipe", r=config.reduction, hidden=C // config.reduction, C=C, hidden16=C // 16,
             n=config.n_train, epochs=config.epochs)


def accuracy_table(cbam: Sequence[float], baseline: Sequence[float]) -> Table:
    """Validation accuracy per seed of CBAM and of the network without attention, and their per-seed change."""
    rows = [[t("ch05.acc.cbam"), rd.seeds(cbam).format()], [t("ch05.acc.none"), rd.seeds(baseline).format()],
            [t("ch05.acc.change"), rd.paired(cbam, baseline).format(signed=True)]]
    return Table([t("ch05.acc.who"), t("ch05.acc.value")], rows)


# ---------------------------------------------------------------- where the map looks

@torch.no_grad()
def spatial_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``M_s`` of a tiny CNN's CBAM (or CBAM variant) on ``images`` (eval mode): ``(n, H/4, W/4)``, on the CPU."""
    x = images.to(next(model.parameters()).device)
    return model.attention.attention_map(model.features(x)).spatial[:, 0].cpu()


@torch.no_grad()
def feature_energy(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The channel mean of the features a tiny CNN's attention block receives (after a ReLU, so >= 0):
    ``(n, H/4, W/4)``. A map that needs no attention: where the backbone responds at all."""
    x = images.to(next(model.parameters()).device)
    return model.features(x).mean(1).cpu()


@torch.no_grad()
def class_activation_maps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The class-activation map (Zhou et al., 2016) of the true class of a tiny CNN *without* attention:
    ``w_k · F(x, y)``, whose mean over the positions plus the bias is the class's logit. Shifted so that each
    map's minimum is 0 (a box score needs non-negative maps): ``(n, H/4, W/4)``."""
    if getattr(model, "attention_name", None) is not None:
        raise ValueError(f"class_activation_maps needs a TinyCNN without attention, got {model.attention_name!r}")
    x = images.to(next(model.parameters()).device)
    weight = model.head[-1].weight                                            # (K, C)
    cam = torch.einsum("kc,nchw->nkhw", weight, model.features(x))            # (n, K, h, w)
    cam = cam[torch.arange(len(labels)), labels.to(cam.device)].cpu()        # (n, h, w): the true class
    return cam - cam.amin((1, 2), keepdim=True)


def _scaled(maps: torch.Tensor) -> torch.Tensor:
    """Each map stretched to [0, 1] (for drawing maps of different units on one colour scale)."""
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


@one_thread()
def gallery_rows(model: nn.Module, images: torch.Tensor, seed: int = 0) -> dict:
    """The rows of §6's gallery: a random and the trained CBAM's ``M_s``, and two maps that need no attention
    (brightness, the features CBAM receives), each stretched to [0, 1] per image."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random_model = TinyCNN("cbam", width=CBAM_DEMO.width, reduction=CBAM_DEMO.reduction).eval()
    trained = spatial_maps(model, images)
    n, h, w = trained.shape
    return {t("ch05.random"): spatial_maps(random_model, images), t("ch05.trained"): trained,
            t("ch05.gallery.bright"): _scaled(brightness_maps(images, h, w)),
            t("ch05.gallery.features"): _scaled(feature_energy(model, images))}


def check_gallery_readings(rows: dict) -> None:
    """The sentence of §6 on the gallery: the random CBAM's map is flat."""
    random = rows[t("ch05.random")]
    spread = (random.amax((1, 2)) - random.amin((1, 2))).max().item()
    rd.expect("the random module's map is uniform: it varies by less than 0.02 within any of these images",
              spread < 0.02, spread=spread)


#: The maps of the table "where does it look", in the table's order.
WHERE_ROWS = ("trained", "random", "centre", "bright", "features", "base_features", "base_cam")


@dataclass(repr=False)
class Where(ShowsTable):
    """Per map (a key of ``WHERE_ROWS``), one value per seed: ``peak`` (the peak lies on the target's box),
    ``distractor`` (it lies on a distractor's box instead), ``mass`` (the map's share inside the target's box);
    ``area``: the box's share of the map, per seed; ``inside`` and ``outside``: the trained ``M_s``'s mean over
    the cells inside the target's box and over the other cells, per seed."""
    peak: dict
    distractor: dict
    mass: dict
    area: list
    inside: list
    outside: list

    def means(self) -> str:
        """One line: the trained map's mean inside and outside the box, per seed."""
        return t("ch05.where.means", inside=rd.seeds(self.inside).format(2), outside=rd.seeds(self.outside).format(2))

    def table(self) -> Table:
        rows = [[t(f"ch05.score.{key}"), *(rd.seeds(getattr(self, m)[key]).format() for m in
                                            ("peak", "distractor", "mass"))] for key in WHERE_ROWS]
        rows.append([t("ch05.score.area"), "", "", rd.seeds(self.area).format()])
        return Table([t("ch05.score.who"), t("ch05.score.peak"), t("ch05.score.distractor"), t("ch05.score.mass")],
                     rows)


@one_thread()
def where_it_looks(runs: Sequence, baselines: Sequence) -> Where:
    """Box scores of seven maps on each seed's validation images: the trained ``M_s``, a randomly initialised
    CBAM's (same seed), a centre guess, the brightness map, the channel mean of the features CBAM receives,
    and, from the network without attention of the same seed, its features' channel mean and its
    class-activation map. ``runs`` and ``baselines``: the CBAM and no-attention demos, one per seed."""
    result = Where({k: [] for k in WHERE_ROWS}, {k: [] for k in WHERE_ROWS}, {k: [] for k in WHERE_ROWS}, [], [], [])
    for run, base in zip(runs, baselines, strict=True):
        val = run.val_data
        images, size = val.images, val.images.shape[-1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.config.seed)
            random_model = TinyCNN("cbam", width=run.config.width, reduction=run.config.reduction).eval()
        trained = spatial_maps(run.model, images)
        n, h, w = trained.shape
        maps = {"trained": trained, "random": spatial_maps(random_model, images),
                "centre": centre_maps(n, h, w), "bright": brightness_maps(images, h, w),
                "features": feature_energy(run.model, images), "base_features": feature_energy(base.model, images),
                "base_cam": class_activation_maps(base.model, images, val.labels)}
        for key, m in maps.items():
            score = data.box_scores(m, val.boxes, size)
            result.peak[key].append(score.peak_in_box)
            result.distractor[key].append(data.peak_on_distractor(m, val, size))
            result.mass[key].append(score.mass_in_box)
        result.area.append(score.box_area)
        mean_in, mean_out = data.box_means(trained, val.boxes, size)                      # (n,) each
        result.inside.append(mean_in.mean().item())
        result.outside.append(mean_out.mean().item())
    return result


def check_where_readings(where: Where) -> None:
    """The sentences of §6 that read the table "where does it look" (each holds in every seed)."""
    p, d, m = where.peak, where.distractor, where.mass
    rd.expect("the trained map peaks on the target in nearly every image (>= 0.95), in every seed",
              min(p["trained"]) >= 0.95, peak=p["trained"])
    rd.expect("and almost never on a distractor (<= 0.02)", max(d["trained"]) <= 0.02, distractor=d["trained"])
    rd.expect("the trained map puts more than 1.5 times the box's share of its mass inside the box",
              all(x > 1.5 * a for x, a in zip(m["trained"], where.area)), mass=m["trained"], area=where.area)
    rd.expect("far from all of it, because the map is broad: near its top inside the box (above 0.9), and still "
              "above 0.4 on average outside it, in every seed",
              min(where.inside) > 0.9 and min(where.outside) > 0.4 and max(m["trained"]) < 0.5,
              inside=where.inside, outside=where.outside, mass=m["trained"])
    rd.expect("a random CBAM's peak lands on the target in fewer than one image in four",
              max(p["random"]) < 0.25, peak=p["random"])
    rd.expect("the centre guess finds the target in about one image in five (0.1 to 0.3)",
              all(0.1 <= x <= 0.3 for x in p["centre"]), peak=p["centre"])
    rd.expect("the brightness map's peak, the brightest cell, lies on a distractor in about two images out of "
              "three (0.55 to 0.8)",
              all(0.55 <= x <= 0.8 for x in d["bright"]), distractor=d["bright"])
    rd.expect("the brightness map, which learns nothing, puts almost as much of its mass in the box (within 0.01 "
              "of the trained map), in every seed",
              all(abs(b - x) <= 0.01 for b, x in zip(m["bright"], m["trained"])),
              bright=m["bright"], trained=m["trained"])
    rd.expect("the features CBAM receives peak on the target as often as its map (within 0.01), in every seed",
              all(f >= t_ - 0.01 for f, t_ in zip(p["features"], p["trained"])),
              features=p["features"], trained=p["trained"])
    rd.expect("and put a larger share of their mass in the box than the map does, in every seed",
              all(f > t_ for f, t_ in zip(m["features"], m["trained"])), features=m["features"], trained=m["trained"])
    rd.expect("the network without attention finds the target too: its features and its class-activation map "
              "peak on it in at least 9 images out of 10, in every seed",
              min(p["base_features"] + p["base_cam"]) >= 0.9, features=p["base_features"], cam=p["base_cam"])


# ---------------------------------------------------------------- covering what the map points at

#: The side of the square covered in the masking test, in pixels: 3 × 3 cells of the 8 × 8 map.
MASK = 12


def peak_centres(maps: torch.Tensor, image_size: int) -> torch.Tensor:
    """The pixel centre ``(y, x)`` of each map's peak cell: ``(n, 2)`` int64 (maps ``(n, h, w)``)."""
    n, h, w = maps.shape
    step = image_size // h
    peak = maps.flatten(1).argmax(1)                                          # (n,)
    return torch.stack([(peak // w) * step + step // 2, (peak % w) * step + step // 2], dim=1)


def random_centres(n: int, image_size: int, seed: int, side: int = MASK) -> torch.Tensor:
    """Centres ``(n, 2)`` drawn uniformly (``seed``) so that a ``side`` × ``side`` square stays inside the image."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(side // 2, image_size - side // 2 + 1, (n, 2), generator=g)


@torch.no_grad()
def cover(images: torch.Tensor, centres: torch.Tensor, side: int = MASK) -> torch.Tensor:
    """``images`` with a ``side`` × ``side`` square around each centre ``(y, x)`` painted in the image's median
    colour (its background): ``(n, 3, H, W)``."""
    n, _, h, w = images.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")   # (H, W)
    cy, cx = centres[:, 0, None, None], centres[:, 1, None, None]             # (n, 1, 1)
    square = ((yy - cy) >= -(side // 2)) & ((yy - cy) < side - side // 2) \
        & ((xx - cx) >= -(side // 2)) & ((xx - cx) < side - side // 2)       # (n, H, W)
    background = images.flatten(2).median(2).values[:, :, None, None]         # (n, 3, 1, 1)
    return torch.where(square[:, None], background, images)


@torch.no_grad()
def true_logits(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The logit of the true class, ``(n,)``, and nothing else (eval mode)."""
    logits = model(images.to(next(model.parameters()).device)).cpu()
    return logits[torch.arange(len(labels)), labels]


#: The regions covered in the masking test, in the table's order: the peak of the trained ``M_s``, the peak of
#: the class-activation map of the network without attention, a random place, the brightest cell.
MASK_ROWS = ("peak", "cam", "random", "bright")
#: The networks the masking test asks: the CBAM network, and the network without attention of the same seed
#: (the control: it has no M_s, so whatever covering the map's peak costs it is not the map's doing).
MASK_NETS = ("cbam", "none")


@dataclass(repr=False)
class Masking(ShowsTable):
    """Per network (``MASK_NETS``) and covered region (``MASK_ROWS``), keyed ``(net, region)``, one value per seed:
    the mean ``drop`` of the true class's logit and the ``accuracy`` after covering; ``accuracy_before[net]``:
    the accuracy on the uncovered images. Both networks of a seed see the same covered images."""
    drop: dict
    accuracy: dict
    accuracy_before: dict

    def table(self) -> Table:
        rows = []
        for net in MASK_NETS:
            who = t(f"ch05.mask.net.{net}")
            rows.append([t("ch05.mask.row", net=who, region=t("ch05.mask.none")), "",
                         rd.seeds(self.accuracy_before[net]).format()])
            rows += [[t("ch05.mask.row", net=who, region=t(f"ch05.mask.{key}", side=MASK)),
                      rd.seeds(self.drop[(net, key)]).format(2), rd.seeds(self.accuracy[(net, key)]).format()]
                     for key in MASK_ROWS]
        return Table([t("ch05.mask.region"), t("ch05.mask.drop"), t("ch05.mask.accuracy")], rows)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


@one_thread()
@torch.no_grad()
def masking_test(runs: Sequence, baselines: Sequence) -> Masking:
    """Covers, on each seed's validation images, a 12 × 12 square under the trained ``M_s``'s peak, under the
    peak of the class-activation map of the network without attention, at a random place (drawn with the run's
    seed) and under the brightest cell, and asks both networks of the seed (``runs``: CBAM, ``baselines``: no
    attention) about the same covered images: the drop of the true class's logit and the accuracy."""
    result = Masking({}, {}, {net: [] for net in MASK_NETS})
    for run, base in zip(runs, baselines, strict=True):
        val = run.val_data
        images, labels, size = val.images, val.labels, val.images.shape[-1]
        m_s = spatial_maps(run.model, images)
        centres = {"peak": peak_centres(m_s, size),
                   "cam": peak_centres(class_activation_maps(base.model, images, labels), size),
                   "random": random_centres(len(images), size, run.config.seed),
                   "bright": peak_centres(brightness_maps(images, *m_s.shape[1:]), size)}
        covered = {key: cover(images, c) for key, c in centres.items()}         # (n, 3, H, W) each
        rows = torch.arange(len(labels))
        for net, model in zip(MASK_NETS, (run.model, base.model)):
            device = next(model.parameters()).device
            logits = model(images.to(device)).cpu()                              # (n, K)
            result.accuracy_before[net].append(_accuracy(logits, labels))
            for key in MASK_ROWS:
                after = model(covered[key].to(device)).cpu()
                result.drop.setdefault((net, key), []).append((logits - after)[rows, labels].mean().item())
                result.accuracy.setdefault((net, key), []).append(_accuracy(after, labels))
    return result


#: Chance accuracy on the cue images (four shapes, equally likely) and the band the masking test reads as "at
#: chance": about two binomial standard deviations of 500 images, sqrt(0.25 * 0.75 / 500) = 0.019.
CHANCE, CHANCE_BAND = 0.25, 0.04


def check_masking_readings(masking: Masking) -> None:
    """The sentences of §6 that read the masking test."""
    drop, acc = masking.drop, masking.accuracy
    peak, random, bright = drop[("cbam", "peak")], drop[("cbam", "random")], drop[("cbam", "bright")]
    rd.expect("covering the square the map points at lowers the true class's logit at least twice as much as "
              "covering a random square of the same size, in every seed",
              all(p >= 2 * r for p, r in zip(peak, random)), peak=peak, random=random)
    rd.expect("and more than covering the brightest cell's square, in every seed",
              all(p > b for p, b in zip(peak, bright)), peak=peak, bright=bright)
    rd.expect("covering the map's square leaves the CBAM network at chance (within 0.04 of 0.25), in every seed",
              all(abs(a - CHANCE) <= CHANCE_BAND for a in acc[("cbam", "peak")]), covered=acc[("cbam", "peak")])
    none_peak = drop[("none", "peak")]
    rd.expect("the network without attention loses about as much when the same square is covered: at least 90% "
              "of the CBAM network's drop, in every seed",
              all(n >= 0.9 * c for n, c in zip(none_peak, peak)), none=none_peak, cbam=peak)
    rd.expect("and falls close to chance too (below 0.35), in every seed",
              max(acc[("none", "peak")]) < 0.35, covered=acc[("none", "peak")])
    rd.expect("covering the peak of the class-activation map of the network without attention costs either network "
              "at least 90% of what covering the peak of M_s costs it, in every seed",
              all(c >= 0.9 * p for net in MASK_NETS for c, p in zip(drop[(net, "cam")], drop[(net, "peak")])),
              cam={net: drop[(net, "cam")] for net in MASK_NETS}, peak={net: drop[(net, "peak")] for net in MASK_NETS})


def check_accuracy_readings(cbam: Sequence[float], baseline: Sequence[float]) -> None:
    """The sentence of §6 and of the summary on accuracy: CBAM does not beat the network without attention."""
    change = rd.paired(cbam, baseline)
    rd.expect("CBAM does not improve the accuracy: in no seed is it more than one point above the network "
              "without attention", change.high <= 0.01, change=change)
    rd.expect("both classify at least 95% of the validation images, in every seed",
              min(*cbam, *baseline) >= 0.95, cbam=list(cbam), baseline=list(baseline))


# ---------------------------------------------------------------- the ablation

@dataclass
class Ablation:
    """Per variant, one value per seed: validation ``accuracy``; ``peak`` and ``distractor``: how often M_s
    peaks on the target and on a distractor. ``baseline``: the accuracy without attention, per seed;
    ``n_val``: the validation images per seed (an accuracy difference times ``n_val`` is a count of images)."""
    accuracy: dict
    peak: dict
    distractor: dict
    baseline: list
    n_val: int = 500

    def table(self) -> Table:
        rows = [[name, rd.seeds(self.accuracy[name]).format(), rd.seeds(self.peak[name]).format(),
                 rd.seeds(self.distractor[name]).format()] for name in self.accuracy]
        rows.append([t("ch05.ablation.baseline"), rd.seeds(self.baseline).format(), "", ""])
        return Table([t("ch05.ablation.variant"), t("ch05.ablation.acc"), t("ch05.ablation.peak"),
                      t("ch05.ablation.distractor")], rows)

    def paired(self) -> dict:
        """The per-seed accuracy differences (each seed's runs share their images): the paper's order, channel
        first, minus each other order, then each order minus the network without attention;
        ``{(a, b): Seeds}`` keyed by the two names, in that order."""
        first, *others = self.accuracy
        none = t("ch05.ablation.baseline")
        pairs = {(first, other): rd.paired(self.accuracy[first], self.accuracy[other]) for other in others}
        pairs.update({(name, none): rd.paired(acc, self.baseline) for name, acc in self.accuracy.items()})
        return pairs

    def images(self, change: rd.Seeds) -> list:
        """A per-seed accuracy difference in validation images: ``[+1, +1, +8]``."""
        return [round(v * self.n_val) for v in change.values]

    def paired_table(self) -> Table:
        rows = [[t("ch05.paired.minus", a=a, b=b), change.format(signed=True),
                 ", ".join(f"{k:+d}" if k else "0" for k in self.images(change))] for (a, b), change in self.paired().items()]
        return Table([t("ch05.paired.who"), t("ch05.paired.change"), t("ch05.paired.images", n=self.n_val)], rows)


@one_thread()
def run_ablation(seeds: Sequence[int] = SEEDS, progress: bool = False) -> Ablation:
    """Trains (or loads from the demo cache) every order and the baseline for every seed, and scores them.

    Each run is validated once, after its last epoch (``val_every``): the per-epoch curve is not shown here."""
    result = Ablation({}, {}, {}, [])
    configs = [ablation_config(order, seed) for order in ORDERS for seed in seeds]
    bases = [BASELINE_DEMO.replace(seed=seed) for seed in seeds]
    # the uncached runs train side by side on the CPU cores, each as it would alone (same weights)
    trained = iter(trained_demos(configs + bases, progress=progress, val_every=BASELINE_DEMO.epochs))
    for order in ORDERS:
        name = t(f"ch05.order.{order}")
        for key in ("accuracy", "peak", "distractor"):
            getattr(result, key)[name] = []
        for seed in seeds:
            run = next(trained)
            val = run.val_data
            m_s = spatial_maps(run.model, val.images)
            result.accuracy[name].append(run.history["val_acc"][-1])   # the trained model on val
            result.peak[name].append(data.box_scores(m_s, val.boxes, val.images.shape[-1]).peak_in_box)
            result.distractor[name].append(data.peak_on_distractor(m_s, val, val.images.shape[-1]))
    for run in trained:
        result.baseline.append(run.history["val_acc"][-1])
        result.n_val = len(run.val_data.labels)
    return result


def check_ablation_readings(result: Ablation) -> None:
    """The sentences of §6 that read the ablation: its maps, and its accuracies paired seed by seed."""
    rd.expect("every order's M_s peaks on the target in at least 9 images out of 10, in every seed",
              min(min(v) for v in result.peak.values()) >= 0.9, peak=result.peak)
    pairs = result.paired()
    first, spatial, _ = result.accuracy
    none = t("ch05.ablation.baseline")
    ahead = result.images(pairs[(first, spatial)])
    rd.expect("channel first is ahead of spatial first in all three seeds, by 1 to 8 images of 500",
              len(ahead) == 3 and min(ahead) >= 1 and max(ahead) <= 8, images=ahead)
    below = result.images(pairs[(spatial, none)])
    rd.expect("spatial first is below the network without attention in all three seeds, by 3 to 8 images",
              len(below) == 3 and -8 <= min(below) and max(below) <= -3, images=below)
    rest = {k: v for k, v in pairs.items() if k not in ((first, spatial), (spatial, none))}
    rd.expect("none of the other differences has one sign in every seed",
              all(v.positive < v.n and v.negative < v.n for v in rest.values()),
              differences={f"{a} - {b}": v.values for (a, b), v in rest.items()})


def plot_ablation(result: Ablation):
    """Accuracy and M_s's peak-on-target rate per order, every seed a dot; the baseline's mean accuracy dashed."""
    from ..toolkit.figures import plot_seed_spread

    base = float(np.mean(result.baseline))
    return plot_seed_spread({t("ch05.ablation.acc"): result.accuracy, t("ch05.ablation.peak"): result.peak},
                            references={t("ch05.ablation.acc"): (t("ch05.ablation.baseline"), base)},
                            title=t("ch05.ablation.title"))


# ---------------------------------------------------------------- figures

def plot_block_diagram():
    """CBAM in a residual block (top) and inside (bottom): the channel gate, then the spatial gate, each
    with the shape it makes; the input of each gate also goes straight to its product."""
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 5.0))
    ax.set_xlim(0, 100), ax.set_ylim(0, 72), ax.axis("off")
    # the residual block: x -> conv, BN, ReLU -> conv, BN -> CBAM -> + x -> ReLU
    y = 54
    top = [(6, t("ch05.diagram.input"), 10), (25.5, t("ch05.diagram.conv1"), 21), (47, t("ch05.diagram.conv2"), 15),
           (65.5, "CBAM", 11), (80, "+", 4), (93, "ReLU", 9)]
    for i, (x, text, w) in enumerate(top):
        strong = text == "CBAM"
        viz.diagram_box(ax, x, y, text, w, height=9.0, colour="#fde9c9" if strong else "#eef3fb",
             edge="#c77c02" if strong else "#4a6fa5", fontweight="bold" if strong else "normal")
        if i:
            px, _, pw = top[i - 1]
            viz.diagram_arrow(ax, (px + pw / 2 + 0.6, y), (x - w / 2 - 0.6, y))
    ax.plot([6, 6, 80], [y + 5.2, y + 10, y + 10], color="#333333", lw=1.2)
    viz.diagram_arrow(ax, (80, y + 10), (80, y + 5.2))
    ax.text(43, y + 10.8, t("ch05.diagram.skip"), ha="center", va="bottom")
    ax.text(57.2, y + 1.2, "$r$", ha="center", va="bottom")
    # inside CBAM: two gates, each pooling in its own direction, each multiplying its own input
    ax.add_patch(Rectangle((1, 1), 98, 40, fill=False, ls="--", edgecolor="#c77c02", lw=1.0))
    ax.plot([60, 2], [48.6, 41], ls="--", color="#c77c02", lw=1.0)
    ax.plot([71, 98], [48.6, 41], ls="--", color="#c77c02", lw=1.0)
    rows = [(26, "ch05.diagram.channel", ["$F = r$", "ch05.diagram.pool_hw", "ch05.diagram.mlp",
                                          "ch05.diagram.m_c", "⊗", "$F'$"]),
            (7, "ch05.diagram.spatial", ["$F'$", "ch05.diagram.pool_c", "ch05.diagram.conv7",
                                         "ch05.diagram.m_s", "⊗", "$F''$"])]
    xs, ws = (6, 21.5, 42.5, 61.5, 76, 91), (8, 16, 20, 11, 4, 8)
    for y, title, keys in rows:
        ax.text(3, y + 10.2, t(title), ha="left", va="bottom", fontweight="bold")
        for i, key in enumerate(keys):
            viz.diagram_box(ax, xs[i], y, t(key) if key.startswith("ch05.") else key, ws[i], height=8.0)
            if i:
                viz.diagram_arrow(ax, (xs[i - 1] + ws[i - 1] / 2 + 0.6, y), (xs[i] - ws[i] / 2 - 0.6, y))
        ax.plot([xs[0], xs[0], xs[4]], [y + 4.7, y + 7.6, y + 7.6], color="#333333", lw=1.0)   # the input itself
        viz.diagram_arrow(ax, (xs[4], y + 7.6), (xs[4], y + 4.7))
    ax.set_title(t("ch05.diagram.title"))
    fig.tight_layout()
    return fig


@one_thread()
def plot_masking_example(run, index: int = 0):
    """One validation image of a trained run, uncovered and with a 12 × 12 square covered at the peak of ``M_s``,
    at the random place the masking test draws for it and at the brightest cell, with the true class's
    probability under each."""
    model, val = run.model, run.val_data
    images, labels = val.images, val.labels
    size = images.shape[-1]
    m_s = spatial_maps(model, images[index:index + 1])
    centres = {"peak": peak_centres(m_s, size),
               "random": random_centres(len(images), size, run.config.seed)[index:index + 1],
               "bright": peak_centres(brightness_maps(images[index:index + 1], *m_s.shape[1:]), size)}
    image = images[index:index + 1]
    panels = [("ch05.mask.original", image)] + [(f"ch05.mask.short.{k}", cover(image, c)) for k, c in centres.items()]
    fig, axes = viz.page_grid(len(panels), (2.3, 2.5), max_cols=2, extra=(0.2, 0.5))
    for ax, (key, img) in zip(axes, panels):
        with torch.no_grad():
            p = torch.softmax(model(img.to(next(model.parameters()).device)).cpu(), 1)[0, labels[index]].item()
        ax.imshow(img[0].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(t(key))
        ax.set_xlabel(t("ch05.mask.prob", p=p))
    fig.suptitle(t("ch05.mask.example", side=MASK))
    return fig


def plot_two_poolings(channels: Sequence[torch.Tensor], names: Sequence[str]):
    """CBAM's two poolings on a few ``(H, W)`` channels (top row): per channel the average and the max
    (bars, what M_c reads), per pixel the mean and the max over the channels (maps, what M_s reads)."""
    chans = torch.stack([torch.as_tensor(c, dtype=torch.float32) for c in channels])     # (C, H, W)
    if chans.dim() != 3 or len(names) != len(chans):
        raise ValueError(f"plot_two_poolings expects C (H, W) channels and C names, got {tuple(chans.shape)}, "
                         f"{len(names)} names")
    c = len(chans)
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 7.6), layout="constrained")
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=(1, 1.1, 1.15))   # channels, M_c's input, M_s's
    vmin, vmax = chans.min().item(), chans.max().item()
    for ax, chan, name in zip(top.subplots(1, c), chans, names):
        im = ax.imshow(chan.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize="medium")
        ax.set_xticks([]), ax.set_yticks([])
    top.colorbar(im, ax=top.axes, label=t("ch05.pool.activation"), shrink=0.85)
    bars = middle.subplots()
    mean_ax, max_ax = bottom.subplots(1, 2)
    x = np.arange(c)
    bars.bar(x - 0.2, chans.mean((1, 2)).numpy(), 0.4, label=t("ch05.pool.avg"))
    bars.bar(x + 0.2, chans.amax((1, 2)).numpy(), 0.4, label=t("ch05.pool.max"))
    bars.set_xticks(x, names)
    bars.set_ylim(0, 1.3 * chans.amax().item())
    bars.set_xlabel(t("ch05.pool.channel"))
    bars.set_ylabel(t("ch05.pool.value"))
    bars.set_title(t("ch05.pool.bars"))
    bars.legend(loc="upper center", ncol=2)
    for ax, key, m in ((mean_ax, "ch05.pool.mean_map", chans.mean(0)), (max_ax, "ch05.pool.max_map", chans.amax(0))):
        im = ax.imshow(m.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(t(key), fontsize="medium")
        ax.set_xticks([]), ax.set_yticks([])
    mean_ax.set_xlabel(t("ch05.pool.where"), loc="left")
    bottom.colorbar(im, ax=[mean_ax, max_ax], label=t("ch05.pool.activation"), shrink=0.85)
    fig.suptitle(t("ch05.pool.title"), wrap=True)
    return fig


@one_thread()
def plot_photo_maps(model: nn.Module, sizes: Sequence[int] = (32, 96)):
    """The trained network's ``M_s`` over the sample photograph at a few sizes (the CNN is fully convolutional
    up to its pool, so a larger photo gives a larger map)."""
    fig, axes = viz.page_grid(len(sizes), (5.2, 3.4), max_cols=1, extra=(0.2, 0.3))
    for ax, s in zip(axes, sizes):
        photo = data.sample_photo(size=s)                                     # (3, s, s)
        m = spatial_maps(model, photo[None])[0]                               # (s/4, s/4)
        viz.plot_spatial_map(m, photo, ax=ax, title=t("ch05.photo.title", s=s, h=m.shape[0], w=m.shape[1]))
    return fig


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson's correlation of two maps over their cells."""
    return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1].item()


@one_thread()
def photo_correlations(model: nn.Module, sizes: Sequence[int] = (32, 96)) -> dict:
    """Per photo size, how closely the trained ``M_s`` follows each cell's *redness* (the cue of the training
    images, :func:`~attention_lib.toolkit.data.redness_maps`) and its brightness (max over RGB):
    ``{size: (red, bright)}``, Pearson correlations over the map's cells; prints one line per size."""
    out = {}
    for s in sizes:
        photo = data.sample_photo(size=s)[None]                                 # (1, 3, s, s)
        m = spatial_maps(model, photo)                                          # (1, s/4, s/4)
        out[s] = (correlation(m, data.redness_maps(photo, *m.shape[1:])),
                  correlation(m, brightness_maps(photo, *m.shape[1:])))
        print(t("ch05.photo.corr", s=s, red=out[s][0], bright=out[s][1]))
    return out


def check_photo_readings(correlations: dict) -> None:
    """The sentence of §6 on the photograph: the map follows redness far more than brightness."""
    rd.expect("on the photograph the map follows redness (correlation above 0.5) far more than brightness "
              "(at least 0.3 less), at both sizes",
              all(red > 0.5 and red - bright >= 0.3 for red, bright in correlations.values()), corr=correlations)


# ---------------------------------------------------------------- §8: official code and common slips

def fold_spatial_norm(cbam: CBAM) -> CBAM:
    """The equation's CBAM (``spatial_norm=False``: a conv with bias) computing what ``cbam`` (the official
    conv + BatchNorm) computes in eval mode: BatchNorm with running statistics is an affine map, folded in."""
    hidden = cbam.channel_gate.mlp[0].out_features                           # C / r
    folded = CBAM(cbam.channels, reduction=cbam.channels // hidden,
                  spatial_kernel=cbam.spatial_gate.conv.kernel_size[0], spatial_norm=False)
    folded.channel_gate.load_state_dict(cbam.channel_gate.state_dict())
    bn, conv = cbam.spatial_gate.norm, cbam.spatial_gate.conv
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)                   # (1,)
    with torch.no_grad():
        folded.spatial_gate.conv.weight.copy_(conv.weight * scale)
        folded.spatial_gate.conv.bias.copy_(bn.bias - bn.running_mean * scale)
    return folded.eval()


class UnsharedChannelGate(nn.Module):
    """A slip: one MLP for the average descriptor and another for the max descriptor (the paper shares one)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp_avg = ChannelGate(channels, reduction).mlp
        self.mlp_max = ChannelGate(channels, reduction).mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp_avg(x.mean((2, 3))) + self.mlp_max(x.amax((2, 3)))
        return torch.sigmoid(logits)[:, :, None, None]


# ---------------------------------------------------------------- the explorer

def _cbam(s) -> nn.Module:
    return MECHANISMS["cbam"].cls(s["channels"], reduction=s["reduction"], spatial_kernel=s["spatial_kernel"],
                                  spatial_norm=s["spatial_norm"])


def _plot_cbam(module, x, s):
    a = module.attention_map(x)
    pictures = x.mean(1, keepdim=True)                                      # (G, 1, H, W)
    labels = input_labels(len(x))
    return (viewer.channel_gallery(pictures, a.channel[:, :, 0, 0], labels=labels),   # (G, C)
            viewer.spatial_gallery(pictures, a.spatial[:, 0], labels=labels))         # (G, H, W)


EXPLORER = register_explorer(ExplorerSpec(
    "cbam", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("spatial_kernel", "ch05.explorer.spatial_kernel", (3, 5, 7), 7, (3, 7)),
        Control("spatial_norm", "ch05.explorer.spatial_norm", (True, False), True, (True,), dropdown=True,
                fmt=yes_no)),
    build=_cbam, plot=_plot_cbam))


# ---------------------------------------------------------------- exercises

@exercise("cbam.shapes")
def _cbam_shapes(answer):
    shapes = (tuple, list, torch.Size)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2 or not all(isinstance(a, shapes) for a in answer):
        return "ex.cbam.shapes.not_pair", dict(what=describe(answer))
    channel, spatial = as_shape(answer[0]), as_shape(answer[1])
    if (channel, spatial) == ((8, 256, 1, 1), (8, 1, 14, 14)):
        return None
    if (spatial, channel) == ((8, 256, 1, 1), (8, 1, 14, 14)):
        return "ex.cbam.shapes.swapped"
    if channel in ((8, 256), (8, 256, 1, 1)) and spatial in ((8, 14, 14), (8, 1, 14, 14)):
        return "ex.cbam.shapes.squeezed"
    return "ex.cbam.shapes.channel" if channel != (8, 256, 1, 1) else "ex.cbam.shapes.spatial"


@exercise("cbam.params", forbid=("count_parameters",))
def _cbam_params(answer):
    n = as_count(answer)
    C, h, k = 256, 256 // 16, 7
    mlp, spatial = 2 * C * h + h + C, 2 * k * k + 2
    if n == mlp + spatial:
        return None
    if n in (2 * C * h + spatial, 2 * C * h + 2 * k * k):
        return "ex.cbam.params.no_bias"
    if n in (2 * mlp + spatial, 2 * mlp + 2 * k * k, 2 * mlp + 2 * k * k + 1):
        return "ex.cbam.params.unshared"
    if n in (mlp, 2 * C * h):
        return "ex.cbam.params.no_spatial"
    if n in (mlp + k * k + 2, mlp + k * k + 1, mlp + k * k, mlp + C * k * k + 2, mlp + 2 * C * k * k + 2):
        return "ex.cbam.params.conv_in"
    if n in (mlp + 2 * k * k, mlp + 2 * k * k + 1, mlp + 2 * k * k + 3):
        return "ex.cbam.params.norm"
    return "ex.cbam.params.other"


def _spatial_variants(x, conv):
    """What the common slips compute, to name the slip a wrong answer made (each (B, 1, H, W))."""
    avg, mx = x.mean(1, keepdim=True), x.amax(1, keepdim=True)
    return [
        ("ex.cbam.spatial.order", torch.sigmoid(conv(torch.cat([mx, avg], 1)))),
        ("ex.cbam.spatial.no_sigmoid", conv(torch.cat([avg, mx], 1))),
        ("ex.cbam.spatial.one_pool", torch.sigmoid(conv(torch.cat([avg, avg], 1)))),
        ("ex.cbam.spatial.one_pool", torch.sigmoid(conv(torch.cat([mx, mx], 1)))),
    ]


#: The cases of exercise 3: (what the case changes, its fields, B, C); each later case changes one thing.
SPATIAL_CASES = ((None, {}, 3, 16), ("ex.cbam.spatial.batch1", {}, 1, 16), ("ex.cbam.spatial.channels", dict(C=5), 3, 5))
#: The error of a convolution handed the wrong number of maps (a pooling over another axis keeps more than one).
_WRONG_MAPS = re.compile(r"expected input\[[^\]]*\] to have 2 channels")


@exercise("cbam.spatial")
def _cbam_spatial(answer):
    spatial_map = as_function(answer, usage="spatial_map(x, conv)")
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(2, 1, 7, padding=3)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    for note, fields, B, C in SPATIAL_CASES:
        x = torch.randn(B, C, 5, 9, generator=g)
        with case(note, **fields):
            with torch.no_grad():                       # the reference first, on the originals
                expected = torch.sigmoid(conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
                variants = _spatial_variants(x, conv)
            try:
                got = call(spatial_map, x, conv, names=("x", "conv"))
            except Slip as slip:                        # the pooling-axis hint only where the conv got other maps
                raise slip.also("ex.cbam.spatial.axis").whole() if slip.key == "ex.fn.raised" \
                    and _WRONG_MAPS.search(slip.fmt.get("error", "")) else slip
            expect_close(got, expected, variants, "ex.cbam.spatial.other")
    return None
