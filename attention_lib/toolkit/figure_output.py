"""How a figure leaves a notebook: a PNG drawn at the page's scale that carries its own facts.

The book's rule for figures, from the site's real layout (Chromium at 1280 px): the text column of a
chapter page is :data:`PAGE_WIDTH_PX` CSS pixels wide and captions are set at :data:`CAPTION_PX`. A figure
is drawn at :data:`DISPLAY_DPI` pixels per inch (the inline backend's ``figure.dpi``), so a figure at most
:data:`PAGE_WIDTH_IN` inches wide is shown at its own size, and text of :data:`MIN_FONT_PT` points is then
as large as a caption. :func:`~attention_lib.toolkit.environment.plot_style` sets these sizes; no figure
text may be smaller, and multi-panel figures go into rows to fit the width.

In a Jupyter kernel, :func:`install` (called by ``al.setup``) makes every displayed matplotlib figure go
through :func:`png`: the PNG as the inline backend would draw it (tight bounding box), reduced to a
256-colour palette (a third of the bytes), with text chunks that say

- ``Title``: a text alternative in the figure's language (its title, panels, axes and colour bar, or what
  :func:`describe` set), which the site uses as the image's ``alt``;
- ``Description``: a caption, when :func:`describe` gave one (a figure that carries a result);
- ``attention_lib``: JSON facts measured while drawing: the pixels per inch, the smallest font actually
  drawn, the share of blank area (tiles with no ink outside any plot area) and the number of empty panels.

The site's tests read these chunks from every built image and check the rule against the size the browser
shows the image at, so no figure escapes it (an image without the chunks fails too).
"""
from __future__ import annotations

import io
import json
from typing import Optional

import numpy as np

from .i18n import register, t

PAGE_WIDTH_PX = 688     #: the site's output column at a 1280 px window (article 752 px less 2 x 32 px padding)
DISPLAY_DPI = 100       #: pixels per inch of the PNG a notebook shows (matplotlib's figure.dpi)
PAGE_WIDTH_IN = 6.6     #: the widest figure shown at its own size: with savefig's 0.1 in margins, 680 px <= PAGE_WIDTH_PX
CAPTION_PX = 14         #: the site's caption text (book.css: figcaption, 0.875rem), also its code and output text
MIN_FONT_PT = 10.5      #: the smallest figure text: 10.5 pt x 100 / 72 = 14.6 px >= CAPTION_PX
BLANK_TILE_PX = 32      #: the blank-area measure looks at tiles of this many pixels
MAX_BLANK_SHARE = 0.5   #: at most this share of a figure's tiles may be blank (no ink, no plot area)
FACTS_KEY = "attention_lib"

register({
    "figure.alt.panels": {"en": "{n} panels: {titles}", "zh": "共 {n} 个子图：{titles}"},
    "figure.alt.axes": {"en": "horizontal axis {x}, vertical axis {y}", "zh": "横轴为{x}，纵轴为{y}"},
    "figure.alt.x_axis": {"en": "horizontal axis {x}", "zh": "横轴为{x}"},
    "figure.alt.y_axis": {"en": "vertical axis {y}", "zh": "纵轴为{y}"},
    "figure.alt.colour": {"en": "colour shows {what}", "zh": "颜色表示{what}"},
    "figure.alt.untitled": {"en": "Figure", "zh": "图"},
    "figure.alt.sep": {"en": ". ", "zh": "。"},
    "figure.alt.list": {"en": "; ", "zh": "；"},
    "figure.alt.end": {"en": ".", "zh": "。"},
})


def describe(fig, alt: Optional[str] = None, caption: Optional[str] = None):
    """Give ``fig`` its own text alternative and/or a caption (the result it shows); returns ``fig``.

    Without ``alt``, the text alternative is made from the figure's titles and axes (:func:`alt_text`).
    """
    if alt is not None:
        fig._attention_alt = str(alt)
    if caption is not None:
        fig._attention_caption = str(caption)
    return fig


def _is_colourbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _clean(text: str) -> str:
    return " ".join(text.replace("$", "").replace("\\", "").split())


def _after_cjk(text: str) -> str:
    """``text`` to follow a Chinese word in a Chinese sentence: a space first when it starts with a Latin letter,
    a digit or a symbol (the book's typography: 横轴为 x, 横轴为训练轮次)."""
    from .i18n import get_language
    from .viz import CJK                           # the book's one definition of a CJK character (viz imports us)
    if get_language() == "zh" and text and not CJK.match(text[0]):
        return " " + text
    return text


