"""Chapter 01 · Self-attention, multi-head attention and the patch embedding: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch01_self_attention as ch``.
Its strings, figures, the demos of §6 (a class-token ViT, the far-pair experiment), the measurements the
chapter prints (rollout, attention distance, position-embedding similarity), the exercises and explorers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle
from torch import nn

from ..patch_embedding import PatchEmbedding
from ..registry import MECHANISMS
from ..self_attention import MultiHeadSelfAttention
from ..toolkit import data as _data
from ..toolkit import figures, viewer, viz  # figures: its strings (figures.*) are used here
from ..toolkit.exercises import exercise
from ..toolkit.format import Table, fit_slope, format_count
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyTransformer, TinyViT
from ..toolkit.train import DemoConfig, Reversal
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls

register({
    "ch01.explorer.temperature": {"en": "softmax temperature τ", "zh": "softmax 温度 τ"},
    "ch01.explorer.temperature_note": {"en": "τ only rescales the scores before the softmax in the plot: "
                                             "shapes and costs do not change.",
                                       "zh": "τ 只在绘图时缩放 softmax 之前的得分，形状和计算量不变。"},
    "ch01.explorer.image_size": {"en": "image size H = W", "zh": "图像尺寸 H = W"},
    "ch01.explorer.patch_size": {"en": "patch size P", "zh": "图像块大小 P"},
})

register({
    # §1
    "ch01.lookup.title": {"en": "Patches of a photograph as tokens: where does a query patch look?",
                          "zh": "把照片的图像块当作词元：查询图像块看向哪里？"},
    "ch01.lookup.photo": {"en": "photograph", "zh": "照片"},
    "ch01.lookup.query": {"en": "query: patch ({r}, {c})", "zh": "查询：图像块 ({r}, {c})"},
    # §2
    "ch01.scale.title": {"en": "Why divide by √d_k: random q, k with unit-variance entries, 32 keys",
                         "zh": "为什么要除以 √d_k：q、k 的元素为单位方差的随机数，共 32 个键"},
    "ch01.scale.d_k": {"en": "key width d_k", "zh": "键的维度 d_k"},
    "ch01.scale.raw": {"en": "q·k", "zh": "q·k"},
    "ch01.scale.scaled": {"en": "q·k / √d_k", "zh": "q·k / √d_k"},
    "ch01.scale.var": {"en": "variance of the scores", "zh": "分数的方差"},
    "ch01.scale.var_title": {"en": "Scores spread out as d_k grows", "zh": "d_k 越大，分数越分散"},
    "ch01.scale.max": {"en": "largest softmax weight (mean)", "zh": "softmax 的最大权重（均值）"},
    "ch01.scale.max_title": {"en": "Softmax saturates", "zh": "softmax 饱和"},
    "ch01.scale.grad": {"en": "norm of the softmax Jacobian (mean)", "zh": "softmax 雅可比矩阵的范数（均值）"},
    "ch01.scale.grad_title": {"en": "Its gradient vanishes", "zh": "梯度随之消失"},
    "ch01.heads.title": {"en": "Splitting D into h heads: a view, then a transpose",
                         "zh": "把 D 拆成 h 个头：先 view，再 transpose"},
    "ch01.heads.before": {"en": "Q = X W^Q: (N, D) = ({N}, {D})", "zh": "Q = X W^Q：(N, D) = ({N}, {D})"},
    "ch01.heads.after": {"en": "view(N, h, d_k).transpose(0, 1): (h, N, d_k) = ({h}, {N}, {d})",
                         "zh": "view(N, h, d_k).transpose(0, 1)：(h, N, d_k) = ({h}, {N}, {d})"},
    "ch01.heads.token": {"en": "token", "zh": "词元"},
    "ch01.heads.feature": {"en": "feature (column of W^Q)", "zh": "特征（W^Q 的列）"},
    "ch01.heads.per_head": {"en": "each head: d_k = {d} columns, all N tokens", "zh": "每个头：d_k = {d} 列，全部 N 个词元"},
    # §3
    "ch01.masks.title": {"en": "Masks decide which keys each query may see", "zh": "掩码决定每个查询能看到哪些键"},
    "ch01.masks.causal_mask": {"en": "causal mask", "zh": "因果掩码"},
    "ch01.masks.causal_weights": {"en": "weights with the causal mask", "zh": "加因果掩码后的权重"},
    "ch01.masks.padding_mask": {"en": "padding mask (last 2 keys are padding)",
                                "zh": "填充掩码（最后 2 个键是填充）"},
    "ch01.masks.padding_weights": {"en": "weights with the padding mask", "zh": "加填充掩码后的权重"},
    "ch01.masks.allowed": {"en": "True: may attend", "zh": "True：可以关注"},
    "ch01.masks.blocked": {"en": "False: blocked", "zh": "False：被屏蔽"},
    "ch01.patches.title": {"en": "An image becomes a sequence of patch tokens", "zh": "图像变成由图像块组成的词元序列"},
    "ch01.patches.image": {"en": "{H}×{W} image, P = {P}", "zh": "{H}×{W} 的图像，P = {P}"},
    "ch01.patches.sequence": {"en": "the N = {N} patches in token order, each {d} numbers before E",
                              "zh": "按词元顺序排列的 N = {N} 个图像块，每块在乘 E 之前有 {d} 个数"},
    # §5
    "ch01.cost.title": {"en": "FLOPs of one self-attention layer, D = {D}", "zh": "一层自注意力的 FLOPs（D = {D}）"},
    "ch01.cost.projections": {"en": "projections W^Q, W^K, W^V, W^O: 8ND²", "zh": "投影 W^Q、W^K、W^V、W^O：8ND²"},
    "ch01.cost.products": {"en": "QKᵀ and AV: 4N²D", "zh": "QKᵀ 与 AV：4N²D"},
    "ch01.cost.crossover": {"en": "N = 2D = {n}: the two are equal", "zh": "N = 2D = {n}：两者相等"},
    # §6
    "ch01.vit.title": {"en": "Where the class token looks (heads averaged); cyan: the target's box",
                       "zh": "类别词元看向哪里（各头平均）；青色框：目标的位置"},
    "ch01.vit.title_plain": {"en": "Where the class token looks (heads averaged)", "zh": "类别词元看向哪里（各头平均）"},
    "ch01.path.fused": {"en": "forward (fused kernel)", "zh": "forward（融合核函数）"},
    "ch01.path.explicit": {"en": "forward_explicit (N × N map)", "zh": "forward_explicit（N × N 注意力图）"},
    "ch01.vit.image": {"en": "image", "zh": "图像"},
    "ch01.vit.layer": {"en": "layer {l}", "zh": "第 {l} 层"},
    "ch01.vit.rollout": {"en": "rollout", "zh": "注意力展开"},
    "ch01.vit.share": {"en": "share of the attention", "zh": "注意力所占份额"},
    "ch01.vit.layer_head": {"en": "layer {l}, head {k}", "zh": "第 {l} 层，头 {k}"},
    "ch01.vit.heads_title": {"en": "The class token's attention, head by head", "zh": "类别词元的注意力，逐个头来看"},
    "ch01.pos.title": {"en": "Learned position embeddings: each patch's similarity to all the others",
                       "zh": "学到的位置嵌入：每个图像块与其他所有图像块的相似度"},
    "ch01.pos.row": {"en": "patch row", "zh": "图像块所在行"},
    "ch01.pos.col": {"en": "patch column", "zh": "图像块所在列"},
    "ch01.pos.cosine": {"en": "cosine similarity", "zh": "余弦相似度"},
    "ch01.pairs.title": {"en": "Are the two marked bits equal? Accuracy by their distance (mean ± std, 3 seeds)",
                         "zh": "两个被标记的比特相等吗？按距离统计的准确率（3 个随机种子的均值 ± 标准差）"},
    "ch01.pairs.distance": {"en": "distance between the two marked positions", "zh": "两个被标记位置之间的距离"},
    "ch01.pairs.chance": {"en": "chance (0.5)", "zh": "随机猜测（0.5）"},
    "ch01.pairs.reach": {"en": "reach of the local model ({reach})", "zh": "局部模型的可及范围（{reach}）"},
    "ch01.pairs.global": {"en": "global self-attention", "zh": "全局自注意力"},
    "ch01.pairs.local": {"en": "local self-attention (window ±{w})", "zh": "局部自注意力（窗口 ±{w}）"},
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

register({
    # printed by the notebook
    "ch01.scale.row": {"en": "d_k = {d_k:4d}: variance {var_raw:7.1f} -> {var_scaled:.2f} scaled; largest weight "
                             "{max_raw:.3f} -> {max_scaled:.3f}; gradient norm {grad_raw:.2e} -> {grad_scaled:.2e}",
                       "zh": "d_k = {d_k:4d}：方差 {var_raw:7.1f}，缩放后 {var_scaled:.2f}；最大权重 {max_raw:.3f}，"
                             "缩放后 {max_scaled:.3f}；梯度范数 {grad_raw:.2e}，缩放后 {grad_scaled:.2e}"},
    "ch01.row_sums": {"en": "row sums of A (sample 0, head 0): {sums}", "zh": "A 各行之和（样本 0，头 0）：{sums}"},
    "ch01.equivariance": {"en": "permutation {perm}: output permuted the same way: {plain}; "
                                "with a position embedding: {with_pos}",
                          "zh": "置换 {perm}：输出按同样方式置换：{plain}；加上位置嵌入之后：{with_pos}"},
    "ch01.masked_rows": {"en": "row sums with the causal mask: {causal}; largest weight on a padded key: {padded}",
                         "zh": "加因果掩码后各行之和：{causal}；填充键上的最大权重：{padded}"},
    "ch01.counts": {"en": "N={N}, D={D}, h={h}: {params} parameters; FLOPs explicit {explicit:,} = formula "
                          "{formula:,}; fused forward {fused:,}; 8ND² + 4N²D alone {main:,}",
                    "zh": "N={N}，D={D}，h={h}：参数量 {params}；显式路径的 FLOPs {explicit:,} = 公式 {formula:,}；"
                          "融合的 forward {fused:,}；仅 8ND² + 4N²D 为 {main:,}"},
    "ch01.memory": {"en": "N = {n}: peak extra memory {fused:,} bytes fused, {explicit:,} bytes explicit "
                          "({ratio:.0f}×); the scores and weights alone: 2·h·N²·4 = {scores:,} bytes",
                    "zh": "N = {n}：额外峰值内存，融合核函数 {fused:,} 字节，显式路径 {explicit:,} 字节（{ratio:.0f} 倍）；"
                          "仅分数与权重就有 2·h·N²·4 = {scores:,} 字节"},
    "ch01.reversal": {"en": "reversal accuracy {acc:.1%}; weight on the anti-diagonal per head: trained {trained}, "
                            "random {random} (uniform: 0.125)",
                      "zh": "反转任务的准确率 {acc:.1%}；各头落在反对角线上的权重：训练后 {trained}，"
                            "随机初始化 {random}（均匀分配时为 0.125）"},
    "ch01.reversal.random": {"en": "Random initialisation: attention per head", "zh": "随机初始化：各头的注意力"},
    "ch01.reversal.trained": {"en": "Trained to reverse: attention per head", "zh": "训练反转之后：各头的注意力"},
    "ch01.vit.accuracy": {"en": "validation accuracy of the tiny ViT: {acc:.1%} (chance: 25%)",
                          "zh": "小型 ViT 的验证集准确率：{acc:.1%}（随机猜测为 25%）"},
    "ch01.share.cls": {"en": "class token, layer {layer}: {share:.1%} of its attention on the target's box",
                       "zh": "类别词元，第 {layer} 层：{share:.1%} 的注意力落在目标框上"},
    "ch01.share.queries": {"en": "all patch queries averaged, layer {layer}: {share:.1%}",
                           "zh": "所有图像块查询的平均，第 {layer} 层：{share:.1%}"},
    "ch01.share.rollout": {"en": "rollout from the class token: {share:.1%}", "zh": "从类别词元出发的注意力展开：{share:.1%}"},
    "ch01.share.uniform": {"en": "uniform attention (the box's share of the patches): {share:.1%}",
                           "zh": "均匀注意力（目标框覆盖的图像块所占比例）：{share:.1%}"},
    "ch01.heads.row": {"en": "layer {layer}: share on the target per head {share} (spread {spread:.0%}); "
                             "mean attention distance (pixels) {dist}",
                       "zh": "第 {layer} 层：各头落在目标上的份额 {share}（最大与最小相差 {spread:.0%}）；"
                             "平均注意力距离（像素）{dist}"},
    "ch01.pos.trained": {"en": "trained", "zh": "训练后"},
    "ch01.pos.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch01.pos.row_text": {"en": "{which}: mean cosine similarity {near:.2f} between neighbouring patches, "
                                "{far:.2f} between patches 3 or more apart",
                          "zh": "{which}：相邻图像块之间的平均余弦相似度 {near:.2f}，相距 3 格及以上的图像块之间 {far:.2f}"},
    "ch01.viewer.title": {"en": "Tiny ViT, layer 1: where each patch looks", "zh": "小型 ViT 第 1 层：每个图像块看向哪里"},
    "ch01.pairs.params": {"en": "parameters: global {global} , local {local}", "zh": "参数量：全局 {global}，局部 {local}"},
    "ch01.pairs.global_row": {"en": "global: accuracy {near:.3f} ± {near_std:.3f} within the reach, "
                                    "{far:.3f} ± {far_std:.3f} beyond it (mean ± std over seeds)",
                              "zh": "全局：可及范围以内准确率 {near:.3f} ± {near_std:.3f}，以外 {far:.3f} ± {far_std:.3f}"
                                    "（各随机种子的均值 ± 标准差）"},
    "ch01.pairs.local_row": {"en": "local (±{w}): accuracy {near:.3f} ± {near_std:.3f} within the reach, "
                                   "{far:.3f} ± {far_std:.3f} beyond it",
                             "zh": "局部（±{w}）：可及范围以内准确率 {near:.3f} ± {near_std:.3f}，以外 {far:.3f} ± {far_std:.3f}"},
    "ch01.block_share": {"en": "output {shape}; self-attention holds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；自注意力占该块参数量的 {share:.1%}"},
    "ch01.slip.view": {"en": "view without transpose: shape {shape} (looks right), largest difference from "
                             "the correct output {diff:.3f}",
                       "zh": "只 view 不 transpose：形状 {shape}（看起来没错），与正确输出的最大差值 {diff:.3f}"},
    "ch01.slip.dim": {"en": "softmax(dim=-2): row sums {rows}; column sums {cols}",
                      "zh": "softmax(dim=-2)：各行之和 {rows}；各列之和 {cols}"},
    "ch01.slip.nan": {"en": "a query with every key blocked: explicit path {explicit}, SDPA {sdpa}",
                      "zh": "所有键都被屏蔽的查询：显式路径 {explicit}，SDPA {sdpa}"},
    "ch01.slip.list": {"en": "heads in a Python list: {plain} parameters; in nn.ModuleList: {registered}",
                       "zh": "用 Python 列表存放各头：{plain} 个参数；用 nn.ModuleList：{registered} 个"},
    "ch01.table.patch": {"en": "patch size P", "zh": "图像块大小 P"},
    "ch01.table.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "ch01.table.entries": {"en": "entries of one N × N map", "zh": "一张 N × N 注意力图的元素数"},
    "ch01.table.share": {"en": "share of QKᵀ and AV in the FLOPs", "zh": "QKᵀ 与 AV 占 FLOPs 的比例"},
})

# ---------------------------------------------------------------- models and demos of §6

class ClassTokenViT(TinyViT):
    """``TinyViT`` with ViT's class token: a learned token before the patches; the class is read from it."""

    def __init__(self, image_size: int = 24, patch_size: int = 4, num_classes: int = 4, dim: int = 32,
                 depth: int = 2, num_heads: int = 4, mlp_ratio: int = 2):
        super().__init__(image_size, patch_size, num_classes=num_classes, dim=dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))            # zeros, as in the official code
        self.pos = nn.Parameter(0.02 * torch.randn(1, 1 + self.grid ** 2, dim))   # class token + patches

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"ClassTokenViT expects images of shape (B, {self.patch_embed.in_channels}, "
                             f"{self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        patches = self.patch_embed(x)                                      # (B, N, D)
        cls = self.cls_token.expand(len(x), -1, -1)                       # (B, 1, D)
        return torch.cat([cls, patches], dim=1) + self.pos                 # (B, 1 + N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._embed(x)                         # (B, 1 + N, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])       # the class token's output -> (B, classes)


