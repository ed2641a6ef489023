"""Chapter 01's models, data and demo configurations of §6 (re-exported by ``ch01_self_attention``).

- :class:`ClassTokenViT` and :class:`ShapesClassTokenViT`: the toolkit's ``TinyViT`` with ViT's class token,
  trained on small shapes images.
- :class:`LocalSelfAttention`, :func:`pair_dataset`, :class:`PairClassifier` and :class:`PairDemo`: the
  far-pair experiment, global self-attention against the same model with a band mask, answering from the
  first marked token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..self_attention import MultiHeadSelfAttention
from ..toolkit import data as _data
from ..toolkit.models import TinyTransformer, TinyViT
from ..toolkit.train import DemoConfig


class ClassTokenViT(TinyViT):
    """``TinyViT`` with ViT's class token: a learned token before the patches; the class is read from it."""

    def __init__(self, image_size: int = 24, patch_size: int = 4, num_classes: int = 4, dim: int = 32,
                 depth: int = 2, num_heads: int = 4, mlp_ratio: int = 2):
        super().__init__(image_size, patch_size, num_classes=num_classes, dim=dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))            # zeros, as in the official code
        self.pos = nn.Parameter(0.02 * torch.randn(1, 1 + self.grid ** 2, dim))   # class token + patches

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"ClassTokenViT expects images of shape (B, {self.patch_embed.in_channels}, "
                             f"{self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        patches = self.patch_embed(x)                                      # (B, N, D)
        cls = self.cls_token.expand(len(x), -1, -1)                       # (B, 1, D)
        return torch.cat([cls, patches], dim=1) + self.pos                 # (B, 1 + N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._embed(x)                         # (B, 1 + N, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])       # the class token's output -> (B, classes)


@dataclass(frozen=True)
class ShapesClassTokenViT(DemoConfig):
    """``ClassTokenViT`` on small shapes images: larger targets and fewer distractors than the CNN's images."""
    kind: ClassVar[str] = "ch01_shapes_vit"
    patch_size: int = 4              # patch side P: a 6 x 6 grid of patches
    dim: int = 32                    # token width D
    depth: int = 2                   # transformer blocks
    num_heads: int = 4               # heads h (d_k = 8)
    size: int = 24                   # image side in pixels
    num_distractors: int = 4         # lines and dots around the target
    min_radius: float = 4.5          # half-size of the target in pixels, drawn from [min, max]
    max_radius: float = 6.5
    n_train: int = 3000              # three seeds of it fit the notebook's minute
    n_val: int = 500
    epochs: int = 8
    lr: float = 4e-3

    def build(self) -> nn.Module:
        return ClassTokenViT(self.size, self.patch_size, len(_data.SHAPE_CLASSES), self.dim, self.depth,
                             self.num_heads)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.shapes_dataset(n, size=self.size, seed=self._split_seed(split),
                                    num_distractors=self.num_distractors, min_radius=self.min_radius,
                                    max_radius=self.max_radius)


class LocalSelfAttention(MultiHeadSelfAttention):
    """Self-attention in which each token sees only the tokens at most ``window`` positions away."""

    def __init__(self, dim: int, num_heads: int = 2, window: int = 2):
        super().__init__(dim, num_heads)
        self.window = window

    def mask(self, n: int, device=None) -> torch.Tensor:
        """``(n, n)`` booleans, True where query i may attend key j: ``|i - j| <= window``."""
        i = torch.arange(n, device=device)
        return (i[:, None] - i[None, :]).abs() <= self.window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)                                     # (B, h, N, d_k) each
        B, h, N, dk = q.shape
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask(N, x.device))
        return self.proj(y.transpose(1, 2).reshape(B, N, h * dk))  # (B, N, D)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        q, k, _ = self._qkv(x)
        scores = (q @ k.transpose(-2, -1)) * self.scale            # (B, h, N, N)
        blocked = ~self.mask(q.shape[-2], x.device)
        return scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}"


class PairData(NamedTuple):
    """``inputs`` (n, L): bits 0/1, marked bits 2/3; ``targets`` (n,): 1 if the two marked bits are equal;
    ``distance`` (n,): how far apart the two marked positions are."""
    inputs: torch.Tensor
    targets: torch.Tensor
    distance: torch.Tensor


def pair_dataset(n: int, length: int = 16, seed: int = 0) -> PairData:
    """Random bit strings with two marked positions at a random distance 1..length-1; are the marked bits equal?"""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(2, (n, length), generator=g)                       # (n, L)
    distance = torch.randint(1, length, (n,), generator=g)                  # (n,)
    i = (torch.rand(n, generator=g) * (length - distance)).long()           # first marked position
    j = i + distance
    same = torch.rand(n, generator=g) < 0.5                                 # balanced labels
    rows = torch.arange(n)
    bits[rows, j] = torch.where(same, bits[rows, i], 1 - bits[rows, i])
    tokens = bits.clone()
    tokens[rows, i] += 2
    tokens[rows, j] += 2                                                    # marked: 2 or 3
    return PairData(tokens, same.long(), distance)


class PairClassifier(TinyTransformer):
    """``TinyTransformer`` that answers once per sequence, from the output of the first marked token.

    ``window=None``: global self-attention; an integer: ``LocalSelfAttention`` with the *same* initial
    weights, so the two models differ only in what each token may see. The answer is read from one token
    (not from a mean over tokens): with ``depth`` layers of a window of ``window`` tokens either side, that
    token's output depends on the input tokens at most ``depth * window`` positions away, and on nothing else.
    """

    def __init__(self, length: int = 16, dim: int = 32, depth: int = 1, num_heads: int = 2,
                 window: Optional[int] = None):
        super().__init__(vocab=4, max_len=length, dim=dim, depth=depth, num_heads=num_heads)
        self.head = nn.Linear(dim, 2)
        self.window = window
        if window is not None:
            for block in self.blocks:
                local = LocalSelfAttention(dim, num_heads, window)
                local.load_state_dict(block.attn.state_dict())
                block.attn = local

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self._embed(tokens)                    # (B, L, D)
        for block in self.blocks:
            h = block(h)
        first = (tokens >= 2).int().argmax(dim=1)  # (B,): the first marked position
        return self.head(self.norm(h)[torch.arange(len(tokens)), first])   # (B, 2)


@dataclass(frozen=True)
class PairDemo(DemoConfig):
    """The experiment of §6: is the bit at the other marked position equal to the first marked bit?"""
    kind: ClassVar[str] = "ch01_pairs"
    window: Optional[int] = None     # None: global self-attention; w: each layer sees w tokens either side
    length: int = 16                 # tokens per sequence
    dim: int = 32                    # token width D
    depth: int = 1                   # transformer blocks
    num_heads: int = 2               # heads h
    n_train: int = 4000
    n_val: int = 4000                # many held-out sequences: about 270 per distance
    epochs: int = 4

    def build(self) -> nn.Module:
        return PairClassifier(self.length, self.dim, self.depth, self.num_heads, self.window)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return pair_dataset(n, self.length, seed=self._split_seed(split))

    @property
    def reach(self) -> Optional[int]:
        """The farthest other mark the answering token can hear from: ``depth * window`` (None: global)."""
        return None if self.window is None else self.depth * self.window


#: The demos of §6: reversal (toolkit), the class-token ViT, the two pair models over three seeds.
