"""Chapter 06 · BAM: the chapter's strings, figures, the three-stage residual network, demos, exercises and explorer.

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
from ..cbam import CBAM, CBAMAttention
from ..registry import MECHANISMS
from ..toolkit import data, viewer, viz
from ..toolkit.data import brightness_maps, centre_maps
from ..toolkit import readings as rd
from ..toolkit.exercises import as_count, as_function, as_shape, call, case, exercise, expect_close
from ..toolkit.format import ShowsTable, Table, format_count, format_si
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.train import CueCNN, one_thread, trained_demos
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch06.explorer.dilation": {"en": "dilation d", "zh": "空洞率 d"},
    "ch06.explorer.fusion": {"en": "fusion", "zh": "融合方式"},
    "ch06.explorer.fusion.sum": {"en": "sum (paper)", "zh": "相加（论文）"},
    "ch06.explorer.fusion.product": {"en": "product (official code)", "zh": "相乘（官方代码）"},
    # §1
    "ch06.rf.title": {"en": "What one output of two 3 × 3 convolutions reads: dilation 1 and 4",
                      "zh": "两层 3 × 3 卷积的一个输出看到哪里：空洞率 1 与 4 对比"},
    "ch06.rf.panel": {"en": "dilation {d}\n{n} pixels read, spanning {s} × {s}",
                      "zh": "空洞率 {d}\n读取 {n} 个像素，跨越 {s} × {s}"},
    "ch06.rf.x": {"en": "x (pixels)", "zh": "x（像素）"},
    "ch06.rf.y": {"en": "y (pixels)", "zh": "y（像素）"},
    "ch06.rf.taps": {"en": "times an input pixel is read", "zh": "输入像素被读取的次数"},
    # the block diagram
    "ch06.diagram.title": {"en": "BAM: one module per stage boundary; inside, two branches in parallel, added",
                           "zh": "BAM：每个阶段边界一个模块；模块内两个分支并行，再相加"},
    "ch06.diagram.stem": {"en": "stem", "zh": "卷积前端"},
    "ch06.diagram.stage": {"en": "stage {n}", "zh": "第 {n} 阶段"},
    "ch06.diagram.head": {"en": "pool, FC", "zh": "池化、全连接"},
    "ch06.diagram.where": {"en": "where: after each stage but the last", "zh": "位置：除最后一个阶段外，每个阶段之后"},
    "ch06.diagram.channel": {"en": "channel branch (what)", "zh": "通道分支（看什么）"},
    "ch06.diagram.spatial": {"en": "spatial branch (where)", "zh": "空间分支（看哪里）"},
    "ch06.diagram.pool": {"en": "avg over\nH×W", "zh": "沿 H×W\n取平均"},
    "ch06.diagram.mlp": {"en": "MLP\nC→C/r→C", "zh": "MLP\nC→C/r→C"},
    "ch06.diagram.m_c": {"en": "$\\mathbf{M_c}$\nC×1×1", "zh": "$\\mathbf{M_c}$\nC×1×1"},
    "ch06.diagram.reduce": {"en": "1×1 conv\nC→C/r", "zh": "1×1 卷积\nC→C/r"},
    "ch06.diagram.dilated": {"en": "3×3 conv ×2\ndilation d", "zh": "3×3 卷积 ×2\n空洞率 d"},
    "ch06.diagram.one": {"en": "1×1\nconv", "zh": "1×1\n卷积"},
    "ch06.diagram.m_s": {"en": "$\\mathbf{M_s}$\n1×H×W", "zh": "$\\mathbf{M_s}$\n1×H×W"},
    "ch06.diagram.sum": {"en": "+", "zh": "+"},
    "ch06.diagram.out": {"en": "$\\mathbf{F}' = \\mathbf{F}\\,+$\n$\\mathbf{F} \\otimes \\mathbf{M}(\\mathbf{F})$",
                         "zh": "$\\mathbf{F}' = \\mathbf{F}\\,+$\n$\\mathbf{F} \\otimes \\mathbf{M}(\\mathbf{F})$"},
    "ch06.diagram.identity": {"en": "F itself: multiplied by M(F) and added (the identity)",
                              "zh": "F 本身：既与 M(F) 相乘，又直接相加（恒等映射）"},
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
    "ch06.fusion.channel": {"en": "channel {c}\nM_c = {v:+.2f}", "zh": "通道 {c}\nM_c = {v:+.2f}"},
    "ch06.fusion.value": {"en": "map value", "zh": "图的取值"},
    "ch06.fusion.x": {"en": "position on the feature map", "zh": "特征图上的位置"},
    "ch06.net.who": {"en": "network (3 seeds)", "zh": "网络（3 个随机种子）"},
    "ch06.net.bam": {"en": "BAM per stage, sum", "zh": "每个阶段一个 BAM，相加"},
    "ch06.net.product": {"en": "BAM per stage, product", "zh": "每个阶段一个 BAM，相乘"},
    "ch06.net.cbam": {"en": "CBAM per residual block", "zh": "每个残差块一个 CBAM"},
    "ch06.net.none": {"en": "no attention", "zh": "不带注意力"},
    "ch06.net.modules": {"en": "attention modules", "zh": "注意力模块数"},
    "ch06.net.attention": {"en": "their parameters", "zh": "它们的参数量"},
    "ch06.net.total": {"en": "network's parameters", "zh": "整个网络的参数量"},
    "ch06.score.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch06.score.change": {"en": "minus no attention, per seed", "zh": "减去不带注意力（逐个随机种子）"},
    "ch06.score.who": {"en": "end of stage {stage} ({side} × {side}), 3 seeds",
                       "zh": "第 {stage} 阶段末（{side} × {side}），3 个随机种子"},
    "ch06.score.peak": {"en": "peak on the target", "zh": "峰值落在目标上"},
    "ch06.score.distractor": {"en": "peak on a distractor", "zh": "峰值落在干扰物上"},
    "ch06.score.ratio": {"en": "inside / outside the box", "zh": "框内 / 框外"},
    "ch06.score.row.bam": {"en": "BAM (sum): gate M(F)", "zh": "BAM（相加）：门控 M(F)"},
    "ch06.score.row.bam_in": {"en": "BAM (sum): the features it receives", "zh": "BAM（相加）：它收到的特征"},
    "ch06.score.row.cbam": {"en": "CBAM: gate M_c M_s in the stage's block", "zh": "CBAM：该阶段残差块里的门控 M_c M_s"},
    "ch06.score.row.cbam_in": {"en": "CBAM: the residual branch it receives (channel mean)",
                               "zh": "CBAM：它收到的残差分支（通道平均）"},
    "ch06.score.row.product": {"en": "BAM (product): gate M(F)", "zh": "BAM（相乘）：门控 M(F)"},
    "ch06.score.row.none": {"en": "no attention: the stage's features", "zh": "不带注意力：该阶段的特征"},
    "ch06.score.row.centre": {"en": "centre guess", "zh": "总猜中心"},
    "ch06.score.row.bright": {"en": "brightness map (no learning)", "zh": "亮度图（无需学习）"},
    "ch06.score.factor": {"en": "end of stage {stage}, BAM (sum), inside / outside: factor 1 + M(F) {factor}; "
                                "gate M(F) {gate}; maps above 0.8 almost everywhere: {saturated}",
                          "zh": "第 {stage} 阶段末，BAM（相加），框内 / 框外：乘法因子 1 + M(F) 为 {factor}；"
                                "门控 M(F) 为 {gate}；几乎处处高于 0.8 的图所占比例：{saturated}"},
    "ch06.row.random": {"en": "random BAM 2: M(F)", "zh": "随机初始化的 BAM 2：M(F)"},
    "ch06.row.early": {"en": "BAM 1 (16 × 16): M(F)", "zh": "BAM 1（16 × 16）：M(F)"},
    "ch06.row.late": {"en": "BAM 2 (8 × 8): M(F)", "zh": "BAM 2（8 × 8）：M(F)"},
    # "M_c·M_s" is one word for the row label's wrapping (a space, even a no-break one, would split the symbol)
    "ch06.row.cbam_early": {"en": "CBAM, stage 1 (16 × 16): M_c·M_s", "zh": "CBAM，第 1 阶段（16 × 16）：M_c·M_s"},
    "ch06.row.cbam_late": {"en": "CBAM, stage 2 (8 × 8): M_c·M_s", "zh": "CBAM，第 2 阶段（8 × 8）：M_c·M_s"},
    "ch06.gallery.title": {"en": "The gates of BAM and CBAM at the ends of stages 1 and 2 (cyan: target box)",
                           "zh": "第 1、2 阶段末 BAM 与 CBAM 的门控（青色框为目标框）"},
    "ch06.m_s_peaks": {"en": "{name}, seed {seed}: M_s peaks on the target in {plus:.1%} of the images, -M_s in {minus:.1%}",
                       "zh": "{name}，随机种子 {seed}：M_s 的峰值落在目标上的图像占 {plus:.1%}，-M_s 的占 {minus:.1%}"},
    "ch06.photo.title": {"en": "{name}: gate at the end of stage 2 (map {h} × {w})",
                         "zh": "{name}：第 2 阶段末的门控（图 {h} × {w}）"},
    "ch06.viewer.title": {"en": "BAM 2's M(F) (mean over channels) over validation images",
                          "zh": "验证图像上的 BAM 2 注意力图 M(F)（通道平均）"},
    "ch06.bam_share": {"en": "the two BAMs hold {share:.1%} of the network's parameters",
                       "zh": "两个 BAM 占整个网络参数量的 {share:.1%}"},
    "ch06.cost.per_bam": {"en": "BAM on C = {C}, {S} × {S}: {flops}FLOPs; C²HW = {c2hw}",
                          "zh": "BAM，C = {C}，{S} × {S}：浮点运算次数 {flops}；C²HW = {c2hw}"},
    "ch06.photo.corr": {"en": "correlation of the gate with each cell's redness: BAM {bam:.2f}, CBAM {cbam:.2f}",
                        "zh": "门控与各格子红色程度的相关系数：BAM {bam:.2f}，CBAM {cbam:.2f}"},
    # §8
    "ch06.bn1": {"en": "training mode, batch size 1: {error}", "zh": "训练模式、批量大小为 1：{error}"},
    "ch06.bn1.fix": {"en": "eval mode, batch size 1: output {shape}", "zh": "评估模式、批量大小为 1：输出形状 {shape}"},
    "ch06.dilation": {"en": "padding {p}, dilation {d}, two convolutions: {h} × {w} in, {out} out",
                      "zh": "填充 {p}、空洞率 {d}、两个卷积：输入 {h} × {w}，输出 {out}"},
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
    "ex.bam.params.one_dilated": {"en": "the spatial branch has two dilated 3 × 3 convolutions, each with its "
                                        "BatchNorm.",
                                  "zh": "空间分支有两个 3 × 3 空洞卷积，各自带一个批量归一化层。"},
    "ex.bam.params.dense": {"en": "a dilated 3 × 3 kernel has 9 weights per input and output channel, however far "
                                  "apart they are spread.",
                            "zh": "3 × 3 空洞卷积核对每一对输入、输出通道只有 9 个权重，无论它们分布得多开。"},
    "ex.bam.params.no_final": {"en": "the spatial branch ends with a 1 × 1 convolution down to one map (with its "
                                     "bias).",
                               "zh": "空间分支最后还有一个把通道压成一张图的 1 × 1 卷积（带偏置）。"},
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


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout))


class ResidualBlock(nn.Module):
    """ResNet's basic block: ``ReLU(shortcut(x) + CBAM(r))``, ``r = BN(conv(ReLU(BN(conv(x)))))`` the residual
    branch. With ``cbam_reduction`` a CBAM refines ``r`` before the identity is added, where the CBAM paper and
    the official ``BasicBlock`` put it; without, the plain block. The shortcut is the identity, or a 1×1
    convolution and BatchNorm when the channels change (as ResNet's projection shortcut)."""

    def __init__(self, cin: int, cout: int, cbam_reduction: Optional[int] = None):
        super().__init__()
        self.conv1, self.conv2 = _conv_bn(cin, cout), _conv_bn(cout, cout)
        self.cbam = CBAM(cout, cbam_reduction) if cbam_reduction else nn.Identity()
        self.shortcut = nn.Identity() if cin == cout else _conv_bn(cin, cout, 1)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch ``r`` (what CBAM refines): ``(B, cout, H, W)``."""
        return self.conv2(torch.relu(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.shortcut(x) + self.cbam(self.branch(x)))      # (B, cout, H, W)


class StageEnd(NamedTuple):
    """One place of :meth:`StagedNet.stage_ends`: the stage's output, the attention there, CBAM's input."""
    features: torch.Tensor                  # the stage's output (B, C, h, w): what BAM receives
    attention: object                       # BAM's M(F), the block's CBAMAttention, or None
    branch: Optional[torch.Tensor]          # the block's residual branch r (B, C, h, w): what CBAM receives


class StagedNet(nn.Module):
    """A small residual network in three stages, with BAM where the BAM paper puts it (at the boundaries
    between stages) or CBAM where the CBAM paper puts it (on the residual branch of every block).

    stem:    3×3 conv, stride 2, BN, ReLU    -> (B, w, H/2, W/2)
    stage 1: residual block                  -> (B, w, H/2, W/2)     [BAM 1]
    stage 2: max pool, residual block        -> (B, 2w, H/4, W/4)    [BAM 2]
    stage 3: max pool, residual block        -> (B, 2w, H/8, W/8)    -> global average pool -> linear

    ``attention="bam"``: a BAM after stage 1 and one after stage 2, none after the last stage (the official
    ResNet has none after ``layer4`` either); ``"cbam"``: a CBAM inside each of the three blocks, with
    reduction ``cbam_reduction``; ``None``: the network alone.
    """

    def __init__(self, attention: Optional[str] = "bam", num_classes: int = 4, width: int = 16,
                 reduction: int = 4, dilation: int = 4, fusion: str = "sum", cbam_reduction: int = 2):
        super().__init__()
        if attention not in ("bam", "cbam", None):
            raise ValueError(f"StagedNet: attention must be 'bam', 'cbam' or None, got {attention!r}")
        self.attention_name = attention
        w, c = width, 2 * width
        r = cbam_reduction if attention == "cbam" else None

        def boundary(channels: int) -> nn.Module:                # BAM at a stage boundary, or nothing
            return BAM(channels, reduction, dilation, fusion) if attention == "bam" else nn.Identity()

        self.stem = nn.Sequential(*_conv_bn(3, w, stride=2), nn.ReLU())                 # (B, w, H/2, W/2)
        self.stage1 = nn.Sequential(ResidualBlock(w, w, r))                              # (B, w, H/2, W/2)
        self.bam1 = boundary(w)
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), ResidualBlock(w, c, r))            # (B, 2w, H/4, W/4)
        self.bam2 = boundary(c)
        self.stage3 = nn.Sequential(nn.MaxPool2d(2), ResidualBlock(c, c, r))            # (B, 2w, H/8, W/8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bam1(self.stage1(self.stem(x)))     # end of stage 1
        f = self.bam2(self.stage2(f))                # end of stage 2
        return self.head(self.stage3(f))

    def attention_modules(self) -> list:
        """The attention modules, in the order the input meets them."""
        return [m for m in self.modules() if isinstance(m, (BAM, CBAM))]

    @torch.no_grad()
    def stage_ends(self, x: torch.Tensor) -> list:
        """At the end of stage 1 and of stage 2, a :class:`StageEnd`: the stage's output ``(B, C, h, w)`` (what BAM
        receives), the map of the attention module there (BAM's ``M(F)`` ``(B, C, h, w)``, the ``CBAMAttention``
        of the CBAM in the stage's block, or ``None``) and, in the CBAM network, the residual branch ``r`` of the
        stage's block ``(B, C, h, w)`` (what that CBAM receives; ``None`` otherwise). Call in eval mode."""
        out, f = [], self.stem(x)
        for stage, bam in ((self.stage1, self.bam1), (self.stage2, self.bam2)):
            g = stage[:-1](f)                                    # the pooling before the block, if any
            block = stage[-1]
            r = block.branch(g) if self.attention_name == "cbam" else None              # (B, C, h, w)
            attention = block.cbam.attention_map(r) if r is not None else None
            f = block(g)
            if self.attention_name == "bam":
                attention = bam.attention_map(f)
            out.append(StageEnd(f, attention, r))
            f = bam(f)
        return out

    @torch.no_grad()
    def gates(self, x: torch.Tensor) -> tuple:
        """What each module multiplies the path it refines by, averaged over the channels, at the end of stages 1
        and 2: BAM's ``M(F)`` (it multiplies ``F``; ``forward`` adds ``F``), CBAM's ``M_c M_s`` (it multiplies the
        branch ``r``; the block adds the identity); ``((B, H/2, W/2), (B, H/4, W/4))``, values in (0, 1)."""
        if self.attention_name is None:
            raise ValueError("StagedNet(attention=None) is the baseline: it has no attention map")
        return tuple(_gate(end.attention) for end in self.stage_ends(x))

    @torch.no_grad()
    def bam_maps(self, x: torch.Tensor) -> tuple:
        """Both BAMs' maps ``M(F)``: ``(B, w, H/2, W/2)`` and ``(B, 2w, H/4, W/4)`` (call in eval mode)."""
        if self.attention_name != "bam":
            raise ValueError(f"bam_maps needs a StagedNet with BAM, this one has {self.attention_name!r}")
        return tuple(end.attention for end in self.stage_ends(x))

    @torch.no_grad()
    def stage2_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features at the end of stage 2 (what BAM 2 receives): ``(B, 2w, H/4, W/4)``."""
        return self.stage_ends(x)[1].features


def _gate(attention) -> torch.Tensor:
    """A module's gate averaged over the channels, ``(B, h, w)``: BAM's ``M(F)`` or CBAM's ``M_c M_s``."""
    if isinstance(attention, CBAMAttention):
        return (attention.channel * attention.spatial).mean(1)
    return attention.mean(1)


@dataclass(frozen=True)
class Staged(CueCNN):
    """:class:`StagedNet` on the cue images, with CueCNN's recipe (the same as chapter 5's runs)."""
    kind: ClassVar[str] = "bam_staged_residual"
    attention: Optional[str] = "bam"  # "bam" (one per stage boundary), "cbam" (one per block) or None
    dilation: int = 4                 # BAM's dilation d (the paper's 4)
    fusion: str = "sum"               # BAM's fusion: "sum" (paper) or "product" (official code)
    cbam_reduction: int = 2           # CBAM's r: three CBAMs at r = 2 hold about as many parameters as two BAMs

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
    seeds = list(seeds)
    # the uncached runs train side by side on the CPU cores, each as it would alone (same weights)
    trained = iter(trained_demos([config.replace(seed=s) for config in DEMOS.values() for s in seeds], **kwargs))
    return {key: [next(trained) for _ in seeds] for key in DEMOS}


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
    """The sentences of §6 and of the summary on accuracy."""
    rd.expect("every network classifies at least 95% of the validation images in every seed",
              min(min(v) for v in acc.values()) >= 0.95, acc=acc)
    rd.expect("the network without attention already classifies at least 96% in every seed, so no module can "
              "gain more than four points", min(acc["none"]) >= 0.96, none=acc["none"])
    changes = {k: rd.paired(v, acc["none"]) for k, v in acc.items() if k != "none"}
    rd.expect("no module costs more than 1.5 points in any seed",
              min(c.low for c in changes.values()) >= -0.015, changes=changes)
    rd.expect("BAM (sum) is above the network without attention in every seed, by less than one point",
              changes["bam"].positive == changes["bam"].n and changes["bam"].high < 0.01, bam=changes["bam"])
    rd.expect("the other two are above it in some seeds and below it in others",
              all(0 < changes[k].positive < changes[k].n for k in ("cbam", "product")),
              cbam=changes["cbam"], product=changes["product"])


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
    """The mean over images of (the map's mean inside the target's box) / (its mean outside): > 1 when the map
    is higher on the target than around it. Scale-free, not offset-free: ``1 + m`` gives ``(1 + a) / (1 + b)``,
    pulled towards 1, where ``m`` gives ``a / b``."""
    mean_in, mean_out = data.box_means(maps, boxes, image_size)                  # (n,) each
    return (mean_in / mean_out).mean().item()


def saturated(maps: torch.Tensor, level: float = 0.8, share: float = 0.75) -> float:
    """The share of maps ``(n, h, w)`` that are above ``level`` on more than ``share`` of their cells."""
    return ((maps > level).float().flatten(1).mean(1) > share).float().mean().item()


#: The maps scored at each place of §6, in the table's order: the three gates, what BAM receives (the stage's
#: output) and what CBAM receives (its block's residual branch r), the features of the network without attention
#: at the same place, and two rules that learn nothing.
SCORE_ROWS = ("bam", "bam_in", "cbam", "cbam_in", "product", "none", "centre", "bright")
#: The rows whose inside / outside ratio means something: maps that are never negative. The centre guess is 0 or
#: 1; the channel mean of r, a BatchNorm's output before the block's ReLU, takes either sign.
RATIO_ROWS = ("bam", "bam_in", "cbam", "product", "none", "bright")


@dataclass(repr=False)
class Scores(ShowsTable):
    """Per place (0: end of stage 1, 1: end of stage 2) and map (``SCORE_ROWS``), keyed ``(map, place)``, one value
    per seed: ``peak`` (the map peaks on the target's box), ``distractor`` (on a distractor's box instead),
    ``ratio`` (its mean inside the target's box over its mean outside; ``RATIO_ROWS`` only). Per place, one
    value per seed: ``factor`` (the ratio of BAM's factor on the features, ``1 + M(F)``) and ``saturated`` (the
    share of BAM's maps above 0.8 on more than three quarters of their cells)."""
    peak: dict
    distractor: dict
    ratio: dict
    factor: dict
    saturated: dict

    def at(self, place: int) -> Table:
        """The table of one place."""
        rows = [[t(f"ch06.score.row.{key}"), rd.seeds(self.peak[(key, place)]).format(),
                 rd.seeds(self.distractor[(key, place)]).format(),
                 rd.seeds(self.ratio[(key, place)]).format(2) if key in RATIO_ROWS else "–"] for key in SCORE_ROWS]
        side = 16 // 2 ** place
        return Table([t("ch06.score.who", stage=place + 1, side=side), t("ch06.score.peak"),
                      t("ch06.score.distractor"), t("ch06.score.ratio")], rows)

    def table(self) -> Table:
        first, second = self.at(0), self.at(1)
        return Table(first.headers, first.rows + [second.headers] + second.rows)

    def bam_factor(self) -> str:
        """Two lines: BAM's factor ``1 + M(F)`` and its gate ``M(F)``, inside / outside, and its saturation."""
        return "\n".join(t("ch06.score.factor", stage=i + 1, factor=rd.seeds(self.factor[i]).format(2),
                           gate=rd.seeds(self.ratio[("bam", i)]).format(2),
                           saturated=rd.seeds(self.saturated[i]).format()) for i in (0, 1))


@one_thread()
@torch.no_grad()
def score_maps(runs: dict) -> Scores:
    """Scores, at the end of stages 1 and 2 and on each seed's validation images, the gates of the three
    attention networks, the features BAM receives, the residual branch CBAM receives, the features of the network
    without attention, a centre guess and the brightness (its brightest cell; for the ratio, the whole map)."""
    result = Scores({}, {}, {}, {0: [], 1: []}, {0: [], 1: []})

    def score(key, place, maps, val):
        size = val.images.shape[-1]
        result.peak.setdefault((key, place), []).append(data.box_scores(maps, val.boxes, size).peak_in_box)
        result.distractor.setdefault((key, place), []).append(data.peak_on_distractor(maps, val, size))
        if key in RATIO_ROWS:
            result.ratio.setdefault((key, place), []).append(inside_outside(maps, val.boxes, size))

    for i in range(len(runs["none"])):                                           # seed by seed
        val = runs["none"][i].val_data
        images = val.images
        for key in ("bam", "cbam", "product", "none"):
            model = runs[key][i].model
            for place, (f, attention, r) in enumerate(model.stage_ends(images.to(_device(model)))):
                n, _, h, w = f.shape
                if key == "none":
                    score("none", place, f.mean(1).cpu(), val)
                    score("centre", place, centre_maps(n, h, w), val)
                    score("bright", place, brightness_maps(images, h, w), val)
                    continue
                gate = _gate(attention).cpu()                                     # (n, h, w)
                score(key, place, gate, val)
                if key == "cbam":
                    score("cbam_in", place, r.mean(1).cpu(), val)
                if key == "bam":
                    score("bam_in", place, f.mean(1).cpu(), val)
                    result.factor[place].append(inside_outside(1 + gate, val.boxes, images.shape[-1]))
                    result.saturated[place].append(saturated(gate))
    return result


def check_score_readings(scores: Scores) -> None:
    """The sentences of §6 that read the scores of the maps (each in every seed, at both places)."""
    p, d, r = scores.peak, scores.distractor, scores.ratio
    both = [(g, i) for g in ("bam", "cbam") for i in (0, 1)]
    rd.expect("both modules' gates peak on the target in at least 85% of the images, and at least ten times as "
              "often as on a distractor",
              all(a >= 0.85 and a >= 10 * b for k in both for a, b in zip(p[k], d[k])),
              peak={k: p[k] for k in both}, distractor={k: d[k] for k in both})
    rd.expect("and both are higher on the target than around it (inside / outside above 1)",
              all(x > 1 for k in both for x in r[k]), ratio={k: r[k] for k in both})
    rd.expect("the features BAM receives peak on the target at least as often as its gate (within 0.01)",
              all(f >= g - 0.01 for i in (0, 1) for f, g in zip(p[("bam_in", i)], p[("bam", i)])),
              features=[p[("bam_in", i)] for i in (0, 1)], gate=[p[("bam", i)] for i in (0, 1)])
    rd.expect("with at least twice the gate's inside / outside ratio",
              all(f >= 2 * g for i in (0, 1) for f, g in zip(r[("bam_in", i)], r[("bam", i)])),
              features=[r[("bam_in", i)] for i in (0, 1)], gate=[r[("bam", i)] for i in (0, 1)])
    gaps = [g - f for i in (0, 1) for g, f in zip(p[("cbam", i)], p[("cbam_in", i)])]
    rd.expect("CBAM's gate peaks on the target at least as often as the channel mean of the residual branch it "
              "receives, in every seed and at both places, and in three of the six by more than a tenth of the images "
              "(in seed 0 at the end of stage 1, by almost half of them: at least 0.4)",
              min(gaps) >= 0 and sum(x > 0.1 for x in gaps) == 3 and gaps[0] >= 0.4,
              gate=[p[("cbam", i)] for i in (0, 1)], branch=[p[("cbam_in", i)] for i in (0, 1)])
    rd.expect("the features of the network without attention peak on the target in at least 85% of the images",
              min(p[("none", 0)] + p[("none", 1)]) >= 0.85, none=[p[("none", i)] for i in (0, 1)])
    rd.expect("the centre guess finds the target in fewer than a quarter of the images, and the brightest cell "
              "lands on a distractor more than half the time",
              max(p[("centre", 0)] + p[("centre", 1)]) < 0.25 and min(d[("bright", 0)] + d[("bright", 1)]) > 0.5,
              centre=[p[("centre", i)] for i in (0, 1)], bright_distractor=[d[("bright", i)] for i in (0, 1)])
    gates = {i: [x for g in ("bam", "cbam") for x in r[(g, i)]] for i in (0, 1)}
    rd.expect("the brightness map, which learns nothing, has an inside / outside ratio as high as the gates': at the "
              "end of stage 1 higher than either gate's in every seed, at the end of stage 2 within the range of theirs",
              all(b > max(x, y) for b, x, y in zip(r[("bright", 0)], r[("bam", 0)], r[("cbam", 0)]))
              and all(min(gates[1]) <= b <= max(gates[1]) for b in r[("bright", 1)]),
              bright=[r[("bright", i)] for i in (0, 1)], gates=gates)
    rd.expect("what tells the gates from saliency is the peak: the brightest cell lies on the target in fewer than "
              "4 images in 10, at both places and in every seed", max(p[("bright", 0)] + p[("bright", 1)]) < 0.4,
              bright=[p[("bright", i)] for i in (0, 1)])
    rd.expect("BAM's factor 1 + M(F) has a smaller inside / outside ratio than its gate, between 1 and 1.5",
              all(1 < f < min(1.5, g) for i in (0, 1) for f, g in zip(scores.factor[i], r[("bam", i)])),
              factor=scores.factor, gate=[r[("bam", i)] for i in (0, 1)])
    rd.expect("none of BAM's maps saturates: no seed has more than 1% of its maps above 0.8 almost everywhere",
              max(scores.saturated[0] + scores.saturated[1]) <= 0.01, saturated=scores.saturated)
    rd.expect("with the product, the channel mean of the gate is nearly flat: inside and outside the box within "
              "10% of each other, at both places, in every seed",
              all(0.9 <= x <= 1.1 for x in r[("product", 0)] + r[("product", 1)]),
              product=[r[("product", i)] for i in (0, 1)])
    rd.expect("and below the sum's ratio at the end of stage 2 in every seed",
              all(s_ > p_ for s_, p_ in zip(r[("bam", 1)], r[("product", 1)])),
              sum=r[("bam", 1)], product=r[("product", 1)])
    rd.expect("its faint peak still falls on the target in at least 3 images in 4 at the end of stage 2, but in fewer "
              "than 6 in 10 at the end of stage 1, in every seed",
              min(p[("product", 1)]) >= 0.75 and max(p[("product", 0)]) < 0.6,
              product=[p[("product", i)] for i in (0, 1)])


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
    rd.expect("with the sum, M_s itself peaks on the target in most images of every seed, and -M_s almost never "
              "(in at most 5% of the images)", all(plus > 0.5 and minus <= 0.05 for plus, minus in total), peaks=total)
    rd.expect("with the product, each run settles on one sign for the target: -M_s in two seeds, M_s in the third, "
              "each in at least 85% of the images",
              sum(minus >= 0.85 for _, minus in product) == 2 and sum(plus >= 0.85 for plus, _ in product) == 1,
              peaks=product)


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
    """How closely each seed-0 network's gate at the end of stage 2 follows the redness of the photograph's
    cells: ``{key: correlation}`` for BAM (sum) and CBAM; prints one line."""
    photo = data.sample_photo(size=size)[None]
    out = {}
    for key in ("bam", "cbam"):
        model = runs[key][0].model
        m = model.gates(photo.to(_device(model)))[1].cpu()                    # (1, size/4, size/4)
        red = data.redness_maps(photo, *m.shape[1:])
        out[key] = torch.corrcoef(torch.stack([m.flatten(), red.flatten()]).double())[0, 1].item()
    print(t("ch06.photo.corr", bam=out["bam"], cbam=out["cbam"]))
    return out


def check_photo_readings(correlations: dict) -> None:
    """The sentence of §6 on the photograph."""
    rd.expect("both gates follow the photograph's redness only weakly: positive correlations below 0.5",
              all(0 < c < 0.5 for c in correlations.values()), corr=correlations)


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
    early, late = (m.cpu() for m in bam.gates(images.to(_device(bam))))
    c_early, c_late = (m.cpu() for m in cbam.gates(images.to(_device(cbam))))
    return {t("ch06.row.random"): random_net.gates(images)[1], t("ch06.row.early"): early,
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
    fig, axes = viz.page_grid(len(dilations), (2.9, 3.2), max_cols=2, extra=(0.8, 0.9))
    reaches = []
    for d in dilations:
        taps = torch.zeros(1, 1, h, w)
        taps[..., h // 2, w // 2] = 1.0
        kernel = torch.ones(1, 1, 3, 3)
        for _ in range(2):
            taps = nn.functional.conv2d(taps, kernel, padding=d, dilation=d)   # where the output reads
        reaches.append(taps[0, 0])                                             # (H, W)
    top = max(r.max().item() for r in reaches)                                 # one colour scale for both
    for ax, d, reach in zip(axes, dilations, reaches):
        cols = torch.nonzero(reach.sum(0)).flatten()
        span = int(cols.max() - cols.min() + 1)
        ax.imshow(gray.numpy(), cmap="gray")
        shown = np.ma.masked_where(reach.numpy() == 0, reach.numpy())
        im = ax.imshow(shown, cmap="autumn", alpha=0.8, vmin=1, vmax=top)
        ax.set_title(t("ch06.rf.panel", d=d, n=int((reach > 0).sum()), s=span), fontsize="medium")
        ax.set_xlabel(t("ch06.rf.x"))
        ax.set_ylabel(t("ch06.rf.y"))
    fig.colorbar(im, ax=axes, label=t("ch06.rf.taps"), shrink=0.8)       # beside both panels, not between
    fig.suptitle(t("ch06.rf.title"), wrap=True)
    return fig


def plot_block_diagram():
    """BAM where the paper puts it (top: one module at each boundary between stages) and inside (bottom): the
    channel and the spatial branch in parallel, their broadcast sum, the sigmoid, and the residual product."""
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 5.0))
    ax.set_xlim(0, 100), ax.set_ylim(0, 74), ax.axis("off")
    # the network: stem -> stage 1 -> BAM -> stage 2 -> BAM -> stage 3 -> pool, FC
    y = 64
    strip = [(6, t("ch06.diagram.stem"), 10), (20, t("ch06.diagram.stage", n=1), 11), (33, "BAM", 9),
             (46, t("ch06.diagram.stage", n=2), 11), (59, "BAM", 9), (72, t("ch06.diagram.stage", n=3), 11),
             (90, t("ch06.diagram.head"), 15)]
    for i, (x, text, w) in enumerate(strip):
        strong = text == "BAM"
        viz.diagram_box(ax, x, y, text, w, height=6.0, colour="#fde9c9" if strong else "#eef3fb",
                        edge="#c77c02" if strong else "#4a6fa5", fontweight="bold" if strong else "normal")
        if i:
            px, _, pw = strip[i - 1]
            viz.diagram_arrow(ax, (px + pw / 2 + 0.6, y), (x - w / 2 - 0.6, y))
    ax.text(46, y + 5.2, t("ch06.diagram.where"), ha="center", va="bottom")
    # inside BAM: the two branches from F, their sum, the sigmoid, the residual product
    ax.add_patch(Rectangle((1, 1), 98, 53, fill=False, ls="--", edgecolor="#c77c02", lw=1.0))
    ax.plot([28.5, 2], [60.4, 54], ls="--", color="#c77c02", lw=1.0)
    ax.plot([37.5, 98], [60.4, 54], ls="--", color="#c77c02", lw=1.0)
    mid, top, bottom = 25, 38, 12
    viz.diagram_box(ax, 5, mid, "$\\mathbf{F}$\nC×H×W", 7, height=9.0)
    rows = [(top, "ch06.diagram.channel", [(20, "ch06.diagram.pool", 12), (39, "ch06.diagram.mlp", 19),
                                          (63, "ch06.diagram.m_c", 9)]),
            (bottom, "ch06.diagram.spatial", [(20, "ch06.diagram.reduce", 12), (38, "ch06.diagram.dilated", 17),
                                              (53, "ch06.diagram.one", 8), (63, "ch06.diagram.m_s", 9)])]
    for y, title, boxes in rows:
        ax.text(13, y + 6.2, t(title), ha="left", va="bottom", fontweight="bold")
        viz.diagram_arrow(ax, (9, mid + (2.5 if y > mid else -2.5)), (boxes[0][0] - boxes[0][2] / 2 - 0.6, y))
        for i, (x, key, w) in enumerate(boxes):
            viz.diagram_box(ax, x, y, t(key), w, height=8.0)
            if i:
                px, _, pw = boxes[i - 1]
                viz.diagram_arrow(ax, (px + pw / 2 + 0.6, y), (x - w / 2 - 0.6, y))
        x, _, w = boxes[-1]
        viz.diagram_arrow(ax, (x + w / 2 + 0.6, y), (71, mid + (2.8 if y > mid else -2.8)))
    viz.diagram_box(ax, 73, mid, t("ch06.diagram.sum"), 5, height=6.0)
    viz.diagram_box(ax, 81, mid, "σ", 4, height=6.0)
    viz.diagram_arrow(ax, (76.2, mid), (78.5, mid))
    viz.diagram_box(ax, 92, mid, t("ch06.diagram.out"), 12, height=9.0, colour="#fde9c9", edge="#c77c02")
    viz.diagram_arrow(ax, (83.7, mid), (85.4, mid))
    ax.plot([5, 5, 92], [mid + 5.2, 50, 50], color="#333333", lw=1.0)          # F itself goes to the output
    viz.diagram_arrow(ax, (92, 50), (92, mid + 5.2))
    ax.text(47, 50.6, t("ch06.diagram.identity"), ha="center", va="bottom")
    ax.text(81, mid - 5.5, "$\\mathbf{M}(\\mathbf{F})$\nC×H×W", ha="center", va="top")
    ax.set_title(t("ch06.diagram.title"))
    fig.tight_layout()
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
            if i == 0:                                     # two short lines: three titles side by side fit
                ax.set_title(t("ch06.fusion.channel", c=c, v=m_c[c].item()), fontsize="medium")
            if j == 0:
                ax.set_ylabel(t(key))
    fig.supxlabel(t("ch06.fusion.x"))                      # one label for the three columns
    fig.colorbar(im, ax=axes.ravel().tolist(), label=t("ch06.fusion.value"), shrink=0.85)
    fig.suptitle(t("ch06.fusion.title"), wrap=True)
    return fig


@one_thread()
@torch.no_grad()
def plot_photo_maps(models: dict, size: int = 96):
    """Each trained network's gate at the end of stage 2 (:meth:`StagedNet.gates`), over the sample photograph,
    side by side: ``{name: StagedNet}`` (each panel with its own colour bar)."""
    photo = data.sample_photo(size=size)
    fig, axes = viz.page_grid(len(models), (5.2, 3.4), max_cols=1, extra=(0.2, 0.3))
    for ax, (name, model) in zip(axes, models.items()):
        m = model.gates(photo[None].to(_device(model)))[1][0].cpu()                    # (size/4, size/4)
        viz.plot_spatial_map(m, photo, ax=ax, title=t("ch06.photo.title", name=name, h=m.shape[0], w=m.shape[1]))
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


@exercise("bam.params", forbid=("count_parameters",))
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
