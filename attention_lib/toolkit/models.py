"""Tiny models that train in seconds on a CPU, so the book can show attention a model actually learned.

- :class:`TinyCNN`: a small CNN for :func:`attention_lib.data.shapes_dataset` whose attention block is
  any feature-map mechanism of the registry (or none, the baseline).
- :class:`TinyTransformer`: token embedding + positional embedding + pre-norm blocks of
  ``MultiHeadSelfAttention`` (or External Attention), one prediction per position (sequence tasks).
- :class:`TinyViT`: ``PatchEmbedding`` + positional embedding + the same blocks, for the shapes images.
"""
from __future__ import annotations

import inspect
from typing import Optional

import torch
from torch import nn

from .._checks import check_positive
from ..registry import MECHANISMS

#: The mechanisms a :class:`TinyCNN` accepts (``layout == "feature_map"``), plus ``None``.
FEATURE_MAP_MECHANISMS = tuple(name for name, m in MECHANISMS.items() if m.layout == "feature_map")
#: The token mixers a :class:`TinyTransformer` / :class:`TinyViT` accepts (``layout == "tokens"``).
TOKEN_MIXERS = tuple(name for name, m in MECHANISMS.items() if m.layout == "tokens")


def _with_known_arguments(cls, first, **kwargs) -> nn.Module:
    """``cls(first, **kwargs)``, passing only the keyword arguments ``cls`` accepts."""
    accepted = inspect.signature(cls).parameters
    return cls(first, **{k: v for k, v in kwargs.items() if k in accepted})


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def build_feature_map_attention(name: Optional[str], channels: int, reduction: int = 4, **kwargs) -> nn.Module:
    """The registry's feature-map mechanism ``name`` for ``channels`` channels (``None``: ``nn.Identity``).

    ``reduction`` is passed to the mechanisms that have one (the papers' 16 leaves a tiny model with one or
    two hidden units); other keyword arguments go to the constructor.
    """
    if name is None:
        return nn.Identity()
    if name not in MECHANISMS:
        raise ValueError(f"unknown attention {name!r}; expected None or one of {FEATURE_MAP_MECHANISMS}")
    mech = MECHANISMS[name]
    if mech.layout != "feature_map":
        raise ValueError(f"attention {name!r} works on tokens (B, N, D), not on feature maps (B, C, H, W); "
                         f"expected None or one of {FEATURE_MAP_MECHANISMS}")
    if "reduction" in inspect.signature(mech.cls).parameters:
        kwargs.setdefault("reduction", reduction)
    return mech.cls(channels, **kwargs)


class TinyCNN(nn.Module):
    """Three conv layers down to (2 width, H/4, W/4), the attention block, average pool, linear.

    ``attention``: a feature-map mechanism name of ``MECHANISMS`` (``squeeze_excitation``, ``eca``, ``cbam``,
    ``bam``, ``selective_kernel``) or ``None`` for the baseline without attention. The block is
    ``model.attention``; :meth:`attention_map` returns the weights it applies to an input batch. By default
    it sits right before the global average pool, so a spatial map decides how much each place adds to the
    class evidence: on :func:`~attention_lib.data.shapes_dataset` it learns to keep the target and
    suppress the clutter.

    ``after``: that many 1x1 conv-BN-ReLU stages between the block and the pool (``model.after``), so that a
    later layer uses the features the block reweighted, as the next block's first 1x1 convolution does in
    SE-ResNet (a 1x1 stage keeps every receptive field as it is). ``head_hidden``: a two-layer MLP head
    (pool, linear to ``head_hidden``, ReLU, linear) instead of one linear layer. With the defaults (0, 0) the
    network is the plain one above, module for module.
    """

    def __init__(self, attention: Optional[str] = None, num_classes: int = 4, width: int = 16,
                 in_channels: int = 3, reduction: int = 4, after: int = 0, head_hidden: int = 0,
                 **attention_kwargs):
        super().__init__()
        for value, what in ((num_classes, "num_classes"), (width, "width"), (in_channels, "in_channels")):
            check_positive(value, what, "TinyCNN")
        for value, what in ((after, "after"), (head_hidden, "head_hidden")):
            check_positive(value, what, "TinyCNN", minimum=0)
        self.attention_name = attention
        self.in_channels = in_channels
        c = 2 * width
        self.stem = nn.Sequential(
            _conv_bn_relu(in_channels, width, stride=2),     # (B, w, H/2, W/2)
            _conv_bn_relu(width, c), nn.MaxPool2d(2),        # (B, 2w, H/4, W/4)
            _conv_bn_relu(c, c))                             # (B, 2w, H/4, W/4)
        self.attention = build_feature_map_attention(attention, c, reduction, **attention_kwargs)
        # None rather than an empty Sequential when unused: the default network keeps its repr (the demo cache key)
        self.after = nn.Sequential(*(nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
                                     for _ in range(after))) if after else None     # (B, 2w, H/4, W/4)
        read_out = [nn.Linear(c, head_hidden), nn.ReLU(), nn.Linear(head_hidden, num_classes)] if head_hidden \
            else [nn.Linear(c, num_classes)]
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *read_out)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TinyCNN expects images of shape (B, {self.in_channels}, H, W), got {got}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map the attention block receives, ``(B, 2 width, H/4, W/4)``."""
        self._check(x)
        return self.stem(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.attention(self.features(x))       # (B, 2w, H/4, W/4)
        return self.read_out(f)                    # (B, num_classes)

    def read_out(self, f: torch.Tensor) -> torch.Tensor:
        """What follows the attention block: the ``after`` stages (if any) and the head, ``(B, 2w, H', W')`` to
        logits ``(B, num_classes)``; an experiment can feed it features reweighted by a gate of its own."""
        if self.after is not None:
            f = self.after(f)                      # (B, 2w, H/4, W/4)
        return self.head(f)                        # (B, num_classes)

    def attention_map(self, x: torch.Tensor):
        """The attention block's ``attention_map`` on the features of ``x`` (call in eval mode)."""
        if self.attention_name is None:
            raise ValueError("TinyCNN(attention=None) is the baseline: it has no attention map")
        return self.attention.attention_map(self.features(x))

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """A spatial weight per position, ``(B, H/4, W/4)``: CBAM's ``M_s``, or BAM's map averaged over channels."""
        if self.attention_name not in ("cbam", "bam"):
            raise ValueError(f"spatial_map needs attention 'cbam' or 'bam', this TinyCNN has {self.attention_name!r}")
        m = self.attention_map(x)
        if self.attention_name == "cbam":
            return m.spatial[:, 0]                 # (B, H', W')
        return m.mean(1)                           # (B, C, H', W') -> (B, H', W')


