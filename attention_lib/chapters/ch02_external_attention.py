"""Chapter 02 · External Attention and its multi-head form: strings, figures, exercises, explorers and demos.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch02_external_attention as ch``.
Besides the figures, it holds what the chapter runs on purpose: the ablation with a single softmax over
the slots, and two common slips (memories in a plain Python list, heads in a Python loop).
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..external_attention import EPS, ExternalAttention, MultiHeadExternalAttention, double_normalization
from ..registry import MECHANISMS
from ..toolkit import readings as rd
from ..toolkit import viewer
from ..toolkit.data import SHAPE_CLASSES, box_masks, brightness_maps
from ..toolkit.exercises import (Slip, as_count, as_function, as_shape, call, case, close, exercise, expect_tensor,
                                  which)
from ..toolkit.format import Table, fit_slope, format_count
from ..toolkit.i18n import register, t
from ..toolkit.instruments import count_parameters
from ..toolkit.train import ShapesTokens, one_thread
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls
from ._ch02_demos import SlotSoftmaxDemo, SlotSoftmaxExternalAttention  # noqa: F401
from ._ch02_figures import (normalisations, plot_experiment, plot_map_sizes,  # noqa: F401
                            plot_normalisations, plot_slot_gallery, plot_slot_shares, slot_target_share)

register({
    "ch02.explorer.memory_size": {"en": "memory slots S", "zh": "槽位数 S"},
    "ch02.explorer.coef": {"en": "expansion coef", "zh": "扩展系数 coef"},
    # §1
    "ch02.sizes.self": {"en": "Self-attention: {n} × {n} weights, from this image alone",
                        "zh": "自注意力：{n} × {n} 个权重，只由这张图像算出"},
    "ch02.sizes.external": {"en": "External Attention: {n} × {s} weights, against shared memories",
                            "zh": "外部注意力：{n} × {s} 个权重，与共享记忆比较得到"},
    "ch02.sizes.title": {"en": "The same image through two trained token mixers",
                         "zh": "同一张图像经过两个训练好的词元混合器"},
    # §3, §5
    "ch02.sums": {"en": "after the softmax over N, every column sums to 1: {cols}; after the ℓ1 step, every "
                        "row sums to 1: {rows}",
                  "zh": "对 N 做 softmax 之后，每一列之和都是 1：{cols}；经过 ℓ1 归一化之后，每一行之和都是 1：{rows}"},
    "ch02.same": {"en": "same output as the module: {out}; same attention map: {map}",
                  "zh": "与库模块的输出一致：{out}；注意力图一致：{map}"},
    "ch02.same_heads": {"en": "same output as forward: {fast}; as forward_explicit: {explicit}",
                        "zh": "与 forward 的输出一致：{fast}；与 forward_explicit 一致：{explicit}"},
    "ch02.counts": {"en": "{name}: parameters {params:,} (formula {params_formula:,}); FLOPs per sample {flops:,} "
                          "(formula {flops_formula:,})",
                    "zh": "{name}：参数量 {params:,}（公式 {params_formula:,}）；每个样本的浮点运算次数 {flops:,}"
                          "（公式 {flops_formula:,}）"},
    "ch02.scaling.external": {"en": "multi-head External Attention", "zh": "多头外部注意力"},
    "ch02.scaling.explicit": {"en": "self-attention, explicit", "zh": "自注意力，显式计算"},
    "ch02.scaling.fused": {"en": "self-attention, fused kernel", "zh": "自注意力，融合核函数"},
    # §6
    "ch02.variant.none": {"en": "no token mixer", "zh": "无词元混合"},
    "ch02.variant.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch02.variant.slot_softmax": {"en": "EA, softmax over slots only", "zh": "外部注意力，只对槽位做 softmax"},
    "ch02.variant.self": {"en": "self-attention", "zh": "自注意力"},
    "ch02.table.mixer": {"en": "token mixer", "zh": "词元混合器"},
    "ch02.table.params": {"en": "its parameters", "zh": "参数量"},
    "ch02.table.acc": {"en": "val. accuracy (mean ± sample sd)", "zh": "验证集准确率（均值 ± 样本标准差）"},
    "ch02.table.seeds": {"en": "per seed", "zh": "各随机种子"},
    "ch02.table.train": {"en": "training accuracy, per seed", "zh": "训练准确率（各随机种子）"},
    "ch02.table.loss": {"en": "final training loss, per seed", "zh": "最终训练损失（各随机种子）"},
    "ch02.table.moved": {"en": "largest move of val. accuracy, last 4 epochs",
                         "zh": "验证集准确率在最后 4 轮中的最大变动"},
    "ch02.closing.seed": {"en": "seed", "zh": "随机种子"},
    "ch02.closing.lead": {"en": "self-attention minus External Attention at the end, paired by seed: {change}",
                          "zh": "结束时自注意力减外部注意力，按随机种子配对：{change}"},
    "ch02.experiment.chance": {"en": "chance (4 classes)", "zh": "随机猜测（4 类）"},
    "ch02.tie": {"en": "the two memories share storage after the tie: {before}; after .double(): {after}",
                 "zh": "绑定之后两块记忆共用存储：{before}；调用 .double() 之后：{after}"},
    "ch02.closing.gap": {"en": "self-attention's lead, epoch {e}", "zh": "自注意力领先，第 {e} 轮"},
    "ch02.closing.train": {"en": "{name}: training acc., epoch {e}", "zh": "{name}：训练准确率，第 {e} 轮"},
    "ch02.experiment.title": {"en": "Three token mixers of equal size, three seeds each",
                              "zh": "三种参数量相同的词元混合器，各三个随机种子"},
    "ch02.experiment.acc_title": {"en": "Final accuracy (bars: mean; whiskers: sample sd; dots: seeds)",
                                  "zh": "最终准确率（柱：均值；误差棒：样本标准差；圆点：各随机种子）"},
    "ch02.experiment.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch02.experiment.epoch": {"en": "epoch", "zh": "训练轮次"},
    "ch02.experiment.curve_title": {"en": "After every epoch (one line per run)", "zh": "每轮之后（每次运行一条线）"},
    "ch02.relation.seed": {"en": "seed", "zh": "随机种子"},
    "ch02.relation.intact": {"en": "intact", "zh": "不屏蔽"},
    "ch02.relation.within": {"en": "target ↔ target blocked (~{within} pairs)", "zh": "屏蔽目标内部（约 {within} 对）"},
    "ch02.relation.within_random": {"en": "as many random pairs", "zh": "同样多的随机词元对"},
    "ch02.relation.fetch": {"en": "others → target blocked (~{fetch} pairs)", "zh": "屏蔽其余词元读取目标（约 {fetch} 对）"},
    "ch02.relation.fetch_random": {"en": "as many random pairs", "zh": "同样多的随机词元对"},
    "ch02.relation.mass": {"en": "seed {seed}: share of the image's attention removed: target ↔ target {within:.0%} "
                                 "(random pairs {within_random:.0%}); others → target {fetch:.0%} (random pairs "
                                 "{fetch_random:.0%}); all pairs outside that block hold {rest:.0%}",
                           "zh": "随机种子 {seed}：被移除的注意力占整张图像注意力的比例，目标内部 {within:.0%}（随机词元对 "
                                 "{within_random:.0%}）；其余词元读取目标 {fetch:.0%}（随机词元对 {fetch_random:.0%}）；"
                                 "该屏蔽之外的所有词元对只占 {rest:.0%}"},
    "ch02.scaling.rates": {"en": "N = {n}: multi-head External Attention {e[mflop]:.0f} MFLOP in {e[ms]:.1f} ms "
                                 "({e[rate]:.1f} GFLOP/s); fused self-attention {f[mflop]:.0f} MFLOP in {f[ms]:.1f} ms "
                                 "({f[rate]:.1f} GFLOP/s)",
                           "zh": "N = {n}：多头外部注意力 {e[mflop]:.0f} MFLOP，耗时 {e[ms]:.1f} ms（{e[rate]:.1f} GFLOP/s）；"
                                 "融合的自注意力 {f[mflop]:.0f} MFLOP，耗时 {f[ms]:.1f} ms（{f[rate]:.1f} GFLOP/s）"},
    "ch02.cross.dim": {"en": "D", "zh": "D"},
    "ch02.cross.heads": {"en": "h", "zh": "h"},
    "ch02.cross.memory": {"en": "S", "zh": "S"},
    "ch02.cross.crossover": {"en": "self-attention costs more from N =", "zh": "自注意力更贵的起点 N ="},
    "ch02.cross.estimate": {"en": "2D + 4S", "zh": "2D + 4S"},
    "ch02.cross.ratio": {"en": "multi-head EA / self-attention at N = {at}", "zh": "N = {at} 时多头外部注意力 / 自注意力"},
    "ch02.l1.top": {"en": "slots whose favourite token (the largest weight in the slot's column) is the same before "
                          "and after the ℓ1 step: {same} of {S}; each token's ratios between slots: unchanged "
                          "(largest relative change {ratio:.1e})",
                    "zh": "ℓ1 归一化前后，偏爱的词元（该槽位那一列中权重最大的词元）不变的槽位：{S} 个中有 {same} 个；"
                          "每个词元在各槽位之间的比例不变（最大相对变化 {ratio:.1e}）"},
    "ch02.share.ratio": {"en": "in units of the target's share of the tokens: the three best slots {best}; {above} of "
                               "the {S} slots above 2, {below} below 1; the random network's best slot {random}",
                         "zh": "以目标所占词元的比例为单位：最好的三个槽位为 {best}；{S} 个槽位中有 {above} 个高于 2，"
                               "{below} 个低于 1；随机初始化网络中最好的槽位为 {random}"},
    "ch02.share.rules": {"en": "rules that learn nothing, in the same units: a map ∝ brightness {b1:.1f}, ∝ brightness⁴ "
                               "{b4:.1f}, ∝ brightness⁸ {b8:.1f}; the brightest token lies on the target in {peak:.1%} "
                               "of the images",
                         "zh": "同样单位下无需学习的规则：与亮度成正比的图 {b1:.1f}，与亮度四次方成正比 {b4:.1f}，"
                               "与亮度八次方成正比 {b8:.1f}；最亮的词元落在目标上的图像占 {peak:.1%}"},
    "ch02.share.copies": {"en": "slots whose maps correlate above {level} with another slot's (over {n} images): {copies} "
                                "of {S}; between the three best slots: {best}",
                          "zh": "与另一个槽位的图相关系数高于 {level} 的槽位（在 {n} 张图像上计算）：{S} 个中有 {copies} 个；"
                                "最好的三个槽位之间：{best}"},
    "ch02.gallery.hits": {"en": "the three best slots' largest weight falls on the target in {hits} of {pairs} "
                                "(slot, image) pairs",
                          "zh": "最好的三个槽位的最大权重落在目标上的（槽位，图像）组合：{pairs} 个中有 {hits} 个"},
    "ch02.norm.title": {"en": "One trained map, three normalisations (image {i})",
                        "zh": "同一组训练好的分数，三种归一化（图像 {i}）"},
    "ch02.norm.slots": {"en": "(a) softmax over the S slots\n(each row sums to 1)",
                        "zh": "(a) 只对 S 个槽位做 softmax\n（每行之和为 1）"},
    "ch02.norm.tokens": {"en": "(b) softmax over the N tokens\n(each column sums to 1)",
                         "zh": "(b) 只对 N 个词元做 softmax\n（每列之和为 1）"},
    "ch02.norm.double": {"en": "(c) double: softmax over N, then ℓ1 over S\n(each row sums to 1)",
                         "zh": "(c) 双重归一化：先对 N 做 softmax，\n再对 S 做 ℓ1（每行之和为 1）"},
    "ch02.row_sums": {"en": "softmax over N alone: row sums from {low:.3g} to {high:.3g} (median {median:.3g}; the "
                            "tenth of the tokens with the largest sums hold {top:.0%} of the total); their mean is "
                            "S/N = {mean:.3g}",
                      "zh": "只对 N 做 softmax：各行之和从 {low:.3g} 到 {high:.3g}（中位数 {median:.3g}；行和最大的十分之一"
                            "词元占总和的 {top:.0%}）；其均值为 S/N = {mean:.3g}"},
    "ch02.isolation": {"en": "other tokens replaced: largest change of token {i}'s row with the slot softmax "
                             "{slot:.2g}, with the double normalisation {double:.2g}",
                       "zh": "把其余词元换掉之后，词元 {i} 那一行的最大变化：只对槽位做 softmax 时为 {slot:.2g}，"
                             "双重归一化时为 {double:.2g}"},
    "ch02.share.title": {"en": "Share of each slot's weight that falls on the target ({n} images)",
                         "zh": "每个槽位的权重落在目标上的比例（{n} 张图像）"},
    "ch02.share.slot": {"en": "memory slot", "zh": "槽位"},
    "ch02.gallery.share": {"en": "({share:.0%})", "zh": "（{share:.0%}）"},
    "ch02.share.y": {"en": "share on the target's tokens", "zh": "落在目标词元上的比例"},
    "ch02.share.trained": {"en": "trained", "zh": "训练后"},
    "ch02.share.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch02.share.chance": {"en": "target's share of the tokens ({p:.0%})", "zh": "目标所占词元的比例（{p:.0%}）"},
    "ch02.share_print": {"en": "target's share of the tokens: {chance:.1%}; best trained slot: {best:.1%} "
                               "(slot {j}); best random slot: {random:.1%}",
                         "zh": "目标所占词元的比例：{chance:.1%}；训练后最好的槽位：{best:.1%}（槽位 {j}）；"
                               "随机初始化时最好的槽位：{random:.1%}"},
    "ch02.gallery.title": {"en": "Each row: one memory slot's weights over different images",
                           "zh": "每一行：同一个槽位在不同图像上的权重"},
    "ch02.gallery.photo_title": {"en": "The trained slots on a photograph", "zh": "训练好的槽位在一张照片上"},
    "ch02.gallery.slot": {"en": "slot {j}", "zh": "槽位 {j}"},
    "ch02.gallery.image": {"en": "image", "zh": "图像"},
    "ch02.gallery.weight": {"en": "weight α (slot's column)", "zh": "权重 α（该槽位所在的列）"},
    "ch02.accuracy": {"en": "trained External Attention model (seed 0): {acc:.1%} on {n} validation images "
                            "(chance: 25%)",
                      "zh": "训练好的外部注意力模型（随机种子 0）：在 {n} 张验证图像上的准确率为 {acc:.1%}（随机猜测为 25%）"},
    # §7, §8
    "ch02.head_maps": {"en": "N = {N} tokens: self-attention's map holds {sa:,} weights per head, External "
                             "Attention's {ea:,}",
                       "zh": "N = {N} 个词元：自注意力的注意力图每个头有 {sa:,} 个权重，外部注意力只有 {ea:,} 个"},
    "ch02.list.params": {"en": "parameters the module reports: {n}; state_dict keys: {keys}",
                         "zh": "模块报告的参数量：{n}；state_dict 的键：{keys}"},
    "ch02.list.fixed": {"en": "with nn.ModuleList: {n} parameters; state_dict keys: {keys}",
                        "zh": "改用 nn.ModuleList 之后：{n} 个参数；state_dict 的键：{keys}"},
    "ch02.loop.title": {"en": "B = {B}, N = {N}, {H} heads: loop {loop}, forward_explicit {explicit}, "
                              "forward {fast}",
                        "zh": "B = {B}，N = {N}，{H} 个头：循环 {loop}，forward_explicit {explicit}，forward {fast}"},
    "ch02.loop.ops": {"en": "operators per call: loop {loop}, forward_explicit {explicit}, forward {fast}",
                      "zh": "每次调用的算子数：循环 {loop}，forward_explicit {explicit}，forward {fast}"},
    "ch02.fp16": {"en": "{what}: NaN in the output: {nan}", "zh": "{what}：输出中有 NaN：{nan}"},
    "ch02.fp16.no_eps": {"en": "float16, no ε", "zh": "float16，不加 ε"},
    "ch02.fp16.eps": {"en": "float16, ε = 1e-9", "zh": "float16，ε = 1e-9"},
    "ch02.fp16.library": {"en": "library (float32 inside)", "zh": "本书的库（内部用 float32）"},
    # exercise verdicts
    "ex.ea.shape.no_coef": {"en": "the official layout computes coef × num_heads heads, not num_heads.",
                            "zh": "官方实现计算的头数是 coef × num_heads，而不是 num_heads。"},
    "ex.ea.shape.transposed": {"en": "the map is (tokens, slots) per head: N comes before S.",
                               "zh": "每个头的注意力图是（词元，槽位）：N 在 S 之前。"},
    "ex.ea.shape.no_heads": {"en": "the multi-head map keeps a head axis after the batch axis.",
                             "zh": "多头注意力图在批量维度之后还有一个头维度。"},
    "ex.ea.shape.self": {"en": "that is self-attention's (N, N) map; External Attention compares each token "
                               "with S slots.",
                         "zh": "这是自注意力的 (N, N) 注意力图；外部注意力把每个词元与 S 个槽位比较。"},
    "ex.ea.shape.other": {"en": "one weight per sample, head, token and memory slot.",
                          "zh": "每个样本、每个头、每个词元、每个槽位各一个权重。"},
    "ex.ea.params.per_head": {"en": "the heads share one pair of memories: count M_k and M_v once, not per head.",
                              "zh": "所有头共享同一对记忆：M_k 和 M_v 只算一次，不要按头数乘。"},
    "ex.ea.params.no_bias": {"en": "all four linear layers have a bias in the official layout.",
                             "zh": "官方实现里四个线性层都有偏置。"},
    "ex.ea.params.wide_head": {"en": "a head is d = D / h wide: coef × D features split into coef × h heads.",
                               "zh": "每个头的宽度是 d = D / h：coef × D 个特征被分成 coef × h 个头。"},
    "ex.ea.params.no_proj": {"en": "the projection back from coef × D to D (proj) is missing.",
                             "zh": "漏掉了从 coef × D 投影回 D 的 proj 层。"},
    "ex.ea.params.single": {"en": "2SD is the single-head module; the multi-head one adds trans_dims and proj.",
                            "zh": "2SD 是单头模块的参数量；多头版本还有 trans_dims 和 proj。"},
    "ex.ea.params.other": {"en": "count the weight and the bias of every linear layer in §4's source; the heads share "
                                 "the memories, and a head is d = D / h wide.",
                           "zh": "把 §4 源代码中每个线性层的权重和偏置都数一遍；各头共享记忆，每个头的宽度是 d = D / h。"},
    "ex.ea.norm.dtype": {"en": "for {expected} logits the result is {got}: compute in float32 if you like, "
                               "but return the input's dtype.",
                         "zh": "输入是 {expected}，结果却是 {got}：中间可以用 float32 计算，但要返回输入的数据类型。"},
    "ex.ea.norm.nan": {"en": "NaN in the float16 result: a token that matches no slot gets a row of zeros, and "
                             "1e-9 is 0 in float16. Normalise in float32, then cast back.",
                       "zh": "float16 结果里出现了 NaN：不匹配任何槽位的词元得到一整行 0，而 1e-9 在 float16 里就是 0。"
                             "请用 float32 做归一化，再转换回来。"},
    "ex.ea.norm.slots_softmax": {"en": "this is a softmax over the slots (dim=-1): the first softmax runs over "
                                       "the N tokens (dim=-2).",
                                 "zh": "这是对槽位（dim=-1）做 softmax；第一步的 softmax 应对 N 个词元（dim=-2）做。"},
    "ex.ea.norm.no_l1": {"en": "the softmax over tokens is right; the ℓ1 step over the slots is missing.",
                         "zh": "对词元的 softmax 没错，但缺了对槽位的 ℓ1 归一化。"},
    "ex.ea.norm.swapped": {"en": "the two steps are in the wrong order: softmax over tokens first, then ℓ1 "
                                 "over slots.",
                           "zh": "两步的顺序反了：先对词元做 softmax，再对槽位做 ℓ1 归一化。"},
    "ex.ea.norm.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: does a "
                                ".squeeze() drop the batch axis?",
                          "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.ea.case.heads": {"en": "It passed the first test; this one has one more leading axis, the heads: (B, h, N, S) = "
                               "{shape}. Is an axis counted from the front (dim=1) instead of from the end (dim=-2)?",
                         "zh": "第一组测试通过了；这一组在前面多了一个头维度：(B, h, N, S) = {shape}。"
                               "是不是从前往后数了维度（dim=1），而不是从后往前（dim=-2）？"},
    "ex.ea.case.half": {"en": "It passed the first tests in float32; this one is float16, with a token that matches "
                              "no slot: that token's weights should stay near 0 (the ε keeps its row from being "
                              "rescaled to sum to 1).",
                        "zh": "float32 的几组测试都通过了；这一组是 float16，而且有一个词元不匹配任何槽位："
                              "这个词元的权重应当接近 0（ε 的作用就是不让这一行被重新缩放成和为 1）。"},
    "ex.ea.norm.other": {"en": "the values differ from softmax over dim -2, then division by ε + the sum over "
                               "dim -1.",
                         "zh": "数值与“先对 dim -2 做 softmax，再除以 ε 加 dim -1 上的和”不一致。"},
})


# ---------------------------------------------------------------- §5: the costs compared like for like

def _flops(name: str, n: int, dim: int, heads: int, memory_size: int, coef: int = 4) -> int:
    """FLOPs per sample of the registry's formula for ``name`` on ``(1, n, dim)`` (the official coef = 4)."""
    kwargs = dict(dim=dim, num_heads=heads)
    if name == "multi_head_external_attention":
        kwargs.update(memory_size=memory_size, coef=coef)
    return MECHANISMS[name].expected_flops((1, n, dim), **kwargs)


