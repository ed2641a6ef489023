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
from ..toolkit.exercises import Slip, as_count, as_function, as_shape, call, case, describe, exercise, expect_close
from ..toolkit.format import Table
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyCNN
from ..toolkit.train import ShapesCNN, trained_demo
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
    # §5
    "ch05.counts": {"en": "parameters {params} (formula {params_formula}); FLOPs {flops} (formula {flops_formula})",
                    "zh": "参数量 {params}（公式 {params_formula}）；浮点运算次数 {flops}（公式 {flops_formula}）"},
    "ch05.versus_se": {"en": "C = {C}, {S}×{S}: SE {se}, CBAM {cbam} FLOPs; CBAM / 3×3 convolution: {share:.2%}",
                       "zh": "C = {C}、{S}×{S}：SE 为 {se}，CBAM 为 {cbam} 次浮点运算；CBAM 与 3×3 卷积之比：{share:.2%}"},
    # §6
    "ch05.accuracy": {"en": "validation accuracy, seed 0: CBAM {acc:.1%}, no attention {base:.1%} (chance 25%)",
                      "zh": "验证集准确率（随机种子 0）：CBAM {acc:.1%}，不带注意力 {base:.1%}（随机猜测 25%）"},
    "ch05.random": {"en": "random CBAM", "zh": "随机初始化"},
    "ch05.trained": {"en": "trained CBAM", "zh": "训练后"},
    "ch05.gallery.title": {"en": "CBAM's spatial map M_s before and after training (target box in cyan)",
                           "zh": "训练前后 CBAM 的空间图 M_s（青色方框为目标）"},
    "ch05.score.who": {"en": "map", "zh": "图"},
    "ch05.score.peak": {"en": "peak in box", "zh": "峰值落在框内"},
    "ch05.score.mass": {"en": "mass in box", "zh": "框内质量占比"},
    "ch05.score.trained": {"en": "trained CBAM (3 seeds)", "zh": "训练后的 CBAM（3 个随机种子）"},
    "ch05.score.random": {"en": "random CBAM (3 seeds)", "zh": "随机初始化的 CBAM（3 个随机种子）"},
    "ch05.score.centre": {"en": "centre guess", "zh": "总猜中心"},
    "ch05.score.bright": {"en": "brightest cell (no learning)", "zh": "最亮的格子（无需学习）"},
    "ch05.score.area": {"en": "the box's share of the map", "zh": "目标框占整张图的比例"},
    "ch05.photo.title": {"en": "Trained CBAM on a photograph, {s}×{s} pixels (map {h}×{w})",
                         "zh": "训练后的 CBAM 看照片：{s}×{s} 像素（空间图 {h}×{w}）"},
    "ch05.viewer.title": {"en": "CBAM's M_s over validation images", "zh": "CBAM 在验证图像上的 M_s"},
    # the ablation
    "ch05.order.channel_first": {"en": "channel → spatial", "zh": "先通道后空间"},
    "ch05.order.spatial_first": {"en": "spatial → channel", "zh": "先空间后通道"},
    "ch05.order.parallel": {"en": "parallel", "zh": "并行"},
    "ch05.pooling.both": {"en": "avg & max", "zh": "平均和最大"},
    "ch05.pooling.avg": {"en": "avg only", "zh": "只用平均"},
    "ch05.pooling.max": {"en": "max only", "zh": "只用最大"},
    "ch05.ablation.variant": {"en": "variant", "zh": "变体"},
    "ch05.ablation.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch05.ablation.peak": {"en": "M_s peak in box", "zh": "M_s 峰值落在框内"},
    "ch05.ablation.mass": {"en": "M_s mass in box", "zh": "M_s 框内质量占比"},
    "ch05.ablation.baseline": {"en": "no attention", "zh": "不带注意力"},
    "ch05.ablation.title": {"en": "CBAM's ablations, small: each seed a dot, squares: mean ± std",
                            "zh": "小规模的 CBAM 消融实验：每个点是一个随机种子，方块为均值 ± 标准差"},
    "ch05.ablation.spread": {"en": "largest gap between variant means: {gap:.3f}; typical seed-to-seed std: {std:.3f}",
                             "zh": "各变体均值之间的最大差距：{gap:.3f}；随机种子之间的典型标准差：{std:.3f}"},
    # §7, §8
    "ch05.block_share": {"en": "output {shape}; CBAM adds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；CBAM 占该残差块参数量的 {share:.1%}"},
    "ch05.fold": {"en": "official layout (conv, BN) folded into the equation's (conv with bias): max difference {diff:.1e}",
                  "zh": "把官方结构（卷积 + BN）折叠成公式的结构（带偏置的卷积）：最大差异 {diff:.1e}"},
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
    "ex.cbam.params.no_spatial": {"en": "that is the channel gate alone; add the spatial gate (7×7 conv on 2 maps, BN).",
                                  "zh": "这只是通道门控；还要加上空间门控（作用在 2 张图上的 7×7 卷积，以及 BN）。"},
    "ex.cbam.params.conv_in": {"en": "the 7×7 conv sees 2 input maps (average and max), so it has 2 · 49 weights.",
                               "zh": "7×7 卷积的输入是 2 张图（平均与最大），所以有 2 · 49 个权重。"},
    "ex.cbam.params.norm": {"en": "the official spatial gate: a bias-free 7×7 conv, then BatchNorm (2 parameters).",
                            "zh": "官方代码的空间门控：不带偏置的 7×7 卷积，后接 BatchNorm（2 个参数）。"},
    "ex.cbam.params.other": {"en": "count every parameter of §5's breakdown: the weights and biases of the shared MLP, "
                                   "then the spatial gate's convolution and its BatchNorm; C = 256, r = 16.",
                             "zh": "按 §5 的分解把每个参数都数一遍：共享 MLP 的权重和偏置，再加上空间门控的卷积及其 BatchNorm；"
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
                              "zh": "数值与 σ(conv(cat([沿通道平均，沿通道最大]))) 不一致。"},
})


