r"""Efficient Channel Attention.

Wang, Wu, Zhu, Li, Zuo, Hu. "ECA-Net: Efficient Channel Attention for Deep Convolutional
Neural Networks", CVPR 2020, arXiv:1910.03151.

.. math::

    \omega = \sigma\big(\mathrm{C1D}_k(y)\big), \qquad y = \mathrm{GAP}(\chi), \qquad
    k = \psi(C) = \left|\frac{\log_2 C}{\gamma} + \frac{b}{\gamma}\right|_{odd}

A 1-D convolution of size k slides across the channel descriptor y, so each channel's weight
depends on its k neighbours: local cross-channel interaction with k parameters, no reduction.
ψ(C) is computed as commonly implemented (timm, without its floor of 3): ``t = int(abs((log2(C) + b) / gamma))``,
``k = t`` if t is odd else ``t + 1``, i.e. the nearest odd number with ties rounded up (C = 64 -> 3, 256 -> 5,
512 -> 5, 2048 -> 7). The official repository takes k per stage as an argument instead (its released
ECA-ResNet-50 uses 3, 5, 5, 7).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_feature_map, check_odd_kernel, check_positive


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """The adaptive kernel size ψ(C): the odd number nearest to (log2 C + b) / γ, ties rounded up (at least 1)."""
    check_positive(channels, "channels", "eca_kernel_size")
    if gamma <= 0:
        raise ValueError(f"eca_kernel_size: gamma must be positive, got {gamma!r}")
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class EfficientChannelAttention(nn.Module):
    """Channel attention by a 1-D convolution across the pooled channel descriptor ``(B, C, H, W)``."""

    def __init__(self, channels: int, gamma: float = 2, b: float = 1, kernel_size: int | None = None):
        super().__init__()
        check_positive(channels, "channels", "EfficientChannelAttention")
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, b)
        check_odd_kernel(kernel_size, "kernel_size", "EfficientChannelAttention")
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)  # C1D_k
        self.gate = nn.Sigmoid()

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ω, shape ``(B, C, 1, 1)``, each value in (0, 1)."""
        check_feature_map(x, self.channels, type(self).__name__)
        y = x.mean((2, 3))                       # (B, C): global average pooling
        # C1D_k(y) as k-wide windows times the k weights: the same cross-correlation as
        # self.conv(y[:, None, :]) (forward_explicit; tests/test_fast_paths.py checks they agree).
        # Chapter 7, section 5, times both: on a shared CPU no difference between them is readable.
        k, p = self.kernel_size, (self.kernel_size - 1) // 2
        windows = nn.functional.pad(y, (p, p)).unfold(1, k, 1)    # (B, C, k): y_{c-p}, ..., y_{c+p}
        w = windows @ self.conv.weight.view(k).to(windows.dtype)   # (B, C): 1-D conv across channels
        return self.gate(w)[:, :, None, None]    # (B, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)         # (B, C, H, W)

    def forward_explicit(self, x: torch.Tensor) -> torch.Tensor:
        """The equation with the registered layers: ``x * sigmoid(conv1d(GAP(x)))``."""
        check_feature_map(x, self.channels, type(self).__name__)
        y = x.mean((2, 3))                                     # (B, C): GAP
        w = self.gate(self.conv(y[:, None, :]))                # (B, 1, C): σ(C1D_k(y))
        return x * w.view(-1, self.channels, 1, 1)             # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