def crossovers(settings: Sequence[tuple], at: int = 197) -> list:
    """For each ``(D, h, S)``: the smallest N from which self-attention costs more FLOPs than the official
    multi-head External Attention (coef = 4), the estimate 2D + 4S, and the ratio of their FLOPs at N = ``at``."""
    rows = []
    for dim, heads, memory in settings:
        n = 1
        while _flops("self_attention", n, dim, heads, memory) <= _flops("multi_head_external_attention", n, dim,
                                                                         heads, memory):
            n += 1
        ratio = _flops("multi_head_external_attention", at, dim, heads, memory) / _flops("self_attention", at, dim,
                                                                                          heads, memory)
        rows.append(dict(dim=dim, heads=heads, memory=memory, crossover=n, estimate=2 * dim + 4 * memory,
                         at=at, ratio=ratio))
    return rows


def crossover_table(rows: Sequence[dict]) -> Table:
    """:func:`crossovers` as a table."""
    cells = [[str(r["dim"]), str(r["heads"]), str(r["memory"]), format_count(r["crossover"]),
              format_count(r["estimate"]), f"{r['ratio']:.2f}"] for r in rows]
    at = rows[0]["at"]
    return Table([t(f"ch02.cross.{k}").format(at=at) for k in ("dim", "heads", "memory", "crossover", "estimate",
                                                                "ratio")], cells)


