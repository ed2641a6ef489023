"""Interactive explorers: turn a mechanism's knobs and watch its shapes, costs and attention map change.

``explorer(name, **options)`` gives, for every mechanism in :data:`attention_lib.MECHANISMS` (and for
``"patch_embedding"``), sliders and drop-downs for the input size and the mechanism's knobs. Every
change recomputes three things from the library itself: the shape trace
(:func:`attention_lib.instruments.trace_shapes`), the parameter and FLOP counts
(:func:`~attention_lib.instruments.count_parameters`, :func:`~attention_lib.instruments.count_flops`)
and the attention map (drawn by :mod:`attention_lib.viz`).

Two modes, one call:

* in a live kernel, an ``ipywidgets`` container built on :class:`ipywidgets.Output` and
  ``clear_output(wait=True)`` (``interact`` would stack a new plot under the old one on Colab);
* when ``ATTENTION_BOOK_STATIC=1`` (set by ``make book``), the static site has no kernel, so the same
  call returns a self-contained HTML/JavaScript viewer with frames precomputed for a small grid of
  settings (at most :data:`MAX_FRAMES`): no external script, no URL, only inline code and data.

Settings are deterministic: the module is initialised and the input drawn from a fixed seed, so the
same settings always give the same picture, in the notebook and on the published page.
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import os
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import ipywidgets
import torch
from torch import nn

from . import i18n
from .format import format_count, format_shapes, format_si
from .i18n import t

STATIC_ENV = "ATTENTION_BOOK_STATIC"   #: environment variable that switches to the static viewer
MAX_FRAMES = 30                        #: most precomputed frames in one static viewer
MAX_HTML_BYTES = 1_000_000             #: size budget of one static viewer
CSS_CLASS = "attention-explorer-static"
MAX_WIDTH_PX = 560                     # embedded pictures: at most this wide, at most MAX_DPI
MAX_DPI = 80
PNG_COLORS = 256                       # palette PNGs: a quarter of the bytes of full colour

i18n.register({
    "widgets.title": {"en": "Explorer: {name}", "zh": "探索器：{name}"},
    "widgets.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "widgets.dim": {"en": "width D", "zh": "维度 D"},
    "widgets.heads": {"en": "heads h", "zh": "头数 h"},
    "widgets.height": {"en": "height H", "zh": "高 H"},
    "widgets.width": {"en": "width W", "zh": "宽 W"},
    "widgets.channels": {"en": "channels C", "zh": "通道数 C"},
    "widgets.reduction": {"en": "reduction r", "zh": "缩减率 r"},
    "widgets.kernel_size": {"en": "kernel size k", "zh": "卷积核大小 k"},
    "widgets.yes": {"en": "yes", "zh": "是"},
    "widgets.no": {"en": "no", "zh": "否"},
    "widgets.params": {"en": "parameters", "zh": "参数量"},
    "widgets.flops": {"en": "FLOPs", "zh": "浮点运算次数"},
    "widgets.input": {"en": "input", "zh": "输入"},
    "widgets.output": {"en": "output", "zh": "输出"},
    "widgets.top_ops": {"en": "by operator", "zh": "按算子"},
    "widgets.shape_trace": {"en": "Shape trace", "zh": "形状追踪"},
    "widgets.static_note": {"en": "Precomputed when the book was built ({n} settings); run the notebook "
                                  "to try every setting.",
                            "zh": "以下 {n} 组设置在构建本书时预先计算；在 Jupyter 中运行本章可尝试全部设置。"},
})


# --------------------------------------------------------------------------------------------
# Knobs, and the explorers the chapters register
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Control:
    """One knob: a keyword of ``explorer(**options)``, its values live and in the static grid."""
    name: str
    label: str                      # i18n key of the widget label
    options: tuple                  # values a live slider or drop-down offers
    default: Any
    static: tuple                   # values precomputed for the static viewer (includes the default)
    dropdown: bool = False          # a drop-down instead of a slider
    fmt: Callable[[Any], str] = str  # how a value is shown (called at render time: i18n-aware)

    def label_of(self, value) -> str:
        return self.fmt(value)


def yes_no(value) -> str:
    """``yes``/``no`` in the current language: the label of a boolean knob's values."""
    return t("widgets.yes") if value else t("widgets.no")


