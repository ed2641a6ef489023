"""Chapter 06 · BAM: the chapter's strings, figures, the two-stage network, demos, exercises and explorer.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch06_bam as ch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..bam import BAM
from ..cbam import CBAM
from ..registry import MECHANISMS
from ..toolkit import data, viewer, viz
from ..toolkit import readings as rd
from ..toolkit.exercises import as_count, as_function, as_shape, call, case, exercise, expect_close
from ..toolkit.format import ShowsTable, Table, format_count, format_si
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.train import CueCNN, one_thread, trained_demo
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
    # §6
    "ch06.fusion.title": {"en": "Sum against product on the same input: three channels of one image",
                          "zh": "同一输入上的相加与相乘：一张图像的三个通道"},
    "ch06.fusion.sum": {"en": "σ(M_c + M_s)", "zh": "σ(M_c + M_s)"},
    "ch06.fusion.product": {"en": "σ(M_c · M_s)", "zh": "σ(M_c · M_s)"},
    "ch06.fusion.channel": {"en": "channel {c}: M_c = {v:+.2f}", "zh": "通道 {c}：M_c = {v:+.2f}"},
    "ch06.fusion.value": {"en": "map value", "zh": "图的取值"},
    "ch06.fusion.x": {"en": "position on the feature map", "zh": "特征图上的位置"},
    "ch06.net.who": {"en": "network (3 seeds)", "zh": "网络（3 个随机种子）"},
    "ch06.net.bam": {"en": "BAM per stage, sum", "zh": "每个阶段一个 BAM，相加"},
    "ch06.net.product": {"en": "BAM per stage, product", "zh": "每个阶段一个 BAM，相乘"},
    "ch06.net.cbam": {"en": "CBAM per block", "zh": "每个卷积块一个 CBAM"},
    "ch06.net.none": {"en": "no attention", "zh": "不带注意力"},
    "ch06.net.modules": {"en": "attention modules", "zh": "注意力模块数"},
    "ch06.net.attention": {"en": "their parameters", "zh": "它们的参数量"},
    "ch06.net.total": {"en": "network's parameters", "zh": "整个网络的参数量"},
    "ch06.score.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch06.score.change": {"en": "minus no attention, per seed", "zh": "减去不带注意力（逐个随机种子）"},
    "ch06.score.who": {"en": "factor (3 seeds)", "zh": "乘法因子（3 个随机种子）"},
    "ch06.score.peak": {"en": "peak on the target", "zh": "峰值落在目标上"},
    "ch06.score.distractor": {"en": "peak on a distractor", "zh": "峰值落在干扰物上"},
    "ch06.score.ratio": {"en": "inside / outside the box", "zh": "框内 / 框外"},
    "ch06.place.bam.0": {"en": "BAM (sum) 1 + M(F), stage 1", "zh": "BAM（相加）1 + M(F)，第 1 阶段"},
    "ch06.place.bam.1": {"en": "BAM (sum) 1 + M(F), stage 2", "zh": "BAM（相加）1 + M(F)，第 2 阶段"},
    "ch06.place.cbam.0": {"en": "CBAM M_c M_s, end of stage 1", "zh": "CBAM 的 M_c M_s，第 1 阶段末"},
    "ch06.place.cbam.1": {"en": "CBAM M_c M_s, end of stage 2", "zh": "CBAM 的 M_c M_s，第 2 阶段末"},
    "ch06.place.product.0": {"en": "BAM (product) 1 + M(F), stage 1", "zh": "BAM（相乘）1 + M(F)，第 1 阶段"},
    "ch06.place.product.1": {"en": "BAM (product) 1 + M(F), stage 2", "zh": "BAM（相乘）1 + M(F)，第 2 阶段"},
    "ch06.row.random": {"en": "random BAM 2: M(F)", "zh": "随机 BAM 2：M(F)"},
    "ch06.row.early": {"en": "BAM 1 (16×16): M(F)", "zh": "BAM 1（16×16）：M(F)"},
    "ch06.row.late": {"en": "BAM 2 (8×8): M(F)", "zh": "BAM 2（8×8）：M(F)"},
    "ch06.row.cbam_early": {"en": "CBAM (16×16): M_c M_s", "zh": "CBAM（16×16）：M_c M_s"},
    "ch06.row.cbam_late": {"en": "CBAM (8×8): M_c M_s", "zh": "CBAM（8×8）：M_c M_s"},
    "ch06.gallery.title": {"en": "BAM's M(F) and CBAM's factor at two stages (cyan: target box)",
                           "zh": "两个阶段上 BAM 的 M(F) 与 CBAM 的乘法因子（青色框为目标框）"},
    "ch06.m_s_peaks": {"en": "{name}, seed {seed}: M_s peaks on the target in {plus:.1%} of the images, -M_s in {minus:.1%}",
                       "zh": "{name}，随机种子 {seed}：M_s 的峰值落在目标上的图像占 {plus:.1%}，-M_s 的占 {minus:.1%}"},
    "ch06.photo.title": {"en": "{name}: factor at stage 2, photo {s}×{s} (map {h}×{w})",
                         "zh": "{name}：第 2 阶段的乘法因子，照片 {s}×{s}（图 {h}×{w}）"},
    "ch06.viewer.title": {"en": "BAM 2's M(F) (mean over channels) over validation images",
                          "zh": "BAM 2 的 M(F)（通道平均）在验证图像上"},
    "ch06.bam_share": {"en": "the two BAMs hold {share:.1%} of the network's parameters",
                       "zh": "两个 BAM 占整个网络参数量的 {share:.1%}"},
    "ch06.cost.per_bam": {"en": "BAM on C = {C}, {S}×{S}: {flops}FLOPs; C²HW = {c2hw}",
                          "zh": "BAM，C = {C}，{S}×{S}：浮点运算次数 {flops}；C²HW = {c2hw}"},
    "ch06.photo.corr": {"en": "correlation of the factor with each cell's redness: BAM {bam:.2f}, CBAM {cbam:.2f}",
                        "zh": "乘法因子与各格子红色程度的相关系数：BAM {bam:.2f}，CBAM {cbam:.2f}"},
    # §8
    "ch06.bn1": {"en": "training mode, batch size 1: {error}", "zh": "训练模式、批量大小为 1：{error}"},
    "ch06.bn1.fix": {"en": "eval mode, batch size 1: output {shape}", "zh": "评估模式、批量大小为 1：输出形状 {shape}"},
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
                            "zh": "官方结构有四个批量归一化层（每个通道 2 个参数）：MLP 里一个，空间分支里三个。"},
    "ex.bam.params.three_fc": {"en": "that is a channel MLP with two hidden layers; the paper's has one (C → C/r → C).",
                               "zh": "这是带两个隐藏层的通道 MLP；论文的只有一个（C → C/r → C）。"},
    "ex.bam.params.no_bias": {"en": "every FC and convolution of BAM has a bias.", "zh": "BAM 的每个全连接层和卷积都有偏置。"},
    "ex.bam.params.one_dilated": {"en": "the spatial branch has two dilated 3×3 convolutions, each with its BatchNorm.",
                                  "zh": "空间分支有两个 3×3 空洞卷积，各自带一个批量归一化层。"},
    "ex.bam.params.dense": {"en": "a dilated 3×3 kernel has 9 weights per input and output channel, however far apart "
                                  "they are spread.",
                            "zh": "3×3 空洞卷积核对每一对输入、输出通道只有 9 个权重，无论它们分布得多开。"},
    "ex.bam.params.no_final": {"en": "the spatial branch ends with a 1×1 convolution down to one map (with its bias).",
                               "zh": "空间分支最后还有一个把通道压成一张图的 1×1 卷积（带偏置）。"},
    "ex.bam.params.one_branch": {"en": "that is one branch alone; BAM has a channel branch and a spatial branch.",
                                 "zh": "这只是其中一个分支；BAM 既有通道分支，也有空间分支。"},
    "ex.bam.params.other": {"en": "count every layer of both branches in §5's breakdown, each with its bias and, where "
                                  "it has one, its BatchNorm; C = 256, r = 16.",
                            "zh": "按 §5 的分解把两个分支的每一层都数一遍，包括偏置，以及带批量归一化的层的批量归一化；"
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


# ---------------------------------------------------------------- the staged network and its demos

SEEDS = (0, 1, 2)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class StagedNet(nn.Module):
    """A three-stage CNN with BAM where the paper puts it, at the stage boundaries, or CBAM in every block.

    stage 1: conv (stride 2), conv           -> (B, 2w, H/2, W/2)   [BAM 1]
    stage 2: max pool, conv                  -> (B, 2w, H/4, W/4)   [BAM 2]
    stage 3: max pool, conv                  -> (B, 2w, H/8, W/8)   -> global average pool -> linear

    ``attention="bam"``: one BAM after stage 1 and one after stage 2, none after the last stage (the official
    ResNet has none after ``layer4`` either); ``"cbam"``: a CBAM at the end of each of the four conv blocks
    (as CBAM sits in every residual block), with reduction ``cbam_reduction``; ``None``: the backbone alone.
    """

    def __init__(self, attention: Optional[str] = "bam", num_classes: int = 4, width: int = 16,
                 reduction: int = 4, dilation: int = 4, fusion: str = "sum", cbam_reduction: int = 2):
        super().__init__()
        if attention not in ("bam", "cbam", None):
            raise ValueError(f"StagedNet: attention must be 'bam', 'cbam' or None, got {attention!r}")
        self.attention_name = attention
        c = 2 * width

        def gate(channels: int) -> nn.Module:                     # CBAM in every block, or nothing
            return CBAM(channels, cbam_reduction) if attention == "cbam" else nn.Identity()

        def boundary() -> nn.Module:                              # BAM at a stage boundary, or nothing
            return BAM(c, reduction, dilation, fusion) if attention == "bam" else nn.Identity()

        self.block1 = nn.Sequential(_conv_bn_relu(3, width, stride=2), gate(width))    # (B, w, H/2, W/2)
        self.block2 = nn.Sequential(_conv_bn_relu(width, c), gate(c))                  # (B, 2w, H/2, W/2)
        self.bam1 = boundary()
        self.block3 = nn.Sequential(nn.MaxPool2d(2), _conv_bn_relu(c, c), gate(c))    # (B, 2w, H/4, W/4)
        self.bam2 = boundary()
        self.block4 = nn.Sequential(nn.MaxPool2d(2), _conv_bn_relu(c, c), gate(c))    # (B, 2w, H/8, W/8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bam1(self.block2(self.block1(x)))     # end of stage 1
        f = self.bam2(self.block3(f))                  # end of stage 2
        return self.head(self.block4(f))

    def attention_modules(self) -> list:
        """The attention modules, in the order the input meets them."""
        return [m for m in self.modules() if isinstance(m, (BAM, CBAM))]

    @torch.no_grad()
    def applied_factors(self, x: torch.Tensor) -> tuple:
        """What the network multiplies its features by at the end of stage 1 and of stage 2, averaged over the
        channels: BAM's ``1 + M(F)`` and, for CBAM, ``M_c M_s`` of the CBAMs of block 2 and block 3;
        ``((B, H/2, W/2), (B, H/4, W/4))`` (call in eval mode)."""
        if self.attention_name is None:
            raise ValueError("StagedNet(attention=None) is the baseline: it has no attention map")
        f1 = self.block2[0](self.block1(x))                           # stage 1's features before its gate
        first = self.bam1 if self.attention_name == "bam" else self.block2[1]
        f2 = self.block3[1](self.block3[0](first(f1)))
        second = self.bam2 if self.attention_name == "bam" else self.block3[2]
        return tuple(_applied(module, f).mean(1) for module, f in ((first, f1), (second, f2)))

    @torch.no_grad()
    def bam_maps(self, x: torch.Tensor) -> tuple:
        """Both BAMs' maps ``M(F)``: ``(B, 2w, H/2, W/2)`` and ``(B, 2w, H/4, W/4)`` (call in eval mode)."""
        if self.attention_name != "bam":
            raise ValueError(f"bam_maps needs a StagedNet with BAM, this one has {self.attention_name!r}")
        f1 = self.block2(self.block1(x))
        f2 = self.block3(self.bam1(f1))
        return self.bam1.attention_map(f1), self.bam2.attention_map(f2)

    @torch.no_grad()
    def stage2_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features that BAM 2 receives (the end of stage 2): ``(B, 2w, H/4, W/4)``."""
        return self.block3(self.bam1(self.block2(self.block1(x))))


def _applied(module: nn.Module, f: torch.Tensor) -> torch.Tensor:
    """The factor ``module`` multiplies ``f`` by: ``1 + M(F)`` for BAM, ``M_c M_s`` for CBAM."""
    a = module.attention_map(f)
    return 1 + a if isinstance(module, BAM) else a.channel * a.spatial


@dataclass(frozen=True)
class Staged(CueCNN):
    """:class:`StagedNet` on the cue images, with CueCNN's recipe (the same as chapter 5's runs)."""
    kind: ClassVar[str] = "bam_staged"
    attention: Optional[str] = "bam"  # "bam" (one per stage), "cbam" (one per block) or None
    dilation: int = 4                 # BAM's dilation d (the paper's 4)
    fusion: str = "sum"               # BAM's fusion: "sum" (paper) or "product" (official code)
    cbam_reduction: int = 2           # CBAM's r: four CBAMs at r = 2 hold about as many parameters as two BAMs

    def build(self) -> nn.Module:
        return StagedNet(self.attention, len(data.SHAPE_CLASSES), self.width, self.reduction, self.dilation,
                         self.fusion, self.cbam_reduction)


BAM_DEMO = Staged(attention="bam")
PRODUCT_DEMO = Staged(attention="bam", fusion="product")
CBAM_DEMO = Staged(attention="cbam")
BASELINE_DEMO = Staged(attention=None)
#: The four networks of §6, in the tables' order.
DEMOS = {"bam": BAM_DEMO, "product": PRODUCT_DEMO, "cbam": CBAM_DEMO, "none": BASELINE_DEMO}


@one_thread()
def train_all(seeds: Sequence[int] = SEEDS, **kwargs) -> dict:
    """Every network of §6 for every seed, trained or loaded from the demo cache: ``{key: [Demo per seed]}``."""
    return {key: [trained_demo(config.replace(seed=s), **kwargs) for s in seeds] for key, config in DEMOS.items()}


def attention_parameters(model: nn.Module) -> int:
    """The parameters of a StagedNet's attention modules (0 for the baseline)."""
    return sum(p.numel() for m in model.attention_modules() for p in m.parameters())