@dataclass(frozen=True)
class ShapesClassTokenViT(DemoConfig):
    """``ClassTokenViT`` on small shapes images: larger targets and fewer distractors than the CNN's images."""
    kind: ClassVar[str] = "ch01_shapes_vit"
    patch_size: int = 4              # patch side P: a 6 x 6 grid of patches
    dim: int = 32                    # token width D
    depth: int = 2                   # transformer blocks
    num_heads: int = 4               # heads h (d_k = 8)
    size: int = 24                   # image side in pixels
    num_distractors: int = 4         # lines and dots around the target
    min_radius: float = 4.5          # half-size of the target in pixels, drawn from [min, max]
    max_radius: float = 6.5
    n_train: int = 5000
    n_val: int = 500
    epochs: int = 8
    lr: float = 4e-3

    def build(self) -> nn.Module:
        return ClassTokenViT(self.size, self.patch_size, len(_data.SHAPE_CLASSES), self.dim, self.depth,
                             self.num_heads)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.shapes_dataset(n, size=self.size, seed=self._split_seed(split),
                                    num_distractors=self.num_distractors, min_radius=self.min_radius,
                                    max_radius=self.max_radius)


class LocalSelfAttention(MultiHeadSelfAttention):
    """Self-attention in which each token sees only the tokens at most ``window`` positions away."""

    def __init__(self, dim: int, num_heads: int = 2, window: int = 2):
        super().__init__(dim, num_heads)
        self.window = window

    def mask(self, n: int, device=None) -> torch.Tensor:
        """``(n, n)`` booleans, True where query i may attend key j: ``|i - j| <= window``."""
        i = torch.arange(n, device=device)
        return (i[:, None] - i[None, :]).abs() <= self.window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)                                     # (B, h, N, d_k) each
        B, h, N, dk = q.shape
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask(N, x.device))
        return self.proj(y.transpose(1, 2).reshape(B, N, h * dk))  # (B, N, D)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        q, k, _ = self._qkv(x)
        scores = (q @ k.transpose(-2, -1)) * self.scale            # (B, h, N, N)
        blocked = ~self.mask(q.shape[-2], x.device)
        return scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}"