def token_controls(static_tokens=(8, 16)) -> tuple[Control, ...]:
    """The input knobs of a token explorer: tokens N and width D."""
    return (Control("tokens", "widgets.tokens", (4, 8, 16, 32, 64), 16, tuple(static_tokens)),
            Control("dim", "widgets.dim", (32, 64, 128), 64, (64,)))


def map_controls(static_h=(8, 16), static_w=(8, 16), channels=(16, 32, 64, 128),
                 static_channels=(64,)) -> tuple[Control, ...]:
    """The input knobs of a feature-map explorer: height H, width W and channels C."""
    return (Control("height", "widgets.height", (4, 8, 16, 32), 8, tuple(static_h)),
            Control("width", "widgets.width", (4, 8, 16, 32), 8, tuple(static_w)),
            Control("channels", "widgets.channels", tuple(channels), 64, tuple(static_channels)))


@dataclass(frozen=True)
class ExplorerSpec:
    """One explorer: what input it draws, its knobs, how to build the module and draw its map.

    Chapters declare their explorers with :func:`register_explorer`; ``explorer(name)`` finds them.
    """
    name: str                                               # a registry key, or another module's name
    layout: str                                             # example input: "tokens", "feature_map" or "image"
    controls: tuple[Control, ...]                           # the knobs, in display order
    build: Callable[[Mapping], nn.Module]                   # settings -> the module (in eval mode after)
    plot: Callable[[nn.Module, torch.Tensor, Mapping], Any]  # (module, input, settings) -> matplotlib Figure
    notes: tuple[str, ...] = ()                             # i18n keys of notes shown under the counts
    title: Optional[Mapping[str, str]] = None               # display name per language (default: the registry's)

    def control(self, name: str) -> Control:
        return next(c for c in self.controls if c.name == name)

    def display_name(self) -> str:
        if self.title is not None:
            return self.title.get(i18n.get_language(), self.title["en"])
        from ..registry import MECHANISMS
        return MECHANISMS[self.name].display_name()


_EXPLORERS: dict[str, ExplorerSpec] = {}


def register_explorer(spec: ExplorerSpec) -> ExplorerSpec:
    """Make ``explorer(spec.name)`` available (a chapter module calls this at import time)."""
    if not isinstance(spec, ExplorerSpec):
        raise ValueError(f"register_explorer expects an ExplorerSpec, got {type(spec).__name__}")
    _EXPLORERS[spec.name] = spec
    return spec


def _all_specs() -> dict[str, ExplorerSpec]:
    from .. import chapters
    chapters.load_all()          # every chapter registers its explorers when imported
    return _EXPLORERS


def names() -> list[str]:
    """Every name :func:`explorer` accepts: the registry's mechanisms first, then the other modules."""
    from ..registry import MECHANISMS
    specs = _all_specs()
    return [n for n in MECHANISMS if n in specs] + sorted(n for n in specs if n not in MECHANISMS)


def _spec(name: str) -> ExplorerSpec:
    specs = _EXPLORERS if name in _EXPLORERS else _all_specs()
    if not isinstance(name, str) or name not in specs:
        raise ValueError(f"explorer: unknown mechanism {name!r}; expected one of {names()}")
    return specs[name]


# --------------------------------------------------------------------------------------------
# One frame: the module at one setting, its trace, costs and picture
# --------------------------------------------------------------------------------------------