def parameter_table(runs: dict) -> Table:
    """Per network of §6: its attention modules, their parameters and the whole network's parameters."""
    rows = []
    for key, demos in runs.items():
        model = demos[0].model
        rows.append([t(f"ch06.net.{key}"), str(len(model.attention_modules())),
                     format_count(attention_parameters(model)), format_count(sum(p.numel() for p in model.parameters()))])
    return Table([t("ch06.net.who"), t("ch06.net.modules"), t("ch06.net.attention"), t("ch06.net.total")], rows)


def accuracies(runs: dict) -> dict:
    """The validation accuracy of every run, ``{key: [per seed]}`` (each run is validated after its last epoch)."""
    return {key: [d.history["val_acc"][-1] for d in demos] for key, demos in runs.items()}


def accuracy_table(acc: dict) -> Table:
    """Accuracy per network (mean ± std, then per seed) and its per-seed change against the baseline."""
    rows = [[t(f"ch06.net.{key}"), rd.seeds(v).format(),
             rd.paired(v, acc["none"]).format(signed=True) if key != "none" else ""] for key, v in acc.items()]
    return Table([t("ch06.net.who"), t("ch06.score.acc"), t("ch06.score.change")], rows)


def check_accuracy_readings(acc: dict) -> None:
    """The sentence of §6 on accuracy."""
    rd.expect("every network classifies at least 95% of the validation images in every seed",
              min(min(v) for v in acc.values()) >= 0.95, acc=acc)
    changes = {k: rd.paired(v, acc["none"]) for k, v in acc.items() if k != "none"}
    rd.expect("no attention module moves the accuracy by more than three points in any seed",
              all(abs(x) <= 0.03 for c in changes.values() for x in c.values), changes=changes)