def _token_mixer(kind: str, dim: int, num_heads: int, memory_size: int) -> nn.Module:
    if kind not in TOKEN_MIXERS:
        raise ValueError(f"unknown token attention {kind!r}; expected one of {TOKEN_MIXERS}")
    return _with_known_arguments(MECHANISMS[kind].cls, dim, num_heads=num_heads, memory_size=memory_size)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))`` on ``(B, N, D)``."""

    def __init__(self, dim: int, attention: nn.Module, mlp_ratio: int = 2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attention
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))           # (B, N, D)
        return x + self.mlp(self.norm2(x))         # (B, N, D)


class _Encoder(nn.Module):
    """Shared by the two transformers: blocks over tokens plus per-layer attention maps."""

    def _build_blocks(self, dim, depth, num_heads, attention, memory_size, mlp_ratio):
        for value, what in ((dim, "dim"), (depth, "depth"), (num_heads, "num_heads")):
            check_positive(value, what, type(self).__name__)
        self.attention_name = attention
        self.blocks = nn.ModuleList(Block(dim, _token_mixer(attention, dim, num_heads, memory_size), mlp_ratio)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def _maps(self, h: torch.Tensor) -> list:
        maps = []
        for block in self.blocks:
            maps.append(block.attn.attention_map(block.norm1(h)))   # (B, heads, N, N) or (B, [H,] N, S)
            h = block(h)
        return maps


class TinyTransformer(_Encoder):
    """A sequence model: tokens ``(B, L)`` int64 -> logits ``(B, L, vocab)``, one prediction per position.

    Token embedding plus a learned positional embedding, ``depth`` pre-norm blocks whose token mixer is
    ``attention`` (``"self_attention"``, ``"external_attention"`` or ``"multi_head_external_attention"``),
    a final LayerNorm and a linear read-out.
    """

    def __init__(self, vocab: int = 16, max_len: int = 8, dim: int = 32, depth: int = 1, num_heads: int = 2,
                 attention: str = "self_attention", memory_size: int = 16, mlp_ratio: int = 2):
        super().__init__()
        self._build_blocks(dim, depth, num_heads, attention, memory_size, mlp_ratio)
        self.vocab, self.max_len = vocab, max_len
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(1, max_len, dim))
        self.head = nn.Linear(dim, vocab)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] > self.max_len \
                or tokens.is_floating_point():
            got = (tuple(tokens.shape), tokens.dtype) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"TinyTransformer expects integer tokens of shape (B, L) with L <= {self.max_len}, "
                             f"got {got}")
        return self.embed(tokens) + self.pos[:, :tokens.shape[1]]    # (B, L, D)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self._embed(tokens)                    # (B, L, D)
        for block in self.blocks:
            h = block(h)                           # (B, L, D)
        return self.head(self.norm(h))             # (B, L, vocab)

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor) -> list:
        """One map per layer: ``(B, heads, L, L)`` for self-attention, ``(B, [heads,] L, S)`` for External
        Attention (each mechanism's own ``attention_map``; call in eval mode)."""
        return self._maps(self._embed(tokens))


class TinyViT(_Encoder):
    """A vision transformer: images ``(B, C, H, W)`` -> ``PatchEmbedding`` tokens -> blocks -> mean pool -> logits."""

    def __init__(self, image_size: int = 32, patch_size: int = 4, in_channels: int = 3, num_classes: int = 4,
                 dim: int = 32, depth: int = 2, num_heads: int = 2, attention: str = "self_attention",
                 memory_size: int = 16, mlp_ratio: int = 2):
        super().__init__()
        from ..patch_embedding import PatchEmbedding

        if image_size % patch_size:
            raise ValueError(f"TinyViT: image_size ({image_size}) must be divisible by patch_size ({patch_size})")
        self._build_blocks(dim, depth, num_heads, attention, memory_size, mlp_ratio)
        self.image_size = image_size
        self.grid = image_size // patch_size
        self.patch_embed = PatchEmbedding(patch_size, in_channels, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(1, self.grid ** 2, dim))
        self.head = nn.Linear(dim, num_classes)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"TinyViT expects images of shape (B, {self.patch_embed.in_channels}, "
                             f"{self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        return self.patch_embed(x) + self.pos      # (B, N, D), N = grid^2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._embed(x)                         # (B, N, D)
        for block in self.blocks:
            h = block(h)                           # (B, N, D)
        return self.head(self.norm(h).mean(1))     # (B, num_classes)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list:
        """One map per layer (the mechanism's ``attention_map``); tokens are patches in row-major order."""
        return self._maps(self._embed(x))


class TinyTokenNet(nn.Module):
    """A conv stem makes a grid of tokens, one pre-norm block mixes them, mean pool, linear: images -> logits.

    Two stride-2 3 x 3 convolutions (each with BatchNorm and ReLU) turn a ``(B, C, H, W)`` image into a
    ``(H/4) x (W/4)`` grid of ``dim``-wide tokens, each seeing a 7 x 7 pixel window; a learned positional
    embedding is added. The block is ``x + mixer(LN(x))``, then ``x + MLP(LN(x))``; its token mixer is
    ``attention``: a token mechanism of the registry (``"self_attention"``, ``"external_attention"``,
    ``"multi_head_external_attention"``), ``None`` for the baseline without token mixing (the block keeps
    its per-token MLP, so the models differ only in how tokens exchange information), or any module that
    maps ``(B, N, D)`` to ``(B, N, D)``. The stem is cheap and local, so on
    :func:`~attention_lib.data.shapes_dataset` the mixer decides how well tokens that each see part of the
    target can be combined.
    """

    def __init__(self, attention=None, num_classes: int = 4, dim: int = 32, image_size: int = 32,
                 in_channels: int = 3, num_heads: int = 2, memory_size: int = 16, mlp_ratio: int = 2):
        super().__init__()
        name = "TinyTokenNet"
        for value, what in ((num_classes, "num_classes"), (dim, "dim"), (image_size, "image_size"),
                            (in_channels, "in_channels")):
            check_positive(value, what, name)
        if image_size % 4 or dim % 2:
            raise ValueError(f"{name}: image_size ({image_size}) must be divisible by 4 and dim ({dim}) even")
        if attention is None:
            mixer, self.attention_name = nn.Identity(), None
        elif isinstance(attention, nn.Module):
            mixer, self.attention_name = attention, type(attention).__name__
        else:
            mixer, self.attention_name = _token_mixer(attention, dim, num_heads, memory_size), attention
        self.in_channels, self.image_size, self.grid = in_channels, image_size, image_size // 4
        self.stem = nn.Sequential(_conv_bn_relu(in_channels, dim // 2, stride=2),   # (B, D/2, H/2, W/2)
                                  _conv_bn_relu(dim // 2, dim, stride=2))           # (B, D, H/4, W/4)
        self.pos = nn.Parameter(0.02 * torch.randn(1, self.grid ** 2, dim))
        self.block = Block(dim, mixer, mlp_ratio)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The tokens the block receives, ``(B, N, D)`` with ``N = (H/4)(W/4)`` in row-major order."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels \
                or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TinyTokenNet expects images of shape (B, {self.in_channels}, {self.image_size}, "
                             f"{self.image_size}), got {got}")
        return self.stem(x).flatten(2).transpose(1, 2) + self.pos    # (B, N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.tokens(x))                 # (B, N, D)
        return self.head(self.norm(h).mean(1))         # (B, num_classes)

    @torch.no_grad()
    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The mixer's ``attention_map`` on the tokens of ``x`` (call in eval mode)."""
        if self.attention_name is None:
            raise ValueError("TinyTokenNet(attention=None) is the baseline: it has no attention map")
        return self.block.attn.attention_map(self.block.norm1(self.tokens(x)))
