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
from ..toolkit import readings as rd
from ..toolkit import viewer
from ..toolkit.exercises import (Slip, as_count, as_function, as_shape, call, case, close, exercise,
                                  expect_tensor, which)
from ..toolkit.format import Table, fit_slope, format_count
from ..toolkit.i18n import register, t
from ..toolkit.train import Reversal, one_thread
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
                                       "zh": "τ 只在绘图时缩放 softmax 之前的分数，形状和计算量不变。"},
    "ch01.explorer.image_size": {"en": "image size H = W", "zh": "图像尺寸 H = W"},
    "ch01.explorer.patch_size": {"en": "patch size P", "zh": "图像块大小 P"},
})

register({
    # printed by the notebook
    "ch01.scale.table.d_k": {"en": "d_k", "zh": "d_k"},
    "ch01.scale.table.var": {"en": "variance of the scores", "zh": "分数的方差"},
    "ch01.scale.table.max": {"en": "largest weight (mean)", "zh": "最大权重（均值）"},
    "ch01.scale.table.mean": {"en": "‖∂A/∂q‖, mean", "zh": "‖∂A/∂q‖ 的均值"},
    "ch01.scale.table.median": {"en": "‖∂A/∂q‖, median", "zh": "‖∂A/∂q‖ 的中位数"},
    "ch01.scale.table.flat": {"en": "queries with ‖∂A/∂q‖ < 0.01", "zh": "‖∂A/∂q‖ < 0.01 的查询"},
    "ch01.row_sums": {"en": "row sums of A (sample 0, head 0): {sums}", "zh": "A 各行之和（样本 0，头 0）：{sums}"},
    "ch01.equivariance": {"en": "permutation {perm}: output permuted the same way: {plain}; "
                                "with a position embedding: {with_pos}",
                          "zh": "置换 {perm}：输出按同样方式置换：{plain}；加上位置嵌入之后：{with_pos}"},
    "ch01.masked_rows": {"en": "row sums with the causal mask: {causal}; largest weight on a padded key: {padded}",
                         "zh": "加因果掩码后各行之和：{causal}；填充键上的最大权重：{padded}"},
    "ch01.counts": {"en": "N={N}, D={D}, h={h}: {params} parameters; FLOPs explicit {explicit:,} = formula "
                          "{formula:,}; forward on SDPA's math path {fused:,}; 8ND² + 4N²D alone {main:,}",
                    "zh": "N={N}，D={D}，h={h}：参数量 {params}；显式路径的浮点运算次数 {explicit:,} = 公式 {formula:,}；"
                          "forward 走 SDPA 数学路径时为 {fused:,}；仅 8ND² + 4N²D 为 {main:,}"},
    "ch01.memory": {"en": "N = {n}: peak extra memory {fused:,} bytes fused, {explicit:,} bytes explicit "
                          "({ratio:.0f}×); the scores and weights alone: 2·h·N²·4 = {scores:,} bytes; 5·N·D·4 = {linear:,} bytes",
                    "zh": "N = {n}：额外峰值内存，融合核函数 {fused:,} 字节，显式路径 {explicit:,} 字节（{ratio:.0f} 倍）；"
                          "仅分数与权重就有 2·h·N²·4 = {scores:,} 字节；5·N·D·4 = {linear:,} 字节"},
    "ch01.reversal": {"en": "reversal accuracy {acc:.1%}; weight on the anti-diagonal per head: trained {trained}, "
                            "random {random} (uniform: 0.125)",
                      "zh": "反转任务的准确率 {acc:.1%}；各头落在反对角线上的权重：训练后 {trained}，"
                            "随机初始化 {random}（均匀分配时为 0.125）"},
    "ch01.reversal.random": {"en": "Random initialisation: attention per head", "zh": "随机初始化：各头的注意力"},
    "ch01.reversal.trained": {"en": "Trained to reverse: attention per head", "zh": "训练反转之后：各头的注意力"},
    "ch01.vit.accuracy": {"en": "tiny ViT, {n:,} training images, {epochs} epochs: validation accuracy per seed {acc} "
                                "(chance: 25%)",
                          "zh": "小型 ViT，{n:,} 张训练图像，{epochs} 轮：各随机种子的验证准确率 {acc}（随机猜测为 25%）"},
    "ch01.pairs.beyond": {"en": "local model beyond its reach: held-out accuracy per distance and seed {low:.2f} to "
                                "{high:.2f}; on its training pairs beyond the reach, per seed {train}",
                          "zh": "局部模型在可及范围之外：各距离、各随机种子的验证准确率在 {low:.2f} 到 {high:.2f} 之间；"
                                "它在自己的训练样本上、可及范围之外的准确率，各随机种子分别为 {train}"},
    "ch01.vit.training": {"en": "training loss per seed in the last epoch {loss} (the epoch before: {before}); training "
                                "accuracy over the last epoch {acc}",
                          "zh": "各随机种子最后一轮的训练损失 {loss}（前一轮：{before}）；最后一轮的训练准确率 {acc}"},
    "ch01.vit.table.seed": {"en": "seed", "zh": "随机种子"},
    "ch01.vit.table.acc": {"en": "accuracy", "zh": "准确率"},
    "ch01.vit.table.layer": {"en": "layer", "zh": "层"},
    "ch01.vit.table.uniform_dist": {"en": "uniform attention (px)", "zh": "均匀注意力（像素）"},
    "ch01.vit.table.cls": {"en": "class token, layer {l}", "zh": "类别词元，第 {l} 层"},
    "ch01.vit.table.queries": {"en": "patch queries, layer {l}", "zh": "图像块查询，第 {l} 层"},
    "ch01.vit.table.rollout": {"en": "rollout", "zh": "注意力展开"},
    "ch01.vit.table.spread": {"en": "heads' spread in share", "zh": "各头份额之差"},
    "ch01.vit.table.dist": {"en": "heads' attention distance (px)", "zh": "各头的注意力距离（像素）"},
    "ch01.vit.table.uniform": {"en": "uniform", "zh": "均匀分配"},
    "ch01.vit.table.bright": {"en": "brightness map (no learning)", "zh": "亮度图（无需学习）"},
    "ch01.vit.table.bright2": {"en": "brightness² map", "zh": "亮度平方图"},
    "ch01.vit.table.peak": {"en": "brightest patch in the box", "zh": "最亮图像块落在框内"},
    "ch01.pos.profile": {"en": "{which}: mean cosine by distance (patches) 1: {d1:.2f}, √2: {d2:.2f}, 2–√5: {d3:.2f}, "
                               "2√2–√13: {d4:.2f}, 4 or more: {d5:.2f}; pairs 3 or more apart: both on the border "
                               "{border:.2f}, the others {other:.2f}; tiles' mean cosine to the (other) border patches: "
                               "border patches' {border_tiles:+.2f}, interior patches' {interior_tiles:+.2f}",
                         "zh": "{which}：按距离（以图像块计）的平均余弦相似度，1：{d1:.2f}，√2：{d2:.2f}，2–√5：{d3:.2f}，"
                               "2√2–√13：{d4:.2f}，4 及以上：{d5:.2f}；相距 3 格及以上的图像块对中，两块都在边缘的为 "
                               "{border:.2f}，其余为 {other:.2f}；小方块与（其他）边缘图像块的平均余弦相似度：边缘图像块的为 "
                               "{border_tiles:+.2f}，内部图像块的为 {interior_tiles:+.2f}"},
    "ch01.heads.row": {"en": "seed 0, layer {layer}: share on the target per head {share}; mean attention distance "
                             "(pixels) {dist}",
                       "zh": "随机种子 0，第 {layer} 层：各头落在目标上的份额 {share}；平均注意力距离（像素）{dist}"},
    "ch01.pos.trained": {"en": "trained, seed {seed}", "zh": "训练后，随机种子 {seed}"},
    "ch01.pos.random": {"en": "random initialisation", "zh": "随机初始化"},
    "ch01.pos.row_text": {"en": "{which}: mean cosine similarity {near:.2f} between neighbouring patches, "
                                "{far:.2f} between patches 3 or more apart",
                          "zh": "{which}：相邻图像块之间的平均余弦相似度 {near:.2f}，相距 3 格及以上的图像块之间 {far:.2f}"},
    "ch01.viewer.title": {"en": "Tiny ViT, layer 1: where each patch looks", "zh": "小型 ViT 第 1 层：每个图像块看向哪里"},
    "ch01.pairs.params": {"en": "parameters: global {global:,}, local {local:,}; each trained on {n:,} sequences for "
                                "{epochs} epochs, {seeds} seeds; loss floor of a model that is sure within distance "
                                "{reach} and guesses beyond: {floor:.3f}",
                          "zh": "参数量：全局 {global:,}，局部 {local:,}；各用 {n:,} 个序列训练 {epochs} 轮，{seeds} 个随机种子；"
                                "在距离 {reach} 以内完全确定、更远处只能猜的模型，其损失下限为 {floor:.3f}"},
    "ch01.pairs.global_short": {"en": "global", "zh": "全局"},
    "ch01.pairs.local_short": {"en": "local", "zh": "局部"},
    "ch01.pairs.table.model": {"en": "model", "zh": "模型"},
    "ch01.pairs.table.seed": {"en": "seed", "zh": "随机种子"},
    "ch01.pairs.table.loss": {"en": "final training loss", "zh": "最终训练损失"},
    "ch01.pairs.table.train_in": {"en": "training acc., distance ≤ {reach}", "zh": "训练准确率（距离 ≤ {reach}）"},
    "ch01.pairs.table.train_out": {"en": "training acc., distance > {reach}", "zh": "训练准确率（距离 > {reach}）"},
    "ch01.pairs.table.val_in": {"en": "held-out acc., distance ≤ {reach}", "zh": "验证准确率（距离 ≤ {reach}）"},
    "ch01.pairs.table.val_out": {"en": "held-out acc., distance > {reach}", "zh": "验证准确率（距离 > {reach}）"},
    "ch01.block_share": {"en": "output {shape}; self-attention holds {share:.1%} of the block's parameters",
                         "zh": "输出形状 {shape}；自注意力占该块参数量的 {share:.1%}"},
    "ch01.slip.view": {"en": "view without transpose: shape {shape} (looks right), largest difference from "
                             "the correct output {diff:.3f}",
                       "zh": "只 view 不 transpose：形状 {shape}（看起来没错），与正确输出的最大差值 {diff:.3f}"},
    "ch01.slip.dim": {"en": "softmax(dim=-2): row sums {rows}; column sums {cols}",
                      "zh": "softmax(dim=-2)：各行之和 {rows}；各列之和 {cols}"},
    "ch01.slip.nan": {"en": "a query with every key blocked: explicit path {explicit}, SDPA {sdpa} (PyTorch {version})",
                      "zh": "所有键都被屏蔽的查询：显式路径 {explicit}，SDPA {sdpa}（PyTorch {version}）"},
    "ch01.slip.list": {"en": "heads in a Python list: {plain} parameters; in nn.ModuleList: {registered}",
                       "zh": "用 Python 列表存放各头：{plain} 个参数；用 nn.ModuleList：{registered} 个"},
    "ch01.table.patch": {"en": "patch size P", "zh": "图像块大小 P"},
    "ch01.table.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "ch01.table.entries": {"en": "entries of one N × N map", "zh": "一张 N × N 注意力图的元素数"},
    "ch01.table.share": {"en": "share of QKᵀ and AV in the FLOPs", "zh": "QKᵀ 与 AV 占浮点运算次数的比例"},
})


