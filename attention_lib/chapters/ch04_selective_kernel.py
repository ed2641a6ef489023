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
from ..toolkit import data, viewer, viz
from ..toolkit.exercises import as_count, as_function, as_shape, call, case, exercise, expect_close
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyCNN
from ..toolkit.train import DemoConfig
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer, yes_no

register({
    "ch04.explorer.kernel_sizes": {"en": "branch kernels", "zh": "分支卷积核"},
    "ch04.explorer.dilated": {"en": "dilated 3×3 for k > 3", "zh": "k > 3 时改用 3×3 空洞卷积"},
    # §1
    "ch04.windows.title": {"en": "The same face, twice as large: which window covers it?",
                           "zh": "同一张脸放大一倍：哪个窗口能盖住它？"},
    "ch04.windows.zoom": {"en": "{zoom}× (window of one output at stride {stride})",
                          "zh": "{zoom}×（步幅 {stride} 处一个输出的窗口）"},
    "ch04.windows.small": {"en": "3×3 kernel", "zh": "3×3 卷积核"},
    "ch04.windows.large": {"en": "5×5 kernel", "zh": "5×5 卷积核"},
    "ch04.pixels": {"en": "pixels", "zh": "像素"},
    # §2: receptive fields
    "ch04.rf.title": {"en": "Which input pixels one output pixel depends on (|gradient|)",
                      "zh": "一个输出像素依赖哪些输入像素（梯度绝对值）"},
    "ch04.rf.dense3": {"en": "3×3", "zh": "3×3"},
    "ch04.rf.dilated": {"en": "3×3, dilation 2", "zh": "3×3，空洞率 2"},
    "ch04.rf.dense5": {"en": "true 5×5", "zh": "真正的 5×5"},
    "ch04.rf.caption": {"en": "{taps} weights, span {span}×{span}", "zh": "{taps} 个权重，覆盖 {span}×{span}"},
    "ch04.rf.colorbar": {"en": "|∂y / ∂x| (scaled to 1)", "zh": "|∂y / ∂x|（最大值缩放为 1）"},
    "ch04.rf.x": {"en": "input column", "zh": "输入列"},
    "ch04.rf.y": {"en": "input row", "zh": "输入行"},
    "ch04.rf.params": {"en": "a 5×5 branch at C = {C}: {dilated} weights as a dilated 3×3, {dense} as a true 5×5 "
                             "({ratio:.0%})",
                       "zh": "C = {C} 时的 5×5 分支：用 3×3 空洞卷积 {dilated} 个权重，用真正的 5×5 {dense} 个"
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
                   "zh": "forward（折叠 BN、channels_last）：{fast}；forward_explicit：{slow}；比值 {ratio:.2f}"},
    # §6
    "ch04.random_vs_trained": {"en": "{which}: selection weights of the 5×5 branch from {low:.3f} to {high:.3f}",
                               "zh": "{which}：5×5 分支的选择权重从 {low:.3f} 到 {high:.3f}"},
    "ch04.trained": {"en": "trained", "zh": "训练后"},
    "ch04.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch04.block.sk": {"en": "SK (3×3 and 5×5, selected)", "zh": "SK（3×3 与 5×5，选择）"},
    "ch04.block.mean": {"en": "3×3 and 5×5, averaged", "zh": "3×3 与 5×5，取平均"},
    "ch04.block.single": {"en": "one 3×3 branch", "zh": "单个 3×3 分支"},
    "ch04.accuracy": {"en": "{label:>26}: accuracy {mean:.3f} ± {std:.3f} (seeds: {runs}); block parameters {params:,}",
                      "zh": "{label}：准确率 {mean:.3f} ± {std:.3f}（各随机种子：{runs}）；模块参数量 {params:,}"},
    "ch04.scales.title": {"en": "The same scenes, the target drawn at five sizes",
                          "zh": "同一批场景，目标画成五种大小"},
    "ch04.scales.radius": {"en": "half-size {r} px", "zh": "半边长 {r} 像素"},
    "ch04.response.title": {"en": "Does the trained SK block pick the larger kernel for larger objects?",
                            "zh": "训练后的 SK 模块会给更大的目标选更大的卷积核吗？"},
    "ch04.response.x": {"en": "half-size of the target shape (pixels)", "zh": "目标形状的半边长（像素）"},
    "ch04.response.y": {"en": "mean weight of 5×5 minus 3×3", "zh": "5×5 与 3×3 的平均权重之差"},
    "ch04.response.seed": {"en": "seed {seed}", "zh": "随机种子 {seed}"},
    "ch04.response.mean": {"en": "mean over seeds", "zh": "各随机种子的均值"},
    "ch04.response.line": {"en": "r = {r:>4}: a(5×5) − a(3×3) = {mean:+.3f} ± {std:.3f}; accuracy {acc:.3f}",
                           "zh": "r = {r:>4}：a(5×5) − a(3×3) = {mean:+.3f} ± {std:.3f}；准确率 {acc:.3f}"},
    "ch04.response.slope": {"en": "change from the smallest to the largest target: {delta:+.3f} (per seed: {runs})",
                            "zh": "从最小到最大目标的变化：{delta:+.3f}（各随机种子：{runs}）"},
    "ch04.gallery.title": {"en": "Selection weights per channel: small targets (top rows), large targets (bottom)",
                           "zh": "各通道的选择权重：小目标（上面几行）与大目标（下面几行）"},
    "ch04.gallery.label": {"en": "half-size {r} px", "zh": "半边长 {r} 像素"},
    "ch04.branch.small": {"en": "3×3", "zh": "3×3"},
    "ch04.branch.large": {"en": "5×5 (dilated 3×3)", "zh": "5×5（3×3 空洞卷积）"},
    "ch04.photo_title": {"en": "Selection weights of the trained block on a photograph",
                         "zh": "训练后的模块在照片上的选择权重"},
    # §7, §8
    "ch04.block_share": {"en": "output {shape}; the SK convolution holds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；SK 卷积占该残差块参数量的 {share:.1%}"},
    "ch04.plain_list": {"en": "parameters: {registered:,} registered, {missing:,} in the plain list (never trained, "
                              "never saved, never moved to the GPU)",
                        "zh": "参数量：已注册 {registered:,} 个，普通列表里还有 {missing:,} 个（不会被训练、不会被保存、"
                              "也不会随模型移到 GPU）"},
    "ch04.wrong_axis": {"en": "softmax over dim={dim}: sums over the branches range from {low:.3f} to {high:.3f}",
                        "zh": "在 dim={dim} 上做 softmax：对各分支求和的结果从 {low:.3f} 到 {high:.3f}"},
    "ch04.collapse": {"en": "fuse without BatchNorm and ReLU: A·W is one {rows}×{cols} matrix of rank {rank}; "
                            "same logits: {same}",
                      "zh": "融合时去掉 BatchNorm 和 ReLU：A·W 就是一个秩为 {rank} 的 {rows}×{cols} 矩阵；"
                            "logits 相同：{same}"},
    # exercise verdicts
    "ex.sk.shape.flat": {"en": "attention_map keeps two singleton axes so that the weights broadcast over H and W.",
                         "zh": "attention_map 保留了两个长度为 1 的轴，权重才能在 H 和 W 上广播。"},
    "ex.sk.shape.order": {"en": "the branch axis comes before the channel axis: (B, M, C, 1, 1).",
                          "zh": "分支维度在通道维度之前：(B, M, C, 1, 1)。"},
    "ex.sk.shape.no_branch": {"en": "SK has one weight per branch AND per channel: the branch axis is missing.",
                              "zh": "SK 对每个分支、每个通道各有一个权重：缺了分支这一维。"},
    "ex.sk.shape.other": {"en": "batch, branches, channels, then two singleton axes.",
                          "zh": "依次是批量、分支、通道，再加两个长度为 1 的轴。"},
    "ex.sk.params.dense": {"en": "that counts a true 5×5 kernel (25 weights); the 5×5 branch is a dilated 3×3.",
                           "zh": "这是按真正的 5×5 卷积核（25 个权重）算的；5×5 分支其实是 3×3 空洞卷积。"},
    "ex.sk.params.no_bn": {"en": "each branch also has a BatchNorm with 2C parameters.",
                           "zh": "每个分支还有一个 BatchNorm，含 2C 个参数。"},
    "ex.sk.params.small_d": {"en": "d = max(C/r, L) with L = 32, not C/r = 4.",
                             "zh": "d = max(C/r, L)，其中 L = 32，而不是 C/r = 4。"},
    "ex.sk.params.no_fuse_bn": {"en": "the fuse layer's BatchNorm1d adds 2d parameters.",
                                "zh": "融合层的 BatchNorm1d 还有 2d 个参数。"},
    "ex.sk.params.other": {"en": "count every layer of §5's breakdown, the branch convolutions with their BatchNorms, "
                                 "the fuse layer and the select layer, with C = 64 and d = max(C/r, L).",
                           "zh": "按 §5 的分解把每一层都数一遍：各分支的卷积及其 BatchNorm、融合层和选择层，"
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
                           "zh": "logits 是 M 段、每段 C 个依次排列：应变形为 (B, M, C)，而不是 (B, C, M)。"},
    "ex.sk.select.mean": {"en": "the branches are weighted by the selection weights, not averaged.",
                          "zh": "各分支要按选择权重加权，而不是简单平均。"},
    "ex.sk.select.other": {"en": "V = Σ_m a_m ⊙ U_m with a = softmax over the branches of the logits viewed "
                                 "(B, M, C).",
                           "zh": "V = Σ_m a_m ⊙ U_m，其中 a 是把 logits 变形为 (B, M, C) 后在分支维度上做的 softmax。"},
})

