"""Chapter 01 · Self-attention, multi-head attention and the patch embedding: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch01_self_attention as ch``.
Here: the strings the notebook prints, the demos of §6 (a class-token ViT, the far-pair experiment with a
local-attention twin), the measurements the chapter prints (rollout, share on the target's box, attention
distance, position-embedding similarity, the scaling statistics of §2), the exercises and the explorers.
The figures live in ``_ch01_figures`` (re-exported here: ``ch.plot_masks`` and so on), the exercise checks in
``_ch01_exercises``; both are kept apart only so that each file reads in one sitting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..patch_embedding import PatchEmbedding
from ..registry import MECHANISMS
from ..self_attention import MultiHeadSelfAttention
from ..toolkit import data as _data
from ..toolkit import viewer
from ..toolkit.format import Table, format_count
from ..toolkit.i18n import register, t
from ..toolkit.models import TinyTransformer, TinyViT
from ..toolkit.train import DemoConfig, Reversal
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls
from . import _ch01_exercises  # noqa: F401  (registers the checks sa.shape, sa.params, sa.sdpa, sa.causal)
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