def _example_input(spec: ExplorerSpec, s: Mapping, seed: int) -> torch.Tensor:
    """A fixed input for the setting: tokens, or a feature map with an off-centre object."""
    g = torch.Generator().manual_seed(seed)
    if spec.layout == "tokens":
        return torch.randn(1, s["tokens"], s["dim"], generator=g)                 # (1, N, D)
    if spec.layout == "image":
        C, H, W = 3, s["image_size"], s["image_size"]
    else:
        C, H, W = s["channels"], s["height"], s["width"]
    yy = torch.linspace(-1, 1, H)[:, None]                                         # (H, 1)
    xx = torch.linspace(-1, 1, W)[None, :]                                         # (1, W)
    blob = torch.exp(-((yy - 0.35) ** 2 + (xx + 0.3) ** 2) / 0.12)                 # (H, W)
    weight = torch.randn(1, C, 1, 1, generator=g).abs()                           # (1, C, 1, 1)
    return 0.5 * torch.randn(1, C, H, W, generator=g) + 2.0 * weight * blob       # (1, C, H, W)


def _build(spec: ExplorerSpec, s: Mapping, seed: int) -> tuple[nn.Module, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):      # fixed initialisation, global RNG left untouched
        torch.manual_seed(seed)
        module = spec.build(dict(s)).eval()
    return module, _example_input(spec, s, seed + 1)


def _op_name(op) -> str:
    text = str(getattr(op, "__name__", op))
    return text.replace("aten.", "").split(".default")[0]


@dataclass
class Frame:
    """Everything shown for one setting."""
    settings: dict
    params: int
    flops: float
    by_operator: dict
    input_shape: tuple
    output_shape: tuple
    table_html: str
    png: bytes = b""

    def counts_html(self, notes: Sequence[str] = ()) -> str:
        ops = sorted(self.by_operator.items(), key=lambda kv: -kv[1])[:4]
        ops_text = ", ".join(f"{html.escape(_op_name(k))} {format_si(v)}" for k, v in ops if v)
        lines = [f"<b>{html.escape(t('widgets.params'))}</b>: {format_count(self.params)} &nbsp;·&nbsp; "
                 f"<b>{html.escape(t('widgets.flops'))}</b>: {format_si(self.flops)}"
                 + (f" &nbsp;({html.escape(t('widgets.top_ops'))}: {ops_text})" if ops_text else ""),
                 f"{html.escape(t('widgets.input'))} {format_shapes(self.input_shape)} → "
                 f"{html.escape(t('widgets.output'))} {format_shapes(self.output_shape)}"]
        lines += [f"<i>{html.escape(t(k))}</i>" for k in notes]
        return '<div class="attention-explorer-counts">' + "<br>".join(lines) + "</div>"

    def trace_html(self) -> str:
        return (f"<details><summary>{html.escape(t('widgets.shape_trace'))}</summary>"
                f"{self.table_html}</details>")


