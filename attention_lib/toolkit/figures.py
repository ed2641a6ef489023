"""Figures that several chapters draw, beyond the attention-map plots of :mod:`attention_lib.viz`.

``show_source`` shows the library's real source in a notebook (never a second copy). The plots draw
how a cost grows (§5 of every chapter), the outcome of a small experiment over seeds (§6), and how
time and memory scale with the number of tokens; every label comes from the i18n table.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from .format import fit_slope
from .i18n import register, t

register({
    "figures.cost.flops_title": {"en": "FLOPs vs input side (C = {C})", "zh": "浮点运算次数随输入边长的变化（C = {C}）"},
    "figures.cost.params_title": {"en": "Parameters vs channels", "zh": "参数量随通道数的变化"},
    "figures.cost.side": {"en": "input side H = W (pixels)", "zh": "输入边长 H = W（像素）"},
    "figures.cost.channels": {"en": "channels C", "zh": "通道数 C"},
    "figures.cost.flops": {"en": "FLOPs per sample", "zh": "每个样本的浮点运算次数"},
    "figures.cost.params": {"en": "parameters", "zh": "参数量"},
    "figures.cost.module": {"en": "attention block", "zh": "注意力模块"},
    "figures.cost.reference": {"en": "3×3 convolution C → C", "zh": "3×3 卷积 C → C"},
    "figures.scaling.time_title": {"en": "Time of one call vs tokens N", "zh": "单次调用耗时随词元数 N 的变化"},
    "figures.scaling.memory_title": {"en": "Peak extra memory vs tokens N", "zh": "额外峰值内存随词元数 N 的变化"},
    "figures.scaling.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "figures.scaling.seconds": {"en": "median time (s)", "zh": "中位耗时（秒）"},
    "figures.scaling.bytes": {"en": "peak extra memory (bytes)", "zh": "额外峰值内存（字节）"},
    "figures.scaling.slope": {"en": "{name} (slope {slope:.2f})", "zh": "{name}（斜率 {slope:.2f}）"},
    "figures.accuracy.title": {"en": "Accuracy against added parameters (mean ± std over seeds)",
                               "zh": "准确率与新增参数量（多个随机种子的均值 ± 标准差）"},
    "figures.accuracy.x": {"en": "parameters of the attention block (+1, log scale)",
                           "zh": "注意力模块的参数量（+1，对数坐标）"},
    "figures.accuracy.y": {"en": "validation accuracy", "zh": "验证集准确率"},
})


def show_source(obj) -> object:
    """The source of a library class or function, syntax-highlighted in a notebook (plain text elsewhere)."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
        return Code(source, language="python")
    except ImportError:                       # pragma: no cover - IPython ships with Jupyter
        return source


def _integer_log_ticks(ax, ticks: Sequence[int]) -> None:
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(list(ticks), [str(v) for v in ticks])
    ax.grid(True, which="both", alpha=0.3)


def plot_cost_growth(sizes: Sequence[int], channels: Sequence[int], flops: Callable[[int, int], float],
                     params: Callable[[int], float], reference_flops: Optional[Callable[[int, int], float]] = None,
                     fixed_channels: int = 64):
    """Two log-log panels: FLOPs against the input side at ``fixed_channels``, parameters against C."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.loglog(sizes, [flops(fixed_channels, s) for s in sizes], "o-", label=t("figures.cost.module"))
    if reference_flops is not None:
        left.loglog(sizes, [reference_flops(fixed_channels, s) for s in sizes], "s--", color="gray",
                    label=t("figures.cost.reference"))
    left.set_title(t("figures.cost.flops_title", C=fixed_channels))
    left.set_xlabel(t("figures.cost.side"))
    left.set_ylabel(t("figures.cost.flops"))
    left.legend()
    right.loglog(channels, [params(c) for c in channels], "o-", color="tab:orange")
    right.set_title(t("figures.cost.params_title"))
    right.set_xlabel(t("figures.cost.channels"))
    right.set_ylabel(t("figures.cost.params"))
    _integer_log_ticks(left, sizes)
    _integer_log_ticks(right, channels)
    fig.tight_layout()
    return fig


def plot_scaling(ns: Sequence[int], seconds: Mapping[str, Sequence[float]], memory: Mapping[str, Sequence[float]],
                 last: int = 3):
    """Two log-log panels, time and memory against N, one line per method, each labelled with its fitted slope.

    A method may stop early (fewer values than ``ns``); the slope is fitted over its ``last`` largest N.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
    for ax, data, ylabel, title in ((left, seconds, "figures.scaling.seconds", "figures.scaling.time_title"),
                                    (right, memory, "figures.scaling.bytes", "figures.scaling.memory_title")):
        for name, values in data.items():
            n = ns[:len(values)]
            ax.loglog(n, values, "o-", label=t("figures.scaling.slope", name=name, slope=fit_slope(n, values, last)))
        _integer_log_ticks(ax, ns)
        ax.set_xlabel(t("figures.scaling.tokens"))
        ax.set_ylabel(t(ylabel))
        ax.set_title(t(title))
        ax.legend(fontsize=8)
    return fig


def plot_accuracy_vs_params(results: Mapping[str, tuple], title: Optional[str] = None):
    """``results``: ``{label: (params, [accuracy per seed])}``; error bars are one standard deviation."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for i, (label, (params, accs)) in enumerate(results.items()):
        accs = np.asarray(accs, dtype=float)
        ax.errorbar(params + 1, accs.mean(), yerr=accs.std(), fmt="o", capsize=4, color=f"C{i}", label=label)
    ax.set_xscale("log")
    ax.set_title(title or t("figures.accuracy.title"))
    ax.set_xlabel(t("figures.accuracy.x"))
    ax.set_ylabel(t("figures.accuracy.y"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