# ---------------------------------------------------------------- maps and scores

class Branches(NamedTuple):
    """BAM's two branches before the fusion: ``m_c`` (B, C) and ``m_s`` (B, H, W)."""
    m_c: torch.Tensor
    m_s: torch.Tensor


@torch.no_grad()
def branches(bam: BAM, f: torch.Tensor) -> Branches:
    """``M_c(F)`` and ``M_s(F)`` of a library ``BAM`` on features ``f``, from its own submodules."""
    return Branches(bam.channel_mlp(f.mean((2, 3))), bam.spatial(f)[:, 0])


def inside_outside(maps: torch.Tensor, boxes: torch.Tensor, image_size: int) -> float:
    """The mean over images of (the map's mean inside the target's box) / (its mean outside): > 1 when the
    map is higher on the target than around it, whatever its offset and scale."""
    inside = data.box_masks(boxes, *maps.shape[1:], image_size).float()      # (n, h, w)
    mean_in = (maps * inside).sum((1, 2)) / inside.sum((1, 2))
    mean_out = (maps * (1 - inside)).sum((1, 2)) / (1 - inside).sum((1, 2)).clamp_min(1)
    return (mean_in / mean_out).mean().item()


def saturated(maps: torch.Tensor, level: float = 0.8, share: float = 0.75) -> float:
    """The share of maps ``(n, h, w)`` that are above ``level`` on more than ``share`` of their cells."""
    return ((maps > level).float().flatten(1).mean(1) > share).float().mean().item()