def _figure_png(fig) -> bytes:
    """The figure as a small palette PNG, at most :data:`MAX_WIDTH_PX` wide; the figure is closed."""
    import matplotlib.pyplot as plt
    from PIL import Image
    try:
        dpi = min(MAX_DPI, MAX_WIDTH_PX / fig.get_figwidth())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
        buf.seek(0)
        image = Image.open(buf).convert("RGB").quantize(colors=PNG_COLORS, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()
    finally:
        plt.close(fig)


def render_frame(name: str, settings: Optional[Mapping] = None, *, seed: int = 0, picture: bool = True) -> Frame:
    """Build the module at ``settings`` (defaults filled in), trace it, count it and draw its map."""
    from . import instruments
    spec = _spec(name)
    s = {c.name: c.default for c in spec.controls}
    s.update(settings or {})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # tiny tensors: one thread is ~10x faster than two on a busy machine
    try:
        module, x = _build(spec, s, seed)
        with torch.no_grad():
            records = instruments.trace_shapes(module, x, views=False)
            flops = instruments.count_flops(module, x)
            png = _figure_png(spec.plot(module, x, s)) if picture else b""
    finally:
        torch.set_num_threads(threads)
    return Frame(dict(s), int(instruments.count_parameters(module)), float(flops.total),
                 {_op_name(k): float(v) for k, v in dict(flops.by_operator).items()},
                 tuple(x.shape), tuple(records[0].outputs[0]),
                 instruments.shape_table(records)._repr_html_(), png)


# --------------------------------------------------------------------------------------------
# explorer(): live widgets or the static viewer
# --------------------------------------------------------------------------------------------

def _resolve(spec: ExplorerSpec, options: Mapping) -> tuple[Control, ...]:
    """Apply ``explorer(**options)``: a value fixes a knob's start, a list restricts its values."""
    known = {c.name for c in spec.controls}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"explorer({spec.name!r}): unknown option(s) {unknown}; expected some of {sorted(known)}")
    controls = []
    for c in spec.controls:
        if c.name not in options:
            controls.append(c)
            continue
        value = options[c.name]
        if c.name == "kernel_sizes" and all(isinstance(k, int) for k in value):
            value = tuple(value)                  # one setting, e.g. kernel_sizes=[3, 5]
        if isinstance(value, list) or (isinstance(value, tuple) and c.name != "kernel_sizes"):
            values = tuple(value)
            if not values:
                raise ValueError(f"explorer({spec.name!r}): {c.name} needs at least one value, got {value!r}")
            default = c.default if c.default in values else values[0]
            controls.append(Control(c.name, c.label, values, default, values, c.dropdown, c.fmt))
        else:
            if c.name == "kernel_sizes":
                value = tuple(value)
            if value not in c.options:
                raise ValueError(f"explorer({spec.name!r}): {c.name}={value!r} is not offered; "
                                 f"expected one of {list(c.options)} (or pass a list of values)")
            static = c.static if value in c.static else tuple(sorted({*c.static, value}, key=c.options.index))
            controls.append(Control(c.name, c.label, c.options, value, static, c.dropdown, c.fmt))
    return tuple(controls)


def is_static() -> bool:
    """True when the book build asked for static viewers (``ATTENTION_BOOK_STATIC=1``)."""
    return os.environ.get(STATIC_ENV) == "1"


def explorer(name: str, *, static: Optional[bool] = None, seed: int = 0, **options):
    """An explorer for mechanism ``name`` (see :func:`names`).

    ``options`` set a knob's starting value (``reduction=4``) or restrict its values
    (``reduction=[4, 16]``). ``static`` forces the mode; by default it follows ``ATTENTION_BOOK_STATIC``.
    Returns the ipywidgets container (live) or an ``IPython.display.HTML`` viewer (static).
    """
    spec = _spec(name)
    controls = _resolve(spec, options)
    if static is None:
        static = is_static()
    if static:
        return static_viewer(name, seed=seed, **{c.name: list(c.static) for c in controls},
                             _defaults={c.name: c.default for c in controls})
    return ExplorerWidget(spec, controls, seed)


