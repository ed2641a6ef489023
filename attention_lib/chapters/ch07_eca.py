"""Chapter 07 · ECA: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch07_eca as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register, t
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer

register({
    "ch07.explorer.auto": {"en": "ψ(C)", "zh": "ψ(C) 自适应"},
})


# ---------------------------------------------------------------- the explorer

def _kernel_size(value) -> str:
    return t("ch07.explorer.auto") if value is None else str(value)


def _eca(s) -> nn.Module:
    return MECHANISMS["eca"].cls(s["channels"], kernel_size=s["kernel_size"])


def _plot_eca(module, x, s):
    return viewer.channel_gallery(x.mean(1, keepdim=True), module.attention_map(x)[:, :, 0, 0],
                                  labels=input_labels(len(x)))                   # (G, C)


EXPLORER = register_explorer(ExplorerSpec(
    "eca", "feature_map",
    map_controls(static_w=(8,), channels=(16, 32, 64, 128, 256), static_channels=(16, 64, 256))
    + (Control("kernel_size", "widgets.kernel_size", (None, 1, 3, 5, 7, 9), None, (None, 1, 9),
               dropdown=True, fmt=_kernel_size),),
    build=_eca, plot=_plot_eca))
