"""Small deterministic data for the book: made in memory from a seed, or shipped with an installed package.

- :func:`shapes_dataset`: RGB images with ONE target shape among distractor lines and dots, labelled by
  the target's shape, with the target's bounding box (so a test can ask where spatial attention looks);
  :func:`box_masks` and :func:`box_scores` measure how much of a spatial map lies in that box.
- :func:`context_dataset`: one coloured bar per image; a band of static along one edge (the context) decides
  whether the label is the bar's colour or its orientation, and no cell of the tiny CNN's last feature map
  sees both band and bar; :func:`context_share` measures how much of a model's gate follows that question.
- :func:`cue_dataset`: three filled shapes of equal brightness; the red one is the target (the label is its
  shape), the others are distractors, so the brightest place is not the relevant one; with the target's
  and the distractors' boxes, and :func:`peak_on_distractor` to count maps that point at a distractor.
- :func:`reversal_dataset`: token sequences whose target is the reversed sequence; output position i
  must read input position L-1-i, so a learned self-attention map is an anti-diagonal.
- :func:`sample_photo`: a real photograph from matplotlib's sample data (no download).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .._checks import check_positive
from .i18n import register, t

#: The target classes of :func:`shapes_dataset`, in label order.
SHAPE_CLASSES = ("square", "circle", "cross", "triangle")

#: The answers of :func:`context_dataset`: the bar's orientation (no band) or its colour (band), in label order.
ORIENTATIONS = ("horizontal", "rising", "vertical", "falling")
COLOURS = ("red", "green", "blue", "yellow")

register({
    "data.box_scores": {"en": "peak in the box {peak:.1%}, mass in the box {mass:.1%} (the box covers {area:.1%} of "
                              "the map)",
                        "zh": "峰值落在目标框内的比例 {peak:.1%}，目标框内的权重占比 {mass:.1%}（目标框占整张图的 {area:.1%}）"},
    "data.orientation.horizontal": {"en": "horizontal", "zh": "水平"},
    "data.orientation.rising": {"en": "rising (/)", "zh": "右上斜（/）"},
    "data.orientation.vertical": {"en": "vertical", "zh": "竖直"},
    "data.orientation.falling": {"en": "falling (\\)", "zh": "右下斜（\\）"},
    "data.context.answer": {"en": "{orientation} or {colour}", "zh": "{orientation}或{colour}"},
    "data.colour.red": {"en": "red", "zh": "红"},
    "data.colour.green": {"en": "green", "zh": "绿"},
    "data.colour.blue": {"en": "blue", "zh": "蓝"},
    "data.colour.yellow": {"en": "yellow", "zh": "黄"},
    "data.shape.square": {"en": "square", "zh": "正方形"},
    "data.shape.circle": {"en": "circle", "zh": "圆形"},
    "data.shape.cross": {"en": "cross", "zh": "十字"},
    "data.shape.triangle": {"en": "triangle", "zh": "三角形"},
})


def shape_names() -> list[str]:
    """The names of ``SHAPE_CLASSES`` in the current language, in label order (for legends and axes)."""
    return [t(f"data.shape.{name}") for name in SHAPE_CLASSES]


class ShapesData(NamedTuple):
    """``images`` (n, 3, H, W) in [0, 1]; ``labels`` (n,) int64 into ``SHAPE_CLASSES``;
    ``boxes`` (n, 4) int64 ``(x0, y0, x1, y1)``, pixel bounds of the target, ends exclusive."""
    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor


def context_names() -> list[str]:
    """The four answers of :func:`context_dataset` in the current language ("horizontal or red", ...)."""
    return [t("data.context.answer", orientation=t(f"data.orientation.{o}"), colour=t(f"data.colour.{c}"))
            for o, c in zip(ORIENTATIONS, COLOURS)]


class ContextData(NamedTuple):
    """``images`` (n, 3, H, W) in [0, 1]; ``labels`` (n,) int64: the ``colour`` where ``context`` is 1 (a band),
    else the ``orientation``; ``context``, ``orientation``, ``colour`` (n,) int64 (indices into
    ``ORIENTATIONS`` and ``COLOURS``)."""
    images: torch.Tensor
    labels: torch.Tensor
    context: torch.Tensor
    orientation: torch.Tensor
    colour: torch.Tensor


class ReversalData(NamedTuple):
    """``inputs`` (n, L) int64 tokens; ``targets`` (n, L) = ``inputs`` reversed along the sequence."""
    inputs: torch.Tensor
    targets: torch.Tensor


def _uniform(g: torch.Generator, *shape, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=g)


def _shape_masks(dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Filled masks of every class, centred at offsets ``dx, dy`` (n, H, W) with half-size r (n, 1, 1).

    Returns (n, K, H, W) booleans, K = len(SHAPE_CLASSES), in the order of ``SHAPE_CLASSES``.
    """
    square = (dx.abs() <= r) & (dy.abs() <= r)
    circle = dx ** 2 + dy ** 2 <= (r + 0.5) ** 2
    bar = r / 3 + 0.25
    cross = ((dx.abs() <= bar) & (dy.abs() <= r)) | ((dy.abs() <= bar) & (dx.abs() <= r))
    triangle = (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2 + 0.25)   # apex up, base at the bottom
    return torch.stack([square, circle, cross, triangle], dim=1)     # (n, K, H, W)


