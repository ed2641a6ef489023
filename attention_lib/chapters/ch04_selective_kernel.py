"""Chapter 04 · Selective Kernel: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch04_selective_kernel as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, input_labels, map_controls, register_explorer, yes_no

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
    weights = module.attention_map(x)[:, :, :, 0, 0]                       # (G, K, C)
    return viewer.channel_gallery(x.mean(1, keepdim=True), weights, labels=input_labels(len(x)),
                                  branch_labels=[f"{k}×{k}" for k in module.kernel_sizes])


EXPLORER = register_explorer(ExplorerSpec(
    "selective_kernel", "feature_map",
    # Up to 64 channels and 16 x 16: true 7 x 7 branches on 128 channels at 32 x 32 cost 2.8 GFLOPs, too slow
    # to redraw at once (an explorer answers within 100 ms; benchmarks/run.py --explorers).
    map_controls(static_w=(8,), channels=(16, 32, 64), sizes=(4, 8, 16)) + (
        Control("kernel_sizes", "ch04.explorer.kernel_sizes", ((3, 5), (3, 5, 7), (1, 3, 5, 7)), (3, 5),
                ((3, 5), (3, 5, 7)), dropdown=True, fmt=_kernels),
        Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16)),
        Control("dilated", "ch04.explorer.dilated", (True, False), True, (True, False), dropdown=True,
                fmt=yes_no)),
    build=_selective_kernel, plot=_plot_selective_kernel))
