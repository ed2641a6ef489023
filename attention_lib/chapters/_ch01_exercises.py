"""Chapter 01's exercise checks and their verdicts (registered on import by ``ch01_self_attention``).

Each check tries the reader's answer on the cases the exercise names, never raises whatever it is
handed, and names the usual slip when the answer is wrong without giving the answer away.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..self_attention import MultiHeadSelfAttention
from ..toolkit.exercises import exercise
from ..toolkit.i18n import register, t

register({
    # exercise verdicts
    "ex.sa.shape.not_shape": {"en": "give the shape as a tuple of integers, e.g. (1, 2, 3, 4).",
                              "zh": "请把形状写成整数元组，例如 (1, 2, 3, 4)。"},
    "ex.sa.shape.no_heads": {"en": "each head has its own map: the head axis is missing.",
                             "zh": "每个头都有自己的注意力图：缺了头这一维。"},
    "ex.sa.shape.no_batch": {"en": "every sample of the batch has its own maps: the batch axis is missing.",
                             "zh": "批量中的每个样本都有自己的注意力图：缺了批量这一维。"},
    "ex.sa.shape.per_head": {"en": "that is the shape of Q (or of the output) per head; the map holds one weight "
                                   "per query and per key.",
                             "zh": "这是每个头的 Q（或输出）的形状；注意力图是每个查询对每个键各一个权重。"},
    "ex.sa.shape.output": {"en": "that is the shape of the module's output, not of its map.",
                           "zh": "这是模块输出的形状，不是注意力图的形状。"},
    "ex.sa.shape.order": {"en": "the right numbers in the wrong order: batch, heads, queries, keys.",
                          "zh": "数字对了，顺序不对：批量、头、查询、键。"},
    "ex.sa.shape.other": {"en": "one weight per sample, per head, per query and per key.",
                          "zh": "每个样本、每个头、每个查询、每个键各一个权重。"},
    "ex.sa.params.not_int": {"en": "the answer is a whole number of parameters.", "zh": "答案应是参数个数，一个整数。"},
    "ex.sa.params.no_proj_bias": {"en": "the output projection W^O has a bias (D values).",
                                  "zh": "输出投影 W^O 带偏置（D 个值）。"},
    "ex.sa.params.qkv_bias": {"en": "the library's qkv projection has no bias by default (qkv_bias=False).",
                              "zh": "库中的 qkv 投影默认不带偏置（qkv_bias=False）。"},
    "ex.sa.params.no_proj": {"en": "besides W^Q, W^K, W^V there is the output projection W^O (D × D and a bias).",
                             "zh": "除了 W^Q、W^K、W^V，还有输出投影 W^O（D × D，外加偏置）。"},
    "ex.sa.params.other": {"en": "count the qkv Linear (D → 3D, no bias) and proj (D → D, with bias), D = 96; "
                                 "the number of heads does not change the count.",
                           "zh": "数一数 qkv 线性层（D → 3D，无偏置）和 proj（D → D，有偏置），D = 96；"
                                 "头数不影响参数量。"},
    "ex.sa.raised": {"en": "your function raised {error} for q of shape {shape}{extra}",
                     "zh": "q 的形状为 {shape} 时，你的函数抛出了 {error}{extra}"},
    "ex.sa.batch1": {"en": " (batch size 1: does a .squeeze() remove the batch axis too?).",
                     "zh": "（批量大小为 1：是不是 .squeeze() 把批量维度也去掉了？）"},
    "ex.sa.sdpa.not_callable": {"en": "the answer is a function attention(q, k, v, mask=None).",
                                "zh": "答案应是函数 attention(q, k, v, mask=None)。"},
    "ex.sa.sdpa.tuple": {"en": "return only the output softmax(QKᵀ/√d_k) V, not a tuple.",
                         "zh": "只返回输出 softmax(QKᵀ/√d_k) V，不要返回元组。"},
    "ex.sa.sdpa.shape": {"en": "the result is {got}; expected a tensor of shape {expected}.",
                         "zh": "结果是 {got}，应为形状 {expected} 的张量。"},
    "ex.sa.sdpa.batch1": {"en": "at batch size 1 the batch axis is lost: does a .squeeze() remove it?",
                          "zh": "批量大小为 1 时批量维度丢了：是不是 .squeeze() 把它去掉了？"},
    "ex.sa.sdpa.weights": {"en": "that is the weight matrix; multiply it by V.", "zh": "这是权重矩阵，还要再乘以 V。"},
    "ex.sa.sdpa.no_scale": {"en": "the scores are not divided by √d_k.", "zh": "分数没有除以 √d_k。"},
    "ex.sa.sdpa.scale_dk": {"en": "divide by the square root of d_k, not by d_k.", "zh": "应除以 d_k 的平方根，而不是 d_k。"},
    "ex.sa.sdpa.dim": {"en": "the softmax runs over the keys (the last axis): each query's row must sum to 1.",
                       "zh": "softmax 应沿键的方向（最后一维）计算：每个查询的那一行之和为 1。"},
    "ex.sa.sdpa.other": {"en": "the values differ from softmax(QKᵀ/√d_k) V.", "zh": "数值与 softmax(QKᵀ/√d_k) V 不一致。"},
    "ex.sa.sdpa.mask_ignored": {"en": "right without a mask, but the mask is ignored.",
                                "zh": "不加掩码时正确，但掩码被忽略了。"},
    "ex.sa.sdpa.mask_inverted": {"en": "the mask is inverted: True means the query MAY attend the key "
                                       "(as in F.scaled_dot_product_attention).",
                                 "zh": "掩码反了：True 表示查询可以关注该键（与 F.scaled_dot_product_attention 相同）。"},
    "ex.sa.sdpa.mask_zero": {"en": "a blocked score set to 0 still gets weight; set it to -inf before the softmax.",
                             "zh": "被屏蔽的分数设为 0 仍会分到权重；应在 softmax 之前设为 -inf。"},
    "ex.sa.sdpa.mask_after": {"en": "masking after the softmax leaves rows that no longer sum to 1; "
                                    "mask the scores before it.",
                              "zh": "在 softmax 之后再屏蔽，各行之和就不再是 1；应在 softmax 之前屏蔽分数。"},
    "ex.sa.sdpa.mask_other": {"en": "right without a mask, wrong with one: blocked scores must become -inf "
                                    "before the softmax.",
                              "zh": "不加掩码时正确，加了掩码就错：被屏蔽的分数应在 softmax 之前变成 -inf。"},
    "ex.sa.causal.not_callable": {"en": "the answer is a function causal_mask(n) returning an (n, n) tensor.",
                                  "zh": "答案应是函数 causal_mask(n)，返回形状为 (n, n) 的张量。"},
    "ex.sa.causal.raised": {"en": "your function raised {error} for n = {n}.", "zh": "n = {n} 时，你的函数抛出了 {error}。"},
    "ex.sa.causal.shape": {"en": "for n = {n} the result is {got}; expected an (n, n) tensor.",
                           "zh": "n = {n} 时结果是 {got}，应为 (n, n) 的张量。"},
    "ex.sa.causal.dtype": {"en": "F.scaled_dot_product_attention takes a boolean mask or a float mask "
                                 "(0 and -inf).",
                           "zh": "F.scaled_dot_product_attention 接受布尔掩码或浮点掩码（0 与 -inf）。"},
    "ex.sa.causal.transposed": {"en": "transposed: query i may see keys 0..i, not i..n-1.",
                                "zh": "转置了：查询 i 能看到的是键 0..i，而不是 i..n-1。"},
    "ex.sa.causal.inverted": {"en": "inverted: True must mean may attend.", "zh": "反了：True 应表示可以关注。"},
    "ex.sa.causal.no_diagonal": {"en": "each token may also attend to itself: keep the diagonal.",
                                 "zh": "每个词元也可以关注自己：要保留对角线。"},
    "ex.sa.causal.float_ones": {"en": "a float mask is ADDED to the scores: use 0 where allowed and -inf where "
                                      "blocked (or a boolean mask).",
                                "zh": "浮点掩码是加到分数上的：允许处为 0，屏蔽处为 -inf（或者用布尔掩码）。"},
    "ex.sa.causal.other": {"en": "query i may attend key j exactly when j <= i.", "zh": "当且仅当 j <= i 时，查询 i 可以关注键 j。"},
})

#: Exercise 1: the input and the head count whose attention-map shape the reader gives.
SHAPE_INPUT, SHAPE_HEADS = (4, 50, 96), 6
#: Exercise 2: the module whose parameters the reader counts.
PARAMS_DIM, PARAMS_HEADS = 96, 6


@exercise("sa.shape")
def _sa_shape(answer):
    try:
        shape = tuple(int(s) for s in answer)
    except Exception:
        return "ex.sa.shape.not_shape"
    B, N, D = SHAPE_INPUT
    h = SHAPE_HEADS
    slips = {(B, h, N, N): None, (B, N, N): "ex.sa.shape.no_heads", (h, N, N): "ex.sa.shape.no_batch",
             (B, h, N, D // h): "ex.sa.shape.per_head", (B, N, D): "ex.sa.shape.output"}
    if shape in slips:
        return slips[shape]
    if sorted(shape) == sorted((B, h, N, N)):
        return "ex.sa.shape.order"
    return "ex.sa.shape.other"


@exercise("sa.params")
def _sa_params(answer):
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer) \
            or answer != int(answer):
        return "ex.sa.params.not_int"
    D = PARAMS_DIM
    slips = {4 * D * D + D: None, 4 * D * D: "ex.sa.params.no_proj_bias",
             4 * D * D + 4 * D: "ex.sa.params.qkv_bias", 3 * D * D: "ex.sa.params.no_proj",
             3 * D * D + D: "ex.sa.params.no_proj"}
    return slips.get(int(answer), "ex.sa.params.other")


def _scores_softmax(q, k, v, mask=None, *, scale=None, dim=-1, fill=float("-inf"), invert=False, after=False):
    """Scaled dot-product attention and the common ways of getting it wrong (to name a reader's slip)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale
    if mask is not None and not after:
        s = s.masked_fill(mask if invert else ~mask, fill)
    a = s.softmax(dim=dim)
    if mask is not None and after:
        a = a * mask
    return a @ v


def _call(answer, *args):
    """The reader's function on ``args``; (output, None) or (None, hint) when it raised or returned a non-tensor."""
    try:
        with torch.no_grad():
            out = answer(*args)
    except Exception as error:  # the reader's code: report, never raise
        extra = t("ex.sa.batch1") if args[0].shape[0] == 1 else "."
        return None, ("ex.sa.raised", dict(error=type(error).__name__, shape=tuple(args[0].shape), extra=extra))
    if isinstance(out, tuple):
        return None, "ex.sa.sdpa.tuple"
    if not isinstance(out, torch.Tensor):
        return None, ("ex.sa.sdpa.shape", dict(got=type(out).__name__, expected=tuple(args[2].shape)))
    return out, None


@exercise("sa.sdpa")
def _sa_sdpa(answer):
    if not callable(answer):
        return "ex.sa.sdpa.not_callable"
    g = torch.Generator().manual_seed(0)
    module = MultiHeadSelfAttention(16, num_heads=2).eval()
    for B in (3, 1):
        x = torch.randn(B, 5, 16, generator=g)
        with torch.no_grad():
            q, k, v = module._qkv(x)                                  # (B, h, N, d_k) from the library
            expected = module(x)                                      # the library's output
        got, problem = _call(answer, q, k, v)
        if problem:
            return problem
        if got.shape != q.shape:
            if got.shape == q.shape[:-1] + (q.shape[-2],):
                return "ex.sa.sdpa.weights"
            if B == 1 and got.shape == q.shape[1:]:
                return "ex.sa.sdpa.batch1"
            return "ex.sa.sdpa.shape", dict(got=tuple(got.shape), expected=tuple(q.shape))
        y = module.proj(got.transpose(1, 2).reshape(B, 5, 16))
        if not torch.allclose(y, expected, atol=1e-5):
            for key, kw in (("ex.sa.sdpa.no_scale", dict(scale=1.0)),
                            ("ex.sa.sdpa.scale_dk", dict(scale=1.0 / q.shape[-1])),
                            ("ex.sa.sdpa.dim", dict(dim=-2))):
                if torch.allclose(got, _scores_softmax(q, k, v, **kw), atol=1e-5):
                    return key
            return "ex.sa.sdpa.other"
        mask = torch.rand(5, 5, generator=g) < 0.6
        mask |= torch.eye(5, dtype=torch.bool)                        # every query keeps one key
        got, problem = _call(answer, q, k, v, mask)
        if problem:
            return problem
        reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        if got.shape != reference.shape or not torch.allclose(got, reference, atol=1e-5):
            if got.shape == reference.shape:
                for key, kw in (("ex.sa.sdpa.mask_ignored", dict(mask=None)),
                                ("ex.sa.sdpa.mask_inverted", dict(invert=True)),
                                ("ex.sa.sdpa.mask_zero", dict(fill=0.0)),
                                ("ex.sa.sdpa.mask_after", dict(after=True))):
                    kw = {"mask": mask, **kw}
                    if torch.allclose(got, _scores_softmax(q, k, v, **kw), atol=1e-5, equal_nan=True):
                        return key               # (an inverted mask leaves some rows with no key: NaN)
            return "ex.sa.sdpa.mask_other"
    return None


@exercise("sa.causal")
def _sa_causal(answer):
    if not callable(answer):
        return "ex.sa.causal.not_callable"
    g = torch.Generator().manual_seed(0)
    for n in (5, 1):
        try:
            mask = answer(n)
        except Exception as error:  # the reader's code: report, never raise
            return "ex.sa.causal.raised", dict(error=type(error).__name__, n=n)
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (n, n):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            return "ex.sa.causal.shape", dict(got=got, n=n)
        q, k, v = (torch.randn(1, 1, n, 4, generator=g) for _ in range(3))
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        try:
            got = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        except Exception:
            return "ex.sa.causal.dtype"
        if torch.allclose(got, expected, atol=1e-5):
            continue
        lower = torch.ones(n, n, dtype=torch.bool).tril()
        if mask.dtype == torch.bool:
            slips = {"ex.sa.causal.transposed": lower.T, "ex.sa.causal.inverted": ~lower,
                     "ex.sa.causal.no_diagonal": lower.tril(-1)}
            for key, slip in slips.items():
                if torch.equal(mask, slip):
                    return key
        elif torch.equal(mask, lower.float()):
            return "ex.sa.causal.float_ones"
        return "ex.sa.causal.other"
    return None