def _segment_masks(xx, yy, x0, y0, ux, uy, length, width) -> torch.Tensor:
    """Pixels within ``width`` of the segments from (x0, y0) along (ux, uy) for ``length``: (b, k, H, W)."""
    px = xx - x0[..., None, None]                                                 # (b, k, H, W)
    py = yy - y0[..., None, None]
    ux, uy = ux[..., None, None], uy[..., None, None]
    t = (px * ux + py * uy).clamp(min=0).minimum(length[..., None, None])       # projection on the segment
    return (px - t * ux) ** 2 + (py - t * uy) ** 2 <= width[..., None, None] ** 2


def shapes_dataset(n: int, size: int = 32, seed: int = 0, *, num_distractors: int = 6,
                   min_radius: float = 3.5, max_radius: float = 5.5, noise: float = 0.08) -> ShapesData:
    """``n`` images of ``size`` x ``size`` pixels, each with one target shape among clutter.

    The target is a filled square, circle, cross or triangle (label = index in ``SHAPE_CLASSES``) of
    half-size ``min_radius``..``max_radius`` at a random place, in a random bright colour. Around it lie
    ``num_distractors`` thin line segments and small dots in random colours, on a dark noisy background.
    Distractors share the target's colours and brightness, so only the shape, at one place, tells the
    class: a model must learn where to look. Same arguments, same tensors (``torch.Generator(seed)``).
    """
    check_positive(n, "n", "shapes_dataset")
    check_positive(size, "size", "shapes_dataset", minimum=16)
    check_positive(num_distractors, "num_distractors", "shapes_dataset", minimum=0)
    if not 1 <= min_radius <= max_radius or 2 * max_radius + 2 > size:
        raise ValueError(f"shapes_dataset: need 1 <= min_radius <= max_radius and 2 * max_radius + 2 <= size, "
                         f"got min_radius={min_radius}, max_radius={max_radius}, size={size}")
    key = (n, size, seed, num_distractors, float(min_radius), float(max_radius), float(noise))
    return _remembered(key, lambda: _draw_shapes(*key))


#: The data sets drawn last, up to 64 MB of images: a chapter's demos ask for the same images again and again.
_RECENT: "OrderedDict[tuple, NamedTuple]" = OrderedDict()
_RECENT_BYTES = 64 * 2 ** 20


def _remembered(key: tuple, draw):
    """The data set of ``key``: ``draw()`` once per process (the last 64 MB kept), then copies, since a caller
    may modify its tensors."""
    if key not in _RECENT:
        _RECENT[key] = draw()
        while sum(d.images.nbytes for d in _RECENT.values()) > _RECENT_BYTES and len(_RECENT) > 1:
            _RECENT.popitem(last=False)
    _RECENT.move_to_end(key)
    stored = _RECENT[key]
    return type(stored)(*(t.clone() for t in stored))