#: The kernel sizes and branch names of this chapter's SK blocks.
KERNELS = (3, 5)
#: The target sizes of the scale experiment (half-sizes in pixels) and the seeds of every experiment.
RADII = (2, 4, 6, 8, 10)
SEEDS = (0, 1, 2)


# ---------------------------------------------------------------- the blocks of the experiment

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


@dataclass(frozen=True)
class ScalesCNN(DemoConfig):
    """TinyCNN on shapes whose size varies widely; its block after the stem is SK, or a baseline without selection."""
    kind: ClassVar[str] = "ch04_scales_cnn"
    block: str = "sk"                # "sk": SelectiveKernel(3, 5); "mean": both branches averaged; "single": one 3x3
    width: int = 8                   # channels of the first convolution; the block sees 2 * width
    min_radius: float = 2.0          # smallest half-size of the target shape, in pixels
    max_radius: float = 10.0         # largest (the images are 32 x 32)
    n_train: int = 800               # training images
    n_val: int = 400                 # held-out images
    epochs: int = 8
    lr: float = 0.01
    batch_size: int = 32

    def build(self) -> nn.Module:
        if self.block not in ("sk", "mean", "single"):
            raise ValueError(f"ScalesCNN: block must be 'sk', 'mean' or 'single', got {self.block!r}")
        model = TinyCNN("selective_kernel" if self.block == "sk" else None, width=self.width)
        if self.block != "sk":
            model.attention = BranchMean(2 * self.width, KERNELS if self.block == "mean" else (3,))
        return model

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return data.shapes_dataset(n, seed=self._split_seed(split), min_radius=self.min_radius,
                                   max_radius=self.max_radius)      # made once per process (data's memo)


