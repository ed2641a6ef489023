"""Chapter 01's exercise checks and their verdicts (registered on import by ``ch01_self_attention``).

Each check reads the answer with the engine's helpers (``as_shape``, ``as_count``, ``as_function``), runs a
student's function with ``call`` on copies of the inputs, compares with the library or with PyTorch's
``F.scaled_dot_product_attention`` computed first, and names the usual slip without giving the answer away.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..self_attention import MultiHeadSelfAttention
from ..toolkit.exercises import Slip, as_count, as_function, as_shape, call, close, exercise, expect_tensor, which
from ..toolkit.i18n import register

register({
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
    "ex.sa.batch1": {"en": "At batch size 1: does a .squeeze() remove the batch axis too?",
                     "zh": "批量大小为 1 时：是不是 .squeeze() 把批量维度也去掉了？"},
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
    "ex.sa.causal.no_mask": {"en": "that is attention without a mask: every query still sees the future keys.",
                             "zh": "这是不加掩码的注意力：每个查询仍能看到后面的键。"},
    "ex.sa.causal.transposed": {"en": "transposed: query i may see keys 0..i, not i..n-1.",
                                "zh": "转置了：查询 i 能看到的是键 0..i，而不是 i..n-1。"},
    "ex.sa.causal.inverted": {"en": "inverted: in a boolean attn_mask, True must mean may attend.",
                              "zh": "反了：在布尔型 attn_mask 中，True 应表示可以关注。"},
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
    shape = as_shape(answer)
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
    n = as_count(answer)
    D = PARAMS_DIM
    slips = {4 * D * D + D: None, 4 * D * D: "ex.sa.params.no_proj_bias",
             4 * D * D + 4 * D: "ex.sa.params.qkv_bias", 3 * D * D: "ex.sa.params.no_proj",
             3 * D * D + D: "ex.sa.params.no_proj"}
    return slips.get(n, "ex.sa.params.other")


def _attention(q, k, v, mask=None, *, scale=None, dim=-1, fill=float("-inf"), invert=False, after=False):
    """Scaled dot-product attention and the usual ways of getting it wrong (to name a reader's slip)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale
    if mask is not None and not after:
        s = s.masked_fill(mask if invert else ~mask, fill)
    a = s.softmax(dim=dim)
    if mask is not None and after:
        a = a * mask
    return a @ v


def _run(function, *args, names, batch: int):
    """The student's ``function(*args)``; at batch size 1 a crash also suggests the usual cause."""
    try:
        return call(function, *args, names=names)
    except Slip as slip:
        raise slip.also("ex.sa.batch1") if batch == 1 and slip.key == "ex.fn.raised" else slip


@exercise("sa.sdpa")
def _sa_sdpa(answer):
    attention = as_function(answer, usage="attention(q, k, v, mask=None)")
    g = torch.Generator().manual_seed(0)
    module = MultiHeadSelfAttention(16, num_heads=2).eval()
    N = 5
    mask = torch.rand(N, N, generator=g) < 0.5
    mask |= torch.eye(N, dtype=torch.bool)                       # every query keeps a key...
    mask &= ~torch.eye(N, dtype=torch.bool).roll(1, dims=1)       # ...and loses one (an inverted mask stays finite)
    for B in (3, 1):
        x = torch.randn(B, N, 16, generator=g)
        with torch.no_grad():                                    # the references first, on the originals
            q, k, v = module._qkv(x)                             # (B, h, N, d_k) from the library
            expected = F.scaled_dot_product_attention(q, k, v)
            library = module(x)                                  # the library's output
            variants = [("ex.sa.sdpa.no_scale", _attention(q, k, v, scale=1.0)),
                        ("ex.sa.sdpa.scale_dk", _attention(q, k, v, scale=1.0 / q.shape[-1])),
                        ("ex.sa.sdpa.dim", _attention(q, k, v, dim=-2)),
                        ("ex.sa.sdpa.weights", (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1))]
        got = _run(attention, q, k, v, names=("q", "k", "v"), batch=B)
        if B == 1 and isinstance(got, torch.Tensor) and got.shape == q.shape[1:]:
            return "ex.sa.sdpa.batch1"
        slip = which(got, variants)
        if slip is not None:
            return slip
        got = expect_tensor(got, expected)
        with torch.no_grad():
            through_library = module.proj(got.transpose(1, 2).reshape(B, N, 16))
        if not close(through_library, library):
            return "ex.sa.sdpa.other"

        with torch.no_grad():
            expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            variants = [("ex.sa.sdpa.mask_ignored", _attention(q, k, v)),
                        ("ex.sa.sdpa.mask_inverted", _attention(q, k, v, mask, invert=True)),
                        ("ex.sa.sdpa.mask_zero", _attention(q, k, v, mask, fill=0.0)),
                        ("ex.sa.sdpa.mask_after", _attention(q, k, v, mask, after=True))]
        got = _run(attention, q, k, v, mask, names=("q", "k", "v", "mask"), batch=B)
        slip = which(got, variants)
        if slip is not None:
            return slip
        if not close(expect_tensor(got, expected), expected):
            return "ex.sa.sdpa.mask_other"
    return None


@exercise("sa.causal")
def _sa_causal(answer):
    causal_attention = as_function(answer, usage="causal_attention(q, k, v)")
    g = torch.Generator().manual_seed(1)
    for B, h, N, d in ((2, 2, 6, 8), (1, 2, 5, 4)):
        q, k, v = (torch.randn(B, h, N, d, generator=g) for _ in range(3))
        lower = torch.ones(N, N, dtype=torch.bool).tril()
        with torch.no_grad():                                    # the references first, on the originals
            expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            sdpa = lambda mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # noqa: E731
            variants = [("ex.sa.causal.no_mask", sdpa(None)), ("ex.sa.causal.transposed", sdpa(lower.T)),
                        ("ex.sa.causal.inverted", sdpa(~lower)), ("ex.sa.causal.no_diagonal", sdpa(lower.tril(-1))),
                        ("ex.sa.causal.float_ones", sdpa(lower.float()))]
        got = _run(causal_attention, q, k, v, names=("q", "k", "v"), batch=B)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
            # a row whose keys are all blocked: NaN on the explicit path, zeros in SDPA; name the slip either way
            slip = which(torch.nan_to_num(got.detach().float(), nan=0.0), variants)
            if slip is not None:
                return slip
        if not close(expect_tensor(got, expected), expected):
            return "ex.sa.causal.other"
    return None