# ---------------------------------------------------------------- demos and the ablation's variants

#: Training settings of every run of this chapter: 600 images, 4 epochs of batches of 16 (a couple of
#: seconds on one CPU thread). Chapter 06 trains its CBAM runs with the same settings: the runs are shared.
QUICK = dict(n_train=600, epochs=4, batch_size=16, lr=1e-2)
SEEDS = (0, 1, 2)

#: The tiny CNN of §6 with CBAM right before its global pool, and the same network without attention.
CBAM_DEMO = ShapesCNN(attention="cbam", **QUICK)
BASELINE_DEMO = ShapesCNN(attention=None, **QUICK)

ORDERS = ("channel_first", "spatial_first", "parallel")
POOLINGS = ("both", "avg", "max")
#: The ablation's cells: CBAM itself, then the two other orders, then the two single descriptors.
VARIANTS = (("channel_first", "both"), ("spatial_first", "both"), ("parallel", "both"),
            ("channel_first", "avg"), ("channel_first", "max"))


class PooledChannelGate(ChannelGate):
    """``M_c`` from a choice of descriptors: ``"both"`` (CBAM), ``"avg"`` (SE's squeeze) or ``"max"``."""

    def __init__(self, channels: int, reduction: int = 16, pooling: str = "both"):
        super().__init__(channels, reduction)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = 0
        if self.pooling in ("avg", "both"):
            logits = logits + self.mlp(x.mean((2, 3)))          # (B, C)
        if self.pooling in ("max", "both"):
            logits = logits + self.mlp(x.amax((2, 3)))          # (B, C)
        return torch.sigmoid(logits)[:, :, None, None]           # (B, C, 1, 1)


