"""Chapter 01 · Self-attention, multi-head attention and the patch embedding: what this chapter alone needs.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch01_self_attention as ch``.
"""
from __future__ import annotations

from torch import nn

from ..patch_embedding import PatchEmbedding
from ..registry import MECHANISMS
from ..toolkit import viewer
from ..toolkit.i18n import register
from ..toolkit.widgets import Control, ExplorerSpec, register_explorer, token_controls

register({
    "ch01.explorer.temperature": {"en": "softmax temperature τ", "zh": "softmax 温度 τ"},
    "ch01.explorer.temperature_note": {"en": "τ only rescales the scores before the softmax in the plot: "
                                             "shapes and costs do not change.",
                                       "zh": "τ 只在绘图时缩放 softmax 之前的分数，形状和计算量不变。"},
    "ch01.explorer.image_size": {"en": "image size H = W", "zh": "图像尺寸 H = W"},
    "ch01.explorer.patch_size": {"en": "patch size P", "zh": "图像块大小 P"},
})


# ---------------------------------------------------------------- the explorers

def _temperature(value) -> str:
    return f"{value:g}"


def _self_attention(s) -> nn.Module:
    return MECHANISMS["self_attention"].cls(s["dim"], num_heads=s["heads"])


def _plot_self_attention(module, x, s):
    attn = module.attention_map(x[:1])[0]                           # (h, N, N)
    tau = float(s.get("temperature", 1.0))
    if tau != 1.0:
        # softmax(z / τ) = softmax(log softmax(z) / τ): the row constant cancels.
        attn = (attn.clamp_min(1e-30).log() / tau).softmax(dim=-1)  # (h, N, N)
    return viewer.query_map(attn)


SELF_ATTENTION_EXPLORER = register_explorer(ExplorerSpec(
    "self_attention", "tokens",
    # Four heads to start (the registry builds eight): a readable grid and a quick frame.
    token_controls() + (Control("heads", "widgets.heads", (1, 2, 4, 8), 4, (1, 4)),
                        Control("temperature", "ch01.explorer.temperature", (0.25, 0.5, 1.0, 2.0, 4.0), 1.0,
                                (0.5, 1.0, 2.0), fmt=_temperature, picture_only=True)),
    build=_self_attention, plot=_plot_self_attention, notes=("ch01.explorer.temperature_note",)))


def _patch_embedding(s) -> nn.Module:
    return PatchEmbedding(s["patch_size"], in_channels=3, dim=s["dim"])


def _plot_patch_embedding(module, x, s):
    side = s["image_size"] // s["patch_size"]
    return viewer.patch_tokens(x[0], module(x[:1])[0], grid=(side, side))     # (N, D) tokens


PATCH_EMBEDDING_EXPLORER = register_explorer(ExplorerSpec(
    "patch_embedding", "image",
    (Control("image_size", "ch01.explorer.image_size", (32, 48, 64, 96), 32, (32, 64)),
     Control("patch_size", "ch01.explorer.patch_size", (4, 8, 16), 8, (4, 8, 16)),
     Control("dim", "widgets.dim", (16, 32, 64, 128), 32, (32, 128))),
    build=_patch_embedding, plot=_plot_patch_embedding,
    title={"en": "patch embedding", "zh": "图像块嵌入"}))