# ---------------------------------------------------------------- the demos of §6

REVERSAL_DEMO = Reversal()
VIT_SEEDS = (0, 1, 2)
VIT_DEMOS = [ShapesClassTokenViT(seed=s) for s in VIT_SEEDS]
VIT_DEMO = VIT_DEMOS[0]
PAIR_SEEDS = (0, 1, 2)
PAIR_WINDOW = 8
PAIR_DEMOS = {"global": [PairDemo(seed=s) for s in PAIR_SEEDS],
              "local": [PairDemo(window=PAIR_WINDOW, seed=s) for s in PAIR_SEEDS]}


@torch.no_grad()
@one_thread()
def accuracy_by_distance(model: nn.Module, data: PairData) -> torch.Tensor:
    """Accuracy on the pairs at each distance 1..L-1 (index 0 is distance 1), on one thread (the same numbers
    on every machine)."""
    correct = (model(data.inputs).argmax(-1) == data.targets).float()
    length = data.inputs.shape[1]
    return torch.stack([correct[data.distance == d].mean() for d in range(1, length)])


def loss_floor(length: int, reach: int) -> float:
    """The expected training loss of a model that is sure of every pair within ``reach`` and guesses (p = 1/2)
    beyond it: ln 2 times the share of the distances 1..length-1 that lie beyond ``reach``."""
    return math.log(2) * (length - 1 - reach) / (length - 1)


