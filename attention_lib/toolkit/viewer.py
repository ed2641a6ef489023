"""Map viewers you can point at: where does *this* query, slot, image or channel look?

Four viewers, one engine, for every attention map of the book::

    al.viewer.query_map(weights, image=photo, grid=(8, 8), extra_tokens=1)   # self-attention
    al.viewer.slot_map(weights, tokens=words)                                # External Attention
    al.viewer.spatial_gallery(images, maps, boxes=boxes)                     # CBAM, BAM
    al.viewer.channel_gallery(images, gates)                                 # SE, ECA, SK

Each returns a :class:`Viewer`: HTML with the weights embedded (quantised to 8 bits per value, with
each row's own range, so a row is exact to within 1/510 of its spread) and one small inline script
that draws them on canvases. The reader points at an element (every such element carries
``data-query="<index>"``) and the map of that element appears at once, with no kernel and no network:
the same object works in a live notebook (checked in JupyterLab 4, where outputs run their scripts
in a trusted notebook, that is, after the cell ran; Colab and classic Jupyter run the inline scripts of
HTML outputs as well) and on the static website. The text is in the current language of
:mod:`attention_lib.toolkit.i18n`. :func:`read_html` and :func:`decode` read the weights back from
the HTML (for tests that compare them with a module's ``attention_map``).
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from .i18n import register, t

__all__ = ["Viewer", "query_map", "slot_map", "spatial_gallery", "channel_gallery", "read_html", "decode",
           "patch_tokens", "stack", "figure", "PAGE_BUDGET_BYTES", "MAX_IMAGE_SIDE"]

PAGE_BUDGET_BYTES = 1_500_000   #: all viewers of one page together stay under this many bytes
MAX_IMAGE_SIDE = 96             #: pictures are embedded at most this many pixels on their long side
JPEG_QUALITY = 90
CSS_CLASS = "attention-viewer"

register({
    "viewer.query_map.title": {"en": "Self-attention: where each query looks",
                               "zh": "自注意力：每个查询看向哪里"},
    "viewer.slot_map.title": {"en": "External Attention: tokens and memory slots",
                              "zh": "外部注意力：词元与槽位"},
    "viewer.spatial.title": {"en": "Spatial attention over each image", "zh": "每张图像上的空间注意力"},
    "viewer.channel.title": {"en": "Channel weights across the images", "zh": "各图像的通道权重"},
    "viewer.hint.query_image": {"en": "Point at a patch (a query), or move with the arrow keys, to see where it looks.",
                                "zh": "将指针移到一个图像块（查询）上，或用方向键移动，查看它在看哪里。"},
    "viewer.hint.query_tokens": {"en": "Point at a token (a query) or a row of the matrix, or move with the arrow keys.",
                                 "zh": "将指针移到一个词元（查询）或矩阵的一行上，也可以用方向键移动。"},
    "viewer.hint.slot": {"en": "Point at a memory slot to see the positions it picks; at a position to "
                               "see its weights over the slots (or move with the arrow keys).",
                         "zh": "将指针移到一个槽位上，查看它选中的位置；移到一个位置上，查看它在各槽位上的权重（也可以用方向键移动）。"},
    "viewer.hint.spatial": {"en": "Point at an image, or move with the arrow keys, to see its map.",
                            "zh": "将指针移到一张图像上，或用方向键移动，查看它的注意力图。"},
    "viewer.hint.channel": {"en": "Point at a channel, or move with the arrow keys, to see its weight in every image.",
                            "zh": "将指针移到一个通道上，或用方向键移动，查看它在每张图像中的权重。"},
    "viewer.patch_tokens.title": {"en": "Patch embedding: each patch becomes one token",
                                  "zh": "图像块嵌入：每个图像块变成一个词元"},
    "viewer.hint.patch": {"en": "Point at a patch, or move with the arrow keys, to see the token vector it becomes.",
                          "zh": "将指针移到一个图像块上，或用方向键移动，查看它变成的词元向量。"},
    "viewer.group": {"en": "{what}: arrow keys move, Enter selects", "zh": "{what}：方向键移动，回车键选择"},
    "viewer.patch_group": {"en": "patches", "zh": "图像块"},
    "viewer.class_token": {"en": "class token", "zh": "类别词元"},
    "viewer.cell": {"en": "row {r}, column {c}", "zh": "第 {r} 行第 {c} 列"},
    "viewer.box": {"en": "the target's box is outlined", "zh": "图中框出了目标框"},
    "viewer.alt_map": {"en": "{what}. Largest: {top}", "zh": "{what}。最大的几项：{top}"},
    "viewer.alt_heads": {"en": "weights of every head for {what}, one row per head", "zh": "{what} 在每个头上的权重，每行一个头"},
    "viewer.alt_values": {"en": "{what} in each image: {values}", "zh": "{what} 在各图像中的值：{values}"},
    "viewer.alt_vector": {"en": "token vector of {D} values from {lo} to {hi}. Largest: {top}",
                          "zh": "含 {D} 个数的词元向量，取值从 {lo} 到 {hi}。最大的几项：{top}"},
    "viewer.alt_patches": {"en": "the picture, cut into {gh} × {gw} patches", "zh": "切成 {gh} × {gw} 个图像块的图片"},
    "viewer.dimension": {"en": "dimension", "zh": "维度"},
    "viewer.value": {"en": "value", "zh": "数值"},
    "viewer.mean": {"en": "mean of heads", "zh": "各头平均"},
    "viewer.head": {"en": "head {i}", "zh": "头 {i}"},
    "viewer.heads": {"en": "heads", "zh": "注意力头"},
    "viewer.query": {"en": "query", "zh": "查询"},
    "viewer.query_token": {"en": "query token", "zh": "查询词元"},
    "viewer.key_token": {"en": "key token", "zh": "键词元"},
    "viewer.patch": {"en": "patch (row {r}, column {c})", "zh": "图像块（第 {r} 行，第 {c} 列）"},
    "viewer.token": {"en": "token", "zh": "词元"},
    "viewer.token_i": {"en": "token {i}", "zh": "词元 {i}"},
    "viewer.extra": {"en": "other tokens", "zh": "其他词元"},
    "viewer.weight": {"en": "attention weight", "zh": "注意力权重"},
    "viewer.slot": {"en": "memory slot", "zh": "槽位"},
    "viewer.slot_i": {"en": "slot {i}", "zh": "槽位 {i}"},
    "viewer.slot_weights": {"en": "weights of {what} over the memory slots", "zh": "{what} 在各槽位上的权重"},
    "viewer.slot_column": {"en": "what {what} picks", "zh": "{what} 选中的位置"},
    "viewer.image": {"en": "image", "zh": "图像"},
    "viewer.image_i": {"en": "image {i}", "zh": "图像 {i}"},
    "viewer.map_only": {"en": "map alone", "zh": "仅注意力图"},
    "viewer.spatial_value": {"en": "spatial weight", "zh": "空间权重"},
    "viewer.channel": {"en": "channel", "zh": "通道"},
    "viewer.channel_i": {"en": "channel {i}", "zh": "通道 {i}"},
    "viewer.gate": {"en": "gate value", "zh": "门控值"},
    "viewer.branch": {"en": "branch", "zh": "分支"},
    "viewer.branch_weight": {"en": "branch weight", "zh": "分支权重"},
    "viewer.range": {"en": "from {lo} to {hi}", "zh": "从 {lo} 到 {hi}"},
    "viewer.max": {"en": "largest weight {v}", "zh": "最大权重 {v}"},
    "viewer.needs_js": {"en": "Interactive viewer: it needs JavaScript (in JupyterLab, run the cell or trust "
                              "the notebook).",
                        "zh": "交互式查看器需要 JavaScript（在 JupyterLab 中请运行该代码单元，或信任该 Jupyter 笔记本）。"},
})


# --------------------------------------------------------------------------------------------
# Checks and packing
# --------------------------------------------------------------------------------------------

def _tensor(x: Any, name: str, expected: str) -> torch.Tensor:
    """``x`` as a float32 CPU tensor (any device, any float dtype, or an array)."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name}: expected a tensor of shape {expected}, got {type(x).__name__}") from None
    x = x.detach().to("cpu", torch.float32)
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name}: expected finite values in a tensor of shape {expected}, got NaN or inf")
    return x


