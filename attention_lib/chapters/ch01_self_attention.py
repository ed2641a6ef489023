"""Chapter 01 · Self-attention, multi-head attention and the patch embedding: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch01_self_attention as ch``.
Here: the strings the notebook prints, the demo configurations of §6 (a class-token ViT, the far-pair
experiment with a local-attention twin), the measurements the chapter prints (rollout, share on the target's
box, attention distance, position-embedding similarity, the scaling statistics of §2), the explorers and the
exercise checks. The figures live in ``_ch01_figures`` and the demos' models and data in ``_ch01_demos``
(both re-exported here: ``ch.plot_masks``, ``ch.PairDemo``...), kept apart only so that each file reads in one
sitting.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..patch_embedding import PatchEmbedding
from ..registry import MECHANISMS
from ..self_attention import MultiHeadSelfAttention
from ..toolkit import data as _data
from ..toolkit import viewer
from ..toolkit.exercises import (Slip, as_count, as_function, as_shape, call, case, close, exercise,
                                  expect_tensor, which)
from ..toolkit.format import Table, format_count
from ..toolkit.i18n import register, t
from ..toolkit.train import Reversal
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls
from ._ch01_demos import (ClassTokenViT, LocalSelfAttention, PairClassifier, PairData, PairDemo,  # noqa: F401
                          ShapesClassTokenViT, pair_dataset)
from ._ch01_figures import (patch_tokens, plot_cls_heads, plot_flop_terms, plot_head_split,  # noqa: F401
                            plot_masks, plot_memory, plot_pair_accuracy, plot_patch_grid, plot_patch_lookup,
                            plot_position_similarity, plot_scaling_statistics, plot_vit_attention)

register({
    "ch01.explorer.temperature": {"en": "softmax temperature τ", "zh": "softmax 温度 τ"},
    "ch01.explorer.temperature_note": {"en": "τ only rescales the scores before the softmax in the plot: "
                                             "shapes and costs do not change.",
                                       "zh": "τ 只在绘图时缩放 softmax 之前的得分，形状和计算量不变。"},
    "ch01.explorer.image_size": {"en": "image size H = W", "zh": "图像尺寸 H = W"},
    "ch01.explorer.patch_size": {"en": "patch size P", "zh": "图像块大小 P"},
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
                    "zh": "N={N}，D={D}，h={h}：参数量 {params}；显式路径的浮点运算次数 {explicit:,} = 公式 {formula:,}；"
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
    "ch01.vit.accuracy": {"en": "tiny ViT trained on {n:,} images for {epochs} epochs: validation accuracy {acc:.1%} "
                                "(chance: 25%)",
                          "zh": "小型 ViT 用 {n:,} 张图像训练 {epochs} 轮：验证集准确率 {acc:.1%}（随机猜测为 25%）"},
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
    "ch01.pairs.params": {"en": "parameters: global {global:,}, local {local:,}; each trained on {n:,} sequences for "
                                "{epochs} epochs, {seeds} seeds",
                          "zh": "参数量：全局 {global:,}，局部 {local:,}；各用 {n:,} 个序列训练 {epochs} 轮，{seeds} 个随机种子"},
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
    "ch01.table.share": {"en": "share of QKᵀ and AV in the FLOPs", "zh": "QKᵀ 与 AV 占浮点运算次数的比例"},
})


# ---------------------------------------------------------------- the demos of §6

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
    "ex.sa.params.other": {"en": "count every nn.Linear in §4's source, its weight and (if it has one) its bias, "
                                 "with D = 96; the number of heads does not change the count.",
                           "zh": "把 §4 源代码中每个 nn.Linear 的权重和偏置（如果有）都数一遍，D = 96；头数不影响参数量。"},
    "ex.sa.batch1": {"en": "It passed the first test; this one differs only in its batch of one sample: does a "
                           ".squeeze() remove the batch axis too?",
                     "zh": "第一组测试通过了；这一组只是把批量换成了 1 个样本：是不是 .squeeze() 把批量维度也去掉了？"},
    "ex.sa.case.width": {"en": "It passed the first test; this one differs only in the head width, d_k = {d_k}: is "
                               "d_k (or the scale) fixed in your code? Read it off the input (q.shape[-1]).",
                         "zh": "第一组测试通过了；这一组只是把每个头的宽度换成了 d_k = {d_k}：代码里是不是写死了 d_k（或缩放因子）？"
                               "请从输入读取（q.shape[-1]）。"},
    "ex.sa.case.tokens": {"en": "It passed the first test; this one differs only in the number of tokens, N = {n}: "
                                "is N fixed in your code (a mask made for another N)? Read it off the input.",
                          "zh": "第一组测试通过了；这一组只是把词元数换成了 N = {n}：代码里是不是写死了 N（比如为另一个 N 做的掩码）？"
                                "请从输入读取。"},
    "ex.sa.fixed_scale": {"en": "your scores are divided by √{m}, but these queries have d_k = {d_k}: read d_k off the "
                                "input (q.shape[-1]), not from a variable of the notebook.",
                          "zh": "你的分数除以的是 √{m}，而这些查询的 d_k = {d_k}：请从输入读取 d_k（q.shape[-1]），"
                                "不要用 Jupyter 笔记本里的变量。"},
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


#: The widths a scale fixed in the code is likely to come from: a notebook's d_k, D or N, a round number.
_FIXED_WIDTHS = (*range(1, 17), 24, 32, 48, 64, 96, 128, 256, 512)


def _fixed_scale(got, q, k, v, mask=None):
    """The slip of scores divided by √m for a fixed m other than d_k (a notebook variable, a number), else None.
    Call it on a wrong result only."""
    d_k = q.shape[-1]
    for m in _FIXED_WIDTHS:
        if m != d_k and close(got, _attention(q, k, v, mask, scale=m ** -0.5)):
            return Slip("ex.sa.fixed_scale", m=m, d_k=d_k)
    return None


def _random_mask(N: int, g: torch.Generator) -> torch.Tensor:
    """A boolean (N, N) mask in which every query keeps its own key and loses another (an inverted mask stays finite)."""
    mask = torch.rand(N, N, generator=g) < 0.5
    mask |= torch.eye(N, dtype=torch.bool)
    mask &= ~torch.eye(N, dtype=torch.bool).roll(1, dims=1)
    return mask


#: The test cases of exercises 3 and 4: (what the case changes, its sentence's fields, B, h, N, d_k). The first
#: case's sizes differ from every variable of the notebook (B = 2, h = 2, N = 6, d_k = 8), so that an answer that
#: leans on one of them fails; each later case changes one thing, so that the verdict can say which.
SDPA_CASES = ((None, {}, 3, 3, 5, 12), ("ex.sa.batch1", {}, 1, 3, 5, 12),
              ("ex.sa.case.width", dict(d_k=4), 3, 3, 5, 4), ("ex.sa.case.tokens", dict(n=7), 3, 3, 7, 12))
CAUSAL_CASES = ((None, {}, 3, 3, 7, 5), ("ex.sa.batch1", {}, 1, 3, 7, 5), ("ex.sa.case.tokens", dict(n=4), 3, 3, 4, 5))


@exercise("sa.sdpa", forbid=("scaled_dot_product_attention",))
def _sa_sdpa(answer):
    attention = as_function(answer, usage="attention(q, k, v, mask=None)")
    g = torch.Generator().manual_seed(0)
    for note, fields, B, h, N, d in SDPA_CASES:
        with case(note, **fields):
            _sdpa_case(attention, B, h, N, d, g)
    return None


def _sdpa_case(attention, B, h, N, d, g):
    """One case of exercise 3: without a mask, then with one; raises the Slip of the first thing found wrong."""
    module = MultiHeadSelfAttention(h * d, num_heads=h).eval()
    for p in module.parameters():                                 # weights of its own, whatever the global seed
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.3)
    mask = _random_mask(N, g)
    x = torch.randn(B, N, h * d, generator=g)
    with torch.no_grad():                                        # the references first, on the originals
        q, k, v = module._qkv(x)                                 # (B, h, N, d_k) from the library
        expected = F.scaled_dot_product_attention(q, k, v)
        library = module(x)                                      # the library's output
        variants = [("ex.sa.sdpa.no_scale", _attention(q, k, v, scale=1.0)),
                    ("ex.sa.sdpa.scale_dk", _attention(q, k, v, scale=1.0 / d)),
                    ("ex.sa.sdpa.dim", _attention(q, k, v, dim=-2)),
                    ("ex.sa.sdpa.weights", (q @ k.transpose(-2, -1) * d ** -0.5).softmax(-1))]
    got = call(attention, q, k, v, names=("q", "k", "v"))
    if B == 1 and isinstance(got, torch.Tensor) and got.shape == q.shape[1:]:
        raise Slip("ex.sa.sdpa.batch1").whole()
    slip = which(got, variants)
    if slip is not None:
        raise Slip(slip)
    fixed = None if close(got, expected) else _fixed_scale(got, q, k, v)
    if fixed is not None:
        raise fixed
    got = expect_tensor(got, expected)
    with torch.no_grad():
        through_library = module.proj(got.transpose(1, 2).reshape(B, N, h * d))
    if not close(through_library, library):
        raise Slip("ex.sa.sdpa.other")

    with torch.no_grad():
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        variants = [("ex.sa.sdpa.mask_ignored", _attention(q, k, v)),
                    ("ex.sa.sdpa.mask_inverted", _attention(q, k, v, mask, invert=True)),
                    ("ex.sa.sdpa.mask_zero", _attention(q, k, v, mask, fill=0.0)),
                    ("ex.sa.sdpa.mask_after", _attention(q, k, v, mask, after=True))]
    got = call(attention, q, k, v, mask, names=("q", "k", "v", "mask"))
    slip = which(got, variants)
    if slip is not None:
        raise Slip(slip)
    if not close(expect_tensor(got, expected), expected):
        raise Slip("ex.sa.sdpa.mask_other")


@exercise("sa.causal", forbid=("is_causal",))
def _sa_causal(answer):
    causal_attention = as_function(answer, usage="causal_attention(q, k, v)")
    g = torch.Generator().manual_seed(1)
    for note, fields, B, h, N, d in CAUSAL_CASES:
        with case(note, **fields):
            q, k, v = (torch.randn(B, h, N, d, generator=g) for _ in range(3))
            lower = torch.ones(N, N, dtype=torch.bool).tril()
            with torch.no_grad():                                # the references first, on the originals
                expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                sdpa = lambda mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # noqa: E731
                variants = [("ex.sa.causal.no_mask", sdpa(None)), ("ex.sa.causal.transposed", sdpa(lower.T)),
                            ("ex.sa.causal.inverted", sdpa(~lower)),
                            ("ex.sa.causal.no_diagonal", sdpa(lower.tril(-1))),
                            ("ex.sa.causal.float_ones", sdpa(lower.float()))]
            got = call(causal_attention, q, k, v, names=("q", "k", "v"))
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
                # a row whose keys are all blocked: NaN on the explicit path, zeros in SDPA; name the slip either way
                slip = which(torch.nan_to_num(got.detach().float(), nan=0.0), variants)
                if slip is not None:
                    raise Slip(slip)
                fixed = None if close(got, expected) else _fixed_scale(got, q, k, v, lower)
                if fixed is not None:
                    raise fixed
            if not close(expect_tensor(got, expected), expected):
                raise Slip("ex.sa.causal.other")
    return None
