"""Chapter 08 · Comparison: the chapter's strings, cost table, measurements and their checks, the accuracy
experiment with its capacity control, the "when to pick which" table, and the exercises.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch08_comparison as ch``.
"""
from __future__ import annotations

import html
import math
import re
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..registry import MECHANISMS, by_chapter
from ..toolkit import readings as rd
from ..toolkit.exercises import as_name, as_number, describe, exercise
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.format import Table, fit_slope, format_count, format_shape
from ..toolkit.i18n import get_language, register, t
from ..toolkit.instruments import benchmark, count_flops, count_parameters
from ..toolkit.train import ShapesCNN, evaluate, one_thread, trained_demos
from .._checks import check_positive
from ._ch08_demos import BranchesCNN, MLPHeadCNN  # noqa: F401 (re-exported: the demos live in their own module)

register({
    "ch08.table.mechanism": {"en": "mechanism", "zh": "机制"},
    "ch08.table.input": {"en": "input", "zh": "输入"},
    "ch08.table.params": {"en": "parameters", "zh": "参数量"},
    "ch08.table.flops": {"en": "FLOPs", "zh": "浮点运算次数"},
    "ch08.table.params_formula": {"en": "params = formula", "zh": "参数量 = 公式"},
    "ch08.table.flops_formula": {"en": "FLOPs = formula", "zh": "浮点运算次数 = 公式"},
    "ch08.table.latency": {"en": "latency (ms)", "zh": "延迟（毫秒）"},
    "ch08.table.yes": {"en": "yes", "zh": "是"},
    "ch08.table.no": {"en": "NO", "zh": "否"},
    "ch08.none": {"en": "no attention", "zh": "不带注意力"},
    "ch08.method.explicit": {"en": "self-attention, explicit", "zh": "自注意力，显式计算"},
    "ch08.method.sdpa": {"en": "self-attention, SDPA", "zh": "自注意力，SDPA 融合核函数"},
    "ch08.method.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch08.rate": {"en": "{name:>14}: {mflop:7.1f} MFLOP in {ms:7.3f} ms -> {rate:5.1f} GFLOP/s",
                  "zh": "{name:>14}：{mflop:7.1f} MFLOP，耗时 {ms:7.3f} ms -> {rate:5.1f} GFLOP/s"},
    "ch08.slopes": {"en": "{name}: time slope {time:.2f}, memory slope {memory:.2f}",
                    "zh": "{name}：时间斜率 {time:.2f}，内存斜率 {memory:.2f}"},
    "ch08.scores": {"en": "{gib:.2f} GiB of float32 scores, and as much again for the softmax",
                    "zh": "float32 分数矩阵占 {gib:.2f} GiB，softmax 的结果还要再占同样多"},
    "ch08.sk_branches": {"en": "SK without selection", "zh": "去掉选择的 SK"},
    "ch08.mlp_head": {"en": "no attention, MLP head", "zh": "不带注意力，MLP 分类头"},
    "ch08.head_vs_gates": {"en": "per seed against the MLP head: SE {se}; ECA {eca}",
                           "zh": "逐种子与 MLP 分类头相比：SE {se}；ECA {eca}"},
    "ch08.sdpa_ratio": {"en": "at N = {n}: SDPA takes {time:.0f} times as long as External Attention, for {flops:.0f} "
                              "times its FLOPs",
                        "zh": "N = {n} 时：SDPA 的耗时是外部注意力的 {time:.0f} 倍，浮点运算次数是它的 {flops:.0f} 倍"},
    "ch08.convs": {"en": "per sample: one 3 × 3 convolution 64 → 64 at 28 × 28 costs {conv:.1f} MFLOP; BAM {bam:.2f} MFLOP "
                         "({bam_share:.1%} of it); SK {sk:.1f} MFLOP ({sk_convs:.2f} of them)",
                   "zh": "按单个样本计：28 × 28 上一个 64 → 64 的 3 × 3 卷积需要 {conv:.1f} MFLOP；BAM 为 {bam:.2f} MFLOP"
                         "（相当于它的 {bam_share:.1%}）；SK 为 {sk:.1f} MFLOP（相当于 {sk_convs:.2f} 个这样的卷积）"},
    "ch08.acc.variant": {"en": "block", "zh": "模块"},
    "ch08.acc.params": {"en": "block parameters", "zh": "模块参数量"},
    "ch08.acc.acc": {"en": "accuracy (mean ± sample sd)", "zh": "准确率（均值 ± 样本标准差）"},
    "ch08.acc.seeds": {"en": "per seed", "zh": "各随机种子"},
    "ch08.acc.change": {"en": "change vs no attention, per seed (mean ± sd)", "zh": "相对不带注意力的变化，逐种子（均值 ± 标准差）"},
    "ch08.acc.above": {"en": "seeds above", "zh": "高于基线的种子数"},
    "ch08.acc.title": {"en": "Change in accuracy against no attention, seed by seed (dots), mean ± sample sd",
                       "zh": "相对不带注意力的准确率变化：逐种子（圆点），均值 ± 样本标准差"},
    "ch08.acc.x": {"en": "parameters of the block (+1, log scale)", "zh": "模块参数量（+1，对数坐标）"},
    "ch08.acc.y": {"en": "change in accuracy", "zh": "准确率的变化"},
    "ch08.pick.mechanism": {"en": "mechanism", "zh": "机制"},
    "ch08.pick.params": {"en": "parameters (§3)", "zh": "参数量（第 3 节）"},
    "ch08.pick.mflop": {"en": "MFLOP per sample (§3)", "zh": "每个样本的 MFLOP（第 3 节）"},
    "ch08.pick.rate": {"en": "GFLOP/s on this CPU (§3)", "zh": "本机 CPU 上的 GFLOP/s（第 3 节）"},
    "ch08.pick.reweights": {"en": "what it reweights", "zh": "重新加权的对象"},
    "ch08.pick.sees": {"en": "what it must see", "zh": "需要看到的范围"},
    "ch08.pick.placement": {"en": "where the paper puts it", "zh": "论文把它放在哪里"},
    "ch08.pick.change": {"en": "accuracy change in §5, per seed", "zh": "第 5 节中准确率的变化，逐种子"},
    "ch08.see.global": {"en": "all N tokens, each against each (N² pairs)", "zh": "全部 N 个词元，两两比较（N² 对）"},
    "ch08.see.memory": {"en": "all N tokens, each against S learned slots (N × S)",
                        "zh": "全部 N 个词元，各自与 S 个可学习槽位比较（N × S）"},
    "ch08.acc.train": {"en": "training accuracy (lowest run)", "zh": "训练准确率（最低的一次）"},
    "ch08.noise": {"en": "binomial sd of one accuracy near {p:.3f} on {n} validation images: {sd:.3f}",
                   "zh": "在 {n} 张验证图像上、准确率在 {p:.3f} 附近时，一个准确率的二项标准差：{sd:.3f}"},
    "ch08.flop_slope": {"en": "the explicit path's FLOP slope over N = {lo} to {hi}: {slope:.2f}",
                        "zh": "显式路径在 N = {lo} 到 {hi} 之间的浮点运算次数斜率：{slope:.2f}"},
    "ch08.see.none": {"en": "one number per channel (global pooling)", "zh": "每个通道一个数（全局池化）"},
    "ch08.see.local": {"en": "a k × k neighbourhood, two sizes", "zh": "k × k 的邻域，两种大小"},
    "ch08.see.spatial": {"en": "the whole map, position by position", "zh": "整张特征图，逐个位置"},
    "ch08.place.self": {"en": "every block of a transformer", "zh": "Transformer 的每个块"},
    "ch08.place.external": {"en": "a segmentation head on a CNN backbone", "zh": "CNN 骨干网络之上的分割头"},
    "ch08.place.mh_external": {"en": "every block of an all-MLP network (EAMLP)", "zh": "全 MLP 网络（EAMLP）的每个块"},
    "ch08.place.se": {"en": "every residual block, before the addition", "zh": "每个残差块中，相加之前"},
    "ch08.place.sk": {"en": "in place of the 3 × 3 convolution of every block", "zh": "替换每个块中的 3 × 3 卷积"},
    "ch08.place.cbam": {"en": "every residual block, before the addition", "zh": "每个残差块中，相加之前"},
    "ch08.place.bam": {"en": "between stages only: three modules in a ResNet", "zh": "只在阶段之间：ResNet 中共三个"},
    "ch08.place.eca": {"en": "every residual block, like SE", "zh": "每个残差块中，与 SE 相同"},
    "ex.cmp.slope.linear": {"en": "1 is the slope of External Attention and of the projections; the score matrix "
                                  "Q K^T has N × N entries.",
                            "zh": "1 是外部注意力和线性投影的斜率；而分数矩阵 Q K^T 有 N × N 个元素。"},
    "ex.cmp.slope.factor": {"en": "{answer} is how much the work grows when N doubles; on log-log axes the slope s "
                                  "is an exponent: the time grows like N^s, so doubling N multiplies it by 2^s.",
                            "zh": "{answer} 是 N 翻倍时计算量增长的倍数；而双对数坐标上的斜率 s 是一个指数：时间按 N^s 增长，"
                                  "所以 N 翻倍时时间乘以 2^s。"},
    "ex.cmp.slope.measured": {"en": "{answer} looks like a measured slope; the question asks what the score matrix "
                                    "predicts, an exponent that is a whole number here.",
                              "zh": "{answer} 像是测量得到的斜率；题目问的是由分数矩阵推出的预期斜率，这里是一个整数指数。"},
    "ex.cmp.slope.other": {"en": "count how the size of Q K^T grows when N doubles, then write that growth as a power "
                                 "of 2.",
                           "zh": "数一数 N 翻倍时 Q K^T 的大小如何增长，再把这个增长写成 2 的幂。"},
    "ex.cmp.memory.one_factor": {"en": "that is one eighth of the answer: every sample of the batch and every head has "
                                       "its own N × N matrix.",
                                 "zh": "这只是答案的八分之一：批量中的每个样本、每个头都有自己的 N × N 矩阵。"},
    "ex.cmp.memory.one_matrix": {"en": "that is a single N × N matrix; the batch holds one per sample and per head.",
                                 "zh": "这只是一个 N × N 矩阵；批量中每个样本、每个头各有一个。"},
    "ex.cmp.memory.decimal": {"en": "1 GiB is 2^30 bytes, not 10^9.", "zh": "1 GiB 是 2^30 字节，而不是 10^9。"},
    "ex.cmp.memory.float64": {"en": "that is twice the answer: did you count 8 bytes per value (a float32 value takes "
                                    "4), or two N × N matrices per sample and head?",
                              "zh": "这是正确答案的两倍：你是按每个值 8 字节算的（float32 每个值占 4 字节），还是每个样本、每个头"
                                    "数了两个 N × N 矩阵？"},
    "ex.cmp.memory.float16": {"en": "the scores are float32, 4 bytes each, not 2.",
                              "zh": "分数是 float32，每个值占 4 字节，而不是 2。"},
    "ex.cmp.memory.bits": {"en": "that counts bits; memory is counted in bytes (8 bits).",
                           "zh": "这是按位（bit）计算的；内存按字节计算（1 字节 = 8 位）。"},
    "ex.cmp.memory.mib": {"en": "that is in MiB; the question asks for GiB (1 GiB = 1024 MiB).",
                          "zh": "这是以 MiB 为单位的结果；题目要的是 GiB（1 GiB = 1024 MiB）。"},
    "ex.cmp.memory.bytes": {"en": "that is in bytes; the question asks for GiB.",
                            "zh": "这是以字节为单位的结果；题目要的是 GiB。"},
    "ex.cmp.memory.other": {"en": "count the N × N matrices of the whole batch, then the bytes of one float32 value, "
                                  "then convert bytes to GiB.",
                            "zh": "先数出整个批量共有多少个 N × N 矩阵，再看一个 float32 值占几个字节，最后把字节换算成 GiB。"},
    "ex.cmp.cheapest.unknown": {"en": "{name} is not a name the check knows for one of the table's mechanisms; answer "
                                      "with a name as the table shows it, or its registry name, e.g. 'CBAM' or 'cbam'.",
                                "zh": "检查不认识 {name} 这个名字，它对不上表中的任何机制名称；请用表中显示的机制名称或它在注册表中的名字作答，"
                                      "例如 'CBAM' 或 'cbam'。"},
    "ex.cmp.cheapest.ambiguous": {"en": "{name} names more than one mechanism; give one.",
                                  "zh": "{name} 同时指向了不止一种机制；请只给出一种。"},
    "ex.cmp.cheapest.tokens": {"en": "that one works on tokens; the question is about feature-map mechanisms.",
                               "zh": "它作用于词元；题目问的是作用于特征图的机制。"},
    "ex.cmp.cheapest.other": {"en": "{name} is not the cheapest: compare its parameter count with the other feature-map "
                                    "mechanisms' in the table (C = 64).",
                              "zh": "{name} 不是参数最少的：请在表中把它的参数量与其他作用于特征图的机制比一比（C = 64）。"},
})


