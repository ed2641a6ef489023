"""Figures and helpers that the chapters share beyond the attention-map plots of :mod:`attention_lib.viz`.

``show_source`` shows the library's real source in a notebook (never a second copy); the plot
functions draw the chapters' explanatory figures with every label from the i18n table.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
import torch

from .i18n import register, t

register({
    "chapter.squeeze.title": {"en": "Squeeze: each channel becomes one number (its mean)",
                              "zh": "挤压：每个通道变成一个数（它的均值）"},
    "chapter.squeeze.value": {"en": "mean z = {z:.3f}", "zh": "均值 z = {z:.3f}"},
    "chapter.squeeze.bar_title": {"en": "The descriptor z", "zh": "描述向量 z"},
    "chapter.squeeze.bar_y": {"en": "channel mean z_c", "zh": "通道均值 z_c"},
    "chapter.squeeze.bar_x": {"en": "channel", "zh": "通道"},
    "chapter.squeeze.colorbar": {"en": "activation", "zh": "激活值"},
    "chapter.channel.red": {"en": "red", "zh": "红色"},
    "chapter.channel.green": {"en": "green", "zh": "绿色"},
    "chapter.channel.blue": {"en": "blue", "zh": "蓝色"},
    "chapter.channel.edges": {"en": "horizontal edges", "zh": "水平边缘"},
    "chapter.gate.trained": {"en": "trained", "zh": "训练后"},
    "chapter.gate.random": {"en": "random initialisation", "zh": "随机初始化"},
    "chapter.gate.photo_title": {"en": "Gate of the trained SE block on a photograph",
                                 "zh": "训练后的 SE 模块在照片上的门控"},
    "ch03.counts": {"en": "parameters: {params} (formula {params_formula}); FLOPs: {flops} (formula {flops_formula})",
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
    "chapter.cost.flops_title": {"en": "FLOPs vs input side (C = {C})", "zh": "FLOPs 随输入边长的变化（C = {C}）"},
    "chapter.cost.params_title": {"en": "Parameters vs channels", "zh": "参数量随通道数的变化"},
    "chapter.cost.side": {"en": "input side H = W (pixels)", "zh": "输入边长 H = W（像素）"},
    "chapter.cost.channels": {"en": "channels C", "zh": "通道数 C"},
    "chapter.cost.flops": {"en": "FLOPs per sample", "zh": "每个样本的 FLOPs"},
    "chapter.cost.params": {"en": "parameters", "zh": "参数量"},
    "chapter.cost.module": {"en": "attention block", "zh": "注意力模块"},
    "chapter.cost.reference": {"en": "3×3 convolution C → C", "zh": "3×3 卷积 C → C"},
    "chapter.shape.square": {"en": "square", "zh": "正方形"},
    "chapter.shape.circle": {"en": "circle", "zh": "圆形"},
    "chapter.shape.cross": {"en": "cross", "zh": "十字"},
    "chapter.shape.triangle": {"en": "triangle", "zh": "三角形"},
    "chapter.gate_by_class.title": {"en": "Learned gate, averaged per class", "zh": "学到的门控（按类别平均）"},
    "chapter.gate_by_class.x": {"en": "channel", "zh": "通道"},
    "chapter.gate_by_class.y": {"en": "class of the target shape", "zh": "目标形状的类别"},
    "chapter.gate_by_class.colorbar": {"en": "gate value s_c", "zh": "门控值 s_c"},
})


def show_source(obj) -> object:
    """The source of a library class or function, syntax-highlighted in a notebook (plain text elsewhere)."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
        return Code(source, language="python")
    except ImportError:                       # pragma: no cover - IPython ships with Jupyter
        return source