def pair_results(demos: Sequence) -> dict:
    """One model's runs (one :class:`~attention_lib.toolkit.train.Demo` per seed) ->
    ``val`` and ``train`` accuracy by distance ``(seeds, L - 1)``, the final training ``loss`` per seed and
    the training loss of every epoch (``curves``, ``(seeds, epochs)``)."""
    val, train = [], []
    for demo in demos:
        model = demo.model.cpu()
        val.append(accuracy_by_distance(model, demo.val_data))
        train.append(accuracy_by_distance(model, demo.config.data("train")))
    return dict(val=torch.stack(val), train=torch.stack(train),
                loss=torch.tensor([d.history["loss"][-1] for d in demos]),
                curves=torch.tensor([d.history["loss"] for d in demos]))


def beyond_reach(local: dict, reach: int) -> dict:
    """The local model beyond its ``reach`` (:func:`pair_results`): the lowest and highest held-out accuracy of any
    distance and seed, and its training accuracy there, per seed."""
    beyond = local["val"][:, reach:]                                         # (seeds, distances beyond)
    return dict(low=beyond.min().item(), high=beyond.max().item(),
                train=rounded(local["train"][:, reach:].mean(1)))


def pair_table(results: dict, reach: int) -> Table:
    """One row per model and seed: final training loss; accuracy within and beyond ``reach`` on the
    training pairs and on the held-out pairs."""
    rows = []
    for name, r in results.items():
        for i, seed in enumerate(PAIR_SEEDS):
            cells = [r["train"][i, :reach].mean(), r["train"][i, reach:].mean(),
                     r["val"][i, :reach].mean(), r["val"][i, reach:].mean()]
            rows.append([t(f"ch01.pairs.{name}_short"), str(seed), f"{r['loss'][i].item():.3f}",
                         *(f"{c.item():.3f}" for c in cells)])
    headers = [t(f"ch01.pairs.table.{k}") for k in ("model", "seed", "loss", "train_in", "train_out",
                                                      "val_in", "val_out")]
    return Table([h.format(reach=reach) for h in headers], rows)