def cost_table(batch_size: int = 8, channels: int = 64, size: int = 28, tokens: int = 196, dim: int = 64,
               min_run_time: float = 0.2, device=None, rounds: int = 3) -> tuple[Table, list[dict]]:
    """Parameters, FLOPs and latency of every registered mechanism at one common input size.

    Feature-map mechanisms get ``(batch_size, channels, size, size)``, token mechanisms
    ``(batch_size, tokens, dim)``; every module is the registry's default configuration at that width.
    FLOPs are those of the equations (``forward_explicit`` where a module has one) and are compared
    with the registry's formula; latency is that of ``forward`` (the fast path) on ``device``: the median of
    ``benchmark`` in each of ``rounds`` rounds that time every module in turn (round robin, so that a burst of load
    on a shared machine hits all modules rather than one), and the smallest of those medians (load only adds time).
    Returns the table (names in the current language) and its rows as dictionaries (numbers unformatted).
    """
    check_positive(rounds, "rounds", "cost_table")
    device = torch.device(device) if device is not None else torch.device("cpu")
    rows, calls = [], []
    for entry in by_chapter():
        sizes = dict(dim=dim) if entry.layout == "tokens" else dict(channels=channels)
        shape = dict(num_tokens=tokens, dim=dim) if entry.layout == "tokens" else \
            dict(channels=channels, height=size, width=size)
        module = entry.build(**sizes).eval()
        x = entry.example_input(batch_size, **shape)
        method = "forward_explicit" if hasattr(module, "forward_explicit") else "forward"
        flops = count_flops(module, x, method=method).total
        params = count_parameters(module)
        args = {**entry.example_kwargs, **sizes}
        calls.append((module.to(device), x.to(device)))
        rows.append(dict(name=entry.name, input=tuple(x.shape), params=params, flops=flops,
                         params_match=params == entry.expected_params(**args),
                         flops_match=flops == entry.expected_flops(x.shape, **args)))
    names = [r["name"] for r in rows]
    same_work = [(names.index(a), names.index(b)) for a, b in SAME_WORK if a in names and b in names]
    medians = []                                                             # (rounds, modules), seconds
    # round robin; if two modules that do the same work still differ by more than 3x (a burst of load hit one
    # of them in every round), as many rounds again before check_cost_readings reads the table
    while len(medians) < rounds or (len(medians) < 2 * rounds and _apart(medians, same_work, 3.0)):
        medians.append([benchmark(module, x, min_run_time=min_run_time).median for module, x in calls])
    for i, row in enumerate(rows):
        row["latency_ms"] = min(m[i] for m in medians) * 1e3
        row["rounds"] = len(medians)
    yes_no = lambda ok: t("ch08.table.yes") if ok else t("ch08.table.no")  # noqa: E731
    header = [t("ch08.table.mechanism"), t("ch08.table.input"), t("ch08.table.params"),
              t("ch08.table.params_formula"), t("ch08.table.flops"), t("ch08.table.flops_formula"),
              t("ch08.table.latency")]
    cells = [[MECHANISMS[r["name"]].display_name(short=True), format_shape(r["input"]), format_count(r["params"]),
              yes_no(r["params_match"]), format_count(r["flops"]), yes_no(r["flops_match"]),
              f"{r['latency_ms']:.3f}"] for r in rows]
    nowrap = [[f'<span style="white-space: nowrap">{html.escape(c)}</span>' for c in row] for row in cells]
    return Table(header, cells, html_rows=nowrap), rows