class PairData(NamedTuple):
    """``inputs`` (n, L): bits 0/1, marked bits 2/3; ``targets`` (n,): 1 if the two marked bits are equal;
    ``distance`` (n,): how far apart the two marked positions are."""
    inputs: torch.Tensor
    targets: torch.Tensor
    distance: torch.Tensor


def pair_dataset(n: int, length: int = 16, seed: int = 0) -> PairData:
    """Random bit strings with two marked positions at a random distance 1..length-1; are the marked bits equal?"""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(2, (n, length), generator=g)                       # (n, L)
    distance = torch.randint(1, length, (n,), generator=g)                  # (n,)
    i = (torch.rand(n, generator=g) * (length - distance)).long()           # first marked position
    j = i + distance
    same = torch.rand(n, generator=g) < 0.5                                 # balanced labels
    rows = torch.arange(n)
    bits[rows, j] = torch.where(same, bits[rows, i], 1 - bits[rows, i])
    tokens = bits.clone()
    tokens[rows, i] += 2
    tokens[rows, j] += 2                                                    # marked: 2 or 3
    return PairData(tokens, same.long(), distance)


class PairClassifier(TinyTransformer):
    """``TinyTransformer`` that answers once per sequence (mean of the tokens, then a linear layer).

    ``window=None``: global self-attention; an integer: ``LocalSelfAttention`` with the *same* initial
    weights, so the two models differ only in what each token may see.
    """

    def __init__(self, length: int = 16, dim: int = 32, depth: int = 2, num_heads: int = 2,
                 window: Optional[int] = None):
        super().__init__(vocab=4, max_len=length, dim=dim, depth=depth, num_heads=num_heads)
        self.head = nn.Linear(dim, 2)
        self.window = window
        if window is not None:
            for block in self.blocks:
                local = LocalSelfAttention(dim, num_heads, window)
                local.load_state_dict(block.attn.state_dict())
                block.attn = local

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self._embed(tokens)                    # (B, L, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h).mean(1))     # (B, 2)


