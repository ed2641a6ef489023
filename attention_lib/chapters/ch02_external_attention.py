"""Chapter 02 · External Attention and its multi-head form: strings, figures, exercises, explorers and demos.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch02_external_attention as ch``.
Besides the figures, it holds what the chapter runs on purpose: the ablation with a single softmax over
the slots, and two common slips (memories in a plain Python list, heads in a Python loop).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_tokens
from ..external_attention import EPS, ExternalAttention, MultiHeadExternalAttention, double_normalization
from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.data import SHAPE_CLASSES
from ..toolkit.exercises import (Slip, as_count, as_function, as_shape, call, case, close, exercise, expect_tensor,
                                  which)
from ..toolkit.format import Table
from ..toolkit.i18n import register, t
from ..toolkit.instruments import count_parameters
from ..toolkit.models import TinyTokenNet
from ..toolkit.train import ShapesTokens
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls
from ._ch02_figures import (normalisations, plot_experiment, plot_map_sizes,  # noqa: F401
                            plot_normalisations, plot_slot_gallery, plot_slot_shares, slot_target_share)

register({
    "ch02.explorer.memory_size": {"en": "memory slots S", "zh": "槽位数 S"},
    "ch02.explorer.coef": {"en": "expansion coef", "zh": "扩展系数 coef"},
    # §1
    "ch02.sizes.self": {"en": "Self-attention: {n} × {n} weights, from this image alone",
                        "zh": "自注意力：{n} × {n} 个权重，只由这张图像算出"},
    "ch02.sizes.external": {"en": "External Attention: {n} × {s} weights, against shared memories",
                            "zh": "外部注意力：{n} × {s} 个权重，对照共享的记忆"},
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
    "ch02.counts": {"en": "{name}: parameters {params} (formula {params_formula}); FLOPs {flops} "
                          "(formula {flops_formula})",
                    "zh": "{name}：参数量 {params}（公式 {params_formula}）；浮点运算次数 {flops}（公式 {flops_formula}）"},
    "ch02.scaling.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch02.scaling.explicit": {"en": "self-attention, explicit", "zh": "自注意力（显式计算）"},
    "ch02.scaling.fused": {"en": "self-attention, fused kernel", "zh": "自注意力（融合核函数）"},
    # §6
    "ch02.variant.none": {"en": "no token mixer", "zh": "无词元混合"},
    "ch02.variant.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch02.variant.slot_softmax": {"en": "EA, softmax over slots only", "zh": "外部注意力，只对槽位做 softmax"},
    "ch02.variant.self": {"en": "self-attention", "zh": "自注意力"},
    "ch02.table.mixer": {"en": "token mixer", "zh": "词元混合器"},
    "ch02.table.params": {"en": "its parameters", "zh": "其参数量"},
    "ch02.table.acc": {"en": "val. accuracy (mean ± std)", "zh": "验证集准确率（均值 ± 标准差）"},
    "ch02.table.seeds": {"en": "per seed", "zh": "各随机种子"},
    "ch02.table.ms": {"en": "ms per training step (mean ± std)", "zh": "每个训练步的毫秒数（均值 ± 标准差）"},
    "ch02.experiment.acc_title": {"en": "Validation accuracy ({k} seeds; dots: single runs)",
                                  "zh": "验证集准确率（{k} 个随机种子；圆点为单次运行）"},
    "ch02.experiment.acc": {"en": "validation accuracy", "zh": "验证集准确率"},
    "ch02.experiment.chance": {"en": "chance (25%)", "zh": "随机猜测（25%）"},
    "ch02.experiment.time_title": {"en": "One training step, batch of 64 (1 CPU thread)",
                                   "zh": "一个训练步，批量大小 64（单个 CPU 线程）"},
    "ch02.experiment.ms": {"en": "milliseconds (forward + backward)", "zh": "毫秒（前向 + 反向）"},
    "ch02.norm.title": {"en": "One trained map, three normalisations (image {i})",
                        "zh": "同一组训练好的得分，三种归一化（图像 {i}）"},
    "ch02.norm.slots": {"en": "softmax over the S slots\n(each row sums to 1)",
                        "zh": "只对 S 个槽位做 softmax\n（每行之和为 1）"},
    "ch02.norm.tokens": {"en": "softmax over the N tokens\n(each column sums to 1)",
                         "zh": "只对 N 个词元做 softmax\n（每列之和为 1）"},
    "ch02.norm.double": {"en": "double: softmax over N, then ℓ1 over S\n(each row sums to 1)",
                         "zh": "双重归一化：先对 N 做 softmax，再对 S 做 ℓ1\n（每行之和为 1）"},
    "ch02.row_sums": {"en": "softmax over N alone: row sums from {low:.3g} to {high:.3g} (median {median:.3g}); "
                            "their mean is S/N = {mean:.3g}",
                      "zh": "只对 N 做 softmax：各行之和从 {low:.3g} 到 {high:.3g}（中位数 {median:.3g}）；"
                            "其均值为 S/N = {mean:.3g}"},
    "ch02.isolation": {"en": "other tokens replaced: largest change of token {i}'s row with the slot softmax "
                             "{slot:.2g}, with the double normalisation {double:.2g}",
                       "zh": "把其余词元换掉之后，词元 {i} 那一行的最大变化：只对槽位做 softmax 时为 {slot:.2g}，"
                             "双重归一化时为 {double:.2g}"},
    "ch02.share.title": {"en": "Share of each slot's weight that falls on the target ({n} images)",
                         "zh": "每个槽位的权重落在目标上的比例（{n} 张图像）"},
    "ch02.share.slot": {"en": "memory slot", "zh": "槽位"},
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
    "ch02.accuracy": {"en": "trained External Attention model: {acc:.1%} on {n} held-out images (chance: 25%)",
                      "zh": "训练好的外部注意力模型：在 {n} 张留出图像上的准确率为 {acc:.1%}（随机猜测为 25%）"},
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
                              "no slot.",
                        "zh": "float32 的几组测试都通过了；这一组是 float16，而且有一个词元不匹配任何槽位。"},
    "ex.ea.norm.other": {"en": "the values differ from softmax over dim -2, then division by ε + the sum over "
                               "dim -1.",
                         "zh": "数值与「先对 dim -2 做 softmax，再除以 ε 加 dim -1 上的和」不一致。"},
})


# ---------------------------------------------------------------- demos and the ablation

#: The §6 model: a conv stem's 8 x 8 token grid, one block whose token mixer is External Attention, S = 16.
EA_DEMO = ShapesTokens(attention="external_attention")
#: The seeds of the §6 experiment (initialisation and shuffling; the images are the same).
SEEDS = (0, 1, 2)


class SlotSoftmaxExternalAttention(ExternalAttention):
    """The ablation of §6: one softmax over the S slots per token, as self-attention normalises its rows.

    Without the softmax over tokens, a token's weights depend on that token alone: the module is a
    per-token two-layer network and mixes nothing.
    """

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        check_tokens(x, self.dim, type(self).__name__)
        return self.M_k(x).softmax(dim=-1)          # (B, N, S): each row on its own


@dataclass(frozen=True)
class SlotSoftmaxDemo(ShapesTokens):
    """The §6 model with :class:`SlotSoftmaxExternalAttention` as its token mixer."""
    kind: ClassVar[str] = "ch02_slot_softmax"

    def build(self) -> nn.Module:
        mixer = SlotSoftmaxExternalAttention(self.dim, memory_size=self.memory_size)
        return TinyTokenNet(mixer, num_classes=len(SHAPE_CLASSES), dim=self.dim, image_size=self.size)


#: §6's experiment: one network at one width (D = 32), four token mixers, each trained with every seed.
EXPERIMENT: Mapping[str, ShapesTokens] = {
    "none": ShapesTokens(attention=None),
    "external": EA_DEMO,
    "slot_softmax": SlotSoftmaxDemo(),
    "self": ShapesTokens(attention="self_attention"),
}


def step_seconds(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, repeats: int = 3) -> float:
    """Median seconds of one training step's forward and backward pass on one batch (a copy of ``model``
    in training mode, one CPU thread; the optimiser's update is the same for every mixer and left out)."""
    model = copy.deepcopy(model).train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for i in range(repeats + 1):                   # one warm-up step
            start = time.perf_counter()
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times[1:]))