def _draw_shapes(n, size, seed, num_distractors, min_radius, max_radius, noise) -> ShapesData:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")   # (H, W) each

    # Background: a dark grey level per image plus pixel noise.
    images = _uniform(g, n, 1, 1, 1, high=0.25).expand(n, 3, size, size).clone()     # (n, 3, H, W)
    images += noise * torch.randn(n, 3, size, size, generator=g)

    def bright_colour(*shape):        # a random saturated colour, each channel in [0.15, 1] and max >= 0.85
        c = _uniform(g, *shape, 3, low=0.15)
        return c / c.amax(-1, keepdim=True) * _uniform(g, *shape, 1, low=0.85)

    # Distractors: line segments (length 5..11) and dots (radius ~1), drawn first.
    k = num_distractors
    if k:
        x0, y0 = _uniform(g, n, k, high=size - 1), _uniform(g, n, k, high=size - 1)           # (n, k)
        angle = _uniform(g, n, k, high=torch.pi)
        length = _uniform(g, n, k, low=5.0, high=11.0)
        is_dot = torch.rand(n, k, generator=g) < 0.4
        length = torch.where(is_dot, torch.zeros_like(length), length)
        ux, uy = torch.cos(angle), torch.sin(angle)                                           # (n, k)
        width = torch.where(is_dot, torch.full_like(length, 1.3), torch.full_like(length, 0.6))
        masks = torch.cat([_segment_masks(xx, yy, *(v[i:i + 256] for v in (x0, y0, ux, uy, length, width)))
                           for i in range(0, n, 256)])                                        # (n, k, H, W)
        colours = bright_colour(n, k)                                                         # (n, k, 3)
        # Painter's order: each pixel takes the colour of the last distractor that covers it.
        order = torch.arange(1, k + 1).view(1, k, 1, 1)
        top = (masks * order).amax(1)                                                         # (n, H, W), 0 = none
        covered = (top > 0)[:, None]                                                          # (n, 1, H, W)
        painted = torch.gather(colours, 1, (top.clamp(min=1) - 1).view(n, -1, 1).expand(-1, -1, 3))   # (n, HW, 3)
        painted = painted.transpose(1, 2).reshape(n, 3, size, size)                           # (n, 3, H, W)
        images = torch.where(covered, painted, images)

    # Target: one filled shape, drawn last so it is never covered.
    labels = torch.randint(len(SHAPE_CLASSES), (n,), generator=g)                             # (n,)
    r = _uniform(g, n, low=min_radius, high=max_radius)                                       # (n,)
    lo = torch.ceil(r) + 1
    cx = (lo + _uniform(g, n) * (size - 1 - 2 * lo)).round()                                  # (n,) centre in range
    cy = (lo + _uniform(g, n) * (size - 1 - 2 * lo)).round()
    dx, dy = xx - cx[:, None, None], yy - cy[:, None, None]                                   # (n, H, W)
    all_masks = _shape_masks(dx, dy, r[:, None, None])                                        # (n, K, H, W)
    target = all_masks[torch.arange(n), labels][:, None]                                      # (n, 1, H, W)
    images = torch.where(target, bright_colour(n)[..., None, None].expand_as(images), images)
    images = (images + 0.5 * noise * torch.randn(n, 3, size, size, generator=g)).clamp(0.0, 1.0)

    # The box: the target's pixel extent (ends exclusive).
    rows, cols = target[:, 0].any(2), target[:, 0].any(1)                                     # (n, H), (n, W)
    idx = torch.arange(size)
    y_min = torch.where(rows, idx, size).amin(1)
    y_max = torch.where(rows, idx, -1).amax(1) + 1
    x_min = torch.where(cols, idx, size).amin(1)
    x_max = torch.where(cols, idx, -1).amax(1) + 1
    boxes = torch.stack([x_min, y_min, x_max, y_max], dim=1)                                 # (n, 4)
    return ShapesData(images.contiguous(), labels, boxes)


#: The colours of :func:`context_dataset`'s bars, RGB in [0, 1], in the order of ``COLOURS``.
_HUES = torch.tensor([[1.0, 0.2, 0.2], [0.2, 0.9, 0.2], [0.25, 0.4, 1.0], [1.0, 0.9, 0.15]])