class ExplorerWidget(ipywidgets.VBox):
    """The live explorer: controls on top, then the counts and the shape trace, then the map.

    ``controls`` maps each knob to its widget; ``frame`` is the :class:`Frame` shown now and
    ``updates`` counts the recomputations (both for tests and curious readers).
    """

    def __init__(self, spec: ExplorerSpec, controls: Sequence[Control], seed: int = 0):
        self.spec, self.seed = spec, seed
        self.controls = {}
        for c in controls:
            options = [(c.label_of(v), v) for v in c.options]
            kwargs = dict(options=options, value=c.default, description=t(c.label),
                          style={"description_width": "initial"})
            if c.dropdown or len(c.options) == 1:
                widget = ipywidgets.Dropdown(**kwargs)
            else:
                widget = ipywidgets.SelectionSlider(continuous_update=False, **kwargs)
            self.controls[c.name] = widget
        self.info_output = ipywidgets.Output()
        self.plot_output = ipywidgets.Output()
        self.frame: Optional[Frame] = None
        self.error: Optional[str] = None
        self.updates = 0
        title = ipywidgets.HTML(
            f"<b>{html.escape(t('widgets.title', name=spec.display_name()))}</b>")
        row = ipywidgets.HBox(list(self.controls.values()), layout=ipywidgets.Layout(flex_flow="row wrap"))
        super().__init__([title, row, self.info_output, self.plot_output])
        for widget in self.controls.values():
            widget.observe(self.update, names="value")
        self.update()

    @property
    def settings(self) -> dict:
        return {name: widget.value for name, widget in self.controls.items()}

    def update(self, change=None) -> None:
        """Recompute the frame for the current settings and redraw (replacing, never stacking)."""
        from IPython.display import HTML, Image
        try:
            frame = render_frame(self.spec.name, self.settings, seed=self.seed)
        except ValueError as err:     # a combination the module refuses: say why, keep the widget alive
            self.error = str(err)
            _show(self.info_output, HTML(f"<b>{html.escape(type(err).__name__)}</b>: {html.escape(str(err))}"))
            return
        self.error = None
        self.frame = frame
        self.updates += 1
        _show(self.info_output, HTML(frame.counts_html(self.spec.notes) + frame.trace_html()))
        _show(self.plot_output, Image(data=frame.png, format="png"))


def _show(out, obj) -> None:
    """Replace what ``out`` shows by ``obj`` without stacking (kernel: ``clear_output(wait=True)``)."""
    from IPython import get_ipython
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import clear_output, display
        with out:
            clear_output(wait=True)
            display(obj)
    else:   # no kernel (tests, scripts): keep the state on the widget itself
        from IPython.core.formatters import format_display_data
        data, metadata = format_display_data(obj)
        out.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)


# --------------------------------------------------------------------------------------------
# The static viewer
# --------------------------------------------------------------------------------------------

_CSS = """
#{id} {{ font-family: system-ui, sans-serif; font-size: 13px; border: 1px solid #ccc; border-radius: 6px;
  padding: 8px 12px; background: #fff; color: #222; max-width: 760px; }}
#{id} .ae-controls {{ display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0; }}
#{id} .ae-controls label {{ display: flex; align-items: center; gap: 6px; }}
#{id} .ae-controls output {{ min-width: 3em; font-weight: 600; }}
#{id} img {{ max-width: 100%; height: auto; display: block; margin-top: 6px; }}
#{id} table {{ border-collapse: collapse; font-size: 12px; margin-top: 4px; }}
#{id} th, #{id} td {{ border: 1px solid #ddd; padding: 1px 6px; text-align: left; }}
#{id} .ae-note {{ color: #666; font-size: 12px; }}
"""

_JS = """
(function () {
  var root = document.getElementById("%(id)s");
  if (!root) { return; }
  var data = JSON.parse(document.getElementById("%(id)s-data").textContent);
  var inputs = root.querySelectorAll("[data-control]");
  var img = root.querySelector(".ae-plot"), counts = root.querySelector(".ae-counts"),
      trace = root.querySelector(".ae-trace");
  function show() {
    var key = [];
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i], c = data.controls[+el.getAttribute("data-control")], v = +el.value;
      key.push(v);
      var out = root.querySelector('output[data-for="' + el.getAttribute("data-control") + '"]');
      if (out) { out.textContent = c.labels[v]; }
    }
    var f = data.frames[key.join(",")];
    if (!f) { return; }
    img.src = "data:image/png;base64," + f.png;
    counts.innerHTML = data.counts[f.c];
    trace.innerHTML = data.tables[f.t];
    root.setAttribute("data-current", key.join(","));
  }
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", show);
    inputs[i].addEventListener("change", show);
  }
  show();
})();
"""


