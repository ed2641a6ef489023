"""Figures that several chapters draw, beyond the attention-map plots of :mod:`attention_lib.viz`.

``show_source`` shows the library's real source in a notebook (never a second copy). The plots draw
how a cost grows (§5 of every chapter), the outcome of a small experiment over seeds (§6), how
time and memory scale with the number of tokens, and the context task of the channel-attention
chapters (its images, and gates averaged per question); every label comes from the i18n table.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from .figure_output import MIN_FONT_PT, PAGE_WIDTH_IN, describe
from .format import fit_slope
from .i18n import register, t
from .viz import fit_ticks, page_grid, tight_times, wrap_label, wrap_title

register({
    "figures.cost.flops_title": {"en": "FLOPs vs input side (C = {C})", "zh": "浮点运算次数随输入边长的变化（C = {C}）"},
    "figures.cost.params_title": {"en": "Parameters vs channels", "zh": "参数量随通道数的变化"},
    "figures.cost.side": {"en": "input side H = W (pixels)", "zh": "输入边长 H = W（像素）"},
    "figures.cost.channels": {"en": "channels C", "zh": "通道数 C"},
    "figures.cost.flops": {"en": "FLOPs per sample", "zh": "每个样本的浮点运算次数"},
    "figures.cost.params": {"en": "parameters", "zh": "参数量"},
    "figures.cost.module": {"en": "attention block", "zh": "注意力模块"},
    "figures.cost.reference": {"en": "3 × 3 convolution C → C", "zh": "3 × 3 卷积 C → C"},
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
    "figures.context.title": {"en": "The context task: with a band, name the colour; without, the orientation",
                              "zh": "情境任务：有条带时说出颜色，没有条带时说出方向"},
    "figures.context.band": {"en": "band: {answer}", "zh": "有条带：{answer}"},
    "figures.context.none": {"en": "no band: {answer}", "zh": "无条带：{answer}"},
    "figures.gate_context.title": {"en": "Gate per channel, averaged over the images of each question",
                                   "zh": "各通道的门控值（按问题分别对图像求平均）"},
    "figures.gate_context.band": {"en": "band (colour asked)", "zh": "有条带（问颜色）"},
    "figures.gate_context.none": {"en": "no band (orientation asked)", "zh": "无条带（问方向）"},
    "figures.gate_context.x": {"en": "channel, sorted by the difference between the two questions",
                               "zh": "通道（按两种问题下门控值之差排序）"},
    "figures.gate_context.y": {"en": "mean gate value", "zh": "门控均值"},
    "figures.seeds.title": {"en": "Each seed a dot; bars: mean ± std", "zh": "每个点是一个随机种子；误差棒：均值 ± 标准差"},
    # captions: the result a figure shows, in words (the page shows them under the figure; screen readers too)
    "figures.caption.spread": {"en": "{mean} ± {std} over {n} seeds", "zh": "{n} 个随机种子：{mean} ± {std}"},
    "figures.caption.item": {"en": "{label} {value}", "zh": "{label} {value}"},
    "figures.caption.panel": {"en": "{measure}: {items}.", "zh": "{measure}：{items}。"},
    "figures.caption.accuracy": {"en": "{label}: {params} parameters, accuracy {spread}.",
                                 "zh": "{label}：{params} 个参数，准确率 {spread}。"},
    "figures.caption.context": {"en": "{label}: the gates of the two questions differ by {diff} on average.",
                                "zh": "{label}：两种问题下的门控值平均相差 {diff}。"},
    "figures.caption.scaling": {"en": "Fitted slopes of time: {time}; of memory: {memory}.",
                                "zh": "拟合斜率，耗时：{time}；内存：{memory}。"},
    "figures.caption.scaling_memory": {"en": "Fitted slopes of memory: {memory} (time slopes are not read).",
                                       "zh": "内存的拟合斜率：{memory}（耗时的斜率不作解读）。"},
    "figures.caption.sep": {"en": "; ", "zh": "；"},
})


def _spread(values) -> str:
    """``mean ± sample std over n seeds`` in the current language."""
    v = np.asarray(values, dtype=float)
    std = v.std(ddof=1) if len(v) > 1 else 0.0
    return t("figures.caption.spread", mean=f"{v.mean():.3g}", std=f"{std:.2g}", n=len(v))


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
    fig, (left, right) = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, 5.6), layout="constrained")
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
    return fig


def plot_scaling(ns: Sequence[int], seconds: Mapping[str, Sequence[float]], memory: Mapping[str, Sequence[float]],
                 last: int = 3, time_slopes: bool = True):
    """Two log-log panels, time and memory against N, one line per method, each labelled with its fitted slope.

    A method may stop early (fewer values than ``ns``); the slope is fitted over its ``last`` largest N.
    ``time_slopes=False``: the time panel's legend and the caption give no time slope (for a page that reads
    none: on a shared machine a time slope over a few points is noise).
    """
    fig, (left, right) = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, 6.2), layout="constrained")
    for ax, data, ylabel, title in ((left, seconds, "figures.scaling.seconds", "figures.scaling.time_title"),
                                    (right, memory, "figures.scaling.bytes", "figures.scaling.memory_title")):
        for name, values in data.items():
            n = ns[:len(values)]
            label = (t("figures.scaling.slope", name=name, slope=fit_slope(n, values, last))
                     if time_slopes or data is memory else name)
            ax.loglog(n, values, "o-", label=label)
        _integer_log_ticks(ax, ns)
        ax.set_xlabel(t("figures.scaling.tokens"))
        ax.set_ylabel(t(ylabel))
        ax.set_title(t(title))
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))     # beside the lines, never over them
    sep = t("figures.caption.sep")
    slopes = {key: sep.join(f"{name} {fit_slope(ns[:len(v)], v, last):.2f}" for name, v in data.items())
              for key, data in (("time", seconds), ("memory", memory))}
    if not time_slopes:
        return describe(fig, caption=t("figures.caption.scaling_memory", memory=slopes["memory"]))
    return describe(fig, caption=t("figures.caption.scaling", **slopes))


def plot_accuracy_vs_params(results: Mapping[str, tuple], title: Optional[str] = None):
    """``results``: ``{label: (params, [accuracy per seed])}``; error bars are one standard deviation."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.2), layout="constrained")
    for i, (label, (params, accs)) in enumerate(results.items()):
        accs = np.asarray(accs, dtype=float)
        ax.errorbar(params + 1, accs.mean(), yerr=accs.std(ddof=1) if len(accs) > 1 else 0, fmt="o", capsize=4,
                    color=f"C{i}", label=label)          # the sample std, as al.readings reports it
    ax.set_xscale("log")
    ax.set_title(title or t("figures.accuracy.title"))
    ax.set_xlabel(t("figures.accuracy.x"))
    ax.set_ylabel(t("figures.accuracy.y"))
    ax.grid(True, alpha=0.3)
    longest = max(len(label) for label in results) * 0.09 + 0.6         # inches per legend entry, roughly
    fig.legend(loc="outside lower center", ncols=max(1, min(len(results), int(PAGE_WIDTH_IN // longest))))
    caption = " ".join(t("figures.caption.accuracy", label=label, params=f"{int(params):,}", spread=_spread(accs))
                       for label, (params, accs) in results.items())
    return describe(fig, caption=caption)


def plot_context_examples(data, n: int = 8):
    """The first ``n`` images of a :func:`~attention_lib.toolkit.data.context_dataset`, each titled with its
    question and answer."""
    from .data import COLOURS, ORIENTATIONS

    cols = min((n + 1) // 2, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH_IN, 1.95 * rows + 0.6), layout="constrained",
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i >= n:
            ax.set_visible(False)
            continue
        ax.imshow(data.images[i].permute(1, 2, 0).cpu().numpy())
        if int(data.context[i]):
            title = t("figures.context.band", answer=t(f"data.colour.{COLOURS[int(data.colour[i])]}"))
        else:
            title = t("figures.context.none", answer=t(f"data.orientation.{ORIENTATIONS[int(data.orientation[i])]}"))
        ax.set_title(title, fontsize="medium")
    fig.suptitle(t("figures.context.title"))
    return fig


def plot_gate_by_context(gates: Mapping[str, object], context, title: Optional[str] = None):
    """One panel per model: its gate ``(G, C)`` averaged over the images with the band and over those
    without, channels sorted by the difference. A gate that ignores the question draws two equal rows."""
    panels = list(gates.items())
    fig, axes = plt.subplots(len(panels), 1, figsize=(PAGE_WIDTH_IN, 2.7 * len(panels) + 0.9), layout="constrained",
                             squeeze=False)
    band = np.asarray(context).astype(bool)
    for ax, (label, g) in zip(axes[:, 0], panels):
        g = np.asarray(g, dtype=float)
        with_band, without = g[band].mean(0), g[~band].mean(0)
        order = np.argsort(with_band - without, kind="stable")
        x = np.arange(g.shape[1])
        ax.bar(x - 0.2, without[order], width=0.4, color="#3d85c6", label=t("figures.gate_context.none"))
        ax.bar(x + 0.2, with_band[order], width=0.4, color="#e69138", label=t("figures.gate_context.band"))
        ax.set_ylim(0.0, 1.3)
        ax.set_yticks(np.linspace(0.0, 1.0, 5))
        fit_ticks(ax, x, [str(i) for i in order], "x", length_in=PAGE_WIDTH_IN - 1.0, rotation=90)
        ax.set_title(label)
        ax.set_ylabel(t("figures.gate_context.y"))
        ax.legend(loc="upper center", ncol=2)
    axes[-1, 0].set_xlabel(t("figures.gate_context.x"))
    fig.suptitle(title or t("figures.gate_context.title"))
    diffs = [(label, np.abs(np.asarray(g, dtype=float)[band].mean(0) - np.asarray(g, dtype=float)[~band].mean(0)).mean())
             for label, g in panels]
    return describe(fig, caption=" ".join(t("figures.caption.context", label=label, diff=f"{d:.3f}")
                                          for label, d in diffs))


def plot_seed_spread(panels: Mapping[str, Mapping[str, Sequence[float]]], *, title: Optional[str] = None,
                     references: Optional[Mapping[str, tuple]] = None):
    """One panel per measure: ``{measure: {variant: [value per seed]}}``, every seed a dot, mean ± std.

    ``references``: ``{measure: (label, value)}``, a dashed horizontal line in that panel (a baseline).
    """
    references = references or {}
    slot_in = 1.5                         # inches of axis per variant: room for a flat, wrapped label
    most = max((len(results) for results in panels.values()), default=1)
    fig, axes = page_grid(len(panels), (max(3.2, slot_in * most + 0.9), 3.4), max_cols=2, extra=(0.2, 1.4))
    ncols = axes[0].get_subplotspec().get_gridspec().ncols
    slot_in = min(slot_in, ((fig.get_figwidth() - 0.2) / ncols - 0.9) / most)    # what the page width leaves
    columns = max(6, int(0.9 * slot_in * 72 / (0.6 * MIN_FONT_PT)))   # tick text that fits a slot (15 at 1.5 in)
    for ax, (measure, results) in zip(axes, panels.items()):
        labels = list(results)
        for i, label in enumerate(labels):
            values = np.asarray(results[label], dtype=float)
            ax.plot(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, "o", alpha=0.6,
                    color=f"C{i}")
            ax.errorbar(i + 0.3, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0,
                        fmt="s", capsize=4, color=f"C{i}")
        if measure in references:
            ref_label, value = references[measure]
            ax.axhline(value, ls="--", color="gray", label=ref_label)
        ax.set_xticks(np.arange(len(labels)) + 0.15, [wrap_label(tight_times(label), columns)
                                                         for label in labels])
        ax.set_xlim(-0.5, len(labels) - 0.2)
        ax.set_ylabel(measure)
        ax.grid(True, axis="y", alpha=0.3)
    if references:                        # outside the panels: a legend must not hide a seed's dot
        fig.legend(loc="outside lower center")
    fig.suptitle(wrap_title(fig, title or t("figures.seeds.title")))
    sep = t("figures.caption.sep")
    caption = " ".join(t("figures.caption.panel", measure=measure, items=sep.join(
        t("figures.caption.item", label=label, value=_spread(values)) for label, values in results.items()))
        for measure, results in panels.items())
    return describe(fig, caption=caption)