class CBAMVariant(nn.Module):
    """CBAM with the paper's ablations: the order of the two gates and the channel gate's descriptors.

    ``order``: ``"channel_first"`` (CBAM: M_s is computed on F' = M_c(F) F), ``"spatial_first"`` (M_c is
    computed on M_s(F) F) or ``"parallel"`` (both from F). The output is F M_c M_s in every case.
    ``("channel_first", "both")`` computes what :class:`attention_lib.CBAM` computes.
    """

    def __init__(self, channels: int, reduction: int = 16, order: str = "channel_first", pooling: str = "both"):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.channel_gate = PooledChannelGate(channels, reduction, pooling)
        self.spatial_gate = SpatialGate(7)

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
class CBAMAblation(ShapesCNN):
    """The tiny CNN of §6 with a :class:`CBAMVariant` in place of CBAM."""
    kind: ClassVar[str] = "cbam_ablation"
    attention: Optional[str] = "cbam"
    order: str = "channel_first"     # the order of the two gates, one of ORDERS
    pooling: str = "both"            # the channel gate's descriptors, one of POOLINGS

    def build(self) -> nn.Module:
        model = super().build()
        model.attention = CBAMVariant(2 * self.width, self.reduction, self.order, self.pooling)
        return model


def ablation_config(order: str = "channel_first", pooling: str = "both", seed: int = 0) -> ShapesCNN:
    """One run of the ablation; CBAM itself (channel first, both descriptors) is the §6 demo's run."""
    if (order, pooling) == ("channel_first", "both"):
        return CBAM_DEMO.replace(seed=seed)
    return CBAMAblation(order=order, pooling=pooling, seed=seed, **QUICK)


# ---------------------------------------------------------------- where the map looks

@torch.no_grad()
def spatial_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``M_s`` of a tiny CNN's CBAM (or CBAM variant) on ``images`` (eval mode): ``(n, H/4, W/4)``, on the CPU."""
    x = images.to(next(model.parameters()).device)
    return model.attention.attention_map(model.features(x)).spatial[:, 0].cpu()