def check_pair_readings(results: dict, reach: int, floor: float) -> None:
    """§6's sentences on the far-pair experiment, against ``pair_results`` of each model
    (``{"global": ..., "local": ...}``), the local model's ``reach`` and the ``loss_floor``."""
    g, loc = results["global"], results["local"]
    rd.expect("global self-attention is right on (almost) every held-out pair, at every distance, in every seed",
              g["val"].min().item() >= 0.98, global_lowest=round(g["val"].min().item(), 3))
    rd.expect("the global model's training loss ends near 0",
              g["loss"].max().item() <= 0.02, global_loss=rd.seeds(g["loss"].tolist()))
    rd.expect("the local model's training loss ends just above the floor of a model that is sure within its "
              "reach and guesses beyond it",
              all(floor - 0.03 <= v <= floor + 0.1 for v in loc["loss"].tolist()),
              local_loss=rd.seeds(loc["loss"].tolist()), floor=round(floor, 3))
    near_train, far_train = loc["train"][:, :reach].mean(1), loc["train"][:, reach:].mean(1)
    rd.expect("on its own training pairs within its reach the local model is right almost every time, beyond "
              "it about half the time, in every seed",
              near_train.min().item() >= 0.97 and far_train.max().item() <= 0.6,
              within=rd.seeds(near_train.tolist()), beyond=rd.seeds(far_train.tolist()))
    within, beyond = loc["val"][:, :reach], loc["val"][:, reach:]
    rd.expect("on held-out pairs the local model is right at every distance up to its reach, in every seed",
              within.min().item() >= 0.95, lowest_within=round(within.min().item(), 3))
    rd.expect("beyond its reach the local model is at chance: its mean accuracy there is within 0.05 of 0.5 "
              "in every seed, and no distance is far from 0.5",
              all(abs(v - 0.5) <= 0.05 for v in beyond.mean(1).tolist())
              and (beyond - 0.5).abs().max().item() <= 0.12,
              beyond=rd.seeds(beyond.mean(1).tolist()), farthest=round((beyond - 0.5).abs().max().item(), 3))
    rd.expect("beyond its reach the local model is right on slightly more than half of its own training pairs in "
              "every seed (cues memorised from them, which do not transfer)",
              0.5 < far_train.min().item() and far_train.max().item() <= 0.6, beyond_train=rd.seeds(far_train.tolist()))
    drop = loc["val"][:, reach - 1] - loc["val"][:, reach]
    rd.expect("the local model's accuracy drops from its reach to the next distance in every seed",
              drop.min().item() >= 0.3, drop=rd.seeds(drop.tolist()))


# ---------------------------------------------------------------- measurements

def scaling_statistics(d_ks: Sequence[int], n_keys: int = 32, samples: int = 500, seed: int = 0,
                       flat: float = 0.01) -> dict:
    """For q, k with N(0, 1) entries, without and with the 1/sqrt(d_k) scale: the variance of the scores, the
    largest softmax weight over ``n_keys`` keys (mean over queries) and the gradient that reaches the query,
    ``||dA/dq|| = ||J K / c||`` (J the softmax's Jacobian, c = 1 or sqrt(d_k)): its mean, its median and the
    share of queries for which it is below ``flat``."""
    g = torch.Generator().manual_seed(seed)
    names = ("var", "max", "grad_mean", "grad_median", "flat")
    out = {f"{k}_{v}": [] for k in names for v in ("raw", "scaled")}
    for d in d_ks:
        q = torch.randn(samples, 1, d, generator=g)
        k = torch.randn(samples, n_keys, d, generator=g)                     # (samples, n_keys, d_k)
        raw = (q @ k.transpose(1, 2))[:, 0]                                   # (samples, n_keys)
        for name, c in (("raw", 1.0), ("scaled", math.sqrt(d))):
            s = raw / c
            p = s.softmax(-1)
            jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]   # dA/dS: (samples, n_keys, n_keys)
            grad = (jacobian @ k / c).flatten(1).norm(dim=1)                  # ||dA/dq||: (samples,)
            out[f"var_{name}"].append(s.var().item())
            out[f"max_{name}"].append(p.amax(-1).mean().item())
            out[f"grad_mean_{name}"].append(grad.mean().item())
            out[f"grad_median_{name}"].append(grad.median().item())
            out[f"flat_{name}"].append((grad < flat).float().mean().item())
    return {"d_k": list(d_ks), **out}