def check_crossover_readings(rows: Sequence[dict]) -> None:
    """§5's sentences on the crossover: it lies near 2D + 4S, and below it the multi-head form costs more."""
    rd.expect("the crossover lies within 5 % of 2D + 4S",
              all(abs(r["crossover"] / r["estimate"] - 1) <= 0.05 for r in rows),
              crossover=[r["crossover"] for r in rows], estimate=[r["estimate"] for r in rows])
    wide = [r for r in rows if r["dim"] == 256]
    rd.expect("at N = 197 and D = 256 the multi-head form costs about 1.8 times the FLOPs of self-attention",
              bool(wide) and all(1.75 <= r["ratio"] <= 1.85 for r in wide), ratio=[round(r["ratio"], 2) for r in wide])


def scaling_rates(n: int, seconds: Mapping[str, list], ns: Sequence[int], external: str, fused: str,
                  dim: int = 64, heads: int = 8, memory_size: int = 64) -> dict:
    """FLOPs (the registry's formulas) and the rate in GFLOP/s of multi-head External Attention and of fused
    self-attention at ``n`` tokens, from the measured ``seconds``."""
    i = list(ns).index(n)
    out = {}
    for key, name in (("external", "multi_head_external_attention"), ("fused", "self_attention")):
        flops = _flops(name, n, dim, heads, memory_size)
        t_ = seconds[external if key == "external" else fused][i]
        out[key] = dict(mflop=flops / 1e6, ms=t_ * 1e3, rate=flops / t_ / 1e9)
    return out


