"""Chapter 02's figures, and the measurements they draw: one named function per figure (the notebook calls
them through ``ch02_external_attention``, which re-exports them). Kept apart only to keep each file readable
in one sitting; their strings live with the chapter's (``ch02.*``).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.cm import ScalarMappable

from ..external_attention import EPS
from ..toolkit import viz
from ..toolkit.data import box_masks
from ..toolkit.figure_output import PAGE_WIDTH_IN
from ..toolkit.i18n import t


def plot_experiment(summary: Mapping[str, dict]):
    """Left: the final validation accuracy of each mixer (bars: mean, error bars: sample sd, dots: seeds).
    Below: the validation accuracy after every epoch, one line per run, and chance (the legend sits under the
    panels, where it hides no curve)."""
    names = list(summary)
    labels = [t(f"ch02.variant.{n}") for n in names]
    x = np.arange(len(names))
    fig, (left, right) = viz.page_grid(2, (6.2, 3.2), max_cols=1, extra=(0.4, 0.8))   # one above the other
    for i, n in enumerate(names):
        v = np.asarray(summary[n]["acc"], dtype=float)
        left.bar(x[i], v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0.0, capsize=5, color=f"C{i}", alpha=0.75)
        left.plot(np.full(len(v), x[i]) + np.linspace(-0.15, 0.15, len(v)), v, "k.", markersize=7)
        for k, curve in enumerate(summary[n]["curves"]):
            epochs = np.arange(1, len(curve) + 1)
            right.plot(epochs, curve, color=f"C{i}", alpha=0.8, label=labels[i] if k == 0 else None)
    for ax in (left, right):
        ax.axhline(0.25, color="gray", ls="--", lw=1, label=t("ch02.experiment.chance") if ax is right else None)
        ax.set_ylim(0, 1)
        ax.grid(True, axis="y", alpha=0.3)
    left.set_xticks(x, [viz.wrap_label(label, 24) for label in labels])      # flat, about 2 inches a bar
    left.set_ylabel(t("ch02.experiment.acc"))
    left.set_title(t("ch02.experiment.acc_title"))
    right.set_xlabel(t("ch02.experiment.epoch"))
    right.set_ylabel(t("ch02.experiment.acc"))
    right.set_title(t("ch02.experiment.curve_title"))
    handles, names_ = right.get_legend_handles_labels()
    fig.legend(handles, names_, loc="outside lower center", ncols=2)   # below the panels: it hides no curve
    fig.suptitle(t("ch02.experiment.title"), wrap=True)
    return fig


# ---------------------------------------------------------------- what the maps show

@torch.no_grad()
def slot_target_share(attn: torch.Tensor, boxes: torch.Tensor, grid: int, image_size: int):
    """For each image and slot, the share of the slot's column of ``attn`` that lies on the target's tokens.

    ``attn``: ``(G, N, S)`` with ``N = grid²`` tokens in row-major order; ``boxes``: ``(G, 4)`` pixel boxes.
    Returns ``(share (G, S), chance (G,))``; chance is the fraction of tokens that overlap the target.
    """
    if attn.dim() != 3 or attn.shape[1] != grid * grid or len(boxes) != len(attn):
        raise ValueError(f"slot_target_share: expected attn (G, {grid * grid}, S) and boxes (G, 4), "
                         f"got {tuple(attn.shape)} and {tuple(boxes.shape)}")
    inside = box_masks(boxes, grid, grid, image_size).flatten(1).to(attn.dtype)    # (G, N)
    column = attn / attn.sum(1, keepdim=True).clamp_min(1e-12)                     # (G, N, S): columns sum to 1
    return (column * inside[:, :, None]).sum(1), inside.mean(1)


def plot_slot_shares(trained: torch.Tensor, random: torch.Tensor, chance: float, n_images: int):
    """Bars per slot: the share of its weight on the target, trained next to random; the chance level."""
    trained, random = np.asarray(trained, dtype=float), np.asarray(random, dtype=float)
    x = np.arange(len(trained))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.0), layout="constrained")
    ax.bar(x - 0.2, trained, 0.4, label=t("ch02.share.trained"), color="tab:orange")
    ax.bar(x + 0.2, random, 0.4, label=t("ch02.share.random"), color="tab:gray")
    ax.axhline(chance, color="k", ls="--", lw=1, label=t("ch02.share.chance", p=chance))
    viz.fit_ticks(ax, list(x), [str(i) for i in x], length_in=PAGE_WIDTH_IN - 1.0)   # every k-th slot
    ax.set_xlim(-0.7, len(x) - 0.3)
    ax.set_ylim(0, 1)
    ax.set_xlabel(t("ch02.share.slot"))
    ax.set_ylabel(t("ch02.share.y"))
    ax.set_title(t("ch02.share.title", n=n_images))
    ax.legend(loc="upper left", ncols=2)
    return fig


def _heat(attn_column: torch.Tensor, grid: int, size: int) -> np.ndarray:
    m = attn_column.reshape(1, 1, grid, grid).float()
    return F.interpolate(m, size=(size, size), mode="nearest")[0, 0].numpy()


def plot_slot_gallery(images: torch.Tensor, attn: torch.Tensor, slots: Sequence[int], grid: int,
                      shares: Optional[Sequence[float]] = None, title: Optional[str] = None):
    """Each row one memory slot, each column one image: the slot's column of the map over the image.

    ``images`` ``(G, 3, H, W)`` in [0, 1]; ``attn`` ``(G, N, S)`` the model's real map on them, ``N = grid²``.
    With a single image, the slots are laid out side by side. Each row has its own colour bar.
    """
    images, attn = images.detach().cpu().float(), attn.detach().cpu().float()
    if images.dim() != 4 or attn.dim() != 3 or len(images) != len(attn) or attn.shape[1] != grid * grid:
        raise ValueError(f"plot_slot_gallery: expected images (G, 3, H, W) and attn (G, {grid * grid}, S), "
                         f"got {tuple(images.shape)} and {tuple(attn.shape)}")
    G, size = len(images), images.shape[-1]
    one = G == 1
    rows, cols = (1, len(slots)) if one else (len(slots), G)
    side = min(1.9, (PAGE_WIDTH_IN - 1.8) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(min(PAGE_WIDTH_IN, side * cols + 1.8), side * rows + 1.0),
                             squeeze=False, layout="constrained")
    for r in range(rows):
        for c in range(cols):
            j, g = (slots[c], 0) if one else (slots[r], c)
            ax = axes[r, c]
            vmax = attn[:, :, j].max().item() if not one else attn[0, :, j].max().item()
            ax.imshow(images[g].permute(1, 2, 0).numpy())
            im = ax.imshow(_heat(attn[g, :, j], grid, size), cmap="inferno", alpha=0.6, vmin=0, vmax=vmax)
            solid = ScalarMappable(norm=im.norm, cmap=im.get_cmap())     # the colour bar at full opacity
            ax.set_xticks([]), ax.set_yticks([])
            label = t("ch02.gallery.slot", j=j) + ("" if shares is None else f"\n({shares[j]:.0%})")
            if one:
                ax.set_title(label, fontsize="medium")
            elif c == 0:
                ax.set_ylabel(label)
            if r == rows - 1 and not one:
                ax.set_xlabel(str(g) if cols > 5 else f"{t('ch02.gallery.image')} {g}")
        if not one:
            fig.colorbar(solid, ax=axes[r, :], shrink=0.9, label=t("ch02.gallery.weight") if r == rows // 2 else None)
    if one:
        fig.colorbar(solid, ax=axes[0, :], shrink=0.9, label=t("ch02.gallery.weight"))
    fig.suptitle(title or t("ch02.gallery.title"), wrap=True)
    return fig


def normalisations(logits: torch.Tensor, eps: float = EPS) -> dict:
    """The three ways to normalise ``logits`` ``(..., N, S)``: over the slots, over the tokens, and both."""
    over_tokens = logits.softmax(dim=-2)
    return {"slots": logits.softmax(dim=-1), "tokens": over_tokens,
            "double": over_tokens / (eps + over_tokens.sum(dim=-1, keepdim=True))}


def plot_normalisations(logits: torch.Tensor, index: int = 0):
    """Three heat maps (tokens × slots) of the same trained logits ``(N, S)``: each way to normalise them."""
    logits = logits.detach().cpu().float()
    if logits.dim() != 2:
        raise ValueError(f"plot_normalisations: expected logits (N, S), got {tuple(logits.shape)}")
    maps = normalisations(logits)
    fig, axes = viz.page_grid(3, (3.2, 3.2), max_cols=2, extra=(0.2, 0.6))
    for ax, key in zip(axes, ("slots", "tokens", "double")):
        viz.plot_memory_map(maps[key], ax=ax, title=t(f"ch02.norm.{key}"))
        ax.title.set_fontsize("medium")
    fig.suptitle(t("ch02.norm.title", i=index))
    return fig


def plot_map_sizes(self_map: torch.Tensor, external_map: torch.Tensor):
    """Self-attention's ``(N, N)`` map next to External Attention's ``(N, S)`` map, at the same cell size."""
    a, b = self_map.detach().cpu().float(), external_map.detach().cpu().float()
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != a.shape[1] or b.shape[0] != a.shape[0]:
        raise ValueError(f"plot_map_sizes: expected (N, N) and (N, S), got {tuple(a.shape)} and {tuple(b.shape)}")
    n, s = b.shape
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.2), layout="constrained",
                             gridspec_kw=dict(width_ratios=[n, max(s, n // 3)]))
    for ax, m, title, xlabel, ylabel in ((axes[0], a, t("ch02.sizes.self", n=n), "viz.key", "viz.query"),
                                         (axes[1], b, t("ch02.sizes.external", n=n, s=s), "viz.memory.slot",
                                          "viz.token")):
        im = ax.imshow(m.numpy(), cmap="viridis", vmin=0, interpolation="nearest", aspect="equal")
        ax.set_title(title, fontsize="medium", wrap=True)
        ax.set_xlabel(t(xlabel))
        ax.set_ylabel(t(ylabel))
        # below the map, not beside it: a bar beside it would sit where the wrapped title runs
        fig.colorbar(im, ax=ax, shrink=0.7, location="bottom", label=t("viz.weight"))
    fig.suptitle(t("ch02.sizes.title"))
    return fig
