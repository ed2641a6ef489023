r"""External Attention and its multi-head form.

Guo, Liu, Mu, Hu. "Beyond Self-attention: External Attention using Two Linear Layers for
Visual Tasks", IEEE TPAMI 2022, arXiv:2105.02358.

.. math::

    A = \mathrm{Norm}(F M_k^\top), \qquad F_{out} = A M_v

with two small learnable memories :math:`M_k, M_v \in \mathbb{R}^{S \times d}` shared by every
sample. ``Norm`` is the paper's double normalisation: a softmax over the N tokens, then an
L1 normalisation over the S memory slots,

.. math::

    \tilde\alpha_{i,j} = (F M_k^\top)_{i,j},\quad
    \hat\alpha_{i,j} = \frac{\exp \tilde\alpha_{i,j}}{\sum_k \exp \tilde\alpha_{k,j}},\quad
    \alpha_{i,j} = \frac{\hat\alpha_{i,j}}{\epsilon + \sum_k \hat\alpha_{i,k}}.

Cost is O(N S d): linear in the number of tokens N. The double normalisation runs in float32
(at least) even under autocast: the official epsilon 1e-9 is below float16's smallest number.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_positive, check_tokens

EPS = 1e-9


def double_normalization(logits: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Softmax over tokens (dim -2), then L1 over memory slots (dim -1), in float32 or wider.

    ``logits`` is ``(..., N, S)``; the result has the same shape and dtype, and each token's row
    sums to 1 over S.
    """
    work = torch.promote_types(logits.dtype, torch.float32)
    attn = logits.to(work).softmax(dim=-2)                     # (..., N, S): softmax over the N tokens
    attn = attn / (eps + attn.sum(dim=-1, keepdim=True))       # (..., N, S): L1 over the S slots
    return attn.to(logits.dtype)


class ExternalAttention(nn.Module):
    """External Attention on tokens ``(B, N, D)`` with memory units ``M_k``, ``M_v`` of S slots."""

    def __init__(self, dim: int, memory_size: int = 64):
        super().__init__()
        check_positive(dim, "dim", "ExternalAttention")
        check_positive(memory_size, "memory_size", "ExternalAttention")
        self.dim = dim
        self.memory_size = memory_size
        self.M_k = nn.Linear(dim, memory_size, bias=False)   # weight (S, d): the key memory
        self.M_v = nn.Linear(memory_size, dim, bias=False)   # weight (d, S): the value memory

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The doubly normalised map ``A``, shape ``(B, N, S)``; each token's row sums to 1 over S."""
        check_tokens(x, self.dim, type(self).__name__)
        return double_normalization(self.M_k(x))    # (B, N, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.attention_map(x)                 # (B, N, S)
        return self.M_v(attn)                        # (B, N, D)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, memory_size={self.memory_size}"


class MultiHeadExternalAttention(nn.Module):
    r"""Multi-head External Attention, the official EANet (EAMLP) layout.

    ``x -> trans_dims`` (D -> coef D, bias) ``-> coef*heads`` heads of width D / heads, each
    doubly normalised against one shared pair of memories (``M_k``: d -> S, ``M_v``: S -> d,
    with bias) ``-> proj`` (coef D -> D, bias). ``memory_size`` 64 is the official 256 // coef.
    """

    def __init__(self, dim: int, num_heads: int = 8, memory_size: int = 64, coef: int = 4,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        name = "MultiHeadExternalAttention"
        for value, what in ((dim, "dim"), (num_heads, "num_heads"), (memory_size, "memory_size"), (coef, "coef")):
            check_positive(value, what, name)
        if dim % num_heads:
            raise ValueError(f"{name}: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.coef = coef
        self.num_heads = num_heads * coef          # heads actually computed
        self.head_dim = dim // num_heads           # = coef * dim / (coef * num_heads)
        self.memory_size = memory_size
        self.trans_dims = nn.Linear(dim, coef * dim)
        self.M_k = nn.Linear(self.head_dim, memory_size)     # shared by all heads
        self.M_v = nn.Linear(memory_size, self.head_dim)     # shared by all heads
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(coef * dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        check_tokens(x, self.dim, type(self).__name__)
        B, N, _ = x.shape
        x = self.trans_dims(x)                                        # (B, N, coef D)
        return x.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)   # (B, H, N, d)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The doubly normalised map per head, ``(B, coef*heads, N, S)``; rows sum to 1 over S."""
        return double_normalization(self.M_k(self._heads(x)))       # (B, H, N, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape if x.dim() == 3 else (0, 0, 0)
        attn = self.attn_drop(self.attention_map(x))                 # (B, H, N, S)
        y = self.M_v(attn)                                           # (B, H, N, d)
        y = y.transpose(1, 2).reshape(B, N, self.coef * self.dim)    # (B, N, coef D)
        return self.proj_drop(self.proj(y))                          # (B, N, D)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, heads={self.num_heads} (coef={self.coef}), "
                f"head_dim={self.head_dim}, memory_size={self.memory_size}")
