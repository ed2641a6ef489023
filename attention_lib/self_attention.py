r"""Multi-head self-attention.

Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin.
"Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762.

.. math::

    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

    \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O,
    \qquad \mathrm{head}_i = \mathrm{Attention}(X W_i^Q, X W_i^K, X W_i^V)

The layout follows timm's ViT ``Attention``: one fused ``qkv`` Linear (dim -> 3 dim) whose
output rows are [Q; K; V], then an output ``proj`` Linear. The same row order as
``torch.nn.MultiheadAttention.in_proj_weight``, so weights copy across directly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive, check_tokens


class MultiHeadSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention over a sequence of tokens ``(B, N, D)``."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        check_positive(dim, "dim", "MultiHeadSelfAttention")
        check_positive(num_heads, "num_heads", "MultiHeadSelfAttention")
        if dim % num_heads:
            raise ValueError(f"MultiHeadSelfAttention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads          # d_k = d_v = D / h
        self.scale = self.head_dim ** -0.5        # 1 / sqrt(d_k)
        self.attn_drop_p = float(attn_drop)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)   # [W^Q; W^K; W^V] for all heads
        self.proj = nn.Linear(dim, dim)                      # W^O
        self.proj_drop = nn.Dropout(proj_drop)

    def _qkv(self, x: torch.Tensor):
        check_tokens(x, self.dim, type(self).__name__)
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)  # (B, N, 3, h, d_k)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                    # 3 x (B, h, N, d_k)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        B, h, N, dk = q.shape
        # Fused kernel: never materialises the (N, N) matrix, so memory stays linear in N.
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop_p if self.training else 0.0)    # (B, h, N, d_k)
        y = y.transpose(1, 2).reshape(B, N, h * dk)                            # (B, N, D): Concat(heads)
        return self.proj_drop(self.proj(y))                                    # (B, N, D)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(Q K^T / sqrt(d_k)) per head, shape ``(B, heads, N, N)``; each row sums to 1.

        The explicit path, for inspection (quadratic memory in N): ``forward`` never builds it.
        """
        q, k, _ = self._qkv(x)
        scores = (q @ k.transpose(-2, -1)) * self.scale    # (B, h, N, N)
        return scores.softmax(dim=-1)                       # (B, h, N, N)

    def forward_explicit(self, x: torch.Tensor) -> torch.Tensor:
        """The equation written out: ``softmax(Q K^T / sqrt(d_k)) V``, then ``W^O`` (eval semantics)."""
        q, k, v = self._qkv(x)
        B, h, N, dk = q.shape
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)    # (B, h, N, N)
        y = (attn @ v).transpose(1, 2).reshape(B, N, h * dk)                # (B, N, D)
        return self.proj(y)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}"
