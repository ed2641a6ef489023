r"""Patch embedding: an image becomes a sequence of tokens.

Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021, arXiv:2010.11929.

.. math::

    z_i = E\, x_p^{(i)} + b, \qquad x_p^{(i)} \in \mathbb{R}^{P^2 C},\ E \in \mathbb{R}^{D \times P^2 C}

Flattening each P x P patch and applying one Linear ``E`` is exactly a convolution with
kernel = stride = P, which is how it is computed here.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import _shape, check_feature_map, check_positive


class PatchEmbedding(nn.Module):
    """``(B, C, H, W) -> (B, N, D)`` with ``N = (H / P) (W / P)`` non-overlapping patches."""

    def __init__(self, patch_size: int = 16, in_channels: int = 3, dim: int = 768):
        super().__init__()
        check_positive(patch_size, "patch_size", "PatchEmbedding")
        check_positive(in_channels, "in_channels", "PatchEmbedding")
        check_positive(dim, "dim", "PatchEmbedding")
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.dim = dim
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)  # E, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.in_channels, "PatchEmbedding")
        P = self.patch_size
        H, W = x.shape[-2:]
        if H % P or W % P:
            raise ValueError(
                f"PatchEmbedding expects H and W divisible by patch_size={P}, got input {_shape(x)}; "
                f"crop or pad to ({(H // P) * P or P}, {(W // P) * P or P}) first")
        x = self.proj(x)                       # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)    # (B, N, D)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, in_channels={self.in_channels}, dim={self.dim}"
