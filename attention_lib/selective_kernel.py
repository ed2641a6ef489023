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

Implementation note (``forward``; ``forward_explicit`` is the equations written out, and
``tests/test_fast_paths.py`` proves the two equal):

* :math:`s = \mathrm{GAP}(\sum_k U_k) = \sum_k \mathrm{GAP}(U_k)`, so U itself is never built, and
  :math:`V = \sum_k a_k U_k` is accumulated in place branch by branch instead of stacking a
  ``(B, K, C, H, W)`` tensor (the stack and its sum, not the convolutions, dominate the depthwise case);
* the branches run in channels_last memory format, where oneDNN's convolutions (depthwise above
  all) are several times faster; V is accumulated in channels_last (without autograd, in U_1's
  own memory) and copied back once into the input's memory format;
* in eval mode each BatchNorm is folded into its convolution,
  :math:`\mathrm{BN}(W * X) = (\gamma / \sqrt{\sigma^2 + \epsilon}) W * X + (\beta - \gamma\mu / \sqrt{\sigma^2 + \epsilon})`,
  which saves a pass over every branch output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def _select(self, s: torch.Tensor) -> torch.Tensor:
        """Fuse and select: ``s (B, C) -> a (B, K, C)``, softmax across the K branches."""
        z = self.fuse(s)                                                   # (B, d): z = δ(B(W s))
        return self.select(z).view(s.shape[0], len(self.branches), self.channels).softmax(dim=1)

    def _branch_fast(self, branch: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """``ReLU(BN(conv(x)))`` with the BatchNorm folded into the convolution (eval mode)."""
        conv, bn = branch[0], branch[1]
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)          # (C,): γ / sqrt(σ² + ε)
        weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
        bias = bn.bias - bn.running_mean * scale                           # (C,): β - γ μ / sqrt(σ² + ε)
        u = F.conv2d(x, weight, bias.to(conv.weight.dtype), conv.stride, conv.padding, conv.dilation, conv.groups)
        return torch.relu_(u)                                              # (B, C, H, W): U_k

    def _split(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)               # (B, C, H, W), NHWC in memory
        if self.training:
            return [branch(x) for branch in self.branches]
        return [self._branch_fast(branch, x) for branch in self.branches]

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The selection weights ``a``, shape ``(B, K, C, 1, 1)``; they sum to 1 over K."""
        check_feature_map(x, self.channels, type(self).__name__)
        feats = self._split(x)                                            # K x (B, C, H, W): U_k
        s = sum(f.mean((2, 3)) for f in feats)                            # (B, C): s = GAP(sum_k U_k)
        return self._select(s)[..., None, None]                           # (B, K, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        feats = self._split(x)                                            # K x (B, C, H, W): U_k
        s = feats[0].mean((2, 3))
        for f in feats[1:]:
            s = s + f.mean((2, 3))                                        # (B, C): s = GAP(sum_k U_k)
        a = self._select(s)[..., None, None].to(feats[0].dtype)          # (B, K, C, 1, 1)
        K = len(feats)
        if torch.is_grad_enabled():
            v = feats[0] * a[:, 0]
            for k in range(1, K):
                v = v.addcmul_(feats[k], a[:, k])                         # V = sum_k a_k U_k
            return v.contiguous(memory_format=_memory_format(x))         # (B, C, H, W)
        # Without autograd: accumulate in place into U_1's memory (channels_last), then one layout
        # copy back to the input's format; an addcmul that reads channels_last and writes
        # channels-first in one pass measured twice as slow as the two steps.
        v = feats[0].mul_(a[:, 0])
        for k in range(1, K):
            v.addcmul_(feats[k], a[:, k])                                  # V = sum_k a_k U_k
        return v.contiguous(memory_format=_memory_format(x))              # (B, C, H, W)

    def forward_explicit(self, x: torch.Tensor) -> torch.Tensor:
        """The equations written out: every branch's conv-BN-ReLU, U stacked and summed, V by broadcast."""
        check_feature_map(x, self.channels, type(self).__name__)
        B, C = x.shape[:2]
        U_all = torch.stack([branch(x) for branch in self.branches], dim=1)   # (B, K, C, H, W)
        s = U_all.sum(dim=1).mean((2, 3))                                     # (B, C)
        a = self._select(s)                                                   # (B, K, C)
        return (U_all * a[..., None, None]).sum(dim=1)                        # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_sizes={self.kernel_sizes}, dilated={self.dilated}"


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """The input's memory format, so that the output keeps the caller's layout."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