def check_scaling_readings(ns: Sequence[int], seconds: Mapping[str, list], memory: Mapping[str, list],
                           external: str, explicit: str, fused: str) -> None:
    """§5's sentences on the measured curves (keys: the method names the figure uses): the memory slopes (exact,
    machine-independent). No time is read: the explicit path, clearly the slowest at N = 1024 in most builds, measured
    faster than External Attention in one build on a loaded machine (0.050 against 0.090 s), and the printed FLOP
    rates are not read either: the fused kernel's rate measured above External
    Attention's in most builds and below it (22.5 against 26.4 GFLOP/s) in one, on a loaded machine."""
    slope = {k: fit_slope(ns[:len(v)], v, 3) for k, v in memory.items()}
    rd.expect("memory grows with slope about 2 on the explicit path, about 1 on the fused path, and about 1 or less "
              "for multi-head External Attention", abs(slope[explicit] - 2) < 0.2 and abs(slope[fused] - 1) < 0.15
              and slope[external] < 1.1, slopes={k: round(v, 2) for k, v in slope.items()})
    ratio = [e / f for e, f in zip(memory[external], memory[fused])]
    rd.expect("multi-head External Attention needs several times the fused kernel's extra memory at every N "
              "measured (at least three times)", min(ratio) >= 3, ratio=[round(r, 1) for r in ratio])


# ---------------------------------------------------------------- §6: what the slots and the two steps do

def l1_step(maps: Mapping[str, torch.Tensor]) -> dict:
    """What the ℓ1 step changes, from :func:`normalisations` of one image's scores ``(N, S)``: in how many
    slots the favourite token (the largest weight of the slot's column) is the same before and after it, and
    the largest relative change of a token's ratios between slots (zero up to rounding: it keeps them)."""
    before, after = maps["tokens"], maps["double"]                        # (N, S) each
    same = int((before.argmax(0) == after.argmax(0)).sum())
    ratios = lambda m: m / m[:, :1]                                       # noqa: E731  each row over its slot 0
    change = ((ratios(after) - ratios(before)).abs() / ratios(before)).max().item()
    return dict(same=same, S=before.shape[1], ratio=change)


def top_share(rows: torch.Tensor, part: float = 0.1) -> float:
    """The share of the total held by the ``part`` of the rows (tokens) with the largest sums."""
    k = max(1, int(part * len(rows)))
    return (rows.sort(descending=True).values[:k].sum() / rows.sum()).item()


def check_row_sum_readings(rows: torch.Tensor, memory_size: int) -> None:
    """§6's sentence on the softmax over the tokens alone: a few tokens hold almost all the weight (the tenth of the
    tokens with the largest row totals hold at least 80 % of it), and the totals average exactly S/N."""
    n = len(rows)
    rd.expect("with the softmax over the tokens alone a few tokens hold almost all the weight (the largest tenth at "
              "least 80 %), and the row totals average S/N", top_share(rows) >= 0.8
              and abs(rows.mean().item() - memory_size / n) < 1e-4,
              top=round(top_share(rows), 3), median=round(rows.median().item(), 3),
              mean=round(rows.mean().item(), 4), s_over_n=memory_size / n)