#: The maps scored in §6: (network, place), in the table's order.
PLACES = (("bam", 0), ("bam", 1), ("cbam", 0), ("cbam", 1), ("product", 0), ("product", 1))


@dataclass(repr=False)
class Scores(ShowsTable):
    """Per (network, place) of ``PLACES``, one value per seed: ``peak`` (the applied factor, averaged over
    the channels, peaks on the target's box), ``distractor`` (on a distractor's instead) and ``ratio`` (its
    mean inside the target's box over its mean outside); ``saturated``: per seed, the share of BAM's maps
    M(F) (averaged over channels) above 0.8 on more than three quarters of their cells, at each place."""
    peak: dict
    distractor: dict
    ratio: dict
    saturated: dict

    def table(self) -> Table:
        rows = [[t(f"ch06.place.{net}.{i}"), *(rd.seeds(getattr(self, m)[(net, i)]).format(digits)
                                               for m, digits in (("peak", 3), ("distractor", 3), ("ratio", 2)))]
                for net, i in PLACES]
        return Table([t("ch06.score.who"), t("ch06.score.peak"), t("ch06.score.distractor"), t("ch06.score.ratio")],
                     rows)


@one_thread()
def score_maps(runs: dict) -> Scores:
    """Scores what each attention network multiplies its features by, at the end of stages 1 and 2, on each
    seed's validation images."""
    result = Scores(*({p: [] for p in PLACES} for _ in range(3)), {0: [], 1: []})
    for net in ("bam", "cbam", "product"):
        for demo in runs[net]:
            val, model = demo.val_data, demo.model
            images, size = val.images.to(_device(model)), val.images.shape[-1]
            factors = [f.cpu() for f in model.applied_factors(images)]
            for i, m in enumerate(factors):
                s = data.box_scores(m, val.boxes, size)
                result.peak[(net, i)].append(s.peak_in_box)
                result.distractor[(net, i)].append(data.peak_on_distractor(m, val, size))
                result.ratio[(net, i)].append(inside_outside(m, val.boxes, size))
            if net == "bam":
                for i, m in enumerate(model.bam_maps(images)):
                    result.saturated[i].append(saturated(m.mean(1).cpu()))
    return result