def scaling_table(stats: dict) -> Table:
    """§2's measurements as a table: each cell "without the scale → with it"."""
    def pair(key, i, fmt):
        return f"{format(stats[f'{key}_raw'][i], fmt)} → {format(stats[f'{key}_scaled'][i], fmt)}"

    rows = [[str(d), pair("var", i, ".1f"), pair("max", i, ".3f"), pair("grad_mean", i, ".3g"),
             pair("grad_median", i, ".3g"), pair("flat", i, ".0%")] for i, d in enumerate(stats["d_k"])]
    return Table([t(f"ch01.scale.table.{k}") for k in ("d_k", "var", "max", "mean", "median", "flat")], rows)


def check_reversal_readings(acc: float, trained: Sequence[float], random: Sequence[float]) -> None:
    """§6's sentences on the reversal demo: the random map is nearly flat (1/8 on the anti-diagonal), the trained
    heads put most of their weight there, and together they reverse (almost) every sequence."""
    rd.expect("the random map's anti-diagonal share is close to 1/8, the trained heads put most of their weight on "
              "it, and the accuracy says that together they are enough",
              all(abs(v - 0.125) < 0.02 for v in random) and min(trained) > 0.5 and acc >= 0.99,
              acc=round(acc, 4), trained=list(trained), random=list(random))


def check_scale_readings(stats: dict) -> None:
    """§2's sentences on the 1/sqrt(d_k) scale, against :func:`scaling_statistics`."""
    d = stats["d_k"]
    var_raw, var_scaled = stats["var_raw"], stats["var_scaled"]
    rd.expect("without the scale the variance of the scores follows d_k; with it, it stays at 1",
              all(abs(v / k - 1) < 0.1 for v, k in zip(var_raw, d)) and all(abs(v - 1) < 0.1 for v in var_scaled),
              raw=[round(v, 1) for v in var_raw], scaled=[round(v, 2) for v in var_scaled])
    top = stats["max_raw"]
    rd.expect("without the scale the largest weight climbs towards 1",
              all(a < b for a, b in zip(top, top[1:])) and top[-1] > 0.9, largest=[round(v, 3) for v in top])
    mean, median = stats["grad_mean_raw"], stats["grad_median_raw"]
    at_64 = median[list(d).index(64)] if 64 in d else max(median)
    rd.expect("without the scale the mean gradient reaching q grows with d_k while its median collapses, to less "
              "than a hundredth of its value at d_k = 64",
              mean[-1] > 2 * mean[0] and median[-1] < 0.01 * at_64,
              mean=[round(v, 3) for v in mean], median=[float(f"{v:.3g}") for v in median])
    rd.expect("without the scale, at the largest d_k about half of the queries get a gradient below 0.01",
              0.4 <= stats["flat_raw"][-1] <= 0.7 and stats["flat_raw"][0] == 0, share=stats["flat_raw"])
    scaled = [stats[f"{k}_scaled"] for k in ("max", "grad_mean", "grad_median")]
    rd.expect("with the scale the largest weight and the gradient (mean and median alike) stay where they are at "
              "the smallest d_k",
              all(abs(v / row[0] - 1) < 0.2 for row in scaled for v in row)
              and all(abs(m / md - 1) < 0.2 for m, md in zip(*scaled[1:])),
              scaled=[[round(v, 3) for v in row] for row in scaled])


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


#: Distance bins of :func:`similarity_profile`, in patches: 1; √2; 2 to √5; 2√2 to √13; 4 and more.
PROFILE_BINS = ((0.5, 1.01), (1.01, 1.5), (1.5, 2.3), (2.3, 3.7), (3.7, float("inf")))


def similarity_profile(sim: torch.Tensor, grid: int) -> dict:
    """The position embeddings' mean cosine ``sim`` ``(N, N)`` by distance (one mean per bin of
    :data:`PROFILE_BINS`), and, among pairs at least 3 patches apart, the mean for pairs of two border patches
    against all the others: what tells "falls with distance" (ViT's figure 7) from "border against interior"; and per
    tile of the figure (one patch's row), its mean similarity to the border patches (itself left out), averaged
    over the border patches' tiles (``border_tiles``) and over the interior patches' (``interior_tiles``)."""
    pos = patch_positions(grid, 1)                                           # (N, 2), in patches
    dist = torch.cdist(pos, pos)                                             # (N, N)
    edge = ((pos < 1) | (pos > grid - 1)).any(1)                             # (N,): on the grid's border
    both = edge[:, None] & edge[None, :]
    far = dist >= 3
    # each tile of the figure is one patch's row of sim: its mean over the *other* border patches, per patch
    others = edge[None, :] & ~torch.eye(len(pos), dtype=torch.bool)         # (N, N): border columns, not itself
    to_border = (sim * others).sum(1) / others.sum(1)                        # (N,): each tile's mean on them
    return dict(profile=[sim[(dist > lo) & (dist <= hi)].mean().item() for lo, hi in PROFILE_BINS],
                border=sim[far & both].mean().item(), other=sim[far & ~both].mean().item(),
                border_tiles=to_border[edge].mean().item(), interior_tiles=to_border[~edge].mean().item())