def check_isolation_readings(slot: float, double: float) -> None:
    """§6's sentence on the isolation check: token i's row does not move under the slot softmax, and does move
    under the double normalisation."""
    rd.expect("the row does not move at all under the slot softmax; under the double normalisation it does",
              slot == 0 and double > 1e-3, slot=slot, double=double)


def check_l1_readings(step: dict) -> None:
    """§6's sentence on the ℓ1 step: it keeps each token's ratios between slots and changes the favourite token
    of more than half of the slots."""
    changed = step["S"] - step["same"]
    rd.expect("the ℓ1 step keeps each token's ratios between slots exactly, and changes the favourite token of "
              "more than half of the slots", step["ratio"] < 1e-4 and changed > 0.5 * step["S"], **step)


def slot_summary(mean_share: torch.Tensor, chance: float, random_share: torch.Tensor) -> dict:
    """The slots' shares on the target (one per slot, averaged over images) in units of the target's share of the
    tokens: the three best, how many slots exceed twice it, how many fall below it; the random network's best."""
    ratio = mean_share / chance
    return dict(best=[round(v, 1) for v in ratio.sort(descending=True).values[:3].tolist()],
                above=int((ratio > 2).sum()), below=int((ratio < 1).sum()), S=len(ratio),
                random=round((random_share.max() / chance).item(), 2))


def check_slot_readings(summary: dict, rules: dict, copies: dict) -> None:
    """§6's sentences on the slots' shares on the target, against :func:`slot_summary`, the no-learning rules of
    :func:`brightness_rules` and the redundancy of :func:`slot_copies`."""
    rd.expect("after training the best slots put about five times the target's share of the tokens on it, many "
              "slots more than twice it, and some fall below it; the random network's best slot stays near it",
              4.5 <= summary["best"][0] <= 5.5 and summary["above"] >= 10 and summary["below"] >= 5
              and summary["random"] < 1.5, **summary)
    rd.expect("a map ∝ brightness⁴ does about as well as the best slot (within 15 %), brightness⁸ better, and the "
              "brightest token lies on the target in at least 95 % of the images",
              abs(summary["best"][0] / rules["b4"] - 1) <= 0.15 and rules["b8"] > summary["best"][0]
              and rules["peak"] >= 0.95, best=summary["best"][0], **{k: round(v, 3) for k, v in rules.items()})
    rd.expect("many slots are near copies: at least a quarter of them have a partner above the level; the three "
              "best slots correlate with one another at 0.7 or more (two decimals), though below the level",
              copies["copies"] >= copies["S"] / 4 and 0.695 <= min(copies["best"])
              and max(copies["best"]) < copies["level"], **copies)


def brightness_rules(images: torch.Tensor, boxes: torch.Tensor, grid: int, image_size: int, chance: float) -> dict:
    """The no-learning rules beside the slots' shares: the share on the target of a map proportional to each
    token's brightness to the power 1, 4 and 8, in units of the target's share of the tokens ``chance``
    (the slots' unit), and how often the brightest token lies on the target."""
    b = brightness_maps(images, grid, grid).flatten(1)                        # (G, N): each token's brightness
    inside = box_masks(boxes, grid, grid, image_size).flatten(1)             # (G, N)
    out = {f"b{p}": slot_target_share((b ** p)[:, :, None], boxes, grid, image_size)[0].mean().item() / chance
           for p in (1, 4, 8)}
    out["peak"] = inside[torch.arange(len(b)), b.argmax(1)].float().mean().item()
    return out


def slot_copies(attn: torch.Tensor, slots: Sequence[int], level: float = 0.8) -> dict:
    """How redundant the slots are: the correlation, over all images and tokens, of every two slots' columns of
    ``attn`` ``(G, N, S)`` (each normalised to sum to 1 over the tokens); how many slots have a partner above
    ``level``, and the correlations between the given ``slots`` (the gallery's best three)."""
    column = attn / attn.sum(1, keepdim=True).clamp_min(1e-12)               # (G, N, S)
    corr = torch.corrcoef(column.permute(2, 0, 1).flatten(1))                # (S, S)
    partner = (corr - torch.eye(len(corr))).amax(1)                          # each slot's closest other slot
    best = [round(corr[i, j].item(), 2) for k, i in enumerate(slots) for j in slots[k + 1:]]
    return dict(copies=int((partner > level).sum()), S=len(corr), level=level, n=len(attn), best=best)


def gallery_hits(attn: torch.Tensor, boxes: torch.Tensor, slots: Sequence[int], grid: int, image_size: int) -> dict:
    """For the gallery: in how many (slot, image) pairs the slot's largest weight falls on a token of the target."""
    inside = box_masks(boxes, grid, grid, image_size).flatten(1)                      # (G, N)
    hits = sum(bool(inside[g, attn[g, :, j].argmax()]) for j in slots for g in range(len(attn)))
    return dict(hits=hits, pairs=len(slots) * len(attn))


def check_gallery_readings(hits: dict) -> None:
    """§6's sentence on the gallery's best slots: brightest on the target in most images, not in all."""
    rd.expect("the best slots are brightest on the target in most images, but not in all",
              2 * hits["pairs"] / 3 <= hits["hits"] < hits["pairs"], **hits)


class _OperatorCounter(TorchDispatchMode):
    """Counts the ATen operators a call runs (each one is a kernel launch on a GPU)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def count_operators(fn, x: torch.Tensor) -> int:
    """How many ATen operators one call ``fn(x)`` runs: a count that, unlike a time, no busy machine changes."""
    with _OperatorCounter() as counter:
        fn(x)
    return counter.count


def check_loop_readings(counts: dict) -> None:
    """§8's sentence on the Python loop over heads: it runs many times more operators than either batched form
    (``counts``: ``loop``, ``explicit``, ``fast`` for one setting)."""
    rd.expect("the loop runs at least five times as many operators as either batched form",
              counts["loop"] >= 5 * max(counts["explicit"], counts["fast"]), **counts)


# ---------------------------------------------------------------- demos and the ablation

#: The memory of §6's External Attention: the paper's S = 64, which gives the mixer 2SD = 4,096 parameters at
#: D = 32, next to self-attention's 4D² + D = 4,128: the two mixers of the experiment have equal budgets.
MEMORY_SIZE = 64
#: The training of §6's runs: 24 epochs of 32-image batches (750 steps), after which every run of every mixer fits
#: its training images and its validation accuracy has stopped moving (both checked in every build). The 16 epochs
#: of 64-image batches of earlier editions left External Attention still learning (training accuracy 0.93-0.95)
#: and overstated self-attention's lead (16-20 points then, 4-9 now).
TRAINING = dict(n_train=1000, epochs=24, lr=1e-2, batch_size=32)
#: The seeds of the §6 experiment (initialisation and shuffling; the images are the same).
SEEDS = (0, 1, 2)


#: §6's experiment: one network at one width (D = 32), three token mixers of (almost) equal size, every seed:
#: the ablation that cannot mix, External Attention, self-attention.
EXPERIMENT: Mapping[str, ShapesTokens] = {
    "slot_softmax": SlotSoftmaxDemo(memory_size=MEMORY_SIZE, **TRAINING),
    "external": ShapesTokens(attention="external_attention", memory_size=MEMORY_SIZE, **TRAINING),
    "self": ShapesTokens(attention="self_attention", **TRAINING),
}
#: The §6 model: a conv stem's 8 x 8 token grid, one block whose token mixer is External Attention, S = 64.
EA_DEMO = EXPERIMENT["external"]


def summarise(runs: Mapping[str, Sequence]) -> dict:
    """``{name: [Demo per seed]}`` -> ``{name: dict(acc=[...], curves=[[...]], train=[...], train_curves=[[...]],
    loss=[...], params=int)}``: the final validation accuracy of each run, its validation accuracy after every
    epoch, its training accuracy in the last epoch and after every epoch, its training loss in the last epoch, and
    the token mixer's parameters (the rest of the network is the same for all)."""
    return {name: dict(acc=[d.history["val_acc"][-1] for d in demos],
                       curves=[list(d.history["val_acc"]) for d in demos],
                       train=[d.history["acc"][-1] for d in demos],
                       train_curves=[list(d.history["acc"]) for d in demos],
                       loss=[d.history["loss"][-1] for d in demos],
                       params=count_parameters(demos[0].model.block.attn))
            for name, demos in runs.items()}


