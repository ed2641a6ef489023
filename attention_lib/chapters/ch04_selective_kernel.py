"""Chapter 04 · Selective Kernel: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch04_selective_kernel as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viz
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, map_controls, register_explorer, yes_no

register({
    "ch04.explorer.kernel_sizes": {"en": "branch kernels", "zh": "分支卷积核"},
    "ch04.explorer.dilated": {"en": "dilated 3×3 for k > 3", "zh": "k > 3 时改用 3×3 空洞卷积"},
})


# ---------------------------------------------------------------- the explorer

def _kernels(value) -> str:
    return ", ".join(str(k) for k in value)


def _selective_kernel(s) -> nn.Module:
    return MECHANISMS["selective_kernel"].cls(s["channels"], kernel_sizes=s["kernel_sizes"],
                                              reduction=s["reduction"], dilated=s["dilated"])


def _plot_selective_kernel(module, x, s):
    weights = module.attention_map(x)[0, :, :, 0, 0]                       # (K, C)
    return viz.plot_sk_weights(weights, kernel_sizes=module.kernel_sizes)


EXPLORER = register_explorer(ExplorerSpec(
    "selective_kernel", "feature_map",
    map_controls(static_w=(8,)) + (
        Control("kernel_sizes", "ch04.explorer.kernel_sizes", ((3, 5), (3, 5, 7), (1, 3, 5, 7)), (3, 5),
                ((3, 5), (3, 5, 7)), dropdown=True, fmt=_kernels),
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("dilated", "ch04.explorer.dilated", (True, False), True, (True, False), dropdown=True,
                fmt=yes_no)),
    build=_selective_kernel, plot=_plot_selective_kernel))