def static_viewer(name: str, *, seed: int = 0, _defaults: Optional[Mapping] = None, **grid):
    """The self-contained HTML/JavaScript viewer: frames precomputed for every combination of ``grid``.

    ``grid`` maps a knob to the values to precompute (defaults: the knob's static values); at most
    :data:`MAX_FRAMES` combinations. Returns ``IPython.display.HTML``.
    """
    from IPython.display import HTML
    return HTML(static_html(name, seed=seed, _defaults=_defaults, **grid))


def static_html(name: str, *, seed: int = 0, _defaults: Optional[Mapping] = None, **grid) -> str:
    """The HTML string of :func:`static_viewer`."""
    spec = _spec(name)
    controls = _resolve(spec, {k: list(v) for k, v in grid.items()})
    defaults = {c.name: c.default for c in controls}
    defaults.update(_defaults or {})
    values = [c.static for c in controls]
    n = math.prod(len(v) for v in values)
    if n > MAX_FRAMES:
        raise ValueError(f"explorer({name!r}): the static grid has {n} settings, more than MAX_FRAMES="
                         f"{MAX_FRAMES}; pass shorter lists of values")
    vid = f"ae-{spec.name.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    tables, counts, frames = [], [], {}
    for combo in itertools.product(*[range(len(v)) for v in values]):
        settings = {c.name: c.static[i] for c, i in zip(controls, combo)}
        frame = render_frame(name, settings, seed=seed)
        table = frame.table_html
        count = frame.counts_html(spec.notes)
        if table not in tables:
            tables.append(table)
        if count not in counts:
            counts.append(count)
        frames[",".join(map(str, combo))] = {"png": base64.b64encode(frame.png).decode("ascii"),
                                             "t": tables.index(table), "c": counts.index(count)}
    data = {"controls": [{"name": c.name, "labels": [c.label_of(v) for v in c.static]} for c in controls],
            "frames": frames, "tables": tables, "counts": counts}

    starts = [c.static.index(defaults[c.name]) if defaults[c.name] in c.static else 0 for c in controls]
    first = frames[",".join(map(str, starts))]
    parts = []
    for i, (c, start) in enumerate(zip(controls, starts)):
        label = html.escape(t(c.label))
        if len(c.static) == 1:   # a fixed knob: shown, not movable
            parts.append(f'<label>{label} <select data-control="{i}" disabled>'
                         f'<option value="0">{html.escape(c.label_of(c.static[0]))}</option></select></label>')
        elif c.dropdown:
            opts = "".join(f'<option value="{j}"{" selected" if j == start else ""}>'
                           f"{html.escape(c.label_of(v))}</option>" for j, v in enumerate(c.static))
            parts.append(f'<label>{label} <select data-control="{i}" name="{c.name}">{opts}</select></label>')
        else:
            parts.append(f'<label>{label} <input type="range" data-control="{i}" name="{c.name}" min="0" '
                         f'max="{len(c.static) - 1}" step="1" value="{start}">'
                         f'<output data-for="{i}">{html.escape(c.label_of(c.static[start]))}</output></label>')
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    title = html.escape(t("widgets.title", name=spec.display_name()))
    return (
        f'<div class="{CSS_CLASS}" id="{vid}" data-frames="{n}" data-mechanism="{spec.name}">'
        f"<style>{_CSS.format(id=vid)}</style>"
        f"<div><b>{title}</b></div>"
        f'<div class="ae-controls">{"".join(parts)}</div>'
        f'<div class="ae-counts">{counts[first["c"]]}</div>'
        f'<details><summary>{html.escape(t("widgets.shape_trace"))}</summary>'
        f'<div class="ae-trace">{tables[first["t"]]}</div></details>'
        f'<img class="ae-plot" alt="{title}" src="data:image/png;base64,{first["png"]}">'
        f'<div class="ae-note">{html.escape(t("widgets.static_note", n=n))}</div>'
        f'<script type="application/json" id="{vid}-data">{payload}</script>'
        f"<script>{_JS % {'id': vid}}</script>"
        "</div>"
    )