def alt_text(fig) -> str:
    """A text alternative for ``fig`` in the current language: its title, then each panel's title, axes
    and colour bar (or what :func:`describe` gave)."""
    given = getattr(fig, "_attention_alt", None)
    if given:
        return given
    sep, lst, end = t("figure.alt.sep"), t("figure.alt.list"), t("figure.alt.end")
    supt = getattr(fig, "_suptitle", None)
    title = _clean(supt.get_text()) if supt is not None else ""
    panels = [ax for ax in fig.get_axes() if ax.get_visible() and not _is_colourbar(ax)]
    bars = [_clean(ax.get_ylabel() or ax.get_xlabel()) for ax in fig.get_axes() if _is_colourbar(ax)]
    parts = []
    titles = [_clean(ax.get_title()) for ax in panels if _clean(ax.get_title())]
    if not title and len(titles) == 1:
        title = titles.pop()
    parts.append(title or t("figure.alt.untitled"))
    if len(titles) > 1:
        unique = list(dict.fromkeys(titles))
        shown = unique[:8] + (["…"] if len(unique) > 8 else [])
        parts.append(t("figure.alt.panels", n=len(panels), titles=lst.join(shown)))
    labelled = [(ax.get_xlabel(), ax.get_ylabel()) for ax in panels if ax.get_xlabel() or ax.get_ylabel()]
    supx = getattr(fig, "_supxlabel", None)
    supy = getattr(fig, "_supylabel", None)
    if supx is not None or supy is not None:
        labelled.insert(0, (supx.get_text() if supx else "", supy.get_text() if supy else ""))
    if labelled:
        x, y = (_after_cjk(_clean(v)) for v in labelled[0])
        key = "figure.alt.axes" if x and y else "figure.alt.x_axis" if x else "figure.alt.y_axis"
        parts.append(t(key, x=x, y=y))                # an axis without a label is left out, not written "–"
    bars = [b for b in dict.fromkeys(bars) if b]
    if bars:
        parts.append(t("figure.alt.colour", what=lst.join(bars)))
    return sep.join(p.rstrip(".。") for p in parts) + end


