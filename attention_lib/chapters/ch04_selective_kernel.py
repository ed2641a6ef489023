"""Chapter 04 · Selective Kernel: the chapter's strings, figures, experiments, exercises, explorer and demos.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch04_selective_kernel as ch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn

from ..registry import MECHANISMS
from ..selective_kernel import SelectiveKernel
from ..toolkit import data, figures, viewer, viz
from ..toolkit import readings as rd
from ..toolkit.exercises import as_count, as_function, as_shape, call, case, exercise, expect_close
from ..toolkit.i18n import register, t
from ..toolkit.train import DemoConfig, one_thread
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer, yes_no
from .ch03_squeeze_excitation import trained_runs  # noqa: F401  (the notebook's ch.trained_runs)

register({
    "ch04.explorer.kernel_sizes": {"en": "branch kernels", "zh": "分支卷积核"},
    "ch04.explorer.dilated": {"en": "dilated 3 × 3 for k > 3", "zh": "k > 3 时改用 3 × 3 空洞卷积"},
    "ch04.explorer.min_dim": {"en": "smallest width L", "zh": "最小宽度 L"},
    "ch04.explorer.d_note": {"en": "The squeeze width is d = max(C / r, L): with C = 64 and the paper's L = 32, every "
                                   "r ≥ 2 gives d = 32, so r changes nothing until L is smaller.",
                             "zh": "压缩后的宽度 d = max(C / r, L)：C = 64 且取论文的 L = 32 时，任何 r ≥ 2 都得到 d = 32，"
                                   "所以只有 L 更小时 r 才起作用。"},
    # §1
    "ch04.windows.title": {"en": "The same face, twice as large: which window covers it?",
                           "zh": "同一张脸放大一倍：哪个窗口能盖住它？"},
    "ch04.windows.zoom": {"en": "{zoom}× (window of one output at stride {stride})",
                          "zh": "{zoom}×（步幅为 {stride} 时单个输出的窗口）"},
    "ch04.windows.small": {"en": "3 × 3 kernel", "zh": "3 × 3 卷积核"},
    "ch04.windows.large": {"en": "5 × 5 kernel", "zh": "5 × 5 卷积核"},
    "ch04.pixels": {"en": "pixels", "zh": "像素"},
    # §2: receptive fields
    "ch04.rf.title": {"en": "Which input pixels one output pixel depends on (|gradient|)",
                      "zh": "一个输出像素依赖哪些输入像素（梯度绝对值）"},
    "ch04.rf.dense3": {"en": "3 × 3", "zh": "3 × 3"},
    "ch04.rf.dilated": {"en": "3 × 3, dilation 2", "zh": "3 × 3，空洞率 2"},
    "ch04.rf.dense5": {"en": "true 5 × 5", "zh": "真正的 5 × 5"},
    "ch04.rf.caption": {"en": "{taps} weights, span {span} × {span}", "zh": "{taps} 个权重，覆盖 {span} × {span}"},
    "ch04.rf.colorbar": {"en": "|∂y / ∂x| (scaled to 1)", "zh": "|∂y / ∂x|（最大值缩放为 1）"},
    "ch04.rf.x": {"en": "input column", "zh": "输入列"},
    "ch04.rf.y": {"en": "input row", "zh": "输入行"},
    "ch04.rf.params": {"en": "a 5 × 5 branch at C = {C}: {dilated} weights as a dilated 3 × 3, {dense} as a true 5 × 5 "
                             "({ratio:.0%})",
                       "zh": "C = {C} 时的 5 × 5 分支：用 3 × 3 空洞卷积 {dilated} 个权重，用真正的 5 × 5 {dense} 个"
                             "（{ratio:.0%}）"},
    # §3, §5
    "ch04.check": {"en": "V equal: {v}; selection weights equal: {a}; they sum to 1 over the branches: {one}",
                   "zh": "V 一致：{v}；选择权重一致：{a}；对各分支求和等于 1：{one}"},
    "ch04.counts": {"en": "parameters: {params} (formula {params_formula}); FLOPs: {flops} (formula {flops_formula})",
                    "zh": "参数量：{params}（公式 {params_formula}）；浮点运算次数：{flops}（公式 {flops_formula}）"},
    "ch04.branch_share": {"en": "share of the branches: {params:.1%} of the parameters, {flops:.1%} of the FLOPs",
                          "zh": "分支所占比例：参数量的 {params:.1%}，浮点运算次数的 {flops:.1%}"},
    "ch04.groups": {"en": "groups G = {G:>3}: {params:>7,} parameters, {flops:>11,} FLOPs per sample",
                    "zh": "分组数 G = {G:>3}：参数量 {params:>7,}，每个样本的浮点运算次数 {flops:>11,}"},
    "ch04.speed": {"en": "forward (folded BN, channels_last): {fast}; forward_explicit: {slow}; ratio {ratio:.2f}",
                   "zh": "forward（折叠批量归一化、channels_last）：{fast}；forward_explicit：{slow}；比值 {ratio:.2f}"},
    # §6
    "ch04.random_vs_trained": {"en": "{which}: selection weights of the 5 × 5 branch from {low:.3f} to {high:.3f}",
                               "zh": "{which}：5 × 5 分支的选择权重从 {low:.3f} 到 {high:.3f}"},
    "ch04.trained": {"en": "trained", "zh": "训练后"},
    "ch04.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch04.block.sk": {"en": "SK (3 × 3 and 5 × 5, selected)", "zh": "SK（3 × 3 与 5 × 5，按权重选择）"},
    "ch04.block.mean": {"en": "3 × 3 and 5 × 5, averaged", "zh": "3 × 3 与 5 × 5，取平均"},
    "ch04.block.single": {"en": "one 3 × 3 branch", "zh": "单个 3 × 3 分支"},
    "ch04.accuracy": {"en": "{label:>26}: accuracy {seeds}; parameters of the two units {params:,}",
                      "zh": "{label}：准确率 {seeds}；两个单元的参数量 {params:,}"},
    "ch04.accuracy.title": {"en": "One dot per seed (bars: mean ± sd)", "zh": "每个点是一个随机种子（误差棒：均值 ± 标准差）"},
    "ch04.paired": {"en": "SK minus '{label}', seed by seed (seeds {seeds}): {change}",
                    "zh": "SK 减去“{label}”，逐个随机种子（随机种子 {seeds}）：{change}"},
    "ch04.units": {"en": "each unit: C = {C} channels, M = 2 branches, G = 1 group, d = max(C/16, {L}) = {d}",
                   "zh": "每个单元：C = {C} 个通道，M = 2 个分支，G = 1 组，d = max(C/16, {L}) = {d}"},
    "ch04.scales.title": {"en": "The same scenes, the target drawn at five sizes",
                          "zh": "同一批场景，目标画成五种大小"},
    "ch04.scales.radius": {"en": "half-size {r} px", "zh": "半边长 {r} 像素"},
    "ch04.centre": {"en": "the middle of the target's box moves by {mean:.1f} px on average between half-size {r0} and "
                          "{r1} ({high:.1f} px at most)",
                    "zh": "半边长从 {r0} 变到 {r1} 时，目标框的中心平均移动 {mean:.1f} 像素（最多 {high:.1f} 像素）"},
    "ch04.response.title": {"en": "Does each SK unit pick the larger kernel for larger objects?",
                            "zh": "每个 SK 单元会给更大的目标选更大的卷积核吗？"},
    "ch04.response.unit": {"en": "unit at stride {stride}", "zh": "步幅 {stride} 的单元"},
    "ch04.response.x": {"en": "half-size of the target shape (pixels)", "zh": "目标形状的半边长（像素）"},
    "ch04.response.y": {"en": "mean weight of 5 × 5 minus 3 × 3", "zh": "5 × 5 与 3 × 3 的平均权重之差"},
    "ch04.response.seeds": {"en": "one line per seed ({n})", "zh": "每条细线一个随机种子（共 {n} 个）"},
    "ch04.response.mean": {"en": "mean over seeds", "zh": "各随机种子的均值"},
    "ch04.response.line": {"en": "stride-{stride} unit, change from half-size {r0} to {r1}: {change}; up in {up} of {n} "
                                 "seeds; channels that rise: {rise:.0%}",
                           "zh": "步幅 {stride} 的单元，半边长从 {r0} 到 {r1} 的变化：{change}；{n} 个随机种子中 {up} 个上升；"
                                 "上升的通道占 {rise:.0%}"},
    "ch04.response.untrained": {"en": "the same networks untrained (stride 2, stride 4): {change}",
                                "zh": "同样的网络未经训练时（步幅 2、步幅 4）：{change}"},
    "ch04.response.acc": {"en": "accuracy by half-size {radii}: {accs}", "zh": "按半边长 {radii} 的准确率：{accs}"},
    "ch04.gallery.title": {"en": "Selection weights per channel: small targets (top rows), large targets (bottom)",
                           "zh": "各通道的选择权重：小目标（上面几行）与大目标（下面几行）"},
    "ch04.gallery.label": {"en": "half-size {r} px", "zh": "半边长 {r} 像素"},
    "ch04.branch.small": {"en": "3×3", "zh": "3×3"},
    "ch04.branch.large": {"en": "5×5 (dilated 3×3)", "zh": "5×5（3×3 空洞卷积）"},
    "ch04.photo_title": {"en": "Selection weights of the trained block on a photograph",
                         "zh": "训练后的模块在照片上的选择权重"},
    # §7, §8
    "ch04.block_share": {"en": "output {shape}; the SK convolution holds {params:,} parameters, {share:.1%} of the "
                               "block's",
                         "zh": "输出形状 {shape}；SK 卷积有 {params:,} 个参数，占该残差块参数量的 {share:.1%}"},
    "ch04.plain_list": {"en": "parameters: {registered:,} registered, {missing:,} in the plain list (never trained, "
                              "never saved, never moved to the GPU)",
                        "zh": "参数量：已注册 {registered:,} 个，普通列表里还有 {missing:,} 个（不会被训练、不会被保存、"
                              "也不会随模型移到 GPU）"},
    "ch04.wrong_axis": {"en": "softmax over dim={dim}: sums over the branches range from {low:.3f} to {high:.3f}",
                        "zh": "在 dim={dim} 上做 softmax：对各分支求和的结果从 {low:.3f} 到 {high:.3f}"},
    "ch04.collapse": {"en": "fuse without BatchNorm and ReLU: A·W is one {rows} × {cols} matrix of rank {rank}; "
                            "same logits: {same}",
                      "zh": "融合时去掉批量归一化和 ReLU：A·W 就是一个秩为 {rank} 的 {rows} × {cols} 矩阵；"
                            "选择层输出的分数相同：{same}"},
    # exercise verdicts
    "ex.sk.shape.flat": {"en": "attention_map keeps two singleton axes so that the weights broadcast over H and W.",
                         "zh": "attention_map 保留了两个长度为 1 的轴，权重才能在 H 和 W 上广播。"},
    "ex.sk.shape.order": {"en": "the branch axis comes before the channel axis: (B, M, C, 1, 1).",
                          "zh": "分支维度在通道维度之前：(B, M, C, 1, 1)。"},
    "ex.sk.shape.no_branch": {"en": "SK has one weight per branch AND per channel: the branch axis is missing.",
                              "zh": "SK 对每个分支、每个通道各有一个权重：缺了分支这一维。"},
    "ex.sk.shape.other": {"en": "batch, branches, channels, then two singleton axes.",
                          "zh": "依次是批量、分支、通道，再加两个长度为 1 的轴。"},
    "ex.sk.params.dense": {"en": "that counts a true 5 × 5 kernel (25 weights); the 5 × 5 branch is a dilated 3 × 3.",
                           "zh": "这是按真正的 5 × 5 卷积核（25 个权重）算的；5 × 5 分支其实是 3 × 3 空洞卷积。"},
    "ex.sk.params.no_bn": {"en": "each branch also has a BatchNorm with 2C parameters.",
                           "zh": "每个分支还有一个批量归一化层，含 2C 个参数。"},
    "ex.sk.params.small_d": {"en": "d = max(C/r, L) with L = 32, not C/r = 4.",
                             "zh": "d = max(C/r, L)，其中 L = 32，而不是 C/r = 4。"},
    "ex.sk.params.no_fuse_bn": {"en": "the fuse layer's BatchNorm1d adds 2d parameters.",
                                "zh": "融合层的批量归一化层（`BatchNorm1d`）还有 2d 个参数。"},
    "ex.sk.params.other": {"en": "count every layer of §5's breakdown, the branch convolutions with their BatchNorms, "
                                 "the fuse layer and the select layer, with C = 64 and d = max(C/r, L).",
                           "zh": "按 §5 的分解把每一层都数一遍：各分支的卷积及其批量归一化层、融合层和选择层，"
                                 "其中 C = 64，d = max(C/r, L)。"},
    "ex.sk.select.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: does a "
                                  ".squeeze() remove the batch axis too?",
                            "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.sk.select.branches": {"en": "It passed the first test, with 2 branches; this one differs only in the number of "
                                    "branches, M = {M}: is M fixed in your code? Read it off the list (len(feats)).",
                              "zh": "两个分支的第一组测试通过了；这一组只是把分支数换成了 M = {M}：代码里是不是写死了 M？"
                                    "请从列表读取（len(feats)）。"},
    "ex.sk.select.channel_axis": {"en": "the softmax must run across the M branches (dim=1 of (B, M, C)), not across "
                                        "the channels.",
                                  "zh": "softmax 应在 M 个分支之间进行（(B, M, C) 的 dim=1），而不是在通道之间。"},
    "ex.sk.select.sigmoid": {"en": "a sigmoid per branch does not make the branches compete: use a softmax across "
                                   "them.",
                             "zh": "每个分支各做 sigmoid，分支之间就不竞争了：应在分支之间做 softmax。"},
    "ex.sk.select.order": {"en": "the logits hold the M blocks of C one after the other: view them as (B, M, C), "
                                 "not (B, C, M).",
                           "zh": "参数 logits 是 M 段、每段 C 个依次排列："
                                 "应变形为 (B, M, C)，而不是 (B, C, M)。"},
    "ex.sk.select.mean": {"en": "the branches are weighted by the selection weights, not averaged.",
                          "zh": "各分支要按选择权重加权，而不是简单平均。"},
    "ex.sk.select.other": {"en": "the values differ from V = Σ_m a_m ⊙ U_m of §2: check which scores belong to which "
                                 "branch and channel, and what the weights of one channel add up to.",
                           "zh": "结果与 §2 的 V = Σ_m a_m ⊙ U_m 不一致：请检查哪些分数属于哪个分支、哪个通道，"
                                 "以及同一个通道的各分支权重加起来应当是多少。"},
})

#: The kernel sizes and branch names of this chapter's SK blocks.
KERNELS = (3, 5)
#: The target sizes of the scale experiment (half-sizes in pixels).
RADII = (2, 4, 6, 8, 10)
#: Seeds of every version of the network (the scale experiment reads SK's; the accuracy comparison pairs the
#: three versions seed by seed). Seeds 0-2 alone showed SK ahead of both baselines in each; eight show no gain.
SEEDS = tuple(range(8))
#: The units of the network, by depth: the stride of the feature map each one sees.
UNIT_STRIDES = (2, 4)


# ---------------------------------------------------------------- the network of the experiment

class BranchMean(nn.Module):
    """SK's split without fuse and select: the branches' outputs averaged with fixed, equal weights.

    ``BranchMean(C, (3, 5))`` is the paper's "without SK attention" (two kernels, no selection);
    ``BranchMean(C, (3,))`` is a single conv-BN-ReLU branch. The branches are SK's own (``_branch``)."""

    def __init__(self, channels: int, kernel_sizes: Sequence[int] = KERNELS, dilated: bool = True):
        super().__init__()
        self.kernel_sizes = tuple(kernel_sizes)
        self.branches = nn.ModuleList(SelectiveKernel._branch(channels, k, 1, dilated) for k in self.kernel_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches) / len(self.branches)      # (B, C, H, W)