def profile_text(which: str, m: dict) -> str:
    """One printed line of :func:`similarity_profile`'s numbers ``m`` for the model named ``which``."""
    bins = dict(zip(("d1", "d2", "d3", "d4", "d5"), m["profile"]))
    return t("ch01.pos.profile", which=which, border=m["border"], other=m["other"],
             border_tiles=m["border_tiles"], interior_tiles=m["interior_tiles"], **bins)


def brightness_shares(images: torch.Tensor, boxes: torch.Tensor, grid: int, image_size: int) -> dict:
    """The trivial rules beside the attention's share on the target: the share on the box of a map proportional
    to each patch's brightness (``bright``) and to its square (``bright2``), and how often the brightest patch
    overlaps the box (``peak``). No learning: a model that "looks at the target" should be read against these."""
    b = _data.brightness_maps(images, grid, grid).flatten(1)                 # (B, N): each patch's brightness
    inside = _data.box_masks(boxes, grid, grid, image_size).flatten(1)      # (B, N)
    peak = inside[torch.arange(len(b)), b.argmax(1)].float().mean().item()
    return dict(bright=box_share(b, boxes, grid, image_size).mean().item(),
                bright2=box_share(b ** 2, boxes, grid, image_size).mean().item(), peak=peak)


@one_thread()
def vit_measurements(model: nn.Module, val) -> dict:
    """§6's numbers for one trained class-token ViT on its validation images ``val``: accuracy; the share on the
    target's box of the class token's attention (per layer, heads averaged), of all patch queries averaged (per
    layer), of the rollout and of uniform attention; per head the class token's share and the mean attention
    distance (per layer); the position embeddings' similarity between neighbours and patches 3+ apart."""
    grid, P = model.grid, model.patch_embed.patch_size
    with torch.no_grad():
        maps = model.attention_maps(val.images)                              # per layer (B, h, 1 + N, 1 + N)
        correct = (model(val.images).argmax(-1) == val.labels).float().mean().item()

    def on_target(w):                                                        # w: (B, N) over the patches
        return box_share(w, val.boxes, grid, model.image_size).mean().item()

    sim = position_similarity(model.pos[0, 1:])
    near, far = similarity_by_distance(sim, grid)
    return dict(acc=correct,
                cls=[on_target(m[:, :, 0, 1:].mean(1)) for m in maps],
                queries=[on_target(m[:, :, 1:, 1:].mean((1, 2))) for m in maps],
                rollout=on_target(attention_rollout(maps)[:, 0, 1:]),
                uniform=on_target(torch.ones(len(val.images), grid * grid)),
                heads=[[on_target(m[:, k, 0, 1:]) for k in range(m.shape[1])] for m in maps],
                dist=[mean_attention_distance(m, grid, P).tolist() for m in maps],
                near=near, far=far, **similarity_profile(sim, grid),
                **brightness_shares(val.images, val.boxes, grid, model.image_size))


def uniform_distance(grid: int, patch_size: int) -> float:
    """The mean attention distance (pixels) of uniform attention over a ``grid x grid`` patch grid."""
    n = grid * grid + 1
    return mean_attention_distance(torch.ones(1, 1, n, n), grid, patch_size).item()


def vit_share_table(per_seed: Sequence[dict]) -> Table:
    """:func:`vit_measurements` of each seed as one row: accuracy and the shares on the target's box."""
    layers = range(len(per_seed[0]["cls"]))
    rows = [[str(seed), f"{m['acc']:.1%}"]
            + [f"{v:.1%}" for v in m["cls"] + m["queries"]
               + [m["rollout"], m["uniform"], m["bright"], m["bright2"], m["peak"]]]
            for seed, m in zip(VIT_SEEDS, per_seed)]
    headers = ([t("ch01.vit.table.seed"), t("ch01.vit.table.acc")]
               + [t("ch01.vit.table.cls", l=l + 1) for l in layers]
               + [t("ch01.vit.table.queries", l=l + 1) for l in layers]
               + [t(f"ch01.vit.table.{k}") for k in ("rollout", "uniform", "bright", "bright2", "peak")])
    return Table(headers, rows)