#: Modules that do the same work on the same tensor (the same FLOPs, the same reads and writes of the feature
#: map): their latencies must agree within 3x, or the timing is an artefact of load (check_cost_readings).
SAME_WORK = (("squeeze_excitation", "eca"),)


def _apart(medians: Sequence[Sequence[float]], pairs: Sequence[tuple], factor: float) -> bool:
    """True when, taking each module's smallest median so far, some pair of ``pairs`` differs by more than
    ``factor``."""
    best = [min(column) for column in zip(*medians)]
    return any(max(best[i], best[j]) > factor * min(best[i], best[j]) for i, j in pairs)


# ---------------------------------------------------------------- §3: the cost table, read

def conv_flops(channels: int = 64, size: int = 28, kernel: int = 3) -> int:
    """FLOPs per sample of one plain ``kernel x kernel`` convolution ``channels -> channels`` at ``size x size``
    (bias not counted): the unit in which §3 prices the blocks that carry convolutions."""
    return 2 * kernel * kernel * channels * channels * size * size


def conv_comparison(rows: Sequence[dict], channels: int = 64, size: int = 28) -> dict:
    """Per sample: the MFLOP of BAM and SK from :func:`cost_table`'s rows next to one 3 x 3 convolution."""
    conv = conv_flops(channels, size)
    per = {r["name"]: r["flops"] / r["input"][0] for r in rows}
    return dict(conv=conv / 1e6, bam=per["bam"] / 1e6, sk=per["selective_kernel"] / 1e6,
                bam_share=per["bam"] / conv, sk_convs=per["selective_kernel"] / conv)