def _shape_text(x: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in x.shape) + ")"


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.contiguous().numpy().tobytes()).decode("ascii")


def _pack(w: torch.Tensor) -> dict:
    """Rows along the last axis, 8 bits per value, each row with its own float32 [lo, hi] range."""
    rows = w.reshape(-1, w.shape[-1]) if w.numel() else w.reshape(0, max(1, w.shape[-1]))
    lo = rows.amin(1) if rows.numel() else torch.zeros(0)
    hi = rows.amax(1) if rows.numel() else torch.zeros(0)
    span = (hi - lo).clamp_min(1e-30)
    q = ((rows - lo[:, None]) / span[:, None] * 255.0).round().clamp(0, 255).to(torch.uint8)
    return {"n": int(w.shape[-1]), "q": _b64(q), "lo": _b64(lo.to(torch.float32)), "hi": _b64(hi.to(torch.float32))}


def _unpack(p: dict) -> torch.Tensor:
    q = torch.frombuffer(bytearray(base64.b64decode(p["q"])), dtype=torch.uint8).float()
    lo = torch.frombuffer(bytearray(base64.b64decode(p["lo"])), dtype=torch.float32)
    hi = torch.frombuffer(bytearray(base64.b64decode(p["hi"])), dtype=torch.float32)
    rows = q.reshape(-1, p["n"])
    return lo[:, None] + rows * ((hi - lo) / 255.0)[:, None]