def vit_head_table(per_seed: Sequence[dict], uniform: float) -> Table:
    """Per seed and layer: the spread of the heads' shares on the target and the range of their mean attention
    distances; the last column repeats the distance of uniform attention."""
    rows = []
    for seed, m in zip(VIT_SEEDS, per_seed):
        for layer, (share, dist) in enumerate(zip(m["heads"], m["dist"]), start=1):
            rows.append([str(seed), str(layer), f"{max(share) - min(share):.0%}",
                         f"{min(dist):.1f}–{max(dist):.1f}", f"{uniform:.1f}"])
    return Table([t(f"ch01.vit.table.{k}") for k in ("seed", "layer", "spread", "dist", "uniform_dist")], rows)


def vit_training(histories: Sequence[dict]) -> dict:
    """The end of each seed's training history (``fit``'s per-epoch lists): the training loss of the last epoch
    (``loss``) and of the one before (``before``), and the training accuracy over the last epoch (``acc``)."""
    return dict(loss=rounded([h["loss"][-1] for h in histories]),
                before=rounded([h["loss"][-2] for h in histories]),
                acc=rounded([h["acc"][-1] for h in histories]))


def check_vit_training(train: dict) -> None:
    """§6's sentence on the ViTs' training, against :func:`vit_training`: not at a plateau after its epochs."""
    drops = [b - a for a, b in zip(train["loss"], train["before"])]
    rd.expect("the ViTs are still improving at their last epoch: in every seed the training loss fell by more than "
              "0.05 in the last epoch, and the training accuracy is below 90 %",
              min(drops) > 0.05 and max(train["acc"]) < 0.9, drops=[round(d, 3) for d in drops], acc=train["acc"])


def check_vit_shares(per_seed: Sequence[dict]) -> None:
    """§6's sentences on where the tiny ViTs look, against :func:`vit_measurements` of every seed."""
    shares = [[*m["cls"], *m["queries"], m["rollout"]] for m in per_seed]
    rd.expect("in every seed, every view, the rollout included, is above the uniform share on the target, by at "
              "least a quarter", all(min(s) >= 1.25 * m["uniform"] for s, m in zip(shares, per_seed)),
              lowest=[round(min(s), 3) for s in shares], uniform=[round(m["uniform"], 3) for m in per_seed])
    rd.expect("in every seed and both layers the class token puts more of its attention on the target than the "
              "patch queries averaged together",
              all(c > q for m in per_seed for c, q in zip(m["cls"], m["queries"])),
              cls=[[round(v, 3) for v in m["cls"]] for m in per_seed],
              queries=[[round(v, 3) for v in m["queries"]] for m in per_seed])
    above = [(seed, layer) for seed, m in zip(VIT_SEEDS, per_seed)                # (seed, layer from 1)
             for layer, c in enumerate(m["cls"], start=1) if c > m["bright2"]]
    rd.expect("a rule that learns nothing does as well: the brightest patch lies in the box in at least 95 % of the "
              "images, and the brightness² map puts more on the box than the rollout and the patch queries in "
              "every seed; only the class token goes above it, in one seed (seed 2, layer 1)",
              all(m["peak"] >= 0.95 and max(*m["queries"], m["rollout"]) < m["bright2"] for m in per_seed)
              and above == [(2, 1)],
              peak=[round(m["peak"], 3) for m in per_seed], bright2=[round(m["bright2"], 3) for m in per_seed],
              rollout_queries=[round(max(*m["queries"], m["rollout"]), 3) for m in per_seed],
              cls=[[round(v, 3) for v in m["cls"]] for m in per_seed], class_token_above=above)
    cls = torch.tensor([m["cls"] for m in per_seed])                           # (seeds, layers)
    rd.expect("the class token's share moves by more than ten points from seed to seed, and which layer is the "
              "more focused changes with the seed",
              (cls.amax(0) - cls.amin(0)).max().item() > 0.10 and len(set(cls.argmax(1).tolist())) > 1,
              cls=[[round(v, 3) for v in row] for row in cls.tolist()])


def check_vit_heads(per_seed: Sequence[dict], uniform: float) -> None:
    """§6's sentences on the heads: they differ in their share on the target, not in their attention distance."""
    spreads = [max(h) - min(h) for m in per_seed for h in m["heads"]]
    rd.expect("in every layer of every seed the heads' shares on the target differ by more than ten points",
              min(spreads) > 0.10, spreads=[round(v, 2) for v in spreads])
    dists = [v for m in per_seed for d in m["dist"] for v in d]
    rd.expect("every head's mean attention distance lies within 1.5 pixels of uniform attention's",
              all(abs(v - uniform) <= 1.5 for v in dists),
              distances=(round(min(dists), 1), round(max(dists), 1)), uniform=round(uniform, 1))


