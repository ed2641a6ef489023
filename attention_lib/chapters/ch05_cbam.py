"""Chapter 05 · CBAM: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch05_cbam as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer, yes_no

register({
    "ch05.explorer.spatial_kernel": {"en": "spatial kernel", "zh": "空间卷积核"},
    "ch05.explorer.spatial_norm": {"en": "spatial BatchNorm", "zh": "空间分支的批量归一化"},
})


# ---------------------------------------------------------------- the explorer

def _cbam(s) -> nn.Module:
    return MECHANISMS["cbam"].cls(s["channels"], reduction=s["reduction"], spatial_kernel=s["spatial_kernel"],
                                  spatial_norm=s["spatial_norm"])


def _plot_cbam(module, x, s):
    a = module.attention_map(x)
    pictures = x.mean(1, keepdim=True)                                      # (G, 1, H, W)
    labels = input_labels(len(x))
    return (viewer.channel_gallery(pictures, a.channel[:, :, 0, 0], labels=labels),   # (G, C)
            viewer.spatial_gallery(pictures, a.spatial[:, 0], labels=labels))         # (G, H, W)


EXPLORER = register_explorer(ExplorerSpec(
    "cbam", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("spatial_kernel", "ch05.explorer.spatial_kernel", (3, 5, 7), 7, (3, 7)),
        Control("spatial_norm", "ch05.explorer.spatial_norm", (True, False), True, (True,), dropdown=True,
                fmt=yes_no)),
    build=_cbam, plot=_plot_cbam))