def check_score_readings(scores: Scores) -> None:
    """The sentences of §6 that read the scores of the maps."""
    r, p = scores.ratio, scores.peak
    rd.expect("BAM's factor is higher on the target than around it at both stage boundaries, in every seed",
              min(min(r[("bam", 0)]), min(r[("bam", 1)])) > 1.0, early=r[("bam", 0)], late=r[("bam", 1)])
    rd.expect("and peaks on the target far more often than on a distractor, in every seed",
              all(a > 5 * b for i in (0, 1) for a, b in zip(p[("bam", i)], scores.distractor[("bam", i)])),
              peak=p, distractor=scores.distractor)
    rd.expect("at its best, CBAM's factor points at the target with more contrast than BAM's",
              max(r[("cbam", 0)] + r[("cbam", 1)]) > max(r[("bam", 0)] + r[("bam", 1)]), cbam=r[("cbam", 0)] + r[("cbam", 1)],
              bam=r[("bam", 0)] + r[("bam", 1)])
    rd.expect("CBAM's factor at the end of stage 1 is lower on the target than around it in at least one seed",
              min(r[("cbam", 0)]) < 1.0, ratio=r[("cbam", 0)])
    rd.expect("and in some seed neither of CBAM's two factors prefers the target",
              any(a <= 1.0 and b <= 1.0 for a, b in zip(r[("cbam", 0)], r[("cbam", 1)])),
              early=r[("cbam", 0)], late=r[("cbam", 1)])
    rd.expect("none of BAM's maps saturates: no seed has more than 1% of its maps above 0.8 almost everywhere",
              max(scores.saturated[0] + scores.saturated[1]) <= 0.01, saturated=scores.saturated)
    rd.expect("with the product, the factor averaged over channels is nearly flat: inside and outside the box "
              "within 5% of each other, at both places, in every seed",
              all(abs(x - 1) <= 0.05 for i in (0, 1) for x in r[("product", i)]),
              early=r[("product", 0)], late=r[("product", 1)])


