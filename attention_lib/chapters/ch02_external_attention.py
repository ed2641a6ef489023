"""Chapter 02 · External Attention and its multi-head form: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch02_external_attention as ch``.
"""
from __future__ import annotations

from torch import nn

from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls

register({
    "ch02.explorer.memory_size": {"en": "memory slots S", "zh": "槽位数 S"},
    "ch02.explorer.coef": {"en": "expansion coef", "zh": "扩展系数 coef"},
})


# ---------------------------------------------------------------- the explorers

def _external(s) -> nn.Module:
    return MECHANISMS["external_attention"].cls(s["dim"], memory_size=s["memory_size"])


def _plot_external(module, x, s):
    return viewer.slot_map(module.attention_map(x[:1])[0])                  # (N, S)


EXTERNAL_EXPLORER = register_explorer(ExplorerSpec(
    "external_attention", "tokens",
    token_controls() + (Control("memory_size", "ch02.explorer.memory_size", (8, 16, 32, 64, 128), 64,
                                (8, 16, 32, 64)),),
    build=_external, plot=_plot_external))


def _multi_head_external(s) -> nn.Module:
    return MECHANISMS["multi_head_external_attention"].cls(s["dim"], num_heads=s["heads"],
                                                           memory_size=s["memory_size"], coef=s["coef"])


def _plot_multi_head_external(module, x, s):
    return viewer.slot_map(module.attention_map(x[:1])[0])                  # (heads, N, S)


MULTI_HEAD_EXTERNAL_EXPLORER = register_explorer(ExplorerSpec(
    "multi_head_external_attention", "tokens",
    token_controls() + (Control("heads", "widgets.heads", (1, 2, 4, 8), 8, (2, 8)),
                        Control("memory_size", "ch02.explorer.memory_size", (8, 16, 32, 64), 64, (16, 64)),
                        Control("coef", "ch02.explorer.coef", (1, 2, 4), 4, (1, 4))),
    build=_multi_head_external, plot=_plot_multi_head_external))