def _last_change(curve: Sequence[float], epochs: int = 4) -> float:
    """How much the validation accuracy moved over the last ``epochs`` epochs (largest minus smallest)."""
    tail = list(curve)[-epochs:]
    return max(tail) - min(tail)


def experiment_table(summary: Mapping[str, dict]) -> Table:
    """The experiment as a table: mixer, its parameters, validation accuracy (mean ± sample sd, per seed), the
    training accuracy and loss of each seed in the last epoch and how much the validation accuracy still moved
    over the last four epochs."""
    rows = []
    for name, r in summary.items():
        acc = rd.seeds(r["acc"])
        rows.append([t(f"ch02.variant.{name}"), format_count(r["params"]), f"{acc.mean:.3f} ± {acc.sd:.3f}",
                     ", ".join(f"{a:.3f}" for a in r["acc"]), ", ".join(f"{a:.3f}" for a in r["train"]),
                     ", ".join(f"{v:.4f}" for v in r["loss"]), f"{max(_last_change(c) for c in r['curves']):.3f}"])
    headers = [t(f"ch02.table.{k}") for k in ("mixer", "params", "acc", "seeds", "train", "loss", "moved")]
    return Table(headers, rows)


def check_experiment_readings(summary: Mapping[str, dict]) -> None:
    """§6's sentences on the experiment, against :func:`summarise`: equal budgets; every run trained to a plateau
    (it fits its training images and its validation accuracy no longer moves); the per-seed changes (the seeds
    share the images and the batch order, so the changes are paired)."""
    params = {name: r["params"] for name, r in summary.items()}
    rd.expect("External Attention with S = 64 and self-attention have the same number of parameters, within 1 %",
              abs(params["external"] - params["self"]) <= 0.01 * params["self"]
              and params["slot_softmax"] == params["external"], params=params)
    train = {name: r["train"] for name, r in summary.items()}
    moved = {name: [_last_change(c) for c in r["curves"]] for name, r in summary.items()}
    rd.expect("every run of every mixer fits its training images (training accuracy at least 0.99 in the last "
              "epoch) and its validation accuracy moved by at most 0.03 over the last four epochs",
              min(min(v) for v in train.values()) >= 0.99 and max(max(v) for v in moved.values()) <= 0.03,
              train={k: [round(v, 3) for v in vs] for k, vs in train.items()},
              moved={k: [round(v, 3) for v in vs] for k, vs in moved.items()})
    mixing = rd.paired(summary["external"]["acc"], summary["slot_softmax"]["acc"])
    rd.expect("External Attention beats its ablation that cannot mix in every seed, by at least ten points",
              mixing.low >= 0.10, change=mixing.format(signed=True))
    relations = rd.paired(summary["self"]["acc"], summary["external"]["acc"])
    rd.expect("under this recipe self-attention ends ahead of External Attention of the same size in every seed, "
              "by at least three points and at most ten", relations.low >= 0.03 and relations.high <= 0.10,
              change=relations.format(signed=True))
    loss = {name: summary[name]["loss"] for name in ("external", "self")}
    rd.expect("External Attention's final training loss is at least twice self-attention's in every seed",
              all(e >= 2 * a for e, a in zip(loss["external"], loss["self"])),
              loss={k: [round(v, 4) for v in vs] for k, vs in loss.items()})


def lead_line(summary: Mapping[str, dict]) -> str:
    """Self-attention's final lead over External Attention, paired by seed (mean ± sample sd and per seed)."""
    return t("ch02.closing.lead", change=rd.paired(summary["self"]["acc"], summary["external"]["acc"]).format(
        signed=True))


#: The epochs at which §6 reads speed of learning: halfway through the schedule and its end.
CLOSING_EPOCHS = (12, 24)


def closing_table(summary: Mapping[str, dict], epochs: Sequence[int] = CLOSING_EPOCHS) -> Table:
    """Per seed: self-attention's lead over External Attention in validation accuracy, and both mixers' training
    accuracy, at each of ``epochs`` (counted from 1), read from the runs' histories."""
    rows = []
    for i, seed in enumerate(SEEDS):
        sa, ea = summary["self"], summary["external"]
        rows.append([str(seed)] + [f"{sa['curves'][i][e - 1] - ea['curves'][i][e - 1]:+.3f}" for e in epochs]
                    + [f"{r['train_curves'][i][e - 1]:.3f}" for r in (ea, sa) for e in epochs])
    headers = ([t("ch02.closing.seed")] + [t("ch02.closing.gap", e=e) for e in epochs]
               + [t("ch02.closing.train", name=t(f"ch02.variant.{n}"), e=e) for n in ("external", "self")
                  for e in epochs])
    return Table(headers, rows)


def check_closing_readings(summary: Mapping[str, dict], epochs: Sequence[int] = CLOSING_EPOCHS) -> None:
    """§6's sentences on speed of learning (``epochs``: halfway and the last): halfway through, External Attention
    had fitted less of its training set than self-attention in every seed (below 0.9 against at least 0.9), and
    self-attention's lead in validation accuracy was larger than at the end in every seed."""
    a, b = (e - 1 for e in epochs)
    sa, ea = summary["self"], summary["external"]
    gap = [[s[a] - e[a], s[b] - e[b]] for s, e in zip(sa["curves"], ea["curves"])]
    early = {"external": [c[a] for c in ea["train_curves"]], "self": [c[a] for c in sa["train_curves"]]}
    rd.expect(f"at epoch {epochs[0]} External Attention's training accuracy was below 0.9 in every seed and "
              f"self-attention's at least 0.9, and self-attention's lead was larger than at epoch {epochs[1]} in "
              "every seed (by at least a point)",
              max(early["external"]) < 0.9 <= min(early["self"]) and all(e - l >= 0.01 for e, l in gap),
              train={k: [round(v, 3) for v in vs] for k, vs in early.items()},
              lead=[[round(v, 3) for v in g] for g in gap])


