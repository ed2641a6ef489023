"""The registry of the book's attention mechanisms: every fact about a mechanism, written once.

Tests, tiny models, the explorers, the overview of chapter 00, the comparison of chapter 08 and the
cheat sheet read ``MECHANISMS`` instead of repeating lists: the class, the paper, the input layout and an
example input, the display names in both languages, the chapter that teaches it, its family (what its
weights rescale), and its parameter and FLOP formulas (LaTeX for the page, the same formula in Python,
checked against ``count_parameters`` / ``count_flops`` by the tests).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Optional

import torch
from torch import nn

from .bam import BAM
from .cbam import CBAM
from .eca import EfficientChannelAttention, eca_kernel_size
from .external_attention import ExternalAttention, MultiHeadExternalAttention
from .selective_kernel import SelectiveKernel
from .self_attention import MultiHeadSelfAttention
from .squeeze_excitation import SqueezeExcitation

#: Size of the example inputs: small enough for tests and notebooks on a laptop CPU.
EXAMPLE_TOKENS = dict(num_tokens=16, dim=64)
EXAMPLE_FEATURE_MAP = dict(channels=64, height=8, width=8)

#: The families of chapter 00's family tree, by what the attention weights rescale.
FAMILIES = ("channels", "spatial", "both", "tokens")

#: Every symbol of the cost formulas, in the book's notation (the notation page uses the same letters).
SYMBOLS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "B": {"en": "batch size", "zh": "批量大小"},
    "C": {"en": "channels of the feature map", "zh": "特征图的通道数"},
    "H": {"en": "height of the feature map", "zh": "特征图的高"},
    "W": {"en": "width of the feature map", "zh": "特征图的宽"},
    "r": {"en": "reduction ratio of a bottleneck (C → C/r → C; C/r rounded down)",
          "zh": "瓶颈的缩减率（C → C/r → C；C/r 向下取整）"},
    "k": {"en": "ECA's kernel size across channels, ψ(C)", "zh": "ECA 跨通道卷积的核大小 ψ(C)"},
    "k_s": {"en": "CBAM's spatial kernel size (7)", "zh": "CBAM 空间卷积核的大小（7）"},
    "M": {"en": "number of Selective Kernel branches (paths)", "zh": "选择性卷积核的分支（路径）数"},
    "G": {"en": "groups of each Selective Kernel branch", "zh": "选择性卷积核每个分支的分组数"},
    "d_z": {"en": "width of Selective Kernel's fused descriptor, max(C/r, L) with L = 32",
            "zh": "选择性卷积核融合描述符的宽度 max(C/r, L)，其中 L = 32"},
    "N": {"en": "number of tokens", "zh": "词元数"},
    "D": {"en": "token width", "zh": "词元的维度"},
    "h": {"en": "number of heads", "zh": "头数"},
    "d": {"en": "head width D/h", "zh": "每个头的维度 D/h"},
    "S": {"en": "memory slots of External Attention", "zh": "外部注意力的槽位数"},
    "e": {"en": "expansion coefficient of multi-head External Attention (coef, 4)",
          "zh": "多头外部注意力的扩展系数（coef，4）"},
})


@dataclass(frozen=True)
class Formula:
    """A cost formula: LaTeX in the book's notation, and the same formula in Python (exact, integers)."""
    latex: str
    value: Callable[..., int]      # keyword arguments: the formula's symbols, e.g. value(C=64, r=16)

    def __call__(self, **symbols) -> int:
        """The formula's value; symbols it does not use are ignored (one symbols dict serves both formulas)."""
        used = inspect.signature(self.value).parameters
        return int(self.value(**{k: v for k, v in symbols.items() if k in used}))


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
    """One attention mechanism: its class, its paper, how to build a small example, and its facts."""
    name: str                                       # registry key, e.g. "squeeze_excitation"
    cls: type[nn.Module]
    title: str                                      # the paper
    authors: str
    venue: str
    year: int
    arxiv: str
    layout: str                                     # "tokens" (B, N, D) or "feature_map" (B, C, H, W)
    names: Mapping[str, str]                        # display name per language: {"en": ..., "zh": ...}
    short: Mapping[str, str]                        # abbreviation per language, for legends and tables
    chapter: int                                    # the chapter that teaches it
    family: str                                     # one of FAMILIES: what the weights rescale
    reweights: Mapping[str, str]                    # what the weights act on, in words, per language
    params: Formula                                 # parameters of the module
    flops: Formula                                  # FLOPs per sample of the equations (forward_explicit
                                                    # where the module has one), as count_flops counts them
    symbols_of: Callable[[Mapping, tuple], dict]    # (constructor arguments, input shape) -> formula symbols
    official_code: str                              # URL of the authors' code
    example_kwargs: Mapping[str, object] = field(default_factory=dict)   # constructor arguments of the example
    small_kwargs: Mapping[str, object] = field(default_factory=dict)     # the smallest sensible configuration
    batch_one_training: bool = True                 # False: BatchNorm on a (B, C) descriptor needs B > 1
    equation: str = ""                              # the mechanism in one line of LaTeX (the cheat sheet's)

    @property
    def example_input(self) -> Callable[..., torch.Tensor]:
        """``example_input(batch_size=2, **sizes)``: a random input of the registry's example size."""
        return _example_tokens if self.layout == "tokens" else _example_feature_map

    def build(self, **overrides) -> nn.Module:
        """The module sized for ``example_input()`` (any constructor argument can be overridden)."""
        return self.cls(**{**self.example_kwargs, **overrides})

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"

    def display_name(self, lang: Optional[str] = None, short: bool = False) -> str:
        """The name in ``lang`` (default: the language chosen by ``attention_lib.setup``)."""
        if lang is None:
            from .toolkit.i18n import get_language
            lang = get_language()
        names = self.short if short else self.names
        return names.get(lang, names["en"])

    def arguments(self, **kwargs) -> dict:
        """The full constructor arguments of ``cls(**kwargs)``, defaults filled in."""
        bound = inspect.signature(self.cls).bind(**kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def symbols(self, input_shape, **kwargs) -> dict:
        """The values of the formulas' symbols for ``cls(**kwargs)`` applied to an input of ``input_shape``."""
        return self.symbols_of(self.arguments(**kwargs), tuple(input_shape))

    def expected_params(self, **kwargs) -> int:
        """The parameter formula evaluated for ``cls(**kwargs)``."""
        shape = tuple(self.example_input(1, **self._sizes(kwargs)).shape)
        return self.params(**self.symbols(shape, **kwargs))

    def expected_flops(self, input_shape, **kwargs) -> int:
        """The FLOP formula for one sample of ``input_shape`` (times the batch size of ``input_shape``)."""
        shape = tuple(input_shape)
        return shape[0] * self.flops(**self.symbols(shape, **kwargs))

    def _sizes(self, kwargs) -> dict:
        args = self.arguments(**kwargs)
        return dict(dim=args["dim"]) if self.layout == "tokens" else dict(channels=args["channels"])


def _lang(en: str, zh: str) -> Mapping[str, str]:
    return MappingProxyType({"en": en, "zh": zh})


def _map_sizes(args, shape) -> dict:
    return dict(C=args["channels"], H=shape[2], W=shape[3])


def _token_sizes(args, shape) -> dict:
    return dict(N=shape[1], D=args["dim"])


_D, _C = EXAMPLE_TOKENS["dim"], EXAMPLE_FEATURE_MAP["channels"]

_SELF_ATTENTION = Mechanism(
    "self_attention", MultiHeadSelfAttention, "Attention Is All You Need",
    "Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin", "NeurIPS", 2017, "1706.03762",
    "tokens", _lang("Multi-head self-attention", "多头自注意力"), _lang("self-attention", "自注意力"),
    chapter=1, family="tokens",
    reweights=_lang("tokens: each query averages the values of all tokens",
                    "词元：每个查询对所有词元的值加权平均"),
    # qkv projection 6ND^2 (no bias), Q K^T and A V 2N^2D each, scaling and softmax of the h N x N
    # scores (1 + 3 per element), output projection 2ND^2 (its bias is free under the convention).
    params=Formula(r"4D^2 + D", lambda D: 4 * D * D + D),
    flops=Formula(r"8ND^2 + 4N^2D + 4hN^2", lambda N, D, h: 8 * N * D * D + 4 * N * N * D + 4 * h * N * N),
    symbols_of=lambda a, s: dict(_token_sizes(a, s), h=a["num_heads"]),
    official_code="https://github.com/tensorflow/tensor2tensor",
    equation=r"Y = [\mathrm{softmax}(Q_iK_i^\top/\sqrt{d})\,V_i]_{i=1}^{h}\,W_o,\ "
             r"(Q, K, V) = X(W_q, W_k, W_v)",
    example_kwargs=MappingProxyType(dict(dim=_D, num_heads=8)),
    small_kwargs=MappingProxyType(dict(dim=8, num_heads=2)),
)

_EXTERNAL = dict(
    title="Beyond Self-attention: External Attention using Two Linear Layers for Visual Tasks",
    authors="Guo, Liu, Mu, Hu", venue="IEEE TPAMI", year=2022, arxiv="2105.02358", layout="tokens",
    chapter=2, family="tokens", official_code="https://github.com/MenghaoGuo/EANet",
)

_EXTERNAL_ATTENTION = Mechanism(
    "external_attention", ExternalAttention, names=_lang("External Attention", "外部注意力"),
    short=_lang("External", "外部注意力"),
    reweights=_lang("tokens: each token averages S learned memory slots",
                    "词元：每个词元对 S 个可学习的记忆槽位加权平均"),
    # M_k and M_v 2NSD each; softmax 3NS, the L1 sum NS, its epsilon N and the division NS.
    params=Formula(r"2SD", lambda S, D: 2 * S * D),
    flops=Formula(r"4NSD + 5NS + N", lambda N, S, D: 4 * N * S * D + 5 * N * S + N),
    symbols_of=lambda a, s: dict(_token_sizes(a, s), S=a["memory_size"]),
    equation=r"Y = \mathrm{norm}_{\ell_1, S}\big(\mathrm{softmax}_N(X M_k^\top)\big)\, M_v",
    example_kwargs=MappingProxyType(dict(dim=_D, memory_size=64)),
    small_kwargs=MappingProxyType(dict(dim=8, memory_size=4)),
    **_EXTERNAL,
)

_MULTI_HEAD_EXTERNAL = Mechanism(
    "multi_head_external_attention", MultiHeadExternalAttention,
    names=_lang("Multi-head External Attention", "多头外部注意力"), short=_lang("MH External", "多头外部注意力"),
    reweights=_lang("tokens: in each head, each token averages the S slots of one memory shared by all heads",
                    "词元：每个头里的每个词元，对所有头共用的同一块外部记忆的 S 个槽位加权平均"),
    # D -> eD and eD -> D projections 2eND^2 each; M_k and M_v over eh heads of width d = D/h:
    # 2eNSD each; M_k's bias, the softmax, the L1 sum and division: 6 per logit, plus one epsilon per row.
    params=Formula(r"2eD^2 + eD + D + 2dS + S + d",
                   lambda D, e, d, S: 2 * e * D * D + e * D + D + 2 * d * S + S + d),
    flops=Formula(r"4eND^2 + 4eNSD + 6ehNS + ehN",
                  lambda N, D, e, h, S: 4 * e * N * D * D + 4 * e * N * S * D + 6 * e * h * N * S + e * h * N),
    symbols_of=lambda a, s: dict(_token_sizes(a, s), h=a["num_heads"], e=a["coef"], S=a["memory_size"],
                                 d=a["dim"] // a["num_heads"]),
    equation=r"Y = [\mathrm{norm}_{\ell_1, S}(\mathrm{softmax}_N(X_i M_k^\top))\, M_v]_{i=1}^{eh}\, W_o,\ "
             r"X = \mathrm{heads}(X_{in} W_e)",
    example_kwargs=MappingProxyType(dict(dim=_D, num_heads=8)),
    small_kwargs=MappingProxyType(dict(dim=8, num_heads=2, memory_size=4, coef=2)),
    **_EXTERNAL,
)

_SQUEEZE_EXCITATION = Mechanism(
    "squeeze_excitation", SqueezeExcitation, "Squeeze-and-Excitation Networks", "Hu, Shen, Sun", "CVPR", 2018,
    "1709.01507", "feature_map", _lang("Squeeze-and-Excitation (SE)", "挤压-激励（SE）"), _lang("SE", "SE"),
    chapter=3, family="channels",
    reweights=_lang("channels: one gate in (0, 1) per channel", "通道：每个通道一个 (0, 1) 之间的门控值"),
    # squeeze CHW, the two FC layers 4C^2/r, ReLU C/r, sigmoid C, scaling CHW.
    params=Formula(r"2C^2/r + C/r + C", lambda C, r: 2 * C * (C // r) + C // r + C),
    flops=Formula(r"2CHW + 4C^2/r + C/r + C",
                  lambda C, H, W, r: 2 * C * H * W + 4 * C * (C // r) + C // r + C),
    symbols_of=lambda a, s: dict(_map_sizes(a, s), r=a["reduction"]),
    official_code="https://github.com/hujie-frank/SENet",
    equation=r"\tilde X = \sigma\big(W_2\,\delta(W_1\,\mathrm{GAP}(X))\big) \odot X",
    example_kwargs=MappingProxyType(dict(channels=_C)),
    small_kwargs=MappingProxyType(dict(channels=8, reduction=2)),
)


def _sk_symbols(a, s) -> dict:
    kernels = tuple(a["kernel_sizes"])
    if not a["dilated"] and set(kernels) != {3} or min(kernels) < 3:
        raise ValueError(f"the registry's Selective Kernel formulas count one 3x3 convolution per branch (the default "
                         f"dilated branches of size >= 3); got kernel_sizes={kernels}, dilated={a['dilated']}")
    return dict(_map_sizes(a, s), M=len(tuple(a["kernel_sizes"])), G=a["groups"],
                d_z=max(a["channels"] // a["reduction"], a["min_dim"]))


_SELECTIVE_KERNEL = Mechanism(
    "selective_kernel", SelectiveKernel, "Selective Kernel Networks", "Li, Wang, Hu, Yang", "CVPR", 2019,
    "1903.06586", "feature_map", _lang("Selective Kernel (SK)", "选择性卷积核（SK）"), _lang("SK", "SK"),
    chapter=4, family="channels",
    reweights=_lang("receptive field: per channel, a softmax over M branches of different kernel sizes",
                    "感受野：每个通道在 M 个不同卷积核大小的分支之间做 softmax"),
    # Formulas of the default dilated 3x3 branches. M branches: conv 18C^2HW/G, BN 2CHW, ReLU CHW;
    # U = sum of branches MCHW, the squeeze CHW, the select product MCHW and its sum MCHW;
    # fuse FC 2Cd_z, BN 2d_z, ReLU d_z; M select FCs 2Md_zC; softmax over branches 3MC.
    params=Formula(r"9MC^2/G + 2MC + Cd_z + 2d_z + d_zMC",
                   lambda M, C, G, d_z: 9 * M * C * C // G + 2 * M * C + C * d_z + 2 * d_z + d_z * M * C),
    flops=Formula(r"18MC^2HW/G + (6M + 1)CHW + 2(M + 1)Cd_z + 3d_z + 3MC",
                  lambda M, C, H, W, G, d_z: 18 * M * C * C * H * W // G + (6 * M + 1) * C * H * W
                  + 2 * (M + 1) * C * d_z + 3 * d_z + 3 * M * C),
    symbols_of=_sk_symbols,
    official_code="https://github.com/implus/SKNet",
    equation=r"V = \textstyle\sum_k a_k \odot U_k,\ a = \mathrm{softmax}_k(A_k z),\ "
             r"z = \delta(\mathcal{B}(W\,\mathrm{GAP}(\sum_k U_k)))",
    example_kwargs=MappingProxyType(dict(channels=_C)),
    small_kwargs=MappingProxyType(dict(channels=8, reduction=2, min_dim=4)),
    batch_one_training=False,
)

_CBAM = Mechanism(
    "cbam", CBAM, "CBAM: Convolutional Block Attention Module", "Woo, Park, Lee, Kweon", "ECCV", 2018,
    "1807.06521", "feature_map", _lang("CBAM", "CBAM（卷积块注意力模块）"), _lang("CBAM", "CBAM"),
    chapter=5, family="both",
    reweights=_lang("channels, then spatial positions", "先通道，后空间位置"),
    # Channel gate: average and max pools 2CHW, the shared MLP on both 8C^2/r, ReLU 2C/r, their sum C,
    # sigmoid C, scaling CHW. Spatial gate: channel mean and max 2CHW, the 2 -> 1 conv 4k_s^2HW,
    # BatchNorm 2HW, sigmoid HW, scaling CHW.
    params=Formula(r"2C^2/r + C/r + C + 2k_s^2 + 2",
                   lambda C, r, k_s: 2 * C * (C // r) + C // r + C + 2 * k_s * k_s + 2),
    flops=Formula(r"6CHW + 8C^2/r + 2C/r + 2C + (4k_s^2 + 3)HW",
                  lambda C, H, W, r, k_s: 6 * C * H * W + 8 * C * (C // r) + 2 * (C // r) + 2 * C
                  + (4 * k_s * k_s + 3) * H * W),
    symbols_of=lambda a, s: dict(_map_sizes(a, s), r=a["reduction"], k_s=a["spatial_kernel"]),
    official_code="https://github.com/Jongchan/attention-module",
    equation=r"F' = M_c(F) \odot F,\ F'' = M_s(F') \odot F'",
    example_kwargs=MappingProxyType(dict(channels=_C)),
    small_kwargs=MappingProxyType(dict(channels=8, reduction=2)),
)

_BAM = Mechanism(
    "bam", BAM, "BAM: Bottleneck Attention Module", "Park, Woo, Lee, Kweon", "BMVC", 2018, "1807.06514",
    "feature_map", _lang("BAM", "BAM（瓶颈注意力模块）"), _lang("BAM", "BAM"),
    chapter=6, family="both",
    reweights=_lang("channels and spatial positions, jointly: one C × H × W map",
                    "通道与空间位置联合加权：一张 C × H × W 的图"),
    # Channel branch: pool CHW, MLP 4C^2/r, BN 2C/r, ReLU C/r. Spatial branch: 1x1 reduction 2C^2HW/r,
    # two dilated 3x3 convs 36C^2HW/r^2, the 1x1 to one map 2CHW/r, three BN 6CHW/r and ReLU 3CHW/r.
    # Combination: the broadcast sum, sigmoid, 1 + sigma and the product: 4CHW.
    params=Formula(r"3C^2/r + 18C^2/r^2 + 13C/r + C + 1",
                   lambda C, r: 3 * C * (C // r) + 18 * (C // r) ** 2 + 13 * (C // r) + C + 1),
    flops=Formula(r"5CHW + 2C^2HW/r + 36C^2HW/r^2 + 11CHW/r + 4C^2/r + 3C/r",
                  lambda C, H, W, r: 5 * C * H * W + 2 * C * (C // r) * H * W + 36 * (C // r) ** 2 * H * W
                  + 11 * (C // r) * H * W + 4 * C * (C // r) + 3 * (C // r)),
    symbols_of=lambda a, s: dict(_map_sizes(a, s), r=a["reduction"]),
    official_code="https://github.com/Jongchan/attention-module",
    equation=r"F' = F + F \odot \sigma\big(M_c(F) + M_s(F)\big)",
    example_kwargs=MappingProxyType(dict(channels=_C)),
    small_kwargs=MappingProxyType(dict(channels=8, reduction=2)),
    batch_one_training=False,
)

_ECA = Mechanism(
    "eca", EfficientChannelAttention, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    "Wang, Wu, Zhu, Li, Zuo, Hu", "CVPR", 2020, "1910.03151", "feature_map",
    _lang("Efficient Channel Attention (ECA)", "高效通道注意力（ECA）"), _lang("ECA", "ECA"),
    chapter=7, family="channels",
    reweights=_lang("channels: one gate per channel from its k neighbours", "通道：每个通道的门控由相邻 k 个通道决定"),
    # squeeze CHW, the 1-D convolution 2kC, sigmoid C, scaling CHW.
    params=Formula(r"k", lambda k: k),
    flops=Formula(r"2CHW + 2kC + C", lambda C, H, W, k: 2 * C * H * W + 2 * k * C + C),
    symbols_of=lambda a, s: dict(_map_sizes(a, s), k=a["kernel_size"] or eca_kernel_size(a["channels"], a["gamma"],
                                                                                         a["b"])),
    official_code="https://github.com/BangguWu/ECANet",
    equation=r"\tilde X = \sigma\big(\mathrm{conv1d}_k(\mathrm{GAP}(X))\big) \odot X,\ k = \psi(C)",
    example_kwargs=MappingProxyType(dict(channels=_C)),
    small_kwargs=MappingProxyType(dict(channels=8)),
)

MECHANISMS: Mapping[str, Mechanism] = MappingProxyType({m.name: m for m in [
    _SELF_ATTENTION, _EXTERNAL_ATTENTION, _MULTI_HEAD_EXTERNAL, _SQUEEZE_EXCITATION, _SELECTIVE_KERNEL,
    _CBAM, _BAM, _ECA,
]})


def by_chapter() -> list[Mechanism]:
    """The registered mechanisms in the order the book teaches them."""
    order = list(MECHANISMS)
    return sorted(MECHANISMS.values(), key=lambda m: (m.chapter, order.index(m.name)))
