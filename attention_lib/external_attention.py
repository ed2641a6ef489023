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

import contextlib

import torch
from torch import nn

from ._checks import check_positive, check_tokens

EPS = 1e-9
# Bytes of one head chunk's logits in MultiHeadExternalAttention.forward: small enough to stay in cache.
_CHUNK_BYTES = 8 << 20


def _autocast_off(device: torch.device):
    """A context that turns autocast off on devices that have it (the normalisation stays float32)."""
    if device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


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

    Per head h, with :math:`F_h` the head's ``(N, d)`` slice of ``trans_dims(x)``:

    .. math::

        \hat A_h = \mathrm{softmax}_{N}(F_h M_k^\top + b_k), \qquad
        Y_h = \frac{\hat A_h}{\epsilon + \hat A_h \mathbf 1_S} M_v^\top + b_v

    ``forward_explicit`` computes this as the official code does: all heads at once, ``A`` of
    shape ``(B, H, N, S)`` built and divided in full. ``forward`` computes the same numbers
    differently, because at large N that tensor (200 MB at B=8, N=3136) falls out of cache and
    every pass over it is a trip to memory:

    * it works on chunks of (sample, head) pairs whose ``(S, N)`` blocks fit in cache; the
      softmax of each head still runs over all N tokens, so the result is exact;
    * the features are laid out ``(d, N)`` per head, so the softmax over tokens is over the
      contiguous last dimension;
    * the L1 division moves after the product with ``M_v`` (a row scale commutes with it):
      :math:`[M_v; \mathbf 1^\top]\,\hat A_h^\top` gives the numerator and the row sums
      :math:`\hat A_h \mathbf 1_S` in one product, so ``A`` itself is never divided.

    ``tests/test_fast_paths.py`` proves ``forward`` equal to the equation (values and gradients).
    With attention dropout in training, ``forward`` takes ``forward_explicit``'s path.
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

    def forward_explicit(self, x: torch.Tensor) -> torch.Tensor:
        """The official layer written out: all heads at once, ``A`` built in full (eval semantics aside
        from dropout). Slow at large N (see the class docstring); kept as the readable reference."""
        B, N, _ = x.shape if x.dim() == 3 else (0, 0, 0)
        attn = self.attn_drop(self.attention_map(x))                 # (B, H, N, S)
        y = self.M_v(attn)                                           # (B, H, N, d)
        y = y.transpose(1, 2).reshape(B, N, self.coef * self.dim)    # (B, N, coef D)
        return self.proj_drop(self.proj(y))                          # (B, N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.attn_drop.p > 0:
            return self.forward_explicit(x)      # dropout acts on alpha itself: take the equation's path
        check_tokens(x, self.dim, type(self).__name__)
        B, N, D = x.shape
        H, d, S = self.num_heads, self.head_dim, self.memory_size
        # trans_dims straight into a (B, H, d, N) layout: each head's features are rows of length N.
        w_t = self.trans_dims.weight.expand(B, H * d, D)
        f = torch.baddbmm(self.trans_dims.bias[:, None], w_t, x.transpose(1, 2))   # (B, H d, N)
        work = torch.promote_types(f.dtype, torch.float32)             # the normalisation's dtype
        f = f.view(B * H, d, N)                                         # (B H, d, N): one row block per head
        # (sample, head) pairs per chunk: one chunk's (g, S, N) logits stay within a cache-sized budget.
        g = max(1, min(B * H, _CHUNK_BYTES // (S * N * 4)))
        # Without autograd the chunks are written straight into one buffer; with it, concatenated.
        y = None if torch.is_grad_enabled() else torch.empty(B * H, d, N, dtype=work, device=x.device)
        ys = []
        with _autocast_off(x.device):
            w_k = self.M_k.weight.to(work)                              # (S, d)
            b_k = self.M_k.bias.to(work)[:, None]                       # (S, 1)
            # [M_v; 1]: one product gives both sum_s A_s M_v[:, s] and the row sum sum_s A_s.
            w_v1 = torch.cat([self.M_v.weight, self.M_v.weight.new_ones(1, S)]).to(work)   # (d + 1, S)
            b_v = self.M_v.bias.to(work)[:, None]                       # (d, 1)
            for i in range(0, B * H, g):
                fc = f[i:i + g].to(work)                                # (g, d, N)
                n = fc.shape[0]
                logits = torch.baddbmm(b_k, w_k.expand(n, S, d), fc)    # (g, S, N)
                a = logits.softmax(dim=-1)                              # (g, S, N): softmax over the N tokens
                num = torch.bmm(w_v1.expand(n, d + 1, S), a)            # (g, d + 1, N)
                if y is None:
                    ys.append(torch.addcdiv(b_v, num[:, :d], num[:, d:] + EPS))   # (g, d, N)
                else:
                    torch.addcdiv(b_v, num[:, :d], num[:, d:] + EPS, out=y[i:i + n])
        if y is None:
            y = torch.cat(ys) if len(ys) > 1 else ys[0]                  # (B H, d, N)
        y = y.view(B, H * d, N).to(f.dtype)                             # (B, coef D, N)
        w_p = self.proj.weight.expand(B, D, H * d)
        out = torch.baddbmm(self.proj.bias[:, None], w_p, y)           # (B, D, N)
        return self.proj_drop(out.transpose(1, 2).contiguous())        # (B, N, D)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, heads={self.num_heads} (coef={self.coef}), "
                f"head_dim={self.head_dim}, memory_size={self.memory_size}")