def centre_maps(n: int, h: int, w: int) -> torch.Tensor:
    """A guess that needs no image: every map peaks at the centre cell ``(h // 2, w // 2)``."""
    m = torch.zeros(n, h, w)
    m[:, h // 2, w // 2] = 1.0
    return m


def brightness_maps(images: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A rule that needs no learning: each cell's mean brightness (max over RGB), ``(n, h, w)``."""
    return nn.functional.adaptive_avg_pool2d(images.amax(1, keepdim=True), (h, w))[:, 0]


def _mean_std(values: Sequence[float]) -> str:
    v = torch.tensor(values, dtype=torch.float64)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def where_it_looks(runs) -> Table:
    """Box scores of the trained runs' ``M_s``, of randomly initialised CBAMs (same seeds), of a centre
    guess and of the brightest cell, each on the run's own validation images (mean ± std over runs)."""
    rows = {key: ([], []) for key in ("trained", "random", "centre", "bright")}
    for run in runs:
        images, boxes = run.val_data.images, run.val_data.boxes
        size = images.shape[-1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.config.seed)
            random_model = TinyCNN("cbam", width=run.config.width, reduction=run.config.reduction).eval()
        trained = spatial_maps(run.model, images)
        n, h, w = trained.shape
        maps = {"trained": trained, "random": spatial_maps(random_model, images),
                "centre": centre_maps(n, h, w), "bright": brightness_maps(images, h, w)}
        for key, m in maps.items():
            score = data.box_scores(m, boxes, size)
            rows[key][0].append(score.peak_in_box)
            rows[key][1].append(score.mass_in_box)
        area = score.box_area
    table = [[t(f"ch05.score.{key}"), _mean_std(peak), _mean_std(mass)] for key, (peak, mass) in rows.items()]
    table.append([t("ch05.score.area"), "", f"{area:.3f}"])
    return Table([t("ch05.score.who"), t("ch05.score.peak"), t("ch05.score.mass")], table)


# ---------------------------------------------------------------- the ablation

@dataclass
class Ablation:
    """Per variant, one value per seed: validation ``accuracy``, ``peak`` and ``mass`` of M_s in the box."""
    accuracy: dict
    peak: dict
    mass: dict
    baseline: list                   # accuracy of the network without attention, per seed

    def table(self) -> Table:
        rows = [[name, _mean_std(self.accuracy[name]), _mean_std(self.peak[name]), _mean_std(self.mass[name])]
                for name in self.accuracy]
        rows.append([t("ch05.ablation.baseline"), _mean_std(self.baseline), "", ""])
        return Table([t("ch05.ablation.variant"), t("ch05.ablation.acc"), t("ch05.ablation.peak"),
                      t("ch05.ablation.mass")], rows)

    def spread(self) -> tuple[float, float]:
        """The largest gap between variant mean accuracies, and the mean seed-to-seed standard deviation."""
        acc = [torch.tensor(v, dtype=torch.float64) for v in self.accuracy.values()]
        means = torch.stack([a.mean() for a in acc])
        return (means.max() - means.min()).item(), torch.stack([a.std() for a in acc]).mean().item()


def run_ablation(seeds: Sequence[int] = SEEDS, progress: bool = False) -> Ablation:
    """Trains (or loads from the demo cache) every variant and the baseline for every seed, and scores them.

    Each run is validated once, after its last epoch (``val_every``): the per-epoch curve is not shown here."""
    result = Ablation({}, {}, {}, [])
    for order, pooling in VARIANTS:
        name = f"{t(f'ch05.order.{order}')}, {t(f'ch05.pooling.{pooling}')}"
        for key in ("accuracy", "peak", "mass"):
            getattr(result, key)[name] = []
        for seed in seeds:
            config = ablation_config(order, pooling, seed)
            run = trained_demo(config, progress=progress, val_every=config.epochs)
            val = run.val_data
            score = data.box_scores(spatial_maps(run.model, val.images), val.boxes, val.images.shape[-1])
            result.accuracy[name].append(run.history["val_acc"][-1])   # the trained model on val
            result.peak[name].append(score.peak_in_box)
            result.mass[name].append(score.mass_in_box)
    for seed in seeds:
        run = trained_demo(BASELINE_DEMO.replace(seed=seed), progress=progress, val_every=QUICK["epochs"])
        result.baseline.append(run.history["val_acc"][-1])
    return result


def plot_ablation(result: Ablation):
    """Accuracy and M_s's peak-in-box rate per variant, every seed a dot; the baseline's mean accuracy dashed."""
    from ..toolkit.figures import plot_seed_spread

    base = float(np.mean(result.baseline))
    return plot_seed_spread({t("ch05.ablation.acc"): result.accuracy, t("ch05.ablation.peak"): result.peak},
                            references={t("ch05.ablation.acc"): (t("ch05.ablation.baseline"), base)},
                            title=t("ch05.ablation.title"))


# ---------------------------------------------------------------- figures

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


def plot_photo_maps(model: nn.Module, sizes: Sequence[int] = (32, 96)):
    """The trained network's ``M_s`` over the sample photograph at a few sizes (the CNN is fully convolutional
    up to its pool, so a larger photo gives a larger map)."""
    fig, axes = viz.page_grid(len(sizes), (5.2, 3.4), max_cols=1, extra=(0.2, 0.3))
    for ax, s in zip(axes, sizes):
        photo = data.sample_photo(size=s)                                     # (3, s, s)
        m = spatial_maps(model, photo[None])[0]                               # (s/4, s/4)
        viz.plot_spatial_map(m, photo, ax=ax, title=t("ch05.photo.title", s=s, h=m.shape[0], w=m.shape[1]))
    return fig


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


@exercise("cbam.params")
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