@dataclass(frozen=True)
class PairDemo(DemoConfig):
    """The experiment of §6: are two marked bits, far apart in a sequence, equal?"""
    kind: ClassVar[str] = "ch01_pairs"
    window: Optional[int] = None     # None: global self-attention; w: each layer sees w tokens either side
    length: int = 16                 # tokens per sequence
    dim: int = 32                    # token width D
    depth: int = 2                   # transformer blocks
    num_heads: int = 2               # heads h
    n_train: int = 2000
    n_val: int = 2000                # many held-out sequences: accuracy per distance needs them
    epochs: int = 4

    def build(self) -> nn.Module:
        return PairClassifier(self.length, self.dim, self.depth, self.num_heads, self.window)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return pair_dataset(n, self.length, seed=self._split_seed(split))

    @property
    def reach(self) -> Optional[int]:
        """The farthest pair one token can see after all layers: ``2 * depth * window`` (None: global)."""
        return None if self.window is None else 2 * self.depth * self.window


#: The demos of §6: reversal (toolkit), the class-token ViT, the two pair models over three seeds.
REVERSAL_DEMO = Reversal()
VIT_DEMO = ShapesClassTokenViT()
PAIR_SEEDS = (0, 1, 2)
PAIR_WINDOW = 2
PAIR_DEMOS = {"global": [PairDemo(seed=s) for s in PAIR_SEEDS],
              "local": [PairDemo(window=PAIR_WINDOW, seed=s) for s in PAIR_SEEDS]}