class _RecordText:
    """While active, every text that matplotlib's Agg renderer draws has its size in points recorded, and the
    figure's tight bounding box is kept as ``savefig`` computes it (the sizes and the box are those of the
    saved picture; nothing is drawn or measured twice)."""

    def __init__(self):
        self.sizes: list[float] = []
        self.tight = None

    def __enter__(self):
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.figure import Figure

        self._draw_text = draw_text_original = RendererAgg.draw_text
        self._tightbbox = tightbbox_original = Figure.get_tightbbox
        sizes, record = self.sizes, self

        def draw_text(renderer, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if str(s).strip():
                sizes.append(float(prop.get_size_in_points()))
            return draw_text_original(renderer, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        def get_tightbbox(figure, *args, **kwargs):
            record.tight = tightbbox_original(figure, *args, **kwargs)
            return record.tight

        RendererAgg.draw_text = draw_text
        Figure.get_tightbbox = get_tightbbox
        return self

    def __exit__(self, *exc):
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.figure import Figure
        RendererAgg.draw_text = self._draw_text
        Figure.get_tightbbox = self._tightbbox
        return False


def _plot_areas(fig, shape, origin) -> np.ndarray:
    """(H, W) mask of the image's pixels inside a drawn plot area (axes with their axis on): content even
    where the plot is white between its lines."""
    h, w = shape
    x0, y0 = origin
    mask = np.zeros((h, w), dtype=bool)
    for ax in fig.get_axes():
        if not ax.get_visible() or not ax.axison:
            continue
        bb = ax.get_window_extent()
        left, right = max(0, int(bb.x0 - x0)), min(w, int(bb.x1 - x0))
        top, bottom = max(0, int(h - (bb.y1 - y0))), min(h, int(h - (bb.y0 - y0)))
        mask[top:bottom, left:right] = True
    return mask


def _blank_share(rgb: np.ndarray, used: Optional[np.ndarray] = None, tile: int = BLANK_TILE_PX) -> float:
    """The share of ``tile`` x ``tile`` tiles of an (H, W, 3) image with no ink (no pixel darker than
    near-white) and, when ``used`` is given, no pixel of a plot area."""
    ink = rgb.min(axis=2) < 245                                       # (H, W)
    if used is not None:
        ink = ink | used
    h, w = ink.shape
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.zeros((rows * tile, cols * tile), dtype=bool)
    padded[:h, :w] = ink
    tiles = padded.reshape(rows, tile, cols, tile).any(axis=(1, 3))  # (rows, cols)
    return float(1.0 - tiles.mean())


def _blank_panels(fig, rgb: np.ndarray, origin) -> int:
    """Panels (axes, colour bars aside) whose inside holds no ink at all: a figure with an empty plot."""
    x0, y0 = origin
    h = rgb.shape[0]
    blank = 0
    for ax in fig.get_axes():
        if not ax.get_visible() or _is_colourbar(ax) or not ax.axison:
            continue
        bb = ax.get_window_extent()
        left, right = int(bb.x0 - x0) + 3, int(bb.x1 - x0) - 3
        top, bottom = int(h - (bb.y1 - y0)) + 3, int(h - (bb.y0 - y0)) - 3
        if right - left < 4 or bottom - top < 4:
            continue
        inside = rgb[max(0, top):bottom, max(0, left):right]
        if inside.size and (inside.min(axis=2) < 245).mean() < 0.002:
            blank += 1
    return blank


def facts(fig, rgb: np.ndarray, dpi: float, sizes: list[float], origin=(0.0, 0.0)) -> dict:
    """What the site's tests check, measured on the drawn figure ``rgb`` (H, W, 3)."""
    h, w = rgb.shape[:2]
    return {"dpi": dpi, "width_px": int(w), "height_px": int(h),
            "min_font_pt": round(min(sizes), 2) if sizes else None, "texts": len(sizes),
            "blank_share": round(_blank_share(rgb, _plot_areas(fig, (h, w), origin)), 3),
            "blank_panels": _blank_panels(fig, rgb, origin)}


def png(fig, dpi: Optional[float] = None) -> bytes:
    """``fig`` as the PNG a notebook shows (tight bounding box, white background, 256 colours) with its
    text alternative, caption and facts in text chunks."""
    import matplotlib
    from PIL import Image, PngImagePlugin

    dpi = float(dpi or fig.dpi)
    buf = io.BytesIO()
    with _RecordText() as record:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    sizes = record.sizes
    buf.seek(0)
    image = Image.open(buf).convert("RGB")
    rgb = np.asarray(image)
    # Where the saved picture starts on the figure: its tight box plus the margin savefig adds (inches).
    tight = (record.tight or fig.get_tightbbox()).padded(float(matplotlib.rcParams["savefig.pad_inches"]))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", alt_text(fig))
    caption = getattr(fig, "_attention_caption", None)
    if caption:
        info.add_text("Description", caption)
    info.add_text(FACTS_KEY, json.dumps(facts(fig, rgb, dpi, sizes, (tight.x0 * dpi, tight.y0 * dpi))))
    # 256 colours: a plot has few; a photograph inside a figure loses nothing visible at this size.
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        out, format="PNG", pnginfo=info)                       # optimize=True: 9 % smaller, 8x slower
    return out.getvalue()


def read_png(data: bytes) -> dict:
    """The text chunks :func:`png` wrote (``Title``, ``Description``, and the facts as a dict under
    ``attention_lib``); an image without them gives ``{}``."""
    from PIL import Image

    text = dict(getattr(Image.open(io.BytesIO(data)), "text", {}) or {})
    if FACTS_KEY in text:
        text[FACTS_KEY] = json.loads(text[FACTS_KEY])
    return text


def _formatter(fig):
    if not fig.axes and not fig.lines and not fig.texts and not fig.images:
        return None                       # an empty figure shows nothing, as in the inline backend
    return png(fig)


def _register(shell) -> None:
    from matplotlib.figure import Figure
    shell.display_formatter.formatters["image/png"].for_type(Figure, _formatter)


def install() -> bool:
    """In a Jupyter kernel: display every matplotlib figure through :func:`png`. Returns whether it did.

    The inline backend registers its own PNG formatter when it is loaded (and again on ``%matplotlib``);
    this one is registered after it, and again before each cell runs, so it stays the one in use.
    """
    try:
        from IPython import get_ipython
    except ImportError:                       # pragma: no cover - IPython ships with Jupyter
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    import matplotlib
    if "inline" in str(matplotlib.get_backend()):
        import matplotlib_inline.backend_inline  # noqa: F401  (loading it registers the backend's formatter)
    _register(shell)
    if not getattr(shell, "_attention_figure_output", False):
        shell.events.register("pre_run_cell", lambda *a, **k: _register(shell))
        shell._attention_figure_output = True
    return True


def rule_breaks(chunks: dict, shown_px: Optional[float] = None) -> list[str]:
    """How a figure breaks the book's rule, from the chunks :func:`read_png` gives (empty: it follows it).

    ``shown_px``: the width the page shows the image at (CSS pixels); by default its own width, capped
    at :data:`PAGE_WIDTH_PX`.
    """
    f = chunks.get(FACTS_KEY)
    if not f:
        return ["no facts: the figure was not displayed through attention_lib's figure output (al.setup)"]
    out = []
    scale = min(1.0, PAGE_WIDTH_PX / f["width_px"]) if shown_px is None else shown_px / f["width_px"]
    if f["min_font_pt"] is not None:
        px = f["min_font_pt"] * f["dpi"] / 72 * scale
        if px < CAPTION_PX - 1e-6:
            out.append(f"smallest text {f['min_font_pt']} pt is shown {px:.1f} px high, under the "
                       f"{CAPTION_PX} px of a caption (the figure is {f['width_px']} px wide, shown at "
                       f"{scale:.2f} of that)")
    if f["width_px"] > PAGE_WIDTH_PX:
        out.append(f"{f['width_px']} px wide, wider than the page's {PAGE_WIDTH_PX} px column: the page shows it "
                   f"smaller than drawn (at most {PAGE_WIDTH_IN} in with savefig's margins)")
    if f["blank_share"] > MAX_BLANK_SHARE:
        out.append(f"mostly white: {f['blank_share']:.0%} of its {BLANK_TILE_PX}-px tiles are blank")
    if f["blank_panels"]:
        out.append(f"{f['blank_panels']} empty panel(s)")
    if not chunks.get("Title"):
        out.append("no text alternative")
    return out
