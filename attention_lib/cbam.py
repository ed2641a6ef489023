r"""Convolutional Block Attention Module.

Woo, Park, Lee, Kweon. "CBAM: Convolutional Block Attention Module", ECCV 2018,
arXiv:1807.06521.

.. math::

    F' = M_c(F) \otimes F, \qquad F'' = M_s(F') \otimes F'

    M_c(F) = \sigma\big(\mathrm{MLP}(\mathrm{AvgPool}(F)) + \mathrm{MLP}(\mathrm{MaxPool}(F))\big)

    M_s(F') = \sigma\big(f^{7\times7}([\mathrm{AvgPool}(F'); \mathrm{MaxPool}(F')])\big)

The MLP is shared by both descriptors (FC with bias, ReLU, FC with bias). The spatial
pooling runs across channels, in the paper's order [average; max]. As in the official code,
the spatial k x k convolution has no bias and is followed by BatchNorm; ``spatial_norm=False``
gives the paper's equation (the convolution then carries a bias). There is no residual inside
the module: the block's own skip connection belongs to the network around it.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_feature_map, check_odd_kernel, hidden_width


class CBAMAttention(NamedTuple):
    """The two maps CBAM applies: ``forward(x) == x * channel * spatial``."""
    channel: torch.Tensor   # M_c, (B, C, 1, 1)
    spatial: torch.Tensor   # M_s, (B, 1, H, W)


class ChannelGate(nn.Module):
    """``M_c``: a shared MLP over the average- and max-pooled channel descriptors."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = hidden_width(channels, reduction, "CBAM")
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        # Both descriptors go through the shared MLP in one batched call.
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3))])   # (2B, C): [AvgPool; MaxPool]
        logits = self.mlp(pooled)                              # (2B, C)
        m_c = torch.sigmoid(logits[:B] + logits[B:])           # (B, C)
        return m_c[:, :, None, None]                           # (B, C, 1, 1)


class SpatialGate(nn.Module):
    """``M_s``: a k x k convolution over the channel-wise [average; max] maps."""

    def __init__(self, kernel_size: int = 7, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not norm)   # f^{k x k}
        self.norm = nn.BatchNorm2d(1) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)   # (B, 2, H, W)
        return torch.sigmoid(self.norm(self.conv(pooled)))                                 # (B, 1, H, W)


class CBAM(nn.Module):
    """Channel attention, then spatial attention, on ``(B, C, H, W)``."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7, spatial_norm: bool = True):
        super().__init__()
        check_odd_kernel(spatial_kernel, "spatial_kernel", "CBAM")
        self.channels = channels
        self.channel_gate = ChannelGate(channels, reduction)
        self.spatial_gate = SpatialGate(spatial_kernel, spatial_norm)

    def attention_map(self, x: torch.Tensor) -> CBAMAttention:
        """``CBAMAttention(channel=(B, C, 1, 1), spatial=(B, 1, H, W))``."""
        check_feature_map(x, self.channels, type(self).__name__)
        m_c = self.channel_gate(x)              # (B, C, 1, 1)
        m_s = self.spatial_gate(x * m_c)        # (B, 1, H, W), computed on F'
        return CBAMAttention(m_c, m_s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        f1 = x * self.channel_gate(x)           # F'  (B, C, H, W)
        m_s = self.spatial_gate(f1)             # (B, 1, H, W)
        if torch.is_grad_enabled():
            return f1 * m_s                     # F'' (B, C, H, W); autograd still needs F'
        return f1.mul_(m_s)                     # F'' in the memory of F' (f1); x untouched