# ---------------------------------------------------------------- the hypothesis, tested: relations within the target

class MaskedSelfAttention(nn.Module):
    """A trained ``MultiHeadSelfAttention`` run with a per-image boolean mask ``allowed`` ``(B, N, N)``
    (True: query i may attend key j), for the intervention of §6. Set ``allowed`` before calling."""

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention
        self.allowed = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.attention._qkv(x)                                    # (B, h, N, d) each
        B, h, N, d = q.shape
        mask = None if self.allowed is None else self.allowed[:, None].to(x.device)   # (B, 1, N, N)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)          # (B, h, N, d)
        return self.attention.proj(y.transpose(1, 2).reshape(B, N, h * d))  # (B, N, D)


@torch.no_grad()
@one_thread()
def relation_test(model: nn.Module, data, images: int = 250, seed: int = 0) -> dict:
    """Accuracy of a trained self-attention ``TinyTokenNet`` on ``data`` (images, labels, boxes) when some
    attention is blocked: ``within``: between two tokens of the target; ``fetch``: from every other token to the
    target's tokens (the others can no longer read the target); each with a control that blocks as many token
    pairs per image, chosen at random (``*_random``); ``intact``: nothing blocked. A token may always attend to
    itself, so no row is ever fully blocked. The first ``images`` images of ``data`` are used."""
    images, labels, boxes = (part[:images] for part in data[:3])
    model = copy.deepcopy(model).cpu().eval()
    weights = model.attention_map(images).mean(1)                            # (B, N, N), heads averaged
    masked = MaskedSelfAttention(model.block.attn)
    model.block.attn = masked
    n = model.grid ** 2
    inside = box_masks(boxes, model.grid, model.grid, model.image_size).flatten(1)   # (B, N): target tokens
    self_pair = torch.eye(n, dtype=torch.bool)
    blocks = {"within": inside[:, :, None] & inside[:, None, :] & ~self_pair,      # (B, N, N): query, key
              "fetch": ~inside[:, :, None] & inside[:, None, :]}
    g = torch.Generator().manual_seed(seed)

    def accuracy(allowed):
        masked.allowed = allowed
        return (model(images).argmax(-1) == labels).float().mean().item()

    def matched(block):                            # as many pairs per image as ``block``, at random, never (i, i)
        keys = torch.rand(len(images), n * n, generator=g).masked_fill(self_pair.flatten(), 2.0)   # (B, N²)
        rank = keys.argsort(dim=1).argsort(dim=1)                                 # each pair's place in a shuffle
        return ~(rank < block.flatten(1).sum(1, keepdim=True)).view(-1, n, n)   # (B, N, N): allowed


    def mass(block):                               # share of the image's attention (N rows of 1) on the pairs
        return ((weights * block).sum((1, 2)) / n).mean().item()

    out = dict(intact=accuracy(None))
    for name, block in blocks.items():
        out[name] = accuracy(~block)
        control = matched(block)
        out[f"{name}_random"] = accuracy(control)
        out[f"{name}_pairs"] = block.flatten(1).sum(1).float().mean().item()
        out[f"{name}_mass"] = mass(block)
        out[f"{name}_random_mass"] = mass(~control)
    out["rest_mass"] = mass(~blocks["fetch"] & ~self_pair)    # all a control outside the block could remove
    return out


def relation_masses(tests: Sequence[dict]) -> list:
    """One printed line per seed: the attention mass each block of :func:`relation_test` removes."""
    keys = ("within", "within_random", "fetch", "fetch_random")
    return [t("ch02.relation.mass", seed=seed, rest=r["rest_mass"], **{k: r[f"{k}_mass"] for k in keys})
            for seed, r in zip(SEEDS, tests)]


def relation_table(tests: Sequence[dict]) -> Table:
    """:func:`relation_test` of every seed, one row each."""
    keys = ("intact", "within", "within_random", "fetch", "fetch_random")
    rows = [[str(seed)] + [f"{r[k]:.3f}" for k in keys] for seed, r in zip(SEEDS, tests)]
    pairs = {k: round(tests[0][f"{k}_pairs"]) for k in ("within", "fetch")}
    return Table([t("ch02.relation.seed")] + [t(f"ch02.relation.{k}", **pairs) for k in keys], rows)


def check_relation_readings(tests: Sequence[dict], chance: float = 0.25) -> None:
    """§6's sentences on the intervention, against :func:`relation_test` of every seed."""
    within = rd.paired([r["within"] for r in tests], [r["intact"] for r in tests])
    rd.expect("blocking attention between two tokens of the target changes self-attention's accuracy by at most "
              "two points, in every seed", max(abs(v) for v in within.values) <= 0.02,
              change=within.format(signed=True))
    fetch = [r["fetch"] for r in tests]
    rd.expect("when no other token can read the target's tokens, self-attention falls to within ten points of "
              "chance in every seed", all(v <= chance + 0.1 for v in fetch), accuracy=fetch, chance=chance)
    random = rd.paired([r["fetch_random"] for r in tests], [r["intact"] for r in tests])
    rd.expect("blocking as many random pairs changes its accuracy by at most two points",
              max(abs(v) for v in random.values) <= 0.02, change=random.format(signed=True))
    masses = {k: [round(r[f"{k}_mass"], 3) for r in tests]
              for k in ("within", "within_random", "fetch", "fetch_random", "rest")}
    rd.expect("the others → target block removes more than half of the image's attention, the random pairs far "
              "less (under a quarter), and all pairs outside the block hold less than the block removes, so no "
              "control outside it can remove as much; the target's tokens give each other little attention (the "
              "target ↔ target block removes under a tenth)",
              all(f > 0.5 and fr < 0.25 and rest < f and w < 0.1 for f, fr, rest, w in
                  zip(masses["fetch"], masses["fetch_random"], masses["rest"], masses["within"])), **masses)


# ---------------------------------------------------------------- common slips, run on purpose