@one_thread()
def spatial_branch_peaks(demos) -> list:
    """Per run of a BAM network, how often the late BAM's ``M_s`` and how often ``-M_s`` peaks inside the target's
    box: ``[(plus, minus)]``."""
    out = []
    for demo in demos:
        model, val = demo.model, demo.val_data
        f = model.stage2_features(val.images.to(_device(model)))
        m_s = branches(model.bam2, f).m_s.cpu()                                          # (n, h, w)
        size = val.images.shape[-1]
        out.append(tuple(data.box_scores(m - m.amin((1, 2), keepdim=True), val.boxes, size).peak_in_box
                         for m in (m_s, -m_s)))
    return out


def check_sign_readings(product: list, total: list) -> None:
    """The sentences of §6 on the sign of M_s: ``product`` and ``total``, :func:`spatial_branch_peaks` of the
    product and of the sum networks."""
    rd.expect("with the sum, M_s itself, never -M_s, peaks on the target, in every seed",
              all(plus > 0.5 and minus < 0.05 for plus, minus in total), peaks=total)
    rd.expect("with the product, -M_s peaks on the target in most images of at least one seed",
              max(minus for _, minus in product) > 0.5, peaks=product)
    rd.expect("and M_s itself in most images of another", max(plus for plus, _ in product) > 0.5, peaks=product)


def print_sign_peaks(product: list, total: list) -> None:
    """One line per run: how often M_s and -M_s peak on the target, for the sum and the product."""
    for key, peaks in (("bam", total), ("product", product)):
        for seed, (plus, minus) in zip(SEEDS, peaks):
            print(t("ch06.m_s_peaks", name=t(f"ch06.net.{key}"), seed=seed, plus=plus, minus=minus))