@torch.no_grad()
def accuracy_by_distance(model: nn.Module, data: PairData) -> torch.Tensor:
    """Accuracy on the pairs at each distance 1..L-1 (index 0 is distance 1)."""
    correct = (model(data.inputs).argmax(-1) == data.targets).float()
    length = data.inputs.shape[1]
    return torch.stack([correct[data.distance == d].mean() for d in range(1, length)])


# ---------------------------------------------------------------- measurements

def scaling_statistics(d_ks: Sequence[int], n_keys: int = 32, samples: int = 500, seed: int = 0) -> dict:
    """For q, k with N(0, 1) entries: the variance of q·k, the largest softmax weight over ``n_keys`` keys and
    the norm of the softmax's Jacobian (the gradient it passes back), without and with the 1/sqrt(d_k) scale."""
    g = torch.Generator().manual_seed(seed)
    out = {k: [] for k in ("var_raw", "var_scaled", "max_raw", "max_scaled", "grad_raw", "grad_scaled")}
    for d in d_ks:
        q = torch.randn(samples, 1, d, generator=g)
        k = torch.randn(samples, n_keys, d, generator=g)
        raw = (q @ k.transpose(1, 2))[:, 0]                     # (samples, n_keys)
        for name, s in (("raw", raw), ("scaled", raw / math.sqrt(d))):
            p = s.softmax(-1)
            jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]   # d softmax / d scores
            out[f"var_{name}"].append(s.var().item())
            out[f"max_{name}"].append(p.amax(-1).mean().item())
            out[f"grad_{name}"].append(jacobian.flatten(1).norm(dim=1).mean().item())
    return {"d_k": list(d_ks), **out}


