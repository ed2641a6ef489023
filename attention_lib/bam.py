r"""Bottleneck Attention Module.

Park, Woo, Lee, Kweon. "BAM: Bottleneck Attention Module", BMVC 2018, arXiv:1807.06514.

.. math::

    F' = F + F \otimes M(F), \qquad M(F) = \sigma\big(M_c(F) + M_s(F)\big)

    M_c(F) = \mathrm{BN}\big(\mathrm{MLP}(\mathrm{AvgPool}(F))\big), \qquad
    M_s(F) = \mathrm{BN}\big(f_3^{1\times1}(f_2^{3\times3}(f_1^{3\times3}(f_0^{1\times1}(F))))\big)

The layout is the official code's: BatchNorm sits inside the channel MLP (FC, BN, ReLU, FC)
and after the 1x1 reduction and each dilated 3x3 convolution of the spatial branch (each
followed by ReLU); every convolution and FC has a bias. The two maps are broadcast to
``(B, C, H, W)`` and fused by the paper's sum; ``fusion="product"`` gives the official code's
``sigmoid(M_c * M_s)``.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_feature_map, check_positive, hidden_width


class BAM(nn.Module):
    """Channel and spatial branches in parallel: ``(1 + sigmoid(M_c + M_s)) * x`` on ``(B, C, H, W)``."""

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4, fusion: str = "sum"):
        super().__init__()
        check_positive(dilation, "dilation", "BAM")
        if fusion not in ("sum", "product"):
            raise ValueError(f"BAM: fusion must be 'sum' (paper) or 'product' (official code), got {fusion!r}")
        hidden = hidden_width(channels, reduction, "BAM")     # C / r
        self.channels = channels
        self.fusion = fusion
        self.channel_mlp = nn.Sequential(                      # M_c: FC, BN, ReLU, FC
            nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, channels))

        def conv_bn_relu(cin, cout, k, d):
            return [nn.Conv2d(cin, cout, k, padding=d * (k // 2), dilation=d), nn.BatchNorm2d(cout), nn.ReLU()]

        self.spatial = nn.Sequential(                          # M_s
            *conv_bn_relu(channels, hidden, 1, 1),             # f_0: 1x1 reduce to C/r
            *conv_bn_relu(hidden, hidden, 3, dilation),        # f_1: dilated 3x3
            *conv_bn_relu(hidden, hidden, 3, dilation),        # f_2: dilated 3x3
            nn.Conv2d(hidden, 1, 1))                           # f_3: 1x1 to one channel

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The σ(·) term ``M(F)``, shape ``(B, C, H, W)``, values in (0, 1)."""
        check_feature_map(x, self.channels, type(self).__name__)
        m_c = self.channel_mlp(x.mean((2, 3)))[:, :, None, None]   # (B, C, 1, 1)
        m_s = self.spatial(x)                                      # (B, 1, H, W)
        fused = m_c + m_s if self.fusion == "sum" else m_c * m_s   # (B, C, H, W) by broadcasting
        return torch.sigmoid(fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x * self.attention_map(x)    # (1 + M(F)) * F

    def extra_repr(self) -> str:
        return f"channels={self.channels}, fusion={self.fusion!r}"