def check_vit_positions(per_seed: Sequence[dict], random_near: float, random_far: float) -> None:
    """§6's sentences on the learned position embeddings, against every seed and the random start: neighbours
    more similar than distant patches on average, but not falling with distance as in ViT's figure 7: the
    farthest pairs are more similar than those at middle distances, and border patches resemble each other."""
    rd.expect("in every seed neighbouring patches have learned more similar position embeddings than distant "
              "ones on average, while the random start shows no such pattern",
              all(m["near"] - m["far"] >= 0.1 for m in per_seed) and abs(random_near - random_far) < 0.05,
              near=[round(m["near"], 2) for m in per_seed], far=[round(m["far"], 2) for m in per_seed],
              random=(round(random_near, 2), round(random_far, 2)))
    rd.expect("unlike ViT's figure 7 the similarity does not fall steadily with distance: in every seed the "
              "pairs 4 or more apart are more similar than those 2√2 to √13 apart",
              all(m["profile"][4] > m["profile"][3] + 0.05 for m in per_seed),
              profile=[[round(v, 2) for v in m["profile"]] for m in per_seed])
    rd.expect("among pairs 3 or more apart, two border patches are more similar than the other pairs by at least "
              "0.2 in every seed: the embeddings mostly encode border against interior",
              all(m["border"] - m["other"] >= 0.2 for m in per_seed),
              border=[round(m["border"], 2) for m in per_seed], other=[round(m["other"], 2) for m in per_seed])
    rd.expect("the tiles of the border patches are red along the border rows and columns (mean cosine to the other "
              "border patches at least 0.2 in every seed), those of interior patches are not (below 0.1 on average)",
              all(m["border_tiles"] >= 0.2 and m["interior_tiles"] < 0.1 for m in per_seed),
              border_tiles=[round(m["border_tiles"], 2) for m in per_seed],
              interior_tiles=[round(m["interior_tiles"], 2) for m in per_seed])


def check_memory_readings(ns: Sequence[int], memory: dict, dim: int, heads: int) -> None:
    """§5's sentences on memory: the explicit path's extra memory grows with slope 2 and is mostly the
    2hN² floats of scores and weights; the fused path's grows with slope 1 and is 5ND floats."""
    explicit, fused, n = memory["explicit"], memory["fused"], ns[-1]
    slopes = fit_slope(ns, explicit, 3), fit_slope(ns, fused, 3)
    scores = 2 * heads * n * n * 4
    rd.expect("the explicit path's memory grows with slope 2, the fused path's with slope 1",
              abs(slopes[0] - 2) < 0.15 and abs(slopes[1] - 1) < 0.1, slopes=[round(v, 2) for v in slopes])
    rd.expect("the explicit path's extra memory is dominated by the scores and weights",
              scores <= explicit[-1] <= 1.1 * scores, explicit=explicit[-1], scores=scores)
    rd.expect("the fused path keeps 5ND floats", fused[-1] == 5 * n * dim * 4, fused=fused[-1],
              five_nd=5 * n * dim * 4)


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
    "ex.sa.causal.n_axis": {"en": "your function fails on {n} tokens with d_k = {d_k}, but works when d_k = N: is "
                                  "your mask's size read off the head width? Which axis of q holds the tokens?",
                            "zh": "有 {n} 个词元、d_k = {d_k} 时你的函数出错，而 d_k = N 时却能运行：掩码的大小是不是从每个头的"
                                  "宽度读出来的？q 的哪一个维度对应词元？"},
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


@exercise("sa.params", forbid=("count_parameters",))
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
            return Slip("ex.sa.fixed_scale", m=m, d_k=d_k).whole()   # says how to read d_k: no case sentence
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


@exercise("sa.sdpa", forbid=("scaled_dot_product_attention", "flex_attention", "multi_head_attention_forward"))
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


def _square_only(causal_attention, B, h, N, g) -> bool:
    """Whether a function that raised on (B, h, N, d_k) inputs is right when d_k = N: its mask's size was read off
    the wrong axis (``q.shape[-1]``, d_k, for N)."""
    q, k, v = (torch.randn(B, h, N, N, generator=g) for _ in range(3))
    with torch.no_grad():
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    try:
        got = call(causal_attention, q, k, v, names=("q", "k", "v"))
    except Slip:
        return False
    return isinstance(got, torch.Tensor) and got.shape == expected.shape and close(got, expected)


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
            try:
                got = call(causal_attention, q, k, v, names=("q", "k", "v"))
            except Slip as slip:
                if slip.key in ("ex.fn.raised", "ex.fn.raised_plain") and _square_only(causal_attention, B, h, N, g):
                    raise Slip("ex.sa.causal.n_axis", n=N, d_k=d).whole() from None
                raise
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