def plot_squeeze(channels: Sequence[torch.Tensor], names: Optional[Sequence[str]] = None):
    """Each ``(H, W)`` channel as an image with its mean, then the descriptor z as bars: SE's squeeze."""
    channels = [torch.as_tensor(c, dtype=torch.float32).detach().cpu() for c in channels]
    if not channels or any(c.dim() != 2 for c in channels):
        raise ValueError(f"plot_squeeze expects a list of (H, W) tensors, got shapes {[tuple(c.shape) for c in channels]}")
    names = list(names) if names is not None else [f"{t('chapter.squeeze.bar_x')} {i}" for i in range(len(channels))]
    z = [c.mean().item() for c in channels]
    fig, axes = plt.subplots(1, len(channels) + 2, figsize=(2.6 * (len(channels) + 1) + 0.6, 3.1),
                             layout="constrained",
                             gridspec_kw=dict(width_ratios=[1] * len(channels) + [0.08, 1.4]))
    vmin, vmax = min(c.min().item() for c in channels), max(c.max().item() for c in channels)
    for ax, c, name, value in zip(axes, channels, names, z):
        im = ax.imshow(c.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(t("chapter.squeeze.value", z=value), fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, cax=axes[-2], label=t("chapter.squeeze.colorbar"))
    bar = axes[-1]
    bar.bar(range(len(z)), z, color="tab:blue")
    bar.set_xticks(range(len(z)), names, rotation=30, ha="right", fontsize=8)
    bar.set_title(t("chapter.squeeze.bar_title"), fontsize=10)
    bar.set_ylabel(t("chapter.squeeze.bar_y"))
    bar.set_xlabel(t("chapter.squeeze.bar_x"))
    fig.suptitle(t("chapter.squeeze.title"))
    return fig


def plot_cost_growth(sizes: Sequence[int], channels: Sequence[int], flops: Callable[[int, int], float],
                     params: Callable[[int], float], reference_flops: Optional[Callable[[int, int], float]] = None,
                     fixed_channels: int = 64):
    """Two log-log panels: FLOPs against the input side at ``fixed_channels``, parameters against C."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.loglog(sizes, [flops(fixed_channels, s) for s in sizes], "o-", label=t("chapter.cost.module"))
    if reference_flops is not None:
        left.loglog(sizes, [reference_flops(fixed_channels, s) for s in sizes], "s--", color="gray",
                    label=t("chapter.cost.reference"))
    left.set_title(t("chapter.cost.flops_title", C=fixed_channels))
    left.set_xlabel(t("chapter.cost.side"))
    left.set_ylabel(t("chapter.cost.flops"))
    left.legend()
    right.loglog(channels, [params(c) for c in channels], "o-", color="tab:orange")
    right.set_title(t("chapter.cost.params_title"))
    right.set_xlabel(t("chapter.cost.channels"))
    right.set_ylabel(t("chapter.cost.params"))
    for ax, ticks in ((left, sizes), (right, channels)):
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(list(ticks), [str(v) for v in ticks])
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
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
    ax.set_title(t("chapter.gate_by_class.title"))
    ax.set_xlabel(t("chapter.gate_by_class.x"))
    ax.set_ylabel(t("chapter.gate_by_class.y"))
    fig.colorbar(im, ax=ax, label=t("chapter.gate_by_class.colorbar"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- cost formulas (chapter 08)

#: Parameters and leading FLOP terms per sample, in the chapters' notation (LaTeX). Feature maps: C channels,
#: H x W, reduction r, ECA kernel k, CBAM spatial kernel k_s, K branches of groups g, d = max(C/r, L).
#: Tokens: N tokens of width D, h heads, S memory slots, coef c, head width d = D/heads.
#: FLOPs count a multiply-add as 2 and one per element for pooling, activations and gating.
COST_FORMULAS = {
    "self_attention": dict(params=r"4D^2 + D", flops=r"8ND^2 + 4N^2D"),
    "external_attention": dict(params=r"2SD", flops=r"4NSD"),
    "multi_head_external_attention": dict(params=r"2cD^2 + cD + D + 2dS + S + d", flops=r"4cND^2 + 4cNSD"),
    "squeeze_excitation": dict(params=r"2C^2/r + C/r + C", flops=r"2CHW + 4C^2/r"),
    "eca": dict(params=r"k", flops=r"2CHW + 2kC"),
    "cbam": dict(params=r"2C^2/r + C/r + C + 2k_s^2 + 2", flops=r"6CHW + 4k_s^2HW + 8C^2/r"),
    "bam": dict(params=r"3C^2/r + 18C^2/r^2 + 13C/r + C + 1", flops=r"5CHW + 2C^2HW/r + 36C^2HW/r^2"),
    "selective_kernel": dict(params=r"9KC^2/g + 2KC + Cd + 2d + dKC", flops=r"18KC^2HW/g + (6K - 1)CHW"),
}


# ---------------------------------------------------------------- measuring and comparing (chapter 08)

register({
    "chapter.table.mechanism": {"en": "mechanism", "zh": "机制"},
    "chapter.table.input": {"en": "input", "zh": "输入"},
    "chapter.table.params": {"en": "parameters", "zh": "参数量"},
    "chapter.table.params_formula": {"en": "parameter formula", "zh": "参数量公式"},
    "chapter.table.flops": {"en": "FLOPs", "zh": "FLOPs"},
    "chapter.table.flops_formula": {"en": "leading FLOP terms (per sample)", "zh": "FLOPs 主要项（每个样本）"},
    "chapter.table.latency": {"en": "latency (ms)", "zh": "延迟（毫秒）"},
    "chapter.scaling.time_title": {"en": "Time of one call vs tokens N", "zh": "单次调用耗时随词元数 N 的变化"},
    "chapter.scaling.memory_title": {"en": "Peak extra memory vs tokens N", "zh": "额外峰值内存随词元数 N 的变化"},
    "chapter.scaling.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "chapter.scaling.seconds": {"en": "median time (s)", "zh": "中位耗时（秒）"},
    "chapter.scaling.bytes": {"en": "peak extra memory (bytes)", "zh": "额外峰值内存（字节）"},
    "chapter.scaling.slope": {"en": "{name} (slope {slope:.2f})", "zh": "{name}（斜率 {slope:.2f}）"},
    "chapter.accuracy.title": {"en": "Accuracy against added parameters (mean ± std over seeds)",
                               "zh": "准确率与新增参数量（多个随机种子的均值 ± 标准差）"},
    "chapter.accuracy.x": {"en": "parameters of the attention block (+1, log scale)",
                           "zh": "注意力模块的参数量（+1，对数坐标）"},
    "chapter.accuracy.y": {"en": "validation accuracy", "zh": "验证集准确率"},
    "chapter.accuracy.none": {"en": "no attention", "zh": "无注意力"},
    "ch08.method.explicit": {"en": "self-attention, explicit", "zh": "自注意力（显式计算）"},
    "ch08.method.sdpa": {"en": "self-attention, SDPA", "zh": "自注意力（SDPA 融合算子）"},
    "ch08.method.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch08.rate": {"en": "{name:>30}: {mflop:9.1f} MFLOP in {ms:8.3f} ms -> {rate:6.1f} GFLOP/s",
                  "zh": "{name:>30}：{mflop:9.1f} MFLOP，耗时 {ms:8.3f} ms -> {rate:6.1f} GFLOP/s"},
    "ch08.slopes": {"en": "{name}: time slope {time:.2f}, memory slope {memory:.2f}",
                    "zh": "{name}：时间斜率 {time:.2f}，内存斜率 {memory:.2f}"},
    "ch08.scores": {"en": "{gib:.2f} GiB of float32 scores, and as much again for the softmax",
                    "zh": "float32 分数矩阵占 {gib:.2f} GiB，softmax 的结果还要再占同样多"},
    "ch08.accuracy": {"en": "{label:>20}: accuracy {mean:.3f} ± {std:.3f}, block parameters {params:,}",
                      "zh": "{label:>20}：准确率 {mean:.3f} ± {std:.3f}，模块参数量 {params:,}"},
})


def _fmt_int(n: float) -> str:
    return f"{int(n):,}"


def cost_table(batch_size: int = 8, channels: int = 64, size: int = 28, tokens: int = 196, dim: int = 64,
               min_run_time: float = 0.2, device=None) -> tuple["Table", list[dict]]:
    """Parameters, FLOPs and latency of every registered mechanism at one common input size.

    Feature-map mechanisms get ``(batch_size, channels, size, size)``, token mechanisms
    ``(batch_size, tokens, dim)``; every module is the registry's default configuration at that width.
    Returns the table and its rows as dictionaries (numbers unformatted).
    """
    from .instruments import Table, benchmark, count_flops, count_parameters
    from .registry import MECHANISMS

    device = torch.device(device) if device is not None else torch.device("cpu")
    rows = []
    for name, entry in MECHANISMS.items():
        if entry.layout == "tokens":
            module = entry.build(dim=dim)
            x = entry.example_input(batch_size, num_tokens=tokens, dim=dim)
        else:
            module = entry.build(channels=channels)
            x = entry.example_input(batch_size, channels=channels, height=size, width=size)
        module = module.eval()
        flops = count_flops(module, x).total
        module, x = module.to(device), x.to(device)
        latency = benchmark(module, x, min_run_time=min_run_time).median
        rows.append(dict(name=name, input=tuple(x.shape), params=count_parameters(module), flops=flops,
                         latency_ms=latency * 1e3))
    header = [t("chapter.table.mechanism"), t("chapter.table.input"), t("chapter.table.params"),
              t("chapter.table.params_formula"), t("chapter.table.flops"), t("chapter.table.flops_formula"),
              t("chapter.table.latency")]
    table = Table(header, [[r["name"], r["input"], _fmt_int(r["params"]), COST_FORMULAS[r["name"]]["params"],
                            _fmt_int(r["flops"]), COST_FORMULAS[r["name"]]["flops"], f"{r['latency_ms']:.3f}"]
                           for r in rows])
    return table, rows


def fit_slope(ns: Sequence[float], values: Sequence[float], last: int = 3) -> float:
    """The exponent a of ``value ∝ N^a``, fitted on log-log axes over the ``last`` largest N
    (small N are dominated by fixed overheads)."""
    ns, values = np.asarray(ns, dtype=float)[-last:], np.asarray(values, dtype=float)[-last:]
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def plot_scaling(ns: Sequence[int], seconds: dict, memory: dict, last: int = 3):
    """Two log-log panels, time and memory against N, one line per method, each labelled with its fitted slope."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
    for ax, data, ylabel, title in ((left, seconds, "chapter.scaling.seconds", "chapter.scaling.time_title"),
                                    (right, memory, "chapter.scaling.bytes", "chapter.scaling.memory_title")):
        for name, values in data.items():
            n = ns[:len(values)]
            ax.loglog(n, values, "o-", label=t("chapter.scaling.slope", name=name, slope=fit_slope(n, values, last)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(list(ns), [str(v) for v in ns])
        ax.set_xlabel(t("chapter.scaling.tokens"))
        ax.set_ylabel(t(ylabel))
        ax.set_title(t(title))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_accuracy_vs_params(results: dict):
    """``results``: ``{label: (params, [accuracy per seed])}``; error bars are one standard deviation."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for i, (label, (params, accs)) in enumerate(results.items()):
        accs = np.asarray(accs, dtype=float)
        ax.errorbar(params + 1, accs.mean(), yerr=accs.std(), fmt="o", capsize=4, color=f"C{i}", label=label)
    ax.set_xscale("log")
    ax.set_title(t("chapter.accuracy.title"))
    ax.set_xlabel(t("chapter.accuracy.x"))
    ax.set_ylabel(t("chapter.accuracy.y"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
