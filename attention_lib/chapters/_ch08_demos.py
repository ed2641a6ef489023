"""Chapter 08's capacity control of §5 (re-exported by ``ch08_comparison``), in a module of its own so that
editing the chapter's prose checks and strings does not retrain it (the demo cache's code digest covers the
module that defines a demo).

- :class:`BranchesCNN`: the tiny CNN with SK's two branches averaged with fixed, equal weights.
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