def check_cost_readings(rows: Sequence[dict], convs: dict) -> None:
    """§3's sentences: the gates do about two FLOPs per value; SK reaches a far higher rate than SE and ECA;
    BAM costs about 2 % of one 3 x 3 convolution, SK about two of them."""
    by = {r["name"]: r for r in rows}
    values = {n: by[n]["input"][0] * by[n]["input"][1] * by[n]["input"][2] * by[n]["input"][3]
              for n in ("squeeze_excitation", "eca")}
    per_value = {n: by[n]["flops"] / values[n] for n in values}
    rd.expect("SE and ECA perform about two FLOPs per value of the feature map",
              all(1.9 <= v <= 2.2 for v in per_value.values()), per_value={k: round(v, 3) for k, v in per_value.items()})
    rate = {n: by[n]["flops"] / by[n]["latency_ms"] / 1e6 for n in ("squeeze_excitation", "eca", "selective_kernel")}
    rd.expect("SK reaches a rate many times that of SE and ECA",
              rd.clearly_less(max(rate["squeeze_excitation"], rate["eca"]), rate["selective_kernel"], factor=5),
              rates_gflops={k: round(v, 1) for k, v in rate.items()})
    se, eca = by["squeeze_excitation"]["latency_ms"], by["eca"]["latency_ms"]
    rd.expect("a sane timing: SE and ECA, the same work on the same tensor, take times within 3x of each other "
              "(otherwise a burst of load distorted the table)", max(se, eca) <= 3 * min(se, eca),
              se_ms=round(se, 3), eca_ms=round(eca, 3), rounds=by["eca"].get("rounds"))
    rd.expect("BAM costs about 2 % of one 3 x 3 convolution at this size, SK about two",
              0.015 <= convs["bam_share"] <= 0.025 and 1.9 <= convs["sk_convs"] <= 2.1,
              bam_share=round(convs["bam_share"], 4), sk_convs=round(convs["sk_convs"], 2))


# ---------------------------------------------------------------- §4: complexity in N, read