def context_dataset(n: int, size: int = 32, seed: int = 0, *, band: int = 5, clear: int = 19,
                    length: tuple = (7.0, 9.0), thickness: float = 1.25, noise: float = 0.08,
                    conflict: bool = True) -> ContextData:
    """``n`` images, each with one coloured bar; a band of static along one edge asks for its colour.

    The bar (``length`` pixels long) is horizontal, rising (/), vertical or falling (\\), in red, green,
    blue or yellow. In half of the images (``context`` 1) a band ``band`` pixels wide of light and dark
    pixels at random (static) runs along a random edge and the label is the bar's colour; otherwise the
    label is its orientation. Every bar lies at least ``clear`` pixels from that edge (also where no band
    is drawn), so that no cell of TinyCNN's last feature map sees both the band and the bar: cell q sees
    input rows 4q - 7 to 4q + 9 (17 pixels at a stride of 4), and with the defaults the cells that reach
    into a band along any edge stop short of the bar. With ``conflict`` the colour and the orientation
    always name different labels, so a model that cannot tell which question is asked is right at most
    half of the time. Same arguments, same tensors (made once per process, returned as copies).
    """
    name = "context_dataset"
    check_positive(n, "n", name)
    check_positive(size, "size", name, minimum=16)
    check_positive(band, "band", name)
    check_positive(clear, "clear", name)
    reach = length[1] / 2 + thickness                       # half the bar's extent, from its centre
    if not 1 <= length[0] <= length[1] or band > clear or clear + 2 * reach > size - 1:
        raise ValueError(f"{name}: need 1 <= length[0] <= length[1], band <= clear and "
                         f"clear + length[1] + 2 * thickness <= size - 1, got length={length}, "
                         f"band={band}, clear={clear}, thickness={thickness}, size={size}")
    key = ("context", n, size, seed, band, clear, float(length[0]), float(length[1]), float(thickness),
           float(noise), bool(conflict))
    return _remembered(key, lambda: _draw_context(*key[1:]))


def _draw_context(n, size, seed, band, clear, length_min, length_max, thickness, noise, conflict) -> ContextData:
    length = (length_min, length_max)
    reach = length[1] / 2 + thickness
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")   # (H, W) each
    images = _uniform(g, n, 1, 1, 1, high=0.25).expand(n, 3, size, size).clone()     # dark grey + noise
    images += noise * torch.randn(n, 3, size, size, generator=g)

    orientation = torch.randint(len(ORIENTATIONS), (n,), generator=g)                 # (n,)
    colour = torch.randint(len(COLOURS), (n,), generator=g)
    if conflict:                                            # a colour whose label differs from the orientation's
        colour = (orientation + 1 + torch.randint(len(COLOURS) - 1, (n,), generator=g)) % len(COLOURS)
    context = torch.randint(2, (n,), generator=g)           # 1: the band is drawn, the question is the colour
    side = torch.randint(4, (n,), generator=g)              # the band's edge: top, bottom, left, right

    # The bar's centre: anywhere along the band's edge, at least `clear` pixels away from it.
    along = (reach + _uniform(g, n) * (size - 1 - 2 * reach)).round()                 # whole pixels: with
    across = (clear + reach + _uniform(g, n) * (size - 1 - clear - 2 * reach)).round()   # reach > 0.5 still clear
    cy = torch.where(side == 0, across, torch.where(side == 1, size - 1 - across, along))
    cx = torch.where(side == 2, across, torch.where(side == 3, size - 1 - across, along))
    bar_length = _uniform(g, n, low=length[0], high=length[1])
    angle = orientation * (torch.pi / 4) + 0.08 * (torch.rand(n, generator=g) - 0.5)  # 0, 45, 90, 135 degrees
    ux, uy = torch.cos(angle), -torch.sin(angle)            # image rows grow downwards: 45 degrees rises
    bar = _segment_masks(xx, yy, (cx - ux * bar_length / 2)[:, None], (cy - uy * bar_length / 2)[:, None],
                         ux[:, None], uy[:, None], bar_length[:, None], torch.full((n, 1), thickness))
    rgb = (_HUES[colour] * (1 + 0.12 * (torch.rand(n, 3, generator=g) - 0.5))).clamp(0.0, 1.0)   # (n, 3)
    images = torch.where(bar, rgb[..., None, None].expand_as(images), images)

    s = side[:, None, None]
    strip = torch.where(s == 0, yy < band, torch.where(s == 1, yy >= size - band,
                        torch.where(s == 2, xx < band, xx >= size - band)))          # (n, H, W)
    drawn = (strip & (context == 1)[:, None, None])[:, None]                          # (n, 1, H, W)
    static = 0.1 + 0.8 * (torch.rand(n, 1, size, size, generator=g) < 0.5)             # light and dark pixels
    images = torch.where(drawn, static.expand_as(images), images)
    images = (images + 0.5 * noise * torch.randn(n, 3, size, size, generator=g)).clamp(0.0, 1.0)
    labels = torch.where(context == 1, colour, orientation)
    return ContextData(images.contiguous(), labels, context, orientation, colour)


