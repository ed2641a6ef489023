"""Chapter 05 · CBAM: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch05_cbam as ch``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viz
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, map_controls, register_explorer, yes_no

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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained",
                                   gridspec_kw=dict(width_ratios=(3, 2)))
    viz.plot_channel_gate(a.channel[0].flatten(), ax=ax1)                  # (C,)
    viz.plot_spatial_map(a.spatial[0, 0], ax=ax2)                           # (H, W)
    return fig


EXPLORER = register_explorer(ExplorerSpec(
    "cbam", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("spatial_kernel", "ch05.explorer.spatial_kernel", (3, 5, 7), 7, (3, 7)),
        Control("spatial_norm", "ch05.explorer.spatial_norm", (True, False), True, (True,), dropdown=True,
                fmt=yes_no)),
    build=_cbam, plot=_plot_cbam))