def _pack_images(images: Optional[torch.Tensor], g: int, name: str) -> Optional[dict]:
    """(G, 3 or 1, H, W) pictures in [0, 1] as JPEG data, at most MAX_IMAGE_SIDE on the long side."""
    if images is None:
        return None
    x = _tensor(images, name, "(G, 3, H, W)")
    if x.dim() == 3 and g == 1:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[0] != g:
        raise ValueError(f"{name}: expected {g} picture(s) of shape (3, H, W) or (1, H, W), "
                         f"i.e. ({g}, 3, H, W), got {_shape_text(x)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    lo, hi = float(x.amin()), float(x.amax())
    if lo < 0.0 or hi > 1.0:                     # not a [0, 1] picture (a feature map): stretch it
        x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    h, w = x.shape[2:]
    scale = MAX_IMAGE_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    px = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()  # (G, h, w, 3)
    return {"h": int(px.shape[1]), "w": int(px.shape[2]), "H": int(h), "W": int(w),
            "src": [_jpeg(p) for p in px]}


def _jpeg(pixels) -> str:
    """An (h, w, 3) uint8 array as a JPEG data URL (a tenth of the bytes of raw pixels)."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _gallery(w: torch.Tensor, base_dims: int, name: str, expected: str) -> torch.Tensor:
    """Adds the leading gallery axis G when absent: ``base_dims`` is the rank without it."""
    if w.dim() == base_dims:
        return w[None]
    if w.dim() != base_dims + 1:
        raise ValueError(f"{name}: expected weights of shape {expected}, got {_shape_text(w)}")
    return w


def _labels(labels: Optional[Sequence], n: int, name: str, what: str = "token labels (one per position)"):
    """``labels`` as n strings (None stays None)."""
    if labels is None:
        return None
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"{name}: expected {n} {what}, got {len(labels)}")
    return labels


def _grid(grid, n: int, name: str) -> list[int]:
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in grid)):
        raise ValueError(f"{name}: grid must be (gh, gw), two positive integers, got {grid!r}")
    if grid[0] * grid[1] != n:
        raise ValueError(f"{name}: grid {tuple(grid)} has {grid[0] * grid[1]} patches, but the weights have "
                         f"{n} patch positions")
    return [int(grid[0]), int(grid[1])]


# --------------------------------------------------------------------------------------------
# The viewer object
# --------------------------------------------------------------------------------------------

#: The engine's files, in the order they are joined: the core, one file per viewer kind, rendering.
ENGINE_FILES = ("core.js", "query_map.js", "slot_map.js", "galleries.js", "patch_tokens.js", "render.js")
ENGINE_VERSION = 2


def _minify(text: str) -> str:
    """Without comments and indentation (a third smaller)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _engine_body() -> str:
    folder = Path(__file__).with_name("viewer_js")
    return "\n".join(_minify((folder / name).read_text(encoding="utf-8")) for name in ENGINE_FILES)


def _wrapped(start: str) -> str:
    return ('(function(){"use strict";var VERSION=' + str(ENGINE_VERSION) + ',AV=window.__attentionViewer;'
            "if(!AV||AV.v<VERSION){\n" + _engine_body() + "\n}" + start + "})();")


@lru_cache(maxsize=1)
def _engine() -> str:
    """The script every viewer carries (it defines the engine once per window, then draws its viewer):
    viewer_js/*.js joined, without comments and indentation."""
    return _wrapped("AV.boot(document.currentScript);")


@lru_cache(maxsize=1)
def site_engine() -> str:
    """The engine as one file for a website that loads it once (deferred) and leaves out the copy in each
    viewer (the book's ``reader_site`` extension): it starts every viewer and explorer of the page."""
    return _wrapped('var go=function(){AV.start();};if(document.readyState==="loading")'
                    '{document.addEventListener("DOMContentLoaded",go);}else{go();}')


class Viewer:
    """One map viewer: ``kind`` and the JSON ``data`` its script draws; shows itself as HTML.

    ``html()`` (also ``_repr_html_``) gives the self-contained page fragment; ``nbytes`` its size.
    """

    def __init__(self, kind: str, data: dict, title: str, state_key: Optional[str] = None):
        self.kind, self.data, self.title = kind, data, title
        self.state_key = state_key or uuid.uuid4().hex[:10]

    def payload(self) -> dict:
        return {"v": 1, "kind": self.kind, "title": self.title, **self.data}

    def html(self) -> str:
        vid = f"av-{uuid.uuid4().hex[:10]}"
        payload = json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
        return (f'<div class="{CSS_CLASS}" id="{vid}" data-kind="{self.kind}" role="group" '
                f'aria-labelledby="{vid}-title" data-state-key="{html.escape(self.state_key)}">'
                f'<div class="av-title" id="{vid}-title">{html.escape(self.title)}</div>'
                f'<div class="av-body"><div class="av-hint">{html.escape(t("viewer.needs_js"))}</div></div>'
                f'<script type="application/json" class="av-data">{payload}</script>'
                f"<script>{_engine()}</script></div>")

    def _repr_html_(self) -> str:
        return self.html()

    @property
    def nbytes(self) -> int:
        """Size of :meth:`html` in bytes (the page budget counts these)."""
        return len(self.html().encode("utf-8"))

    def __repr__(self) -> str:
        return f"<attention_lib viewer {self.kind}: {self.title}>"


_PLAIN = ("mean", "heads", "weight", "image", "token", "query", "query_token", "key_token", "extra", "slot",
          "map_only", "spatial_value", "channel", "branch", "dimension", "value", "patch_group", "class_token", "box")
_FIELDS = {"head": "i", "token_i": "i", "image_i": "i", "slot_i": "i", "channel_i": "i", "max": "v",
           "slot_weights": "what", "slot_column": "what", "patch": "rc", "cell": "rc", "range": "lohi",
           "group": "what", "alt_heads": "what", "alt_map": "top", "alt_values": "values", "alt_vector": "vector",
           "alt_patches": "grid"}


def _text(hint: str, value: str = "viewer.weight") -> dict:
    """The strings a viewer's script shows, in the current language; ``{i}``-style fields are filled there."""
    out = {k: t(f"viewer.{k}") for k in _PLAIN}
    fields = {"i": ("i",), "v": ("v",), "what": ("what",), "rc": ("r", "c"), "lohi": ("lo", "hi"),
              "top": ("what", "top"), "values": ("what", "values"), "vector": ("D", "lo", "hi", "top"),
              "grid": ("gh", "gw")}
    for key, kind in _FIELDS.items():
        out[key] = t(f"viewer.{key}", **{f: "{" + f + "}" for f in fields[kind]})
    out["hint"], out["value"] = t(hint), t(value)
    return out


# --------------------------------------------------------------------------------------------
# The four viewers
# --------------------------------------------------------------------------------------------

def query_map(weights: Any, *, image: Any = None, grid: Optional[Sequence[int]] = None,
              tokens: Optional[Sequence] = None, extra_tokens: int = 0, title: Optional[str] = None,
              state_key: Optional[str] = None) -> Viewer:
    """Self-attention: point at a query and see its row of weights, per head or averaged over heads.

    ``weights``: ``(heads, N, N)`` or ``(N, N)``, row i = where query i looks (rows sum to 1), or with
    a leading gallery axis ``(G, heads, N, N)`` (then ``image`` is ``(G, 3, H, W)``).
    ``image`` ``(3, H, W)`` in [0, 1] with ``grid=(gh, gw)``: the ``N - extra_tokens`` patch tokens in
    row-major order, drawn over the picture (the ``extra_tokens`` leading tokens, such as a class
    token, are listed beside it); or ``tokens``: N labels of a sequence.
    """
    w = _tensor(weights, "query_map", "(heads, N, N), (N, N) or (G, heads, N, N)")
    if w.dim() == 2:
        w = w[None]
    w = _gallery(w, 3, "query_map", "(heads, N, N), (N, N) or (G, heads, N, N)")
    g, heads, n, k = w.shape
    if n != k or n < 1:
        raise ValueError(f"query_map: expected square weights (heads, N, N), got {_shape_text(w)}")
    if isinstance(extra_tokens, bool) or not isinstance(extra_tokens, int) or not 0 <= extra_tokens < n:
        raise ValueError(f"query_map: extra_tokens must be an integer in [0, N) with N = {n}, got {extra_tokens!r}")
    if (image is None) != (grid is None):
        raise ValueError("query_map: image and grid go together: pass both (patch tokens) or neither (a sequence)")
    labels = _labels(tokens, n, "query_map")
    data = {"G": g, "H": heads, "N": n, "w": _pack(w), "extra": extra_tokens, "tokens": labels,
            "grid": None if grid is None else _grid(grid, n - extra_tokens, "query_map"),
            "img": _pack_images(image, g, "query_map(image)"),
            "text": _text("viewer.hint.query_image" if grid is not None else "viewer.hint.query_tokens")}
    return Viewer("query_map", data, title or t("viewer.query_map.title"), state_key)


def slot_map(weights: Any, *, image: Any = None, grid: Optional[Sequence[int]] = None,
             tokens: Optional[Sequence] = None, title: Optional[str] = None,
             state_key: Optional[str] = None) -> Viewer:
    """External Attention: point at a memory slot (its column over the N positions) or at a position
    (its row over the S slots).

    ``weights``: ``(N, S)`` or ``(heads, N, S)``, optionally with a leading gallery axis G.
    ``image`` ``(3, H, W)`` with ``grid=(gh, gw)``, ``gh * gw = N`` (pixels or patches in row-major
    order), or ``tokens``: N labels.
    """
    expected = "(N, S), (heads, N, S) or (G, heads, N, S)"
    w = _tensor(weights, "slot_map", expected)
    if w.dim() == 2:
        w = w[None]
    w = _gallery(w, 3, "slot_map", expected)
    g, heads, n, s = w.shape
    if n < 1 or s < 1:
        raise ValueError(f"slot_map: expected weights of shape {expected} with N, S >= 1, got {_shape_text(w)}")
    if (image is None) != (grid is None):
        raise ValueError("slot_map: image and grid go together: pass both (positions on a picture) or neither")
    data = {"G": g, "H": heads, "N": n, "S": s, "w": _pack(w), "tokens": _labels(tokens, n, "slot_map"),
            "grid": None if grid is None else _grid(grid, n, "slot_map"),
            "img": _pack_images(image, g, "slot_map(image)"),
            "text": _text("viewer.hint.slot")}
    return Viewer("slot_map", data, title or t("viewer.slot_map.title"), state_key)


def spatial_gallery(images: Any, maps: Any, *, boxes: Any = None, title: Optional[str] = None,
                    labels: Optional[Sequence[str]] = None, state_key: Optional[str] = None) -> Viewer:
    """CBAM, BAM: point at an image of the gallery and see its spatial map over it.

    ``images`` ``(G, 3, H, W)`` in [0, 1]; ``maps`` ``(G, h, w)`` at any resolution (stretched over the
    image; ``(G, 1, h, w)`` is accepted too); ``boxes`` ``(G, 4)``: x0, y0, x1, y1 in pixels, drawn as outlines;
    ``labels``: a name per image (default "image 0", "image 1"...).
    """
    m = _tensor(maps, "spatial_gallery(maps)", "(G, h, w)")
    if m.dim() == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.dim() != 3 or 0 in m.shape:
        raise ValueError(f"spatial_gallery: maps must have shape (G, h, w), got {_shape_text(m)}")
    g = m.shape[0]
    img = _pack_images(images, g, "spatial_gallery(images)")
    box = None
    if boxes is not None:
        b = _tensor(boxes, "spatial_gallery(boxes)", f"({g}, 4)")
        if b.shape != (g, 4):
            raise ValueError(f"spatial_gallery: boxes must have shape ({g}, 4) (x0, y0, x1, y1), got {_shape_text(b)}")
        box = [[round(float(v), 2) for v in row] for row in b]
    data = {"G": g, "h": int(m.shape[1]), "w": int(m.shape[2]), "m": _pack(m.reshape(g, -1)), "img": img,
            "boxes": box, "labels": _labels(labels, g, "spatial_gallery", "labels (one per gallery item)"),
            "text": _text("viewer.hint.spatial", "viewer.spatial_value")}
    return Viewer("spatial_gallery", data, title or t("viewer.spatial.title"), state_key)


def channel_gallery(images: Any, gates: Any, *, branch_labels: Optional[Sequence[str]] = None,
                    title: Optional[str] = None, labels: Optional[Sequence[str]] = None,
                    state_key: Optional[str] = None) -> Viewer:
    """SE, ECA, SK: point at a channel and see its weight in every image of the gallery.

    ``images`` ``(G, 3, H, W)`` in [0, 1] (or None: the rows are numbered); ``gates`` ``(G, C)``, or
    ``(G, K, C)`` for Selective Kernel's per-branch weights, named by ``branch_labels`` (``["3×3", "5×5"]``);
    ``labels``: a name per image (default "image 0", "image 1"...).
    """
    gt = _tensor(gates, "channel_gallery(gates)", "(G, C) or (G, K, C)")
    if gt.dim() == 4 and gt.shape[2:] == (1, 1):
        gt = gt[..., 0, 0]                         # (G, C, 1, 1): the shape attention_map returns
    if gt.dim() == 2:
        gt = gt[:, None]
    if gt.dim() != 3 or 0 in gt.shape:
        raise ValueError(f"channel_gallery: gates must have shape (G, C) or (G, K, C), got {_shape_text(gt)}")
    g, k, c = gt.shape
    branches = None
    if branch_labels is not None or k > 1:
        branches = [str(x) for x in (branch_labels or [f"{t('viewer.branch')} {i}" for i in range(k)])]
        if len(branches) != k:
            raise ValueError(f"channel_gallery: {k} branches but {len(branches)} branch_labels")
    data = {"G": g, "K": k, "C": c, "w": _pack(gt), "img": _pack_images(images, g, "channel_gallery(images)"),
            "branches": branches, "labels": _labels(labels, g, "channel_gallery", "labels (one per gallery item)"),
            "text": _text("viewer.hint.channel", "viewer.gate" if k == 1 else "viewer.branch_weight")}
    return Viewer("channel_gallery", data, title or t("viewer.channel.title"), state_key)


def patch_tokens(image: Any, tokens: Any, *, grid: Sequence[int], title: Optional[str] = None,
                 state_key: Optional[str] = None) -> Viewer:
    """Patch embedding: point at a patch of the picture and see the token vector it becomes.

    ``image`` ``(3, H, W)``; ``tokens`` ``(N, D)`` (or ``(1, N, D)``), one row per patch in row-major
    order over ``grid=(gh, gw)``, ``gh * gw = N``.
    """
    v = _tensor(tokens, "patch_tokens(tokens)", "(N, D)")
    if v.dim() == 3 and v.shape[0] == 1:
        v = v[0]
    if v.dim() != 2 or 0 in v.shape:
        raise ValueError(f"patch_tokens: tokens must have shape (N, D), got {_shape_text(v)}")
    data = {"N": int(v.shape[0]), "D": int(v.shape[1]), "w": _pack(v), "grid": _grid(grid, v.shape[0], "patch_tokens"),
            "img": _pack_images(image, 1, "patch_tokens(image)"),
            "text": _text("viewer.hint.patch", "viewer.value")}
    return Viewer("patch_tokens", data, title or t("viewer.patch_tokens.title"), state_key)


def stack(*viewers: Viewer, title: Optional[str] = None, state_key: Optional[str] = None) -> Viewer:
    """Several viewers drawn one under the other as one (CBAM: its channel gate and its spatial map)."""
    if not viewers or not all(isinstance(v, Viewer) for v in viewers):
        raise ValueError("stack: expected one or more viewers")
    parts = [v.payload() for v in viewers]
    return Viewer("stack", {"parts": parts}, title or " · ".join(p["title"] for p in parts), state_key)


def figure(fig: Any, *, title: Optional[str] = None, state_key: Optional[str] = None) -> Viewer:
    """A matplotlib figure as a fixed picture in the viewer's frame (a palette PNG, at most 560 pixels
    wide; the figure is closed). Nothing to point at: for explorers whose plot draws a figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from .figure_output import alt_text
    alt = alt_text(fig)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=min(80, 560 / fig.get_figwidth()), facecolor="white")
        buf.seek(0)
        image = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
    finally:
        plt.close(fig)
    src = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    return Viewer("figure", {"src": src, "alt": alt}, title or "", state_key)


def shell(kind: str, title: str, state_key: str) -> str:
    """An empty viewer (its engine, no data) that a static explorer's script fills, frame by frame."""
    vid = f"av-{uuid.uuid4().hex[:10]}"
    return (f'<div class="{CSS_CLASS}" data-kind="{html.escape(kind)}" role="group" aria-labelledby="{vid}-title" '
            f'data-state-key="{html.escape(state_key)}">'
            f'<div class="av-title" id="{vid}-title">{html.escape(title)}</div>'
            f'<div class="av-body"></div><script>{_engine()}</script></div>')


def share_images(payload: dict, images: list) -> dict:
    """The payload with its pictures moved into ``images`` (shared by the frames of a static explorer)
    and replaced by ``{"ref": index}``; the script puts them back."""
    payload = dict(payload)
    if payload.get("kind") == "stack":
        payload["parts"] = [share_images(p, images) for p in payload["parts"]]
    elif payload.get("img"):
        if payload["img"] not in images:
            images.append(payload["img"])
        payload["img"] = {"ref": images.index(payload["img"])}
    return payload


# --------------------------------------------------------------------------------------------
# Reading the weights back (tests)
# --------------------------------------------------------------------------------------------

_DATA = re.compile(r'<script type="application/json" class="(?:av|ae)-data">(.*?)</script>', re.S)


def read_html(page: str) -> list[dict]:
    """The payload of every viewer in an HTML page or fragment, in page order (a static explorer's
    frames included; a stack gives its parts)."""
    out = []
    for m in _DATA.finditer(page):
        data = json.loads(m.group(1).replace("<\\/", "</"))
        payloads = [f["p"] for f in data["frames"].values()] if "frames" in data else [data]
        for p in payloads:
            out.extend(p["parts"] if p.get("kind") == "stack" else [p])
    return out


def decode(payload: dict) -> torch.Tensor:
    """The weights a payload embeds, dequantised, in the viewer's full layout: ``(G, heads, N, N)``
    (query_map), ``(G, heads, N, S)`` (slot_map), ``(G, h, w)`` (spatial_gallery), ``(G, K, C)``
    (channel_gallery). Exact to within half a quantisation step: (row max - row min) / 510."""
    kind = payload["kind"]
    if kind == "query_map":
        return _unpack(payload["w"]).reshape(payload["G"], payload["H"], payload["N"], payload["N"])
    if kind == "slot_map":
        return _unpack(payload["w"]).reshape(payload["G"], payload["H"], payload["N"], payload["S"])
    if kind == "spatial_gallery":
        return _unpack(payload["m"]).reshape(payload["G"], payload["h"], payload["w"])
    if kind == "channel_gallery":
        return _unpack(payload["w"]).reshape(payload["G"], payload["K"], payload["C"])
    if kind == "patch_tokens":
        return _unpack(payload["w"]).reshape(payload["N"], payload["D"])
    raise ValueError(f"decode: unknown viewer kind {kind!r}")
