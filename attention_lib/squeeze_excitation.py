r"""Squeeze-and-Excitation.

Hu, Shen, Sun. "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

.. math::

    z_c = F_{sq}(u_c) = \frac{1}{H W}\sum_{i=1}^{H}\sum_{j=1}^{W} u_c(i, j), \qquad
    s = F_{ex}(z, W) = \sigma\big(W_2\, \delta(W_1 z)\big), \qquad
    \tilde{x}_c = s_c\, u_c

with :math:`W_1 \in \mathbb{R}^{\frac{C}{r} \times C}`, :math:`W_2 \in \mathbb{R}^{C \times \frac{C}{r}}`,
δ the ReLU and σ the sigmoid. As in the official code, both FC layers carry a bias.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_feature_map, hidden_width


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 avgpool(x)))`` on ``(B, C, H, W)``."""

    def __init__(self, channels: int, reduction: int = 16,
                 act_layer: type[nn.Module] = nn.ReLU, gate_layer: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        self.channels = channels
        self.reduction = reduction
        hidden = hidden_width(channels, reduction, "SqueezeExcitation")   # C / r
        self.fc1 = nn.Linear(channels, hidden)    # W_1 (with bias)
        self.act = act_layer()                    # δ
        self.fc2 = nn.Linear(hidden, channels)    # W_2 (with bias)
        self.gate = gate_layer()                  # σ

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation ``s``, shape ``(B, C, 1, 1)``, each value in (0, 1)."""
        check_feature_map(x, self.channels, type(self).__name__)
        z = x.mean((2, 3))                                   # (B, C): squeeze
        s = self.gate(self.fc2(self.act(self.fc1(z))))       # (B, C): excitation
        return s[:, :, None, None]                           # (B, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)                     # (B, C, H, W): scale

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