def context_share(values: torch.Tensor, context: torch.Tensor) -> float:
    """How much of the variation of ``values`` (n, C) across the n images of a :func:`context_dataset` the
    question explains: the variance between the two questions' means over the total variance, summed over C
    (1: the values depend on the question alone; 0: not at all)."""
    v, c = torch.as_tensor(values).double(), torch.as_tensor(context).bool()
    if v.dim() != 2 or c.shape != v.shape[:1]:
        raise ValueError(f"context_share: expected values (n, C) and context (n,), got {tuple(v.shape)} and "
                         f"{tuple(c.shape)}")
    centred = v - v.mean(0)
    total = (centred ** 2).sum()
    between = sum(int(m.sum()) * (centred[m].mean(0) ** 2).sum() for m in (c, ~c) if m.any())
    return float(between / total) if total > 0 else 0.0


def box_masks(boxes: torch.Tensor, height: int, width: int, image_size: Union[int, Sequence[int]]) -> torch.Tensor:
    """Boolean masks (n, height, width) of the cells of a ``height`` x ``width`` map that overlap each box.

    ``boxes`` are pixel boxes of :func:`shapes_dataset` on images of ``image_size`` pixels; a map cell
    counts as inside when its footprint on the image overlaps the box.
    """
    ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
    sy, sx = ih / height, iw / width                              # pixels per map cell
    cell_y = torch.arange(height, dtype=torch.float32)
    cell_x = torch.arange(width, dtype=torch.float32)
    b = boxes.float()
    inside_y = ((cell_y + 1) * sy > b[:, 1, None]) & (cell_y * sy < b[:, 3, None])   # (n, height)
    inside_x = ((cell_x + 1) * sx > b[:, 0, None]) & (cell_x * sx < b[:, 2, None])   # (n, width)
    return inside_y[:, :, None] & inside_x[:, None, :]                               # (n, height, width)


class BoxScores(NamedTuple):
    """How well spatial maps find the target: each a mean over the images (see :func:`box_scores`)."""
    peak_in_box: float     # share of images whose map peaks in a cell that overlaps the target's box
    mass_in_box: float     # the map's mass inside the box / its total mass, averaged over images
    box_area: float        # the box's share of the map's cells: what a flat map scores for mass_in_box

    def __repr__(self) -> str:         # what a notebook cell shows: rounded, in the chapter's language
        return t("data.box_scores", peak=self.peak_in_box, mass=self.mass_in_box, area=self.box_area)