def explicit_flop_slope(ns: Sequence[int], dim: int = 64, heads: int = 8) -> float:
    """The slope of the explicit self-attention's FLOPs (the registry's exact formula) against N on log-log axes,
    over the ``ns`` given: what its time slope would be if time followed FLOPs."""
    mech = MECHANISMS["self_attention"]
    return fit_slope(ns, [mech.expected_flops((1, n, dim), dim=dim, num_heads=heads) for n in ns], len(ns))


def check_scaling_readings(ns: Sequence[int], seconds: Mapping[str, list], memory: Mapping[str, list],
                           explicit: str, sdpa: str, external: str) -> None:
    """§4's sentences on the measured curves: memory slopes 2, 1, 1; the explicit path's time slope at least its
    FLOP slope over the same N; SDPA far slower than External Attention at the largest N (margins a busy machine
    cannot reverse)."""
    time = {k: fit_slope(ns[:len(v)], v, 3) for k, v in seconds.items()}
    mem = {k: fit_slope(ns[:len(v)], v, 3) for k, v in memory.items()}
    rd.expect("memory follows the theory: a slope near 2 for the explicit path, near 1 for SDPA and External "
              "Attention", abs(mem[explicit] - 2) < 0.1 and abs(mem[sdpa] - 1) < 0.1 and abs(mem[external] - 1) < 0.1,
              memory={k: round(v, 2) for k, v in mem.items()})
    measured = ns[:len(seconds[explicit])][-3:]
    flops = explicit_flop_slope(measured)
    # a margin: one build on a loaded machine measured 1.85 against a FLOP slope of 1.89
    rd.expect("the explicit path's time slope is no more than 0.3 below its FLOP slope over the same N",
              time[explicit] >= flops - 0.3,
              time={k: round(v, 2) for k, v in time.items()}, flop_slope=round(flops, 2))
    rd.expect("at N = 4096 SDPA takes many times as long as External Attention (more than 20 times)",
              rd.clearly_less(seconds[external][-1], seconds[sdpa][-1], factor=20),
              sdpa=seconds[sdpa][-1], external=seconds[external][-1])


def sdpa_ratio(n: int, sdpa_seconds: float, external_seconds: float, dim: int = 64, heads: int = 8,
               memory_size: int = 64) -> dict:
    """At ``n`` tokens: how many times as long SDPA takes as External Attention (measured), and how many times
    its FLOPs (the equations' counts of the registry, self-attention's explicit form)."""
    flops = (MECHANISMS["self_attention"].expected_flops((1, n, dim), dim=dim, num_heads=heads)
             / MECHANISMS["external_attention"].expected_flops((1, n, dim), dim=dim, memory_size=memory_size))
    return dict(n=n, time=sdpa_seconds / external_seconds, flops=flops)


# ---------------------------------------------------------------- §5: what the blocks buy, with a capacity control

#: §5's training, the same for every variant: 15 epochs, enough for every run to fit its training images
#: (checked), so that the changes measure what a block buys at a plateau, not how fast a network learns.
ACCURACY_CONFIG = dict(n_train=1000, epochs=15)
#: §5's seeds: each has its own images, shared by every variant (so the changes pair up seed by seed).
ACCURACY_SEEDS = (0, 1, 2)
#: §5's variants: no attention, the five feature-map mechanisms, SK without its selection, and no attention with
#: an MLP head (the control for the channel gates, which right before the pooling act as a small gated head).
VARIANTS = (None, "squeeze_excitation", "eca", "cbam", "bam", "selective_kernel", "sk_branches", "mlp_head")
#: The attention blocks among them (the controls left out).
BLOCKS = ("squeeze_excitation", "eca", "cbam", "bam", "selective_kernel")


def variant_demo(name: Optional[str], seed: int) -> ShapesCNN:
    """The configuration of one §5 run."""
    if name == "sk_branches":
        return BranchesCNN(seed=seed, **ACCURACY_CONFIG)
    if name == "mlp_head":
        return MLPHeadCNN(seed=seed, **ACCURACY_CONFIG)
    return ShapesCNN(attention=name, seed=seed, **ACCURACY_CONFIG)


def variant_label(name: Optional[str]) -> str:
    if name is None:
        return t("ch08.none")
    if name in ("sk_branches", "mlp_head"):
        return t(f"ch08.{name}")
    return MECHANISMS[name].display_name(short=True)


def variant_results() -> dict:
    """Every §5 variant over every seed, ``{name: dict(acc, train, params, n_val)}``: the runs not in the cache
    are trained two at a time (``trained_demos``), then each is evaluated on one thread (the same numbers on every
    machine). ``acc``: final validation accuracy; ``train``: training accuracy in the last epoch; ``params``: the
    parameters beyond the plain network (the block's, or the MLP head's extra ones)."""
    configs = [variant_demo(name, seed) for name in VARIANTS for seed in ACCURACY_SEEDS]
    demos = iter(trained_demos(configs, progress=False))
    return {name: _variant_numbers([next(demos) for _ in ACCURACY_SEEDS]) for name in VARIANTS}


@one_thread()
def _variant_numbers(demos: Sequence) -> dict:
    cfg = demos[0].config
    plain = ShapesCNN(width=cfg.width, reduction=cfg.reduction).build()     # no block, one linear head
    return dict(acc=[evaluate(d.model, d.val_data)["acc"] for d in demos],
                train=[d.history["acc"][-1] for d in demos],
                params=count_parameters(demos[0].model) - count_parameters(plain), n_val=len(demos[0].val_data[0]))