def check_gallery_readings(rows: dict) -> None:
    """The sentence of §6 on the gallery: the random BAM's map is flat."""
    random = rows[t("ch06.row.random")]
    spread = (random.amax((1, 2)) - random.amin((1, 2))).max().item()
    rd.expect("the random BAM's map is flat: it varies by less than 0.02 within any of these images",
              spread < 0.02, spread=spread)


@one_thread()
@torch.no_grad()
def photo_correlations(runs: dict, size: int = 96) -> dict:
    """How closely each seed-0 network's factor at the end of stage 2 follows the redness of the photograph's
    cells: ``{key: correlation}`` for BAM (sum) and CBAM; prints one line."""
    photo = data.sample_photo(size=size)[None]
    out = {}
    for key in ("bam", "cbam"):
        model = runs[key][0].model
        m = model.applied_factors(photo.to(_device(model)))[1].cpu()           # (1, size/4, size/4)
        red = data.redness_maps(photo, *m.shape[1:])
        out[key] = torch.corrcoef(torch.stack([m.flatten(), red.flatten()]).double())[0, 1].item()
    print(t("ch06.photo.corr", bam=out["bam"], cbam=out["cbam"]))
    return out


def check_photo_readings(correlations: dict) -> None:
    """The sentence of §6 on the photograph."""
    rd.expect("neither network's factor follows the photograph's redness much (correlations below 0.3)",
              max(correlations.values()) < 0.3, corr=correlations)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@one_thread()
@torch.no_grad()
def gallery_rows(runs: dict, images: torch.Tensor, seed: int = 0) -> dict:
    """The rows of §6's gallery (seed ``seed``'s networks): BAM's ``M(F)`` (averaged over channels) before training
    and after, at both stage boundaries, and CBAM's ``M_c M_s`` at the same places."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random_net = BAM_DEMO.replace(seed=seed).build().eval()
    bam, cbam = runs["bam"][seed].model, runs["cbam"][seed].model
    x = images.to(_device(bam))
    early, late = (m.mean(1).cpu() for m in bam.bam_maps(x))
    c_early, c_late = (m.cpu() for m in cbam.applied_factors(images.to(_device(cbam))))
    return {t("ch06.row.random"): random_net.bam_maps(images)[1].mean(1), t("ch06.row.early"): early,
            t("ch06.row.late"): late, t("ch06.row.cbam_early"): c_early, t("ch06.row.cbam_late"): c_late}


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


def resnet50_bam_flops() -> list:
    """The FLOPs of each of the three BAMs of a ResNet-50 (r = 16, d = 4), from the registry's formula, and
    the ``C^2 HW`` of its stage: ``[(C, side, flops, C * C * side * side)]``."""
    bam = MECHANISMS["bam"]
    return [(C, S, bam.flops(C=C, H=S, W=S, r=16), C * C * S * S) for _, C, S in RESNET50[:3]]


def print_bam_flops() -> None:
    """One line per BAM of a ResNet-50: its channels, map side, FLOPs and C^2 HW."""
    for C, S, flops, c2hw in resnet50_bam_flops():
        print(t("ch06.cost.per_bam", C=C, S=S, flops=format_si(flops), c2hw=format_si(c2hw)))


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


@one_thread()
@torch.no_grad()
def plot_photo_maps(models: dict, size: int = 96):
    """What each trained network multiplies its features by at the end of stage 2, averaged over the channels,
    over the sample photograph, side by side: ``{name: StagedNet}`` (each panel with its own colour bar)."""
    photo = data.sample_photo(size=size)
    fig, axes = viz.page_grid(len(models), (5.2, 3.4), max_cols=1, extra=(0.2, 0.3))
    for ax, (name, model) in zip(axes, models.items()):
        m = model.applied_factors(photo[None].to(_device(model)))[1][0].cpu()          # (size/4, size/4)
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