def box_scores(maps: torch.Tensor, boxes: torch.Tensor, image_size: Union[int, Sequence[int]]) -> BoxScores:
    """Scores non-negative spatial maps ``(n, h, w)`` against the targets' pixel ``boxes`` ``(n, 4)``.

    A map cell is inside when its footprint on the image overlaps the box (:func:`box_masks`). The peak is
    the first maximal cell in row-major order.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3 or not isinstance(boxes, torch.Tensor) \
            or boxes.shape != (maps.shape[0], 4):
        got = [tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for v in (maps, boxes)]
        raise ValueError(f"box_scores expects maps (n, h, w) and boxes (n, 4), got {got[0]} and {got[1]}")
    n, h, w = maps.shape
    maps = maps.detach().float().cpu()
    inside = box_masks(boxes.cpu(), h, w, image_size)                          # (n, h, w)
    peak = maps.flatten(1).argmax(1)                                           # (n,)
    hit = inside.flatten(1)[torch.arange(n), peak].float().mean().item()
    mass = ((maps * inside).sum((1, 2)) / maps.sum((1, 2)).clamp_min(1e-12)).mean().item()
    return BoxScores(hit, mass, inside.float().mean().item())


def centre_maps(n: int, h: int, w: int) -> torch.Tensor:
    """A guess that needs no image: every map peaks at the centre cell ``(h // 2, w // 2)``."""
    m = torch.zeros(n, h, w)
    m[:, h // 2, w // 2] = 1.0
    return m


def brightness_maps(images: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A rule that needs no learning: each cell's mean brightness (max over RGB), ``(n, h, w)``."""
    return F.adaptive_avg_pool2d(images.amax(1, keepdim=True), (h, w))[:, 0]


def box_means(maps: torch.Tensor, boxes: torch.Tensor, image_size: Union[int, Sequence[int]]):
    """Each map's mean over the cells inside the target's box and over the cells outside it: two ``(n,)``
    tensors, for maps ``(n, h, w)`` of any sign and pixel ``boxes`` ``(n, 4)`` (cells as in :func:`box_masks`).

    Their ratio, inside over outside, ignores a common scale of the map, not an offset: ``1 + m`` has the
    ratio ``(1 + a) / (1 + b)``, pulled towards 1, where ``m`` has ``a / b``."""
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3 or not isinstance(boxes, torch.Tensor) \
            or boxes.shape != (maps.shape[0], 4):
        got = [tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for v in (maps, boxes)]
        raise ValueError(f"box_means expects maps (n, h, w) and boxes (n, 4), got {got[0]} and {got[1]}")
    maps = maps.detach().float().cpu()
    inside = box_masks(boxes.cpu(), *maps.shape[1:], image_size).float()       # (n, h, w)
    mean_in = (maps * inside).sum((1, 2)) / inside.sum((1, 2)).clamp_min(1)
    mean_out = (maps * (1 - inside)).sum((1, 2)) / (1 - inside).sum((1, 2)).clamp_min(1)
    return mean_in, mean_out


def reversal_dataset(n: int, length: int = 8, vocab: int = 16, seed: int = 0) -> ReversalData:
    """``n`` random sequences of ``length`` tokens from ``0..vocab-1``, each paired with its reversal.

    Output position i must copy input position ``length - 1 - i``: a model that solves it with one
    self-attention layer attends along the anti-diagonal.
    """
    check_positive(n, "n", "reversal_dataset")
    check_positive(length, "length", "reversal_dataset", minimum=2)
    check_positive(vocab, "vocab", "reversal_dataset", minimum=2)
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(vocab, (n, length), generator=g)       # (n, L)
    return ReversalData(inputs, inputs.flip(1))


#: Photographs that ship with matplotlib (``matplotlib.cbook.get_sample_data``).
SAMPLE_PHOTOS = {"grace_hopper": "grace_hopper.jpg"}


def sample_photo(name: Optional[str] = None, size: Union[None, int, Sequence[int]] = None) -> torch.Tensor:
    """A real photograph as a float tensor (3, H, W) in [0, 1], from matplotlib's sample data.

    ``name``: a key of ``SAMPLE_PHOTOS`` (default ``"grace_hopper"``, 512 x 600 pixels).
    ``size``: None keeps the original; an int centre-crops to a square and resizes to ``size`` x ``size``;
    ``(H, W)`` resizes to exactly that (antialiased bilinear).
    """
    import matplotlib.cbook
    import matplotlib.image

    name = "grace_hopper" if name is None else name
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"sample_photo: name must be one of {sorted(SAMPLE_PHOTOS)}, got {name!r}")
    with matplotlib.cbook.get_sample_data(SAMPLE_PHOTOS[name]) as f:
        array = matplotlib.image.imread(f, format=SAMPLE_PHOTOS[name].rsplit(".", 1)[-1])
    photo = torch.as_tensor(array.copy())                     # (H, W, 3) uint8 or float
    photo = photo.float() / 255.0 if not photo.is_floating_point() else photo.float()
    photo = photo[..., :3].permute(2, 0, 1).contiguous()      # (3, H, W)
    if size is None:
        return photo
    if isinstance(size, int):
        check_positive(size, "size", "sample_photo")
        h, w = photo.shape[1:]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        photo = photo[:, top:top + s, left:left + s]          # (3, s, s): centre square
        size = (size, size)
    if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size):
        raise ValueError(f"sample_photo: size must be None, an int or (H, W) of positive ints, got {size!r}")
    resized = F.interpolate(photo[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return resized[0].clamp(0.0, 1.0)                         # (3, H, W)


# ---------------------------------------------------------------- the cue task: saliency is not relevance

#: The colours of :func:`cue_dataset`: RGB in [0, 1], the same maximum and the same mean (equally bright).
#: The first, red, is the cue: the target is always red, the distractors green or blue.
CUE_COLOURS = torch.tensor([[1.0, 0.25, 0.25], [0.25, 1.0, 0.25], [0.25, 0.25, 1.0]])


class CueData(NamedTuple):
    """``images`` (n, 3, H, W) in [0, 1]; ``labels`` (n,) int64 into ``SHAPE_CLASSES``, the red target's shape;
    ``boxes`` (n, 4) the target's pixel box ``(x0, y0, x1, y1)``, ends exclusive; ``distractor_boxes``
    (n, k, 4) the k distractors' boxes; ``distractor_labels`` (n, k) their shapes."""
    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    distractor_boxes: torch.Tensor
    distractor_labels: torch.Tensor


def cue_dataset(n: int, size: int = 32, seed: int = 0, *, num_distractors: int = 2, min_radius: float = 3.0,
                max_radius: float = 4.5, noise: float = 0.08) -> CueData:
    """``n`` images with ``1 + num_distractors`` filled shapes that do not touch; the red one is the target.

    Every shape is a square, circle, cross or triangle (drawn independently, so a distractor may have the
    target's shape) of half-size ``min_radius``..``max_radius``, filled with one of ``CUE_COLOURS`` times a
    brightness in [0.85, 1] drawn the same way for every shape. The target is red, each distractor green or
    blue: all are equally bright (the same maximum and mean over RGB), so a rule that looks for the
    brightest place finds a distractor as often as the target, while the label (the red shape's class)
    depends on the target alone. Same arguments, same tensors (made once per process, returned as copies).
    """
    name = "cue_dataset"
    check_positive(n, "n", name)
    check_positive(size, "size", name, minimum=16)
    check_positive(num_distractors, "num_distractors", name, minimum=0)
    free = size - 2 * (max_radius + 1)                       # the span of the centres, per axis
    if not 1 <= min_radius <= max_radius or free < (1 + num_distractors) ** 0.5 * (2 * max_radius + 2):
        raise ValueError(f"{name}: need 1 <= min_radius <= max_radius and room for {1 + num_distractors} shapes "
                         f"that do not touch, got min_radius={min_radius}, max_radius={max_radius}, size={size}")
    key = ("cue", n, size, seed, num_distractors, float(min_radius), float(max_radius), float(noise))
    return _remembered(key, lambda: _draw_cue(*key[1:]))


def _place_apart(g: torch.Generator, n: int, r: torch.Tensor, low: float, high: float, tries: int = 32):
    """Whole-pixel centres (n, k) x and y in [low, high] such that shapes of half-sizes ``r`` (n, k) keep at
    least two pixels between each other: ``tries`` candidate layouts per image at a time, the first that fits."""
    k = r.shape[1]
    cx, cy = torch.zeros(n, k), torch.zeros(n, k)
    todo = torch.arange(n)
    apart = r[:, :, None] + r[:, None, :] + 2 + torch.eye(k) * -1e9           # (n, k, k); no constraint on i = i
    while len(todo):
        m = len(todo)
        px = (low + _uniform(g, m, tries, k) * (high - low)).round()           # (m, tries, k)
        py = (low + _uniform(g, m, tries, k) * (high - low)).round()
        dist = ((px[..., :, None] - px[..., None, :]) ** 2 + (py[..., :, None] - py[..., None, :]) ** 2).sqrt()
        fits = (dist >= apart[todo][:, None]).flatten(2).all(2)                # (m, tries)
        found = fits.any(1)
        first = fits.float().argmax(1)                                         # the first layout that fits
        done = todo[found]
        cx[done], cy[done] = px[found, first[found]], py[found, first[found]]
        todo = todo[~found]
    return cx, cy


def _draw_cue(n, size, seed, num_distractors, min_radius, max_radius, noise) -> CueData:
    g = torch.Generator().manual_seed(seed)
    k = 1 + num_distractors
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")   # (H, W) each
    images = _uniform(g, n, 1, 1, 1, high=0.25).expand(n, 3, size, size).clone()     # dark grey + noise
    images += noise * torch.randn(n, 3, size, size, generator=g)

    classes = torch.randint(len(SHAPE_CLASSES), (n, k), generator=g)                  # (n, k); column 0: target
    colour = torch.cat([torch.zeros(n, 1, dtype=torch.long),                          # the target is red,
                        1 + torch.randint(len(CUE_COLOURS) - 1, (n, num_distractors), generator=g)], 1)
    rgb = CUE_COLOURS[colour] * _uniform(g, n, k, 1, low=0.85)                        # (n, k, 3): same law for all
    r = _uniform(g, n, k, low=min_radius, high=max_radius)                            # (n, k)
    cx, cy = _place_apart(g, n, r, max_radius + 1, size - 2 - max_radius)

    idx = torch.arange(size)
    boxes = []
    for j in range(k):
        dx, dy = xx - cx[:, j, None, None], yy - cy[:, j, None, None]                 # (n, H, W)
        mask = _shape_masks(dx, dy, r[:, j, None, None])[torch.arange(n), classes[:, j]]   # (n, H, W)
        images = torch.where(mask[:, None], rgb[:, j, :, None, None].expand_as(images), images)
        rows, cols = mask.any(2), mask.any(1)                                         # (n, H), (n, W)
        boxes.append(torch.stack([torch.where(cols, idx, size).amin(1), torch.where(rows, idx, size).amin(1),
                                  torch.where(cols, idx, -1).amax(1) + 1, torch.where(rows, idx, -1).amax(1) + 1],
                                 dim=1))                                              # (n, 4)
    images = (images + 0.5 * noise * torch.randn(n, 3, size, size, generator=g)).clamp(0.0, 1.0)
    boxes = torch.stack(boxes, dim=1)                                                 # (n, k, 4)
    return CueData(images.contiguous(), classes[:, 0].clone(), boxes[:, 0].clone(), boxes[:, 1:].clone(),
                   classes[:, 1:].clone())


def redness_maps(images: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """How red each cell of an ``h`` x ``w`` grid over ``images`` (n, 3, H, W) is: the red channel above the
    larger of green and blue (0 for grey, green or blue pixels), averaged over the cell: ``(n, h, w)``. The cue of
    :func:`cue_dataset`, measured on any image."""
    red = (images[:, 0] - images[:, 1:].amax(1)).clamp(min=0)                      # (n, H, W)
    return F.adaptive_avg_pool2d(red[:, None], (h, w))[:, 0]


def peak_on_distractor(maps: torch.Tensor, data: CueData, image_size: Union[int, Sequence[int]]) -> float:
    """The share of maps ``(n, h, w)`` whose peak (the first maximal cell) lies on a distractor of
    :func:`cue_dataset` and not on the target: a cell counts when its footprint overlaps the box."""
    n, h, w = maps.shape
    if data.boxes.shape != (n, 4):
        raise ValueError(f"peak_on_distractor expects maps (n, h, w) for the n images of the data, "
                         f"got {tuple(maps.shape)} for {len(data.boxes)} images")
    peak = maps.detach().float().cpu().flatten(1).argmax(1)                          # (n,)
    rows = torch.arange(n)
    on_target = box_masks(data.boxes, h, w, image_size).flatten(1)[rows, peak]      # (n,)
    on_other = torch.zeros(n, dtype=torch.bool)
    for j in range(data.distractor_boxes.shape[1]):
        on_other |= box_masks(data.distractor_boxes[:, j], h, w, image_size).flatten(1)[rows, peak]
    return (on_other & ~on_target).float().mean().item()