def attention_rollout(maps: Sequence[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """Abnar & Zuidema (2020): average the heads, add the residual path (``residual * I``), renormalise the
    rows, multiply through the layers. ``maps``: one ``(B, h, N, N)`` per layer; returns ``(B, N, N)``."""
    rollout = None
    for attn in maps:
        a = attn.mean(1)                                                     # (B, N, N)
        a = (1 - residual) * a + residual * torch.eye(a.shape[-1], device=a.device)
        a = a / a.sum(-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def box_share(weights: torch.Tensor, boxes: torch.Tensor, grid: int, image_size: int) -> torch.Tensor:
    """Share of each row of ``weights`` ``(B, grid * grid)`` (patches, row-major) on the patches that overlap
    the target's box; ``(B,)``. Uniform weights give the box's share of the patches."""
    inside = _data.box_masks(boxes, grid, grid, image_size).flatten(1).float()   # (B, N)
    w = weights / weights.sum(-1, keepdim=True)
    return (w * inside).sum(-1)


def anti_diagonal_share(attn: torch.Tensor) -> torch.Tensor:
    """Mean weight on the anti-diagonal (query i -> key L-1-i) of ``(B, h, L, L)`` maps, per head ``(h,)``."""
    return attn.flip(-1).diagonal(dim1=-2, dim2=-1).mean((0, 2))


def patch_positions(grid: int, patch_size: int) -> torch.Tensor:
    """Pixel coordinates (row, column) of the patch centres, row-major: ``(grid * grid, 2)``."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return (torch.stack([rows.flatten(), cols.flatten()], 1).float() + 0.5) * patch_size


def mean_attention_distance(attn: torch.Tensor, grid: int, patch_size: int, extra_tokens: int = 1) -> torch.Tensor:
    """ViT's "attention distance": pixels between a patch query and the patches it attends to, weighted by
    attention (renormalised over the patches), averaged over queries and images; per head ``(h,)``."""
    w = attn[..., extra_tokens:, extra_tokens:]                              # (B, h, N, N) patches only
    w = w / w.sum(-1, keepdim=True)
    pos = patch_positions(grid, patch_size)
    return (w * torch.cdist(pos, pos)).sum(-1).mean((0, 2))


def position_similarity(pos: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every two position embeddings ``(N, D)`` -> ``(N, N)``."""
    unit = F.normalize(pos.detach().float(), dim=-1)
    return unit @ unit.T


def similarity_by_distance(sim: torch.Tensor, grid: int) -> tuple:
    """Mean similarity of neighbouring patches (one step apart) and of patches at least 3 steps apart."""
    dist = torch.cdist(patch_positions(grid, 1), patch_positions(grid, 1))
    return sim[dist == 1].mean().item(), sim[dist >= 3].mean().item()


def patch_table(image_size: int, patch_sizes: Sequence[int], dim: int) -> Table:
    """§3: per patch size, the tokens N, the entries of one N x N map and the share N / (N + 2D) of the
    two N x N products in the layer's 8ND² + 4N²D FLOPs."""
    rows = []
    for p in patch_sizes:
        n = (image_size // p) ** 2
        rows.append([p, format_count(n), format_count(n * n), f"{n / (n + 2 * dim):.1%}"])
    return Table([t(f"ch01.table.{k}") for k in ("patch", "tokens", "entries", "share")], rows)


def rounded(values, digits: int = 3) -> list:
    """A tensor or sequence as a list of Python floats rounded to ``digits`` (for printing)."""
    return [round(float(v), digits) for v in torch.as_tensor(values).detach().flatten()]

# ---------------------------------------------------------------- figures

def _image(ax, image: torch.Tensor) -> None:
    ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([]), ax.set_yticks([])


def _overlay(ax, image: torch.Tensor, weights: torch.Tensor, grid: int, vmax: Optional[float] = None):
    """The image in grey with ``weights`` ``(grid * grid,)`` stretched over it in colour; returns the artist."""
    size = image.shape[-1]
    ax.imshow(image.detach().cpu().mean(0).numpy(), cmap="gray", vmin=0, vmax=1)
    im = ax.imshow(weights.detach().cpu().view(grid, grid).numpy(), cmap="inferno", alpha=0.65,
                   extent=(-0.5, size - 0.5, size - 0.5, -0.5), vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    return im


def _box(ax, box, colour: str = "cyan") -> None:
    x0, y0, x1, y1 = [float(v) for v in box]
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.5))


def patch_tokens(image: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(N, C * P * P)``: the image cut into P x P patches, row-major, each flattened."""
    C, H, W = image.shape
    P = patch_size
    x = image.reshape(C, H // P, P, W // P, P).permute(1, 3, 0, 2, 4)       # (H/P, W/P, C, P, P)
    return x.reshape((H // P) * (W // P), C * P * P)                        # (N, C P^2)


def plot_patch_lookup(photo: torch.Tensor, patch_size: int, queries: Sequence[tuple], temperature: float = 0.2):
    """§1: each patch of a photograph as a token, Q = K = its normalised pixels; where each query looks."""
    grid = photo.shape[-1] // patch_size
    tokens = patch_tokens(photo, patch_size)
    tokens = F.normalize(tokens - tokens.mean(1, keepdim=True), dim=1)      # zero-mean, unit length
    weights = (tokens @ tokens.T / temperature).softmax(-1)                 # (N, N)
    fig, axes = plt.subplots(1, len(queries) + 1, figsize=(3.4 * (len(queries) + 1), 3.5),
                             layout="constrained")
    _image(axes[0], photo)
    axes[0].set_title(t("ch01.lookup.photo"))
    for ax, (r, c) in zip(axes[1:], queries):
        im = _overlay(ax, photo, weights[r * grid + c], grid)
        ax.add_patch(Rectangle((c * patch_size - 0.5, r * patch_size - 0.5), patch_size, patch_size,
                               fill=False, edgecolor="cyan", linewidth=2))
        ax.set_title(t("ch01.lookup.query", r=r, c=c))
        fig.colorbar(im, ax=ax, label=t("viz.weight"), shrink=0.8)
    fig.suptitle(t("ch01.lookup.title"))
    return fig


def plot_scaling_statistics(stats: dict):
    """§2: the variance of q·k, the largest softmax weight and the softmax's gradient against d_k."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.7), layout="constrained")
    d = stats["d_k"]
    for ax, name, ylabel in zip(axes, ("var", "max", "grad"), ("ch01.scale.var", "ch01.scale.max", "ch01.scale.grad")):
        ax.plot(d, stats[f"{name}_raw"], "o-", color="tab:red", label=t("ch01.scale.raw"))
        ax.plot(d, stats[f"{name}_scaled"], "s-", color="tab:blue", label=t("ch01.scale.scaled"))
        ax.set_xscale("log", base=2)
        ax.set_xticks(d, [str(v) for v in d])
        ax.set_xlabel(t("ch01.scale.d_k"))
        ax.set_ylabel(t(ylabel))
        ax.set_title(t(f"{ylabel}_title"))
        ax.grid(True, alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(t("ch01.scale.title"))
    return fig


def plot_head_split(num_tokens: int = 4, dim: int = 8, num_heads: int = 2):
    """§2: ``(N, D)`` -> ``view(N, h, d_k)`` -> ``transpose`` -> ``(h, N, d_k)``: the columns of each head."""
    dk = dim // num_heads
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained",
                             gridspec_kw=dict(width_ratios=[dim, num_heads * dk + num_heads - 1]))
    left, right = axes
    for n in range(num_tokens):
        for j in range(dim):
            head = j // dk
            left.add_patch(Rectangle((j, num_tokens - 1 - n), 1, 1, facecolor=colours(head), alpha=0.35 + 0.15 * (n % 2),
                                     edgecolor="white"))
            x = head * (dk + 1) + j % dk
            right.add_patch(Rectangle((x, num_tokens - 1 - n), 1, 1, facecolor=colours(head),
                                      alpha=0.35 + 0.15 * (n % 2), edgecolor="white"))
            right.text(x + 0.5, num_tokens - 0.5 - n, f"{n}", ha="center", va="center", fontsize=7)
    for ax, width, title in ((left, dim, t("ch01.heads.before", N=num_tokens, D=dim)),
                             (right, num_heads * (dk + 1) - 1,
                              t("ch01.heads.after", h=num_heads, N=num_tokens, d=dk))):
        ax.set_xlim(0, width), ax.set_ylim(0, num_tokens)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
        ax.set_yticks([i + 0.5 for i in range(num_tokens)], [str(num_tokens - 1 - i) for i in range(num_tokens)])
        ax.set_ylabel(t("ch01.heads.token"))
    left.set_xticks([j + 0.5 for j in range(dim)], [str(j) for j in range(dim)])
    left.set_xlabel(t("ch01.heads.feature"))
    right.set_xticks([h * (dk + 1) + dk / 2 for h in range(num_heads)],
                     [t("viz.heads.head", i=h) for h in range(num_heads)])
    right.set_xlabel(t("ch01.heads.per_head", d=dk))
    fig.suptitle(t("ch01.heads.title"))
    return fig


def plot_masks(causal: torch.Tensor, padding: torch.Tensor, causal_weights: torch.Tensor,
               padding_weights: torch.Tensor):
    """§3: two boolean masks ``(N, N)`` (True: may attend) and the attention weights ``(N, N)`` under each."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
    n = causal.shape[-1]
    allowed = ListedColormap(["#d9d9d9", "#4c72b0"])
    for ax, data, key in zip(axes, (causal, causal_weights, padding, padding_weights),
                             ("causal_mask", "causal_weights", "padding_mask", "padding_weights")):
        is_mask = key.endswith("mask")
        im = ax.imshow(data.detach().cpu().float().numpy(), cmap=allowed if is_mask else "viridis", vmin=0,
                       vmax=1)
        ax.set_title(t(f"ch01.masks.{key}"), fontsize=10)
        ax.set_xlabel(t("viz.key"))
        ax.set_ylabel(t("viz.query"))
        ax.set_xticks(range(n)), ax.set_yticks(range(n))
        if not is_mask:
            fig.colorbar(im, ax=ax, label=t("viz.weight"), shrink=0.8)
    handles = [Patch(color="#4c72b0", label=t("ch01.masks.allowed")),
               Patch(color="#d9d9d9", label=t("ch01.masks.blocked"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle(t("ch01.masks.title"))
    return fig


def plot_patch_grid(image: torch.Tensor, patch_size: int):
    """§3: an image cut into P x P patches, numbered row by row: the order of the N tokens."""
    C, H, W = image.shape
    grid_h, grid_w = H // patch_size, W // patch_size
    tokens = patch_tokens(image, patch_size).view(-1, C, patch_size, patch_size)
    fig = plt.figure(figsize=(11, 3.9), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 2.2])
    ax = left.subplots()
    _image(ax, image)
    for k in range(1, grid_w):
        ax.axvline(k * patch_size - 0.5, color="white", linewidth=1)
    for k in range(1, grid_h):
        ax.axhline(k * patch_size - 0.5, color="white", linewidth=1)
    for r in range(grid_h):
        for c in range(grid_w):
            ax.text(c * patch_size + 2, r * patch_size + 2, str(r * grid_w + c), color="yellow", fontsize=7,
                    va="top")
    ax.set_title(t("ch01.patches.image", H=H, W=W, P=patch_size))
    cols = min(len(tokens), 8)
    rows = math.ceil(len(tokens) / cols)
    strip = right.subplots(rows, cols)
    for i, ax in enumerate(strip.flat):
        if i < len(tokens):
            _image(ax, tokens[i])
            ax.set_title(str(i), fontsize=7, pad=2)
        else:
            ax.axis("off")
    right.suptitle(t("ch01.patches.sequence", N=len(tokens), d=C * patch_size ** 2), fontsize=10)
    fig.suptitle(t("ch01.patches.title"))
    return fig


def plot_flop_terms(ns: Sequence[int], dim: int, marks: Optional[dict] = None):
    """§5: the projections 8ND² against the attention products 4N²D (log-log); they cross at N = 2D."""
    n = np.asarray(ns, dtype=float)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    ax.loglog(n, 8 * n * dim ** 2, "-", label=t("ch01.cost.projections"))
    ax.loglog(n, 4 * n ** 2 * dim, "-", label=t("ch01.cost.products"))
    ax.axvline(2 * dim, color="gray", linestyle="--", label=t("ch01.cost.crossover", n=2 * dim))
    for label, value in (marks or {}).items():
        ax.plot([value], [8 * value * dim ** 2 + 4 * value ** 2 * dim], "k^")
        ax.annotate(label, (value, 8 * value * dim ** 2), textcoords="offset points", xytext=(4, -14), fontsize=8)
    ax.set_xlabel(t("figures.scaling.tokens"))
    ax.set_ylabel(t("figures.cost.flops"))
    ax.set_title(t("ch01.cost.title", D=dim))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_vit_attention(images: torch.Tensor, per_layer: Sequence[torch.Tensor], rollout: torch.Tensor,
                       grid: int, boxes: Optional[torch.Tensor] = None):
    """§6: per image, the class token's attention over the patches in each layer (heads averaged) and the
    rollout across layers, over the image in grey; the target's box in cyan. Maps: ``(G, N)`` patches."""
    G, L = len(images), len(per_layer)
    fig, axes = plt.subplots(G, L + 2, figsize=(2.4 * (L + 2) + 0.8, 2.4 * G + 0.5), layout="constrained",
                             squeeze=False)
    titles = [t("ch01.vit.image")] + [t("ch01.vit.layer", l=l + 1) for l in range(L)] + [t("ch01.vit.rollout")]
    maps = [w / w.sum(-1, keepdim=True) for w in list(per_layer) + [rollout]]      # shares of each row
    vmax = max(w.max().item() for w in maps)
    for g in range(G):
        _image(axes[g, 0], images[g])
        for col, w in enumerate(maps, start=1):
            im = _overlay(axes[g, col], images[g], w[g], grid, vmax=vmax)
            if boxes is not None:
                _box(axes[g, col], boxes[g])
        if boxes is not None:
            _box(axes[g, 0], boxes[g])
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[:, 1:], label=t("ch01.vit.share"), shrink=0.8)
    fig.suptitle(t("ch01.vit.title" if boxes is not None else "ch01.vit.title_plain"))
    return fig


def plot_cls_heads(image: torch.Tensor, maps: Sequence[torch.Tensor], grid: int, box=None):
    """§6: the class token's attention of every head ``(h, N)`` in every layer, over one image."""
    L, h = len(maps), maps[0].shape[0]
    fig, axes = plt.subplots(L, h, figsize=(2.5 * h + 0.8, 2.5 * L + 0.4), layout="constrained", squeeze=False)
    maps = [m / m.sum(-1, keepdim=True) for m in maps]
    vmax = max(m.max().item() for m in maps)
    for l, layer in enumerate(maps):
        for k in range(h):
            im = _overlay(axes[l, k], image, layer[k], grid, vmax=vmax)
            if box is not None:
                _box(axes[l, k], box)
            axes[l, k].set_title(t("ch01.vit.layer_head", l=l + 1, k=k), fontsize=9)
    fig.colorbar(im, ax=axes, label=t("ch01.vit.share"), shrink=0.8)
    fig.suptitle(t("ch01.vit.heads_title"))
    return fig


def plot_position_similarity(sim: torch.Tensor, grid: int):
    """§6: for each patch (a small tile at its place), the cosine similarity of its position embedding to
    every other patch's. ``sim``: ``(N, N)`` over the ``grid * grid`` patches, tiled into one image."""
    tiles = torch.full((grid, grid, grid + 1, grid + 1), float("nan"))
    tiles[:, :, :grid, :grid] = sim.detach().cpu().view(grid, grid, grid, grid)      # (row, col, r', c')
    mosaic = tiles.permute(0, 2, 1, 3).reshape(grid * (grid + 1), grid * (grid + 1))[:-1, :-1]
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    im = ax.imshow(mosaic.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    centres = [i * (grid + 1) + (grid - 1) / 2 for i in range(grid)]
    ax.set_xticks(centres, [str(i + 1) for i in range(grid)])
    ax.set_yticks(centres, [str(i + 1) for i in range(grid)])
    ax.set_xlabel(t("ch01.pos.col"))
    ax.set_ylabel(t("ch01.pos.row"))
    fig.colorbar(im, ax=ax, label=t("ch01.pos.cosine"), shrink=0.9)
    ax.set_title(t("ch01.pos.title"), fontsize=10)
    return fig


def plot_memory(ns: Sequence[int], memory: dict):
    """§5: peak extra memory against N (log-log), one line per path (``"fused"``, ``"explicit"``), labelled
    with its fitted slope."""
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for key, values in memory.items():
        label = t("figures.scaling.slope", name=t(f"ch01.path.{key}"), slope=fit_slope(ns, values, 3))
        ax.loglog(ns, values, "o-", label=label)
    ax.set_xticks(list(ns), [str(n) for n in ns])
    ax.minorticks_off()
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(t("figures.scaling.tokens"))
    ax.set_ylabel(t("figures.scaling.bytes"))
    ax.set_title(t("figures.scaling.memory_title"))
    ax.legend(fontsize=8)
    return fig


def plot_pair_accuracy(accuracy: dict, reach: int):
    """§6: accuracy against the distance between the two marked positions, mean ± std over seeds.
    ``accuracy``: ``{label: (seeds, L - 1) tensor}``; ``reach``: how far the local model can see."""
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for i, (label, acc) in enumerate(accuracy.items()):
        acc = torch.as_tensor(acc, dtype=torch.float32)
        d = np.arange(1, acc.shape[1] + 1)
        mean, std = acc.mean(0).numpy(), acc.std(0).numpy() if len(acc) > 1 else np.zeros(acc.shape[1])
        ax.plot(d, mean, "o-", color=f"C{i}", label=label)
        ax.fill_between(d, mean - std, mean + std, color=f"C{i}", alpha=0.2)
    ax.axhline(0.5, color="gray", linestyle=":", label=t("ch01.pairs.chance"))
    ax.axvline(reach + 0.5, color="black", linestyle="--", label=t("ch01.pairs.reach", reach=reach))
    ax.set_xticks(d)
    ax.set_ylim(0.2, 1.05)
    ax.set_xlabel(t("ch01.pairs.distance"))
    ax.set_ylabel(t("figures.accuracy.y"))
    ax.set_title(t("ch01.pairs.title"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


# ---------------------------------------------------------------- the explorers

def _temperature(value) -> str:
    return f"{value:g}"


def _self_attention(s) -> nn.Module:
    return MECHANISMS["self_attention"].cls(s["dim"], num_heads=s["heads"])


def _plot_self_attention(module, x, s):
    attn = module.attention_map(x[:1])[0]                           # (h, N, N)
    tau = float(s.get("temperature", 1.0))
    if tau != 1.0:
        # softmax(z / τ) = softmax(log softmax(z) / τ): the row constant cancels.
        attn = (attn.clamp_min(1e-30).log() / tau).softmax(dim=-1)  # (h, N, N)
    return viewer.query_map(attn)


SELF_ATTENTION_EXPLORER = register_explorer(ExplorerSpec(
    "self_attention", "tokens",
    # Four heads to start (the registry builds eight): a readable grid and a quick frame.
    token_controls() + (Control("heads", "widgets.heads", (1, 2, 4, 8), 4, (1, 4)),
                        Control("temperature", "ch01.explorer.temperature", (0.25, 0.5, 1.0, 2.0, 4.0), 1.0,
                                (0.5, 1.0, 2.0), fmt=_temperature, picture_only=True)),
    build=_self_attention, plot=_plot_self_attention, notes=("ch01.explorer.temperature_note",)))


def _patch_embedding(s) -> nn.Module:
    return PatchEmbedding(s["patch_size"], in_channels=3, dim=s["dim"])


def _plot_patch_embedding(module, x, s):
    side = s["image_size"] // s["patch_size"]
    return viewer.patch_tokens(x[0], module(x[:1])[0], grid=(side, side))     # (N, D) tokens


PATCH_EMBEDDING_EXPLORER = register_explorer(ExplorerSpec(
    "patch_embedding", "image",
    (Control("image_size", "ch01.explorer.image_size", (32, 48, 64, 96), 32, (32, 64)),
     Control("patch_size", "ch01.explorer.patch_size", (4, 8, 16), 8, (4, 8, 16)),
     Control("dim", "widgets.dim", (16, 32, 64, 128), 32, (32, 128))),
    build=_patch_embedding, plot=_plot_patch_embedding,
    title={"en": "patch embedding", "zh": "图像块嵌入"}))

# ---------------------------------------------------------------- exercises

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
