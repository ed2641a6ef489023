"""Chapter 06 · BAM: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch06_bam as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register, t
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch06.explorer.dilation": {"en": "dilation d", "zh": "空洞率 d"},
    "ch06.explorer.fusion": {"en": "fusion", "zh": "融合方式"},
    "ch06.explorer.fusion.sum": {"en": "sum (paper)", "zh": "相加（论文）"},
    "ch06.explorer.fusion.product": {"en": "product (official code)", "zh": "相乘（官方代码）"},
})


# ---------------------------------------------------------------- the explorer

def _fusion(value) -> str:
    return t(f"ch06.explorer.fusion.{value}")


def _bam(s) -> nn.Module:
    return MECHANISMS["bam"].cls(s["channels"], reduction=s["reduction"], dilation=s["dilation"],
                                 fusion=s["fusion"])


def _plot_bam(module, x, s):
    a = module.attention_map(x)                                             # (G, C, H, W)
    return viewer.spatial_gallery(x.mean(1, keepdim=True), a.mean(1),       # (G, H, W): mean over channels
                                  labels=input_labels(len(x)))


EXPLORER = register_explorer(ExplorerSpec(
    "bam", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (16,)),
        Control("dilation", "ch06.explorer.dilation", (1, 2, 4), 4, (1, 2, 4)),
        Control("fusion", "ch06.explorer.fusion", ("sum", "product"), "sum", ("sum", "product"), dropdown=True,
                fmt=_fusion)),
    build=_bam, plot=_plot_bam))