def summarise(runs: Mapping[str, Sequence], images: torch.Tensor, labels: torch.Tensor) -> dict:
    """``{name: [Demo per seed]}`` -> ``{name: dict(acc=[...], ms=[...], params=int)}``.

    ``acc``: the final validation accuracy of each run; ``ms``: the milliseconds of one training step of
    each run's model on the batch ``images``, ``labels`` (measured now, so cached runs are timed too);
    ``params``: the token mixer's parameters (the rest of the network is the same for all).
    """
    out = {}
    for name, demos in runs.items():
        out[name] = dict(acc=[d.history["val_acc"][-1] for d in demos],
                         ms=[1e3 * step_seconds(d.model, images, labels) for d in demos],
                         params=count_parameters(demos[0].model.block.attn))
    return out


def _mean_std(values, digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


def experiment_table(summary: Mapping[str, dict]) -> Table:
    """The experiment as a table: mixer, its parameters, accuracy and time per epoch (mean ± std over seeds)."""
    rows = [[t(f"ch02.variant.{name}"), str(r["params"]), _mean_std(r["acc"]),
             ", ".join(f"{a:.3f}" for a in r["acc"]), _mean_std(r["ms"], 1)] for name, r in summary.items()]
    headers = [t(f"ch02.table.{k}") for k in ("mixer", "params", "acc", "seeds", "ms")]
    return Table(headers, rows)


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


@exercise("ea.params")
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