class ListMemoryExternalAttention(nn.Module):
    """A common slip, kept to be run: M_k and M_v in a plain Python list.

    PyTorch registers a layer only when it is an attribute of type ``nn.Module`` (or inside an
    ``nn.ModuleList``): these two are invisible to ``parameters()``, ``state_dict()``, ``.to(device)``
    and the optimiser. The forward pass works, which is why the slip survives.
    """

    def __init__(self, dim: int, memory_size: int = 64):
        super().__init__()
        self.memories = [nn.Linear(dim, memory_size, bias=False), nn.Linear(memory_size, dim, bias=False)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        M_k, M_v = self.memories
        return M_v(double_normalization(M_k(x)))      # (B, N, D)


def per_head_loop(module: MultiHeadExternalAttention, x: torch.Tensor) -> torch.Tensor:
    """Multi-head External Attention with a Python loop over the heads: the same numbers, one head at a time."""
    B, N, _ = x.shape
    f = module.trans_dims(x)                                    # (B, N, coef D)
    outs = []
    for i in range(module.num_heads):
        f_i = f[..., i * module.head_dim:(i + 1) * module.head_dim]     # (B, N, d)
        a = module.M_k(f_i).softmax(dim=1)                      # (B, N, S): softmax over tokens
        a = a / (EPS + a.sum(dim=-1, keepdim=True))             # ℓ1 over slots
        outs.append(module.M_v(a))                              # (B, N, d)
    return module.proj(torch.cat(outs, dim=-1))                 # (B, N, D)


# ---------------------------------------------------------------- the explorers

def _external(s) -> nn.Module:
    return MECHANISMS["external_attention"].cls(s["dim"], memory_size=s["memory_size"])


def _plot_external(module, x, s):
    return viewer.slot_map(module.attention_map(x[:1])[0])                  # (N, S)


EXTERNAL_EXPLORER = register_explorer(ExplorerSpec(
    "external_attention", "tokens",
    token_controls() + (Control("memory_size", "ch02.explorer.memory_size", (8, 16, 32, 64, 128), 64,
                                (8, 16, 32, 64)),),
    build=_external, plot=_plot_external))


def _multi_head_external(s) -> nn.Module:
    return MECHANISMS["multi_head_external_attention"].cls(s["dim"], num_heads=s["heads"],
                                                           memory_size=s["memory_size"], coef=s["coef"])


def _plot_multi_head_external(module, x, s):
    return viewer.slot_map(module.attention_map(x[:1])[0])                  # (heads, N, S)


MULTI_HEAD_EXTERNAL_EXPLORER = register_explorer(ExplorerSpec(
    "multi_head_external_attention", "tokens",
    token_controls() + (Control("heads", "widgets.heads", (1, 2, 4, 8), 8, (2, 8)),
                        Control("memory_size", "ch02.explorer.memory_size", (8, 16, 32, 64), 64, (16, 64)),
                        Control("coef", "ch02.explorer.coef", (1, 2, 4), 4, (1, 4))),
    build=_multi_head_external, plot=_plot_multi_head_external))


# ---------------------------------------------------------------- exercises

#: Exercise 1 and 2: the modules whose map shape and parameter count the reader works out.
SHAPE_MODULE = dict(dim=64, num_heads=4, memory_size=32, coef=2)
SHAPE_INPUT = (3, 49, 64)
PARAMS_MODULE = dict(dim=256, num_heads=8, memory_size=64, coef=4)


@exercise("ea.shape")
def _ea_shape(answer):
    shape = as_shape(answer)
    (B, N, _), h, S, e = SHAPE_INPUT, SHAPE_MODULE["num_heads"], SHAPE_MODULE["memory_size"], SHAPE_MODULE["coef"]
    if shape == (B, e * h, N, S):
        return None
    if shape == (B, h, N, S):
        return "ex.ea.shape.no_coef"
    if shape in ((B, e * h, S, N), (B, h, S, N)):
        return "ex.ea.shape.transposed"
    if shape in ((B, N, S), (B, S, N)):
        return "ex.ea.shape.no_heads"
    if shape in ((B, e * h, N, N), (B, h, N, N), (B, N, N)):
        return "ex.ea.shape.self"
    return "ex.ea.shape.other"


def _mh_params(D, h, S, e, *, per_head=False, bias=True, d=None, proj=True):
    d = D // h if d is None else d
    memories = 2 * d * S + (S + d if bias else 0)
    total = D * e * D + (e * D if bias else 0) + memories * (e * h if per_head else 1)
    return total + (e * D * D + (D if bias else 0) if proj else 0)


@exercise("ea.params", forbid=("count_parameters",))
def _ea_params(answer):
    n = as_count(answer)
    D, h, S, e = (PARAMS_MODULE[k] for k in ("dim", "num_heads", "memory_size", "coef"))
    if n == _mh_params(D, h, S, e):
        return None
    slips = [("ex.ea.params.per_head", dict(per_head=True)), ("ex.ea.params.no_bias", dict(bias=False)),
             ("ex.ea.params.wide_head", dict(d=e * D // h)), ("ex.ea.params.no_proj", dict(proj=False))]
    for key, kwargs in slips:
        if n == _mh_params(D, h, S, e, **kwargs):
            return key
    if n == 2 * S * D:
        return "ex.ea.params.single"
    return "ex.ea.params.other"


def _norm_cases():
    """(what the case changes, its fields, logits, tolerance): float32 in three layouts (a batch of 4, of 1, with a
    head axis), then float16 with a token that matches no slot (its row underflows to zeros in float16)."""
    g = torch.Generator().manual_seed(0)
    half = 3 * torch.randn(2, 12, 6, generator=g)
    half[:, 0] = -40.0                                      # token 0: far below every slot
    heads = 2 * torch.randn(2, 3, 10, 7, generator=g)
    return [(None, {}, 2 * torch.randn(4, 10, 7, generator=g), 1e-5),
            ("ex.ea.norm.batch1", {}, 2 * torch.randn(1, 10, 7, generator=g), 1e-5),
            ("ex.ea.case.heads", dict(shape=tuple(heads.shape)), heads, 1e-5),
            ("ex.ea.case.half", {}, half.half(), 2e-3)]


def _norm_slips(logits: torch.Tensor) -> list:
    """What the common slips compute (in float64), to name the slip a wrong result made."""
    x = logits.double()
    l1_first = x / (EPS + x.abs().sum(dim=-1, keepdim=True))
    return [("ex.ea.norm.slots_softmax", x.softmax(dim=-1)),
            ("ex.ea.norm.no_l1", x.softmax(dim=-2)),
            ("ex.ea.norm.swapped", l1_first.softmax(dim=-2))]


@exercise("ea.double_norm")
def _ea_double_norm(answer):
    double_norm = as_function(answer, usage="double_norm(logits)")
    for note, fields, logits, tol in _norm_cases():
        with case(note, **fields):
            _norm_case(double_norm, logits, tol)
    return None


def _norm_case(double_norm, logits, tol):
    with torch.no_grad():                       # the reference first, on the originals
        a = logits.double().softmax(dim=-2)
        expected = (a / (EPS + a.sum(dim=-1, keepdim=True))).to(logits.dtype)
        variants = _norm_slips(logits)
    got = call(double_norm, logits, names=("logits",))
    tensor = isinstance(got, torch.Tensor) and got.device == expected.device
    if tensor and got.shape == expected.shape and got.is_floating_point():
        if logits.dtype == torch.float16 and bool(torch.isnan(got).any()):
            raise Slip("ex.ea.norm.nan").whole()
        if got.dtype != expected.dtype:
            raise Slip("ex.ea.norm.dtype", got=str(got.dtype).replace("torch.", ""),
                       expected=str(expected.dtype).replace("torch.", "")).whole()
    slip = which(got, variants, atol=max(tol, 1e-3))
    if slip is not None and not close(got, expected, atol=tol, rtol=tol):
        raise Slip(slip)
    expect_tensor(got, expected)
    if not close(got, expected, atol=tol, rtol=tol):
        raise Slip("ex.ea.norm.other")