SK_DEMO = ScalesCNN()


def block_parameters(model: nn.Module) -> int:
    """Parameters of the block between the stem and the head (``model.attention``)."""
    return sum(p.numel() for p in model.attention.parameters())


def scale_sets(radii: Sequence[float] = RADII, n: int = 200, seed: int = 20_000) -> dict:
    """The same ``n`` scenes for every half-size in ``radii``: only the target's size changes."""
    return {r: data.shapes_dataset(n, seed=seed, min_radius=float(r), max_radius=float(r)) for r in radii}


@torch.no_grad()
def scale_response(model: nn.Module, sets: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """For each scale: the mean over images and channels of a(5×5) − a(3×3), and the accuracy."""
    model = model.cpu().eval()
    diffs, accs = [], []
    for d in sets.values():
        a = model.attention_map(d.images)[:, :, :, 0, 0]                  # (n, M, C)
        diffs.append((a[:, -1] - a[:, 0]).mean())
        accs.append((model(d.images).argmax(1) == d.labels).float().mean())
    return torch.stack(diffs), torch.stack(accs)


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


def plot_scale_response(radii: Sequence[float], diffs: torch.Tensor, seeds: Sequence[int] = SEEDS):
    """``diffs`` (seeds, scales): a(5×5) − a(3×3) against the target's size, one thin line per seed."""
    d = torch.as_tensor(diffs).detach().cpu().float()
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.4), layout="constrained")
    for row, seed in zip(d, seeds):
        ax.plot(radii, row.numpy(), "o-", lw=1, alpha=0.5, label=t("ch04.response.seed", seed=seed))
    ax.errorbar(radii, d.mean(0).numpy(), yerr=d.std(0).numpy() if len(d) > 1 else None, fmt="s-", color="black",
                lw=2, capsize=4, label=t("ch04.response.mean"))
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(list(radii))
    ax.set_xlabel(t("ch04.response.x"))
    ax.set_ylabel(t("ch04.response.y"))
    ax.set_title(t("ch04.response.title"), wrap=True)
    ax.grid(True, alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=min(len(d) + 1, 4))
    return fig


