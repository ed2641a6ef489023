"""Chapter 02's ablation demo of §6 (re-exported by ``ch02_external_attention``), in a module of its own so that
editing the chapter's prose checks does not retrain it (the demo cache's code digest covers the module that
defines a demo).

- :class:`SlotSoftmaxExternalAttention`: External Attention with one softmax over the slots per token.
- :class:`SlotSoftmaxDemo`: the §6 model with that mixer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .._checks import check_tokens
from ..external_attention import ExternalAttention
from ..toolkit.data import SHAPE_CLASSES
from ..toolkit.models import TinyTokenNet
from ..toolkit.train import ShapesTokens


class SlotSoftmaxExternalAttention(ExternalAttention):
    """The ablation of §6: one softmax over the S slots per token, as self-attention normalises its rows.

    Without the softmax over tokens, a token's weights depend on that token alone: the module is a
    per-token two-layer network and mixes nothing.
    """

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        check_tokens(x, self.dim, type(self).__name__)
        return self.M_k(x).softmax(dim=-1)          # (B, N, S): each row on its own


@dataclass(frozen=True)
class SlotSoftmaxDemo(ShapesTokens):
    """The §6 model with :class:`SlotSoftmaxExternalAttention` as its token mixer."""
    kind: ClassVar[str] = "ch02_slot_softmax"

    def build(self) -> nn.Module:
        mixer = SlotSoftmaxExternalAttention(self.dim, memory_size=self.memory_size)
        return TinyTokenNet(mixer, num_classes=len(SHAPE_CLASSES), dim=self.dim, image_size=self.size)
