"""Chapter 08's controls of §5 (re-exported by ``ch08_comparison``), in a module of their own so that
editing the chapter's prose checks and strings does not retrain them (the demo cache's code digest covers the
module that defines a demo).

- :class:`BranchesCNN`: the tiny CNN with SK's two branches averaged with fixed, equal weights.
- :class:`MLPHeadCNN`: the tiny CNN without attention, read out by a two-layer MLP head instead of one linear
  layer: the non-linear head of about an SE block's size that a channel gate right before the pooling amounts to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..toolkit.models import TinyCNN
from ..toolkit.train import ShapesCNN
from .ch04_selective_kernel import BranchMean


@dataclass(frozen=True)
class BranchesCNN(ShapesCNN):
    """§5's capacity control: the tiny CNN with SK's two branches averaged with fixed, equal weights (chapter 4's
    ``BranchMean``): SK's convolutions without its selection."""
    kind: ClassVar[str] = "ch08_sk_branches"

    def build(self) -> torch.nn.Module:
        model = TinyCNN(None, num_classes=4, width=self.width, reduction=self.reduction)
        model.attention = BranchMean(2 * self.width)                # kernels 3 and 5, as SK's default
        return model


@dataclass(frozen=True)
class MLPHeadCNN(ShapesCNN):
    """§5's control for the channel gates: no attention block, and a two-layer MLP head (pool, linear to
    ``head_hidden``, ReLU, linear). Right before the global pooling a channel gate only rescales the pooled vector,
    GAP(s ⊙ X) = s ⊙ GAP(X), so SE and ECA act there as a small non-linear head; this one is plain, with 16 hidden
    units: 464 parameters more than the linear head, next to SE's 552 at 32 channels and r = 4."""
    kind: ClassVar[str] = "ch08_mlp_head"
    head_hidden: int = 16

    def build(self) -> torch.nn.Module:
        return TinyCNN(None, num_classes=4, width=self.width, reduction=self.reduction, head_hidden=self.head_hidden)
