"""The registry of the book's eight attention mechanisms.

Tests, tiny models and notebooks iterate over ``MECHANISMS`` instead of repeating lists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Optional

import torch
from torch import nn

from .bam import BAM
from .cbam import CBAM
from .eca import EfficientChannelAttention
from .external_attention import ExternalAttention, MultiHeadExternalAttention
from .selective_kernel import SelectiveKernel
from .self_attention import MultiHeadSelfAttention
from .squeeze_excitation import SqueezeExcitation

#: Size of the example inputs: small enough for tests and notebooks on a laptop CPU.
EXAMPLE_TOKENS = dict(num_tokens=16, dim=64)
EXAMPLE_FEATURE_MAP = dict(channels=64, height=8, width=8)


def _example_tokens(batch_size: int = 2, *, num_tokens: int = EXAMPLE_TOKENS["num_tokens"],
                    dim: int = EXAMPLE_TOKENS["dim"], generator: Optional[torch.Generator] = None,
                    device=None, dtype=None) -> torch.Tensor:
    return torch.randn(batch_size, num_tokens, dim, generator=generator, device=device, dtype=dtype)


def _example_feature_map(batch_size: int = 2, *, channels: int = EXAMPLE_FEATURE_MAP["channels"],
                         height: int = EXAMPLE_FEATURE_MAP["height"], width: int = EXAMPLE_FEATURE_MAP["width"],
                         generator: Optional[torch.Generator] = None, device=None, dtype=None) -> torch.Tensor:
    return torch.randn(batch_size, channels, height, width, generator=generator, device=device, dtype=dtype)


@dataclass(frozen=True)
class Mechanism:
    """One attention mechanism: its class, its paper, and how to build a small example."""
    name: str
    cls: type[nn.Module]
    title: str
    authors: str
    venue: str
    year: int
    arxiv: str
    layout: str                                     # "tokens" (B, N, D) or "feature_map" (B, C, H, W)
    example_input: Callable[..., torch.Tensor]      # example_input(batch_size=2, **sizes) -> tensor
    example_kwargs: Mapping[str, object] = field(default_factory=dict)   # constructor arguments for that input
    reweights: str = ""                             # what the weights act on: tokens, channels, spatial, ...

    def build(self, **overrides) -> nn.Module:
        """The module sized for ``example_input()`` (any constructor argument can be overridden)."""
        return self.cls(**{**self.example_kwargs, **overrides})

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


def _entry(name, cls, title, authors, venue, year, arxiv, layout, reweights, **kwargs) -> Mechanism:
    example = _example_tokens if layout == "tokens" else _example_feature_map
    return Mechanism(name, cls, title, authors, venue, year, arxiv, layout, example,
                     MappingProxyType(kwargs), reweights)


_D, _C = EXAMPLE_TOKENS["dim"], EXAMPLE_FEATURE_MAP["channels"]

MECHANISMS: Mapping[str, Mechanism] = MappingProxyType({m.name: m for m in [
    _entry("self_attention", MultiHeadSelfAttention, "Attention Is All You Need",
           "Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin", "NeurIPS", 2017,
           "1706.03762", "tokens", "tokens", dim=_D, num_heads=8),
    _entry("external_attention", ExternalAttention,
           "Beyond Self-attention: External Attention using Two Linear Layers for Visual Tasks",
           "Guo, Liu, Mu, Hu", "IEEE TPAMI", 2022, "2105.02358", "tokens", "tokens", dim=_D, memory_size=64),
    _entry("multi_head_external_attention", MultiHeadExternalAttention,
           "Beyond Self-attention: External Attention using Two Linear Layers for Visual Tasks",
           "Guo, Liu, Mu, Hu", "IEEE TPAMI", 2022, "2105.02358", "tokens", "tokens", dim=_D, num_heads=8),
    _entry("squeeze_excitation", SqueezeExcitation, "Squeeze-and-Excitation Networks",
           "Hu, Shen, Sun", "CVPR", 2018, "1709.01507", "feature_map", "channels", channels=_C),
    _entry("selective_kernel", SelectiveKernel, "Selective Kernel Networks",
           "Li, Wang, Hu, Yang", "CVPR", 2019, "1903.06586", "feature_map", "receptive field (per channel)",
           channels=_C),
    _entry("cbam", CBAM, "CBAM: Convolutional Block Attention Module",
           "Woo, Park, Lee, Kweon", "ECCV", 2018, "1807.06521", "feature_map", "channels, then spatial",
           channels=_C),
    _entry("bam", BAM, "BAM: Bottleneck Attention Module",
           "Park, Woo, Lee, Kweon", "BMVC", 2018, "1807.06514", "feature_map", "channels and spatial (joint)",
           channels=_C),
    _entry("eca", EfficientChannelAttention,
           "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
           "Wang, Wu, Zhu, Li, Zuo, Hu", "CVPR", 2020, "1910.03151", "feature_map", "channels", channels=_C),
]})