def selection_gallery(model: nn.Module, sets: dict, per_scale: int = 2):
    """The selection weights (G, M, C) of ``per_scale`` images at the smallest and at the largest target size,
    as a viewer: point at a channel to read its weight on each branch in every image."""
    small, large = min(sets), max(sets)
    images = torch.cat([sets[small].images[:per_scale], sets[large].images[:per_scale]])
    with torch.no_grad():
        weights = model.cpu().eval().attention_map(images)[:, :, :, 0, 0]           # (G, M, C)
    labels = [t("ch04.gallery.label", r=r) for r in [small] * per_scale + [large] * per_scale]
    return viewer.channel_gallery(images, weights, labels=labels, title=t("ch04.gallery.title"),
                                  branch_labels=[t("ch04.branch.small"), t("ch04.branch.large")])


# ---------------------------------------------------------------- common slips (§8), each small enough to read

class PlainListSelect(nn.Module):
    """The select step as in a widely copied implementation: one FC per branch, kept in a plain Python list."""

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
                                              reduction=s["reduction"], dilated=s["dilated"])


def _plot_selective_kernel(module, x, s):
    weights = module.attention_map(x)[:, :, :, 0, 0]                       # (G, M, C)
    return viewer.channel_gallery(x.mean(1, keepdim=True), weights, labels=input_labels(len(x)),
                                  branch_labels=[f"{k}×{k}" for k in module.kernel_sizes])


EXPLORER = register_explorer(ExplorerSpec(
    "selective_kernel", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("kernel_sizes", "ch04.explorer.kernel_sizes", ((3, 5), (3, 5, 7), (1, 3, 5, 7)), (3, 5),
                ((3, 5), (3, 5, 7)), dropdown=True, fmt=_kernels),
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("dilated", "ch04.explorer.dilated", (True, False), True, (True, False), dropdown=True,
                fmt=yes_no)),
    build=_selective_kernel, plot=_plot_selective_kernel))


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


@exercise("sk.params")
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