def binomial_sd(results: Mapping[Optional[str], dict]) -> dict:
    """The sampling noise of one accuracy: the binomial sd sqrt(p(1 - p)/n) at the baseline's mean accuracy p
    on its n validation images."""
    p, n = float(np.mean(results[None]["acc"])), results[None]["n_val"]
    return dict(p=p, n=n, sd=math.sqrt(p * (1 - p) / n))


def accuracy_table(results: Mapping[Optional[str], dict]) -> Table:
    """One row per variant: block parameters, accuracy (mean ± sample sd, per seed) and the change against no
    attention, seed by seed (mean ± sample sd of the per-seed changes, and how many seeds are above)."""
    base = results[None]["acc"]
    rows = []
    for name, r in results.items():
        acc = rd.seeds(r["acc"])
        change = rd.paired(r["acc"], base)
        rows.append([variant_label(name), format_count(r["params"]), f"{min(r['train']):.3f}",
                     f"{acc.mean:.3f} ± {acc.sd:.3f}", ", ".join(f"{a:.3f}" for a in r["acc"]),
                     "—" if name is None else f"{change.mean:+.3f} ± {change.sd:.3f}",
                     "—" if name is None else f"{change.positive}/{change.n}"])
    keys = ("variant", "params", "train", "acc", "seeds", "change", "above")
    return Table([t(f"ch08.acc.{k}") for k in keys], rows)


def check_accuracy_readings(results: Mapping[Optional[str], dict]) -> None:
    """§5's sentences, against :func:`variant_results` (seeds paired): every run at a plateau; at the plateau no
    block moves the accuracy by more than about the sampling noise; CBAM above the baseline in every seed and BAM
    below it in every seed, both by less than two and a half points, no other block the same in every seed; the
    MLP head below the baseline in every seed, SE and ECA not below the MLP head in any; the SK control has about
    14 % fewer parameters than SK."""
    rd.expect("every run fits its training images: training accuracy at least 0.99 in every run",
              all(min(r["train"]) >= 0.99 for r in results.values()),
              lowest={str(k): round(min(r["train"]), 3) for k, r in results.items()})
    base = results[None]["acc"]
    rd.expect("the plain network reaches about 96 % on its own", 0.95 <= float(np.mean(base)) <= 0.97,
              baseline=[round(v, 3) for v in base])
    change = {name: rd.paired(r["acc"], base) for name, r in results.items() if name is not None}
    blocks = {n: change[n] for n in BLOCKS}
    rd.expect("at the plateau no block changes the accuracy by more than 1.5 points on average, nor by more than "
              "2.5 points in any seed", all(abs(c.mean) <= 0.015 and max(abs(v) for v in c.values) <= 0.025
                                           for c in blocks.values()),
              **{str(n): c.format(signed=True) for n, c in blocks.items()})
    above = [n for n, c in blocks.items() if c.positive == c.n]
    below = [n for n, c in blocks.items() if c.negative == c.n]
    rd.expect("CBAM is the only block above the baseline in every seed and BAM the only one below it in every seed, "
              "both by two points or less; SK is not above it in every seed",
              above == ["cbam"] and below == ["bam"]
              and max(abs(v) for n in ("cbam", "bam") for v in change[n].values) <= 0.0201,   # 10 of 500 images
              above_in_every_seed=above, below_in_every_seed=below, cbam=change["cbam"].format(signed=True),
              bam=change["bam"].format(signed=True), sk=change["selective_kernel"].format(signed=True))
    rd.expect("neither SK nor SK without selection is above the baseline in every seed, or below it in every seed",
              all(0 < change[n].positive < change[n].n for n in ("selective_kernel", "sk_branches")),
              sk=change["selective_kernel"].format(signed=True), sk_branches=change["sk_branches"].format(signed=True))
    gates = head_comparison(results)
    rd.expect("the MLP head is below the network without attention in every seed, by less than two and a half "
              "points, and SE and ECA are not below the MLP head in any seed",
              change["mlp_head"].negative == change["mlp_head"].n and change["mlp_head"].low > -0.025
              and all(c.negative == 0 for c in gates.values()),
              mlp_head=change["mlp_head"].format(signed=True), **{n: c.format(signed=True) for n, c in gates.items()})
    params = {n: results[n]["params"] for n in ("selective_kernel", "sk_branches")}
    fewer = 1 - params["sk_branches"] / params["selective_kernel"]
    rd.expect("the control has about 14 % fewer parameters than SK (its selection layers)", 0.12 <= fewer <= 0.16,
              params=params, fewer=round(fewer, 3))
    rd.expect("the MLP head adds about as many parameters as SE (between 0.7 and 1.3 times SE's)",
              0.7 <= results["mlp_head"]["params"] / results["squeeze_excitation"]["params"] <= 1.3,
              mlp_head=results["mlp_head"]["params"], se=results["squeeze_excitation"]["params"])