def _unit(block: str, channels: int, min_dim: int) -> nn.Module:
    if block == "sk":
        return SelectiveKernel(channels, KERNELS, min_dim=min_dim)      # d = max(C/16, L)
    if block in ("mean", "single"):
        return BranchMean(channels, KERNELS if block == "mean" else (3,))
    raise ValueError(f"TinySKNet: block must be 'sk', 'mean' or 'single', got {block!r}")


class TinySKNet(nn.Module):
    """SKNet in miniature: a 3x3 stem at stride 2, a 1x1 convolution to ``2 width`` channels, then the block in
    place of every further 3x3 convolution, one unit at stride 2 and one at stride 4 (after a 2x2 max pool),
    average pool, linear. ``block``: ``"sk"`` (3x3 and dilated 3x3, selected), ``"mean"`` (the same two branches
    averaged: SK without the selection) or ``"single"`` (one 3x3 branch). No residual connections, ``G = 1``.

    The whole network runs in channels_last memory format, the format in which SK runs its branches (§4): a
    network that mixed formats would copy every feature map at every unit, and trained twice as slowly here."""

    def __init__(self, block: str = "sk", width: int = 8, min_dim: int = 32, num_classes: int = 4):
        super().__init__()
        c = 2 * width
        self.block = block
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())                                        # (B, w, H/2, W/2)
        self.reduce = nn.Sequential(nn.Conv2d(width, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.units = nn.ModuleList([_unit(block, c, min_dim), _unit(block, c, min_dim)])
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TinySKNet expects images of shape (B, 3, H, W), got {got}")
        return x.contiguous(memory_format=torch.channels_last)   # (B, 3, H, W), NHWC in memory

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        h = self.units[0](self.reduce(self.stem(x)))          # (B, 2w, H/2, W/2): the stride-2 unit
        h = self.units[1](self.pool(h))                       # (B, 2w, H/4, W/4): the stride-4 unit
        return self.head(h)                                   # (B, num_classes)

    def attention_maps(self, x: torch.Tensor) -> list:
        """The selection weights of each unit, ``(B, M, C, 1, 1)``, stride-2 unit first (call in eval mode)."""
        return self.logits_and_maps(x)[1]

    def logits_and_maps(self, x: torch.Tensor) -> tuple:
        """The logits ``(B, num_classes)`` and :meth:`attention_maps`, from one pass through the network."""
        if self.block != "sk":
            raise ValueError(f"TinySKNet(block={self.block!r}) has no selection weights: only block='sk' does")
        x = self._check(x)
        h = self.reduce(self.stem(x))                         # (B, 2w, H/2, W/2)
        first = self.units[0].attention_map(h)                # (B, M, 2w, 1, 1)
        h = self.pool(self.units[0](h))                       # (B, 2w, H/4, W/4)
        second = self.units[1].attention_map(h)
        return self.head(self.units[1](h)), [first, second]


@dataclass(frozen=True)
class ScalesSKNet(DemoConfig):
    """:class:`TinySKNet` on shapes whose size varies widely (half-size 2 to 10 pixels on 32 x 32 images)."""
    kind: ClassVar[str] = "ch04_scales_sknet"
    block: str = "sk"                # "sk": SelectiveKernel(3, 5) in both units; "mean": branches averaged; "single"
    width: int = 8                   # stem channels; the units see 2 * width = 16
    min_dim: int = 32                # SK's L: d = max(C/16, L) = 32 > C = 16, a widening (§6 says so; exercise 4: L = 4)
    min_radius: float = 2.0          # smallest half-size of the target shape, in pixels
    max_radius: float = 10.0         # largest (the images are 32 x 32)
    n_train: int = 800               # training images
    n_val: int = 400                 # held-out images
    epochs: int = 8
    lr: float = 0.02                 # peak of the one-cycle schedule
    batch_size: int = 64             # 100 steps in all: the fourteen networks of §6 train within the minute

    def build(self) -> nn.Module:
        return TinySKNet(self.block, self.width, self.min_dim)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return data.shapes_dataset(n, seed=self._split_seed(split), min_radius=self.min_radius,
                                   max_radius=self.max_radius)      # made once per process (data's memo)


SK_DEMO = ScalesSKNet()


def block_parameters(model: TinySKNet) -> int:
    """Parameters of the two units (the blocks the experiment swaps)."""
    return sum(p.numel() for p in model.units.parameters())


def scale_sets(radii: Sequence[float] = RADII, n: int = 200, seed: int = 20_000) -> dict:
    """The same ``n`` scenes for every half-size in ``radii``: only the target's size changes (its centre moves
    a little, so that the larger target stays inside the image: :func:`centre_shift`)."""
    with one_thread():
        return {r: data.shapes_dataset(n, seed=seed, min_radius=float(r), max_radius=float(r)) for r in radii}


def centre_shift(sets: dict) -> tuple[float, float]:
    """How far the target's centre moves between the smallest and the largest size: mean and largest, in pixels."""
    small, large = sets[min(sets)].boxes.float(), sets[max(sets)].boxes.float()
    centre = lambda b: torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)     # (n, 2)
    d = (centre(large) - centre(small)).norm(dim=1)
    return d.mean().item(), d.max().item()


@torch.no_grad()
def scale_response(model: TinySKNet, sets: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """For each unit and size, every channel's mean over the images of a(5×5) − a(3×3), ``(units, sizes, C)``,
    and the accuracy per size, ``(sizes,)``."""
    model = model.cpu().eval()
    with one_thread():
        return _scale_response(model, sets)


def _scale_response(model: TinySKNet, sets: dict) -> tuple[torch.Tensor, torch.Tensor]:
    diffs, accs = [], []
    for d in sets.values():
        logits, maps = model.logits_and_maps(d.images)                     # (n, K), units x (n, M, C, 1, 1)
        diffs.append(torch.stack([(a[:, -1] - a[:, 0])[..., 0, 0].mean(0) for a in maps]))    # (units, C)
        accs.append((logits.argmax(1) == d.labels).float().mean())
    return torch.stack(diffs, 1), torch.stack(accs)


def scale_changes(diffs: torch.Tensor) -> torch.Tensor:
    """Per-seed change from the smallest to the largest size of the channel-mean difference, ``(seeds, units)``,
    from per-seed :func:`scale_response` differences ``(seeds, units, sizes, C)``."""
    d = diffs.mean(-1)                                                     # (seeds, units, sizes)
    return d[..., -1] - d[..., 0]


def accuracy_lines(runs: dict, accs: dict) -> list:
    """The printed accuracies of §6: one line per block, then SK minus each baseline, seed by seed."""
    lines = [t("ch04.accuracy", label=t(f"ch04.block.{b}"), seeds=a, params=block_parameters(runs[b][0].model))
             for b, a in accs.items()]
    for b in ("mean", "single"):
        n = accs[b].n
        change = rd.paired(accs["sk"].values[:n], accs[b].values)
        lines.append(t("ch04.paired", label=t(f"ch04.block.{b}"), seeds=f"0–{n - 1}",
                       change=change.format(signed=True)))
    return lines


def channel_rises(diffs: torch.Tensor) -> torch.Tensor:
    """Per unit, the share of (seed, channel) pairs whose a(5×5) − a(3×3) is larger at the largest size than at the
    smallest, from ``diffs`` (seeds, units, sizes, C)."""
    return (diffs[..., -1, :] > diffs[..., 0, :]).float().mean((0, 2))      # (units,)


def scale_lines(diffs: torch.Tensor, untrained_diffs: torch.Tensor, size_acc: torch.Tensor) -> list:
    """The printed results of the scale experiment: per unit the per-seed changes, how many rise and the share of
    channels that rise; the same changes for the untrained networks; the accuracy per size."""
    changes, rises = scale_changes(diffs), channel_rises(diffs)
    lines = []
    for u, stride in enumerate(UNIT_STRIDES):
        change = rd.seeds(changes[:, u].tolist())
        lines.append(t("ch04.response.line", stride=stride, r0=RADII[0], r1=RADII[-1], change=change.format(
            signed=True), up=change.positive, n=change.n, rise=float(rises[u])))
    before = scale_changes(untrained_diffs)
    lines.append(t("ch04.response.untrained", change="; ".join(
        rd.seeds(before[:, u].tolist()).format(signed=True) for u in range(len(UNIT_STRIDES)))))
    lines.append(t("ch04.response.acc", radii=list(RADII), accs=", ".join(f"{a:.3f}" for a in size_acc.mean(0))))
    return lines


def plot_accuracies(accs: dict):
    """Validation accuracy of each block, one dot per seed (``accs``: ``{block: rd.Seeds}``)."""
    return figures.plot_seed_spread({t("figures.accuracy.y"): {t(f"ch04.block.{b}"): a.values for b, a in accs.items()}},
                                    title=t("ch04.accuracy.title"))


def check_selection_readings(trained: torch.Tensor, random: torch.Tensor) -> None:
    """The sentence after the random-against-trained cell: selection weights ``(n, M, C)`` of the stride-2 unit."""
    rd.expect("the untrained unit keeps every weight close to one half (within 0.05)",
              float((random - 0.5).abs().max()) <= 0.05, low=float(random.min()), high=float(random.max()))
    rd.expect("training moves them far from it (some below 0.1, some above 0.9)",
              float(trained.min()) < 0.1 and float(trained.max()) > 0.9, low=float(trained.min()),
              high=float(trained.max()))


#: A per-seed difference of at most this many validation images is a tie, not a win or a loss.
TIE_IMAGES = 2


def tie_margin(n_val: int = SK_DEMO.n_val) -> float:
    """The accuracy difference below which two versions tie: ``TIE_IMAGES`` images of ``n_val``, plus half an image
    so that a difference of exactly two images (0.005 of 400, a float) falls inside."""
    return (TIE_IMAGES + 0.5) / n_val


def check_accuracy_readings(accs: dict, n_val: int = SK_DEMO.n_val) -> None:
    """The sentences of §6 that read the accuracies (``accs``: ``{block: rd.Seeds}``, the same seeds for the
    three blocks). A seed is a win or a loss only beyond :func:`tie_margin`: against the averaged branches SK tied
    in five seeds and was ahead in two (by about 1 and 4 points); against a single branch it was ahead by 1 to 2
    points in six and tied in one; in the remaining seed it fell more than ten points behind both; on average it
    was no better than either; on seeds 0 to 2 alone it looked ahead of both, two of those leads being ties."""
    sk, margin = accs["sk"], tie_margin(n_val)
    changes = {name: rd.paired(sk.values[:accs[name].n], accs[name].values) for name in ("mean", "single")}
    ahead = {name: sorted(v for v in c.values if v > margin) for name, c in changes.items()}
    ties = {name: sum(abs(v) <= margin for v in c.values) for name, c in changes.items()}
    behind = {name: [i for i, v in enumerate(c.values) if v < -margin] for name, c in changes.items()}
    mean, single = changes["mean"], changes["single"]
    rd.expect("against the averaged branches SK tied (within two validation images) in five seeds and was ahead in "
              "two, by about 1 and 4 points", ties["mean"] == 5 and len(ahead["mean"]) == 2
              and 0.0075 <= ahead["mean"][0] < 0.015 and 0.035 <= ahead["mean"][1] < 0.045, mean=mean,
              margin=margin)
    rd.expect("against a single 3×3 branch SK was ahead by 1 to 2 points in six seeds and tied in one",
              len(ahead["single"]) == 6 and all(0.0075 <= v < 0.025 for v in ahead["single"])
              and ties["single"] == 1, single=single, margin=margin)
    rd.expect("in the remaining seed SK fell more than ten points behind both baselines",
              behind["mean"] == behind["single"] and len(behind["mean"]) == 1
              and mean.values[behind["mean"][0]] < -0.1 and single.values[behind["mean"][0]] < -0.1,
              mean=mean, single=single)
    for name, change in changes.items():
        rd.expect(f"on average SK was no better than '{name}': the mean difference is less than a point from zero "
                  f"and smaller than the spread of the differences", abs(change.mean) < 0.01 and change.sd > 0.03,
                  change=change)
    rd.expect("on seeds 0 to 2 alone SK looked ahead of both baselines in every seed, but two of its three leads "
              "over the averaged branches are ties", all(v > 0 for c in changes.values() for v in c.values[:3])
              and sum(abs(v) <= margin for v in mean.values[:3]) == 2, mean=mean, single=single)


def check_scale_readings(changes: torch.Tensor, random_changes: torch.Tensor, rises: torch.Tensor,
                         size_acc: torch.Tensor) -> None:
    """The sentences of §6 that read the scale experiment: ``changes`` and ``random_changes`` ``(seeds, units)``
    (trained, untrained), ``rises`` the share of channels whose difference grows, per unit, ``size_acc`` the
    accuracy per size ``(seeds, sizes)``."""
    first, second = rd.seeds(changes[:, 0].tolist()), rd.seeds(changes[:, 1].tolist())
    rd.expect("in the stride-2 unit the 5×5 branch gains weight as the target grows, in every seed",
              first.positive == first.n, first=first)
    rd.expect("... by about 0.3 on average (0.2 to 0.45)", 0.2 <= first.mean <= 0.45, first=first)
    rd.expect("in the stride-4 unit it gains in most seeds (at least 70%), by less on average",
              second.positive >= 0.7 * second.n and second.mean < first.mean, second=second, first=first)
    rd.expect("most channels of the stride-2 unit follow (more than half rise)", float(rises[0]) > 0.5,
              rises=rises.tolist())
    untrained = rd.seeds(random_changes.flatten().tolist())
    rd.expect("untrained networks show no such shift (every change within 0.02 of zero)",
              max(abs(untrained.low), abs(untrained.high)) <= 0.02, untrained=untrained)
    acc = size_acc.mean(0)
    rd.expect("the smallest targets are the ones the networks mostly miss (accuracy below 0.6, the others above 0.8)",
              float(acc[0]) < 0.6 and float(acc[1:].min()) > 0.8, acc=acc.tolist())


# ---------------------------------------------------------------- figures

def _square(ax, cx: float, cy: float, side: float, colour: str, label: Optional[str] = None) -> None:
    ax.add_patch(Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, lw=2, ec=colour, label=label))


def plot_windows(photo: torch.Tensor, stride: int = 8, centre=(0.5, 0.36)):
    """The photo at 1× and 2× (centre crop enlarged) with the input windows of a 3×3 and a 5×5 kernel
    applied to a feature map of the given stride, drawn at the same place."""
    photo = torch.as_tensor(photo).detach().cpu().float()
    if photo.dim() != 3 or photo.shape[0] != 3:
        raise ValueError(f"plot_windows expects a (3, H, W) image, got {tuple(photo.shape)}")
    h, w = photo.shape[1:]
    zoomed = nn.functional.interpolate(photo[None, :, h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2],
                                       size=(h, w), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    fig, axes = viz.page_grid(2, (3.2, 3.4), max_cols=2, extra=(0.2, 1.0))
    for ax, img, zoom, (cx, cy) in zip(axes, (photo, zoomed), (1, 2),
                                       ((centre[0] * w, centre[1] * h),
                                        ((centre[0] - 0.25) * 2 * w, (centre[1] - 0.25) * 2 * h))):
        ax.imshow(img.permute(1, 2, 0).numpy())
        _square(ax, cx, cy, 3 * stride, "#00e5ff", t("ch04.windows.small"))
        _square(ax, cx, cy, 5 * stride, "#ff4081", t("ch04.windows.large"))
        ax.set_title(t("ch04.windows.zoom", zoom=zoom, stride=stride), fontsize="medium", wrap=True)
        ax.set_xlabel(t("ch04.pixels"))
        ax.set_ylabel(t("ch04.pixels"))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle(t("ch04.windows.title"), wrap=True)
    return fig


def receptive_field(conv: nn.Module, size: int = 11) -> torch.Tensor:
    """``|∂ y(centre) / ∂ x|`` of a module mapping (1, C, size, size) to the same size, summed over the input
    channels and the output channels, scaled to a maximum of 1: the pixels one output pixel depends on."""
    first = next(m for m in conv.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(1, first.in_channels, size, size, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    was_training = conv.training
    conv.eval()
    with torch.enable_grad():
        y = conv(x)                                                        # (1, C, size, size)
        y[0, :, size // 2, size // 2].abs().sum().backward()
    conv.train(was_training)
    g = x.grad[0].abs().sum(0)                                             # (size, size)
    return g / g.max()


def plot_receptive_fields(fields: Sequence[torch.Tensor], names: Sequence[str], taps: Sequence[int]):
    """One heat map per receptive field (from :func:`receptive_field`), each named and captioned."""
    fig, axes = viz.page_grid(len(fields), (2.5, 3.2), max_cols=2, extra=(1.2, 0.6))
    for ax, f, name, n in zip(axes, fields, names, taps):
        im = ax.imshow(torch.as_tensor(f).numpy(), cmap="magma", vmin=0, vmax=1)
        cols = torch.nonzero((torch.as_tensor(f) > 0).any(0))[:, 0]
        span = int(cols.max() - cols.min() + 1) if len(cols) else 0          # extent, holes included
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(t("ch04.rf.x") + "\n" + t("ch04.rf.caption", taps=n, span=span))
        ax.set_ylabel(t("ch04.rf.y"))
        ax.set_xticks(range(0, f.shape[1], 2)), ax.set_yticks(range(0, f.shape[0], 2))
    fig.colorbar(im, ax=list(axes), label=t("ch04.rf.colorbar"), shrink=0.85)
    fig.suptitle(t("ch04.rf.title"))
    return fig


def plot_scale_examples(sets: dict, index: int = 0):
    """Image ``index`` of every set of :func:`scale_sets`: the same scene at each target size."""
    fig, axes = viz.page_grid(len(sets), (1.6, 1.9), extra=(0.2, 0.6))
    for ax, (r, d) in zip(axes, sets.items()):
        ax.imshow(d.images[index].permute(1, 2, 0).numpy())
        ax.set_title(t("ch04.scales.radius", r=r), fontsize="medium")
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(t("ch04.scales.title"))
    return fig


def plot_scale_response(radii: Sequence[float], diffs: torch.Tensor):
    """``diffs`` (seeds, units, sizes): a(5×5) − a(3×3) against the target's size, one panel per unit (by depth),
    one thin line per seed and their mean in black. Each seed is read against itself (the change along its
    line), so the figure draws no error bars between seeds."""
    d = torch.as_tensor(diffs).detach().cpu().float()
    if d.dim() != 3 or d.shape[2] != len(radii):
        raise ValueError(f"plot_scale_response expects diffs (seeds, units, {len(radii)}), got {tuple(d.shape)}")
    fig, axes = viz.page_grid(d.shape[1], (3.0, 3.4), extra=(0.6, 1.2), sharey=True)
    for u, ax in enumerate(axes):
        for row in d[:, u]:
            ax.plot(radii, row.numpy(), "-", lw=0.8, alpha=0.5, color="tab:blue")
        ax.plot(radii, d[:, u].mean(0).numpy(), "s-", color="black", lw=2, label=t("ch04.response.mean"))
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(list(radii))
        ax.set_title(t("ch04.response.unit", stride=UNIT_STRIDES[u] if u < len(UNIT_STRIDES) else u))
        ax.set_xlabel(t("ch04.response.x"))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(t("ch04.response.y"))
    axes[0].plot([], [], "-", lw=0.8, alpha=0.5, color="tab:blue", label=t("ch04.response.seeds", n=d.shape[0]))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle(t("ch04.response.title"), wrap=True)
    return fig


def selection_gallery(model: TinySKNet, sets: dict, per_scale: int = 2):
    """The stride-2 unit's selection weights (G, M, C) of ``per_scale`` images at the smallest and at the largest
    target size, as a viewer: point at a channel to read its weight on each branch in every image."""
    small, large = min(sets), max(sets)
    images = torch.cat([sets[small].images[:per_scale], sets[large].images[:per_scale]])
    with torch.no_grad():
        weights = model.cpu().eval().attention_maps(images)[0][:, :, :, 0, 0]      # (G, M, C)
    labels = [t("ch04.gallery.label", r=r) for r in [small] * per_scale + [large] * per_scale]
    return viewer.channel_gallery(images, weights, labels=labels, title=t("ch04.gallery.title"),
                                  branch_labels=[t("ch04.branch.small"), t("ch04.branch.large")])


# ---------------------------------------------------------------- common slips (§8), each small enough to read

class PlainListSelect(nn.Module):
    """The select step as Wei Li's ``SelectiveKernelAttention`` writes it (2694048168/blog, PaperMD/attention.md):
    a fuse FC with bias, then one FC per branch kept in a plain Python list."""

    def __init__(self, channels: int, d: int = 32, branches: int = 2):
        super().__init__()
        self.fuse = nn.Linear(channels, d)
        self.fcs = [nn.Linear(d, channels) for _ in range(branches)]      # a list, not an nn.ModuleList

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        z = self.fuse(s)                                                   # (B, d)
        return torch.stack([fc(z) for fc in self.fcs], dim=1).softmax(dim=1)   # (B, M, C)


def missing_parameters(module: PlainListSelect) -> int:
    """The parameters that the plain list hides from ``module.parameters()``."""
    return sum(p.numel() for fc in module.fcs for p in fc.parameters())


# ---------------------------------------------------------------- the explorer

def _kernels(value) -> str:
    return ", ".join(str(k) for k in value)


def _selective_kernel(s) -> nn.Module:
    return MECHANISMS["selective_kernel"].cls(s["channels"], kernel_sizes=s["kernel_sizes"],
                                              reduction=s["reduction"], dilated=s["dilated"],
                                              min_dim=s["min_dim"])


def _plot_selective_kernel(module, x, s):
    weights = module.attention_map(x)[:, :, :, 0, 0]                       # (G, M, C)
    return viewer.channel_gallery(x.mean(1, keepdim=True), weights, labels=input_labels(len(x)),
                                  branch_labels=[f"{k}×{k}" for k in module.kernel_sizes])


EXPLORER = register_explorer(ExplorerSpec(
    "selective_kernel", "feature_map",
    map_controls(static_h=(8,), static_w=(8,)) + (
        Control("kernel_sizes", "ch04.explorer.kernel_sizes", ((3, 5), (3, 5, 7), (1, 3, 5, 7)), (3, 5),
                ((3, 5), (3, 5, 7)), dropdown=True, fmt=_kernels),
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("min_dim", "ch04.explorer.min_dim", (4, 8, 16, 32), 32, (4, 32)),
        Control("dilated", "ch04.explorer.dilated", (True, False), True, (True, False), dropdown=True,
                fmt=yes_no)),
    build=_selective_kernel, plot=_plot_selective_kernel, notes=("ch04.explorer.d_note",)))


# ---------------------------------------------------------------- exercises

@exercise("sk.shape")
def _sk_shape(answer):
    shape = as_shape(answer)
    if shape == (8, 3, 64, 1, 1):
        return None
    if shape == (8, 3, 64):
        return "ex.sk.shape.flat"
    if shape in ((8, 64, 3, 1, 1), (8, 64, 3)):
        return "ex.sk.shape.order"
    if shape in ((8, 64, 1, 1), (8, 64)):
        return "ex.sk.shape.no_branch"
    return "ex.sk.shape.other"


def _sk_params(C: int = 64, d: int = 32, taps=(9, 9), bn: bool = True, fuse_bn: bool = True) -> int:
    branches = sum(k * C * C + (2 * C if bn else 0) for k in taps)
    return branches + C * d + (2 * d if fuse_bn else 0) + d * len(taps) * C


@exercise("sk.params", forbid=("count_parameters",))
def _sk_params_check(answer):
    n = as_count(answer)
    if n == _sk_params():
        return None
    if n == _sk_params(taps=(9, 25)):
        return "ex.sk.params.dense"
    if n == _sk_params(bn=False):
        return "ex.sk.params.no_bn"
    if n == _sk_params(d=4):
        return "ex.sk.params.small_d"
    if n == _sk_params(fuse_bn=False):
        return "ex.sk.params.no_fuse_bn"
    return "ex.sk.params.other"


def _select_variants(feats, logits):
    """What the usual slips compute, to name the slip a wrong answer made (each as (B, C, H, W))."""
    B, M, C = feats[0].shape[0], len(feats), feats[0].shape[1]
    stacked = torch.stack(feats, 1)                                        # (B, M, C, H, W)

    def mix(a):                                                            # a: (B, M, C)
        return (stacked * a[..., None, None]).sum(1)
    return [
        ("ex.sk.select.channel_axis", mix(logits.view(B, M, C).softmax(dim=2))),
        ("ex.sk.select.sigmoid", mix(logits.view(B, M, C).sigmoid())),
        ("ex.sk.select.order", mix(logits.view(B, C, M).softmax(dim=2).transpose(1, 2))),
        ("ex.sk.select.mean", stacked.mean(1)),
    ]


#: The cases of exercise 3: (what the case changes, its fields, B, M, C); each later case changes one thing.
SELECT_CASES = ((None, {}, 3, 2, 6), ("ex.sk.select.batch1", {}, 1, 2, 6), ("ex.sk.select.branches", dict(M=3), 3, 3, 6))


@exercise("sk.select")
def _sk_select(answer):
    select = as_function(answer, usage="select(feats, logits)")
    g = torch.Generator().manual_seed(0)
    for note, fields, B, M, C in SELECT_CASES:
        feats = [torch.randn(B, C, 5, 7, generator=g) for _ in range(M)]
        logits = 2 * torch.randn(B, M * C, generator=g)
        with case(note, **fields):
            a = logits.view(B, M, C).softmax(dim=1)
            expected = (torch.stack(feats, 1) * a[..., None, None]).sum(1)   # (B, C, H, W), before the call
            variants = _select_variants(feats, logits)
            got = call(select, feats, logits, names=("feats", "logits"))
            expect_close(got, expected, variants, "ex.sk.select.other")
    return None
