r"""Selective Kernel convolution.

Li, Wang, Hu, Yang. "Selective Kernel Networks", CVPR 2019, arXiv:1903.06586.

Split: one branch per kernel size, :math:`U_k = \mathrm{ReLU}(\mathrm{BN}(\mathrm{conv}_k(X)))`.

Fuse: :math:`U = \sum_k U_k`, :math:`s_c = \frac{1}{HW}\sum_{i,j} U_c(i, j)`,
:math:`z = \delta(\mathcal{B}(W s))`, with :math:`W \in \mathbb{R}^{d \times C}`,
:math:`d = \max(C / r, L)`.

Select: :math:`a_{k,c} = \dfrac{e^{A_{k,c} z}}{\sum_j e^{A_{j,c} z}}`, :math:`V_c = \sum_k a_{k,c}\, U_{k,c}`.

As in the paper, a branch of kernel k >= 5 is realised as a 3x3 convolution with dilation
(k - 1) / 2 (same receptive field, fewer weights); ``dilated=False`` uses a true k x k kernel.
The paper's SKNet uses ``groups=32`` inside ResNeXt blocks; the module's default is 1.

Implementation note: :math:`s = \mathrm{GAP}(\sum_k U_k) = \sum_k \mathrm{GAP}(U_k)`, so U itself is
never built, and V is accumulated branch by branch instead of stacking a ``(B, K, C, H, W)``
tensor; a test proves the result equal to the equations above.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_feature_map, check_odd_kernel, check_positive, hidden_width


class SelectiveKernel(nn.Module):
    """Split-fuse-select over branches of different receptive fields on ``(B, C, H, W)``."""

    def __init__(self, channels: int, kernel_sizes=(3, 5), reduction: int = 16, groups: int = 1,
                 min_dim: int = 32, dilated: bool = True):
        super().__init__()
        name = "SelectiveKernel"
        check_positive(channels, "channels", name)
        check_positive(groups, "groups", name)
        check_positive(min_dim, "min_dim", name)
        kernel_sizes = tuple(kernel_sizes)
        if not kernel_sizes:
            raise ValueError(f"{name}: kernel_sizes must name at least one kernel size, got ()")
        for k in kernel_sizes:
            check_odd_kernel(k, "every kernel size", name)
        if channels % groups:
            raise ValueError(f"{name}: channels ({channels}) must be divisible by groups ({groups})")
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.dilated = dilated
        d = hidden_width(channels, reduction, name, floor=min_dim)   # d = max(C / r, L)
        self.branches = nn.ModuleList(self._branch(channels, k, groups, dilated) for k in kernel_sizes)
        self.fuse = nn.Sequential(nn.Linear(channels, d, bias=False), nn.BatchNorm1d(d), nn.ReLU())   # z = δ(B(W s))
        self.select = nn.Linear(d, len(kernel_sizes) * channels, bias=False)   # [A_1; ...; A_K]

    @staticmethod
    def _branch(channels: int, k: int, groups: int, dilated: bool) -> nn.Sequential:
        if dilated and k > 3:
            conv = nn.Conv2d(channels, channels, 3, padding=(k - 1) // 2, dilation=(k - 1) // 2,
                             groups=groups, bias=False)
        else:
            conv = nn.Conv2d(channels, channels, k, padding=k // 2, groups=groups, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU())

    def _split_and_weights(self, x: torch.Tensor):
        check_feature_map(x, self.channels, type(self).__name__)
        B, C = x.shape[:2]
        feats = [branch(x) for branch in self.branches]           # K x (B, C, H, W): U_k
        s = feats[0].mean((2, 3))
        for f in feats[1:]:
            s = s + f.mean((2, 3))                                # (B, C): s = GAP(sum_k U_k)
        z = self.fuse(s)                                          # (B, d)
        a = self.select(z).view(B, len(feats), C).softmax(dim=1)  # (B, K, C): softmax across branches
        return feats, a

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The selection weights ``a``, shape ``(B, K, C, 1, 1)``; they sum to 1 over K."""
        _, a = self._split_and_weights(x)
        return a[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, a = self._split_and_weights(x)
        a = a[..., None, None]                                     # (B, K, C, 1, 1)
        v = feats[0] * a[:, 0]
        for k in range(1, len(feats)):
            v = v + feats[k] * a[:, k]                             # V = sum_k a_k U_k
        return v                                                   # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_sizes={self.kernel_sizes}, dilated={self.dilated}"