def head_comparison_text(results: Mapping[Optional[str], dict]) -> str:
    """The printed line of :func:`head_comparison`: SE's and ECA's per-seed changes against the MLP head."""
    gates = head_comparison(results)
    return t("ch08.head_vs_gates", se=gates["squeeze_excitation"].format(signed=True),
             eca=gates["eca"].format(signed=True))


def head_comparison(results: Mapping[Optional[str], dict]) -> dict:
    """SE's and ECA's accuracy against the MLP head's, seed by seed (:func:`readings.paired`): the channel gates,
    which before the pooling act as a small gated head, against a plain non-linear head of about SE's size."""
    head = results["mlp_head"]["acc"]
    return {n: rd.paired(results[n]["acc"], head) for n in ("squeeze_excitation", "eca")}


def plot_accuracy_changes(results: Mapping[Optional[str], dict]):
    """§5: each variant's change in accuracy against no attention, seed by seed (dots) and their mean ± sample
    sd, against the block's parameters (log scale; no attention sits at 1)."""
    base = np.asarray(results[None]["acc"], dtype=float)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.2), layout="constrained")
    for i, (name, r) in enumerate(results.items()):
        if name is None:
            continue
        change = np.asarray(r["acc"], dtype=float) - base
        x = r["params"] + 1
        ax.errorbar(x, change.mean(), yerr=change.std(ddof=1), fmt="o", capsize=4, color=f"C{i}",
                    label=variant_label(name))
        ax.plot(np.full(len(change), x) * np.linspace(0.92, 1.08, len(change)), change, ".", color=f"C{i}",
                alpha=0.6)
    ax.axhline(0, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(t("ch08.acc.x"))
    ax.set_ylabel(t("ch08.acc.y"))
    ax.set_title(t("ch08.acc.title"), wrap=True)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4)
    return fig


# ---------------------------------------------------------------- §7: when to pick which

#: Where the papers put each mechanism, and what each needs to see (the "spatial" column): facts of the papers.
PLACEMENT = {
    "self_attention": ("ch08.place.self", "ch08.see.global"),
    "external_attention": ("ch08.place.external", "ch08.see.memory"),
    "multi_head_external_attention": ("ch08.place.mh_external", "ch08.see.memory"),
    "squeeze_excitation": ("ch08.place.se", "ch08.see.none"),
    "selective_kernel": ("ch08.place.sk", "ch08.see.local"),
    "cbam": ("ch08.place.cbam", "ch08.see.spatial"),
    "bam": ("ch08.place.bam", "ch08.see.spatial"),
    "eca": ("ch08.place.eca", "ch08.see.none"),
}


def pick_table(rows: Sequence[dict], results: Mapping[Optional[str], dict]) -> Table:
    """The chapter's own measurements per mechanism, side by side: parameters and FLOPs per sample at §3's
    input, the rate this CPU reached (GFLOP/s: low means bound by memory traffic and small operations), what
    it reweights, what it must see, where the papers put it, and its change in accuracy in §5 (feature maps)."""
    base = results[None]["acc"]
    cells = []
    for r in rows:
        name = r["name"]
        place, see = PLACEMENT[name]
        rate = r["flops"] / r["latency_ms"] / 1e6
        change = "—" if name not in results else rd.paired(results[name]["acc"], base).format(signed=True)
        cells.append([MECHANISMS[name].display_name(short=True), format_count(r["params"]),
                      f"{r['flops'] / r['input'][0] / 1e6:.2f}", f"{rate:.1f}",
                      MECHANISMS[name].reweights[get_language()], t(see), t(place), change])
    return Table([t(f"ch08.pick.{k}") for k in ("mechanism", "params", "mflop", "rate", "reweights", "sees",
                                                 "placement", "change")], cells)


def check_pick_readings(rows: Sequence[dict], results: Mapping[Optional[str], dict]) -> None:
    """§7's sentences: the cheapest mechanism in parameters; the fastest blocks in absolute time; the gates' rates
    far below the convolutions'."""
    feature = sorted((r for r in rows if MECHANISMS[r["name"]].layout == "feature_map"), key=lambda r: r["params"])
    rd.expect("ECA has the fewest parameters of the feature-map mechanisms, then SE",
              [r["name"] for r in feature[:2]] == ["eca", "squeeze_excitation"],
              order=[r["name"] for r in feature])
    flops = {r["name"]: r["flops"] for r in rows}
    rd.expect("per module CBAM costs fewer FLOPs than BAM", flops["cbam"] < flops["bam"],
              cbam=flops["cbam"], bam=flops["bam"])
    rate = {r["name"]: r["flops"] / r["latency_ms"] / 1e6 for r in rows}
    gates = ("squeeze_excitation", "eca", "cbam", "bam")
    ms = {r["name"]: r["latency_ms"] for r in rows}
    fast, slow = min(ms["squeeze_excitation"], ms["eca"]), min(ms["cbam"], ms["bam"])   # the faster of each pair
    rd.expect("in absolute time the faster of ECA and SE takes at most half the time of the faster of CBAM and BAM, "
              "and SK takes many times as long as any gate (at least three times)",
              rd.clearly_less(fast, slow, factor=2)
              and rd.clearly_less(max(ms[g] for g in gates), ms["selective_kernel"], factor=3),
              latency_ms={k: round(v, 3) for k, v in ms.items() if k in (*gates, "selective_kernel")})
    rd.expect("every gate runs at a small fraction of SK's rate",
              all(rd.clearly_less(rate[g], rate["selective_kernel"], factor=3) for g in gates),
              rates={k: round(v, 1) for k, v in rate.items()})


#: Other names students use for the mechanisms (the papers' network names); the Chinese names are the registry's.
ALIASES = {"squeeze_excitation": ("SENet", "squeeze excitation"), "selective_kernel": ("SKNet", "selective kernel network"),
           "external_attention": ("EANet",), "eca": ("ECA-Net", "ECANet"),
           "cbam": ("convolutional block attention module",), "bam": ("bottleneck attention module",),
           "self_attention": ("MHSA",)}
#: Words a name may carry around the mechanism's own name ("the SE block", "ECA 模块").
_SUFFIXES = ("network", "module", "block", "layer", "net", "网络", "模块", "机制", "注意力块", "块", "层")


def _normal(text: str) -> str:
    """A spelling reduced to letters and digits, lower case, without a trailing 'net', 'module', 'block'..."""
    text = re.sub(r"[\W_]+", "", text.lower().replace("&", "and"))
    text = re.sub(r"^the", "", text)
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            break
    return text


def _parts(text: str) -> list[str]:
    """``"Efficient Channel Attention (ECA)"`` → the whole, the part outside the parentheses and the part inside."""
    inside = re.findall(r"[(（]([^)）]*)[)）]", text)
    outside = re.sub(r"[(（][^)）]*[)）]", " ", text)
    return [p for p in (text, outside, *inside) if p.strip()]


def _spellings() -> dict[str, set[str]]:
    found = {}
    for name, entry in MECHANISMS.items():
        forms = {name, entry.cls.__name__, *entry.names.values(), *entry.short.values(), *ALIASES.get(name, ())}
        found[name] = {_normal(p) for form in forms for p in _parts(form)} - {""}
    return found


def _mechanism_named(answer) -> Optional[str]:
    """The registry key that ``answer`` names, ``"?"`` when it names several, None when none.

    Accepts a registry key, a display name in either language with or without its parenthesis (``"Efficient
    Channel Attention"``, ``"高效通道注意力"``), the class name, a paper's network name (``"ECA-Net"``), any case,
    spacing or hyphenation; also a registry entry or a mechanism's class handed in directly.
    """
    if getattr(answer, "name", None) in MECHANISMS and not isinstance(answer, str):
        return answer.name
    if isinstance(answer, type):
        return next((n for n, e in MECHANISMS.items() if e.cls is answer), None)
    if not isinstance(answer, str):
        return None
    spellings = _spellings()
    hits = set()
    for part in _parts(answer):
        hits |= {name for name, forms in spellings.items() if _normal(part) in forms}
    return hits.pop() if len(hits) == 1 else ("?" if hits else None)


@exercise("cmp.slope")
def _cmp_slope(answer):
    value = as_number(answer)
    if abs(value - 2) <= 0.05:                  # the exponent the question asks for (a float written 2.0 is fine)
        return None
    if abs(value - 1) <= 0.05:
        return "ex.cmp.slope.linear"
    if abs(value - 4) <= 0.05 or abs(value - 8) <= 0.05:
        return "ex.cmp.slope.factor", dict(answer=describe(answer))
    if abs(value - 2) <= 0.4:
        return "ex.cmp.slope.measured", dict(answer=describe(answer))
    return "ex.cmp.slope.other"


@exercise("cmp.memory")
def _cmp_memory(answer):
    value = as_number(answer)
    B, h, N = 8, 8, 3136
    values = B * h * N * N                       # float32 scores of the whole batch
    exact = values * 4 / 2 ** 30

    def near(target, tol=0.02):
        return abs(value - target) <= tol * abs(target)

    if near(exact):
        return None
    for slip, target in (("decimal", values * 4 / 1e9), ("one_factor", exact / 8), ("one_matrix", exact / 64),
                         ("float64", exact * 2), ("float16", exact / 2), ("bits", exact * 8),
                         ("mib", exact * 1024), ("bytes", values * 4)):
        if near(target):
            return f"ex.cmp.memory.{slip}"
    return "ex.cmp.memory.other"


@exercise("cmp.cheapest", allow=("MECHANISMS", "count_parameters"))   # as the solution does
def _cmp_cheapest(answer):
    name = _mechanism_named(answer)
    if name is None:
        name = _mechanism_named(as_name(answer, example="'CBAM'"))
    if name is None:
        return "ex.cmp.cheapest.unknown", dict(name=describe(answer))
    if name == "?":
        return "ex.cmp.cheapest.ambiguous", dict(name=describe(answer))
    if MECHANISMS[name].layout != "feature_map":
        return "ex.cmp.cheapest.tokens"
    said = describe(answer) if isinstance(answer, (str, bytes)) else repr(MECHANISMS[name].display_name())
    return None if name == "eca" else ("ex.cmp.cheapest.other", dict(name=said))
