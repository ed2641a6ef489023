"""Interactive explorers: turn a mechanism's knobs and watch its shapes, costs and attention map change.

``explorer(name, **options)`` gives, for every explorer a chapter registers (:func:`register_explorer`),
sliders and drop-downs for the input size and the mechanism's knobs. A change shows three things
computed from the library itself: the shape trace (:func:`attention_lib.toolkit.instruments.trace_shapes`),
the parameter and FLOP counts, and the attention map, drawn by a map viewer of
:mod:`attention_lib.toolkit.viewer` that the reader can point at.

Two modes, one call:

* in a live kernel, an ``ipywidgets`` box. An update rebuilds only what the changed knob touches:
  modules, inputs, traces and FLOP counts are cached per setting (a picture-only knob such as a
  softmax temperature reuses them), and the picture is a viewer (HTML, drawn by the browser), so no
  matplotlib figure and no PNG is made per change: an update takes milliseconds
  (``python -m benchmarks.run --explorers`` measures every explorer at every setting);
* when ``ATTENTION_BOOK_STATIC=1`` (set by ``make book``), the static site has no kernel, so the same
  call returns a self-contained HTML/JavaScript explorer with the viewer data of a small grid of
  settings (at most :data:`MAX_FRAMES`), precomputed: no external script, no URL.

Settings are deterministic: the module is initialised and the input drawn from a fixed seed, so the
same settings always give the same picture, in the notebook and on the published page.
"""
from __future__ import annotations

import dataclasses
import html
import math
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import ipywidgets
import torch
from torch import nn

from . import i18n, viewer
from .format import format_count, format_shapes, format_si
from .i18n import t

STATIC_ENV = "ATTENTION_BOOK_STATIC"   #: environment variable that switches to the static viewer
MAX_FRAMES = 30                        #: most precomputed frames in one static viewer
MAX_HTML_BYTES = 1_000_000             #: size budget of one static viewer
CSS_CLASS = "attention-explorer-static"
GALLERY = 4                            #: example inputs per setting (a gallery for channel and spatial maps)
CACHE_SIZE = 64                        #: settings whose module, input, trace and counts stay cached
PICTURE_FLOPS = 400e6                  #: the gallery of a picture shrinks to stay within these FLOPs

i18n.register({
    "widgets.title": {"en": "Explorer: {name}", "zh": "探索器：{name}"},
    "widgets.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "widgets.dim": {"en": "width D", "zh": "宽度 D"},
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
    picture_only: bool = False      # changes only the picture (a softmax temperature): module and counts are reused
    continuous: bool = True         # a live slider redraws while it is dragged

    def label_of(self, value) -> str:
        return self.fmt(value)


def yes_no(value) -> str:
    """``yes``/``no`` in the current language: the label of a boolean knob's values."""
    return t("widgets.yes") if value else t("widgets.no")


def input_labels(n: int) -> list[str]:
    """"input 0", "input 1"...: names for the example inputs of a gallery picture, in the current language."""
    return [f"{t('widgets.input')} {i}" for i in range(n)]


def token_controls(static_tokens=(8, 16)) -> tuple[Control, ...]:
    """The input knobs of a token explorer: tokens N and width D."""
    return (Control("tokens", "widgets.tokens", (4, 8, 16, 32, 64), 16, tuple(static_tokens)),
            Control("dim", "widgets.dim", (32, 64, 128), 64, (64,)))


def map_controls(static_h=(8, 16), static_w=(8, 16), channels=(16, 32, 64, 128),
                 static_channels=(64,), sizes=(4, 8, 16, 32)) -> tuple[Control, ...]:
    """The input knobs of a feature-map explorer: height H, width W (each one of ``sizes``) and channels C."""
    return (Control("height", "widgets.height", tuple(sizes), 8, tuple(static_h)),
            Control("width", "widgets.width", tuple(sizes), 8, tuple(static_w)),
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
    # (module, input, settings) -> the picture: an attention_lib.viewer viewer (or a tuple of them), drawn
    # by the browser; a matplotlib Figure also works but costs a PNG per change (100-500 ms).
    # ``input`` holds GALLERY example inputs (B = GALLERY); the counts and the trace use the first one.
    plot: Callable[[nn.Module, torch.Tensor, Mapping], Any]
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
# One frame: the module at one setting, its trace, costs and picture (cached per setting)
# --------------------------------------------------------------------------------------------

def _example_input(spec: ExplorerSpec, s: Mapping, seed: int, batch: int = GALLERY) -> torch.Tensor:
    """Fixed inputs for the setting: tokens, a photograph, or feature maps with an object (a blob)
    at a different place in each of the ``batch`` inputs."""
    g = torch.Generator().manual_seed(seed)
    if spec.layout == "tokens":
        return torch.randn(batch, s["tokens"], s["dim"], generator=g)              # (B, N, D)
    if spec.layout == "image":
        from .data import sample_photo
        photo = sample_photo(size=s["image_size"])                                 # (3, H, W)
        return torch.stack([photo if i % 2 == 0 else photo.flip(-1) for i in range(batch)])
    C, H, W = s["channels"], s["height"], s["width"]
    yy = torch.linspace(-1, 1, H)[None, :, None]                                   # (1, H, 1)
    xx = torch.linspace(-1, 1, W)[None, None, :]                                   # (1, 1, W)
    angle = 2.4 + 2 * math.pi * torch.arange(batch)[:, None, None] / batch       # one place per input
    blob = torch.exp(-((yy - 0.45 * angle.sin()) ** 2 + (xx - 0.45 * angle.cos()) ** 2) / 0.12)   # (B, H, W)
    weight = torch.randn(batch, C, 1, 1, generator=g).abs()                       # (B, C, 1, 1)
    return 0.5 * torch.randn(batch, C, H, W, generator=g) + 2.0 * weight * blob[:, None]   # (B, C, H, W)


def _setting_key(spec: ExplorerSpec, s: Mapping, seed: int, picture: bool) -> tuple:
    return (spec.name, seed) + tuple((c.name, s[c.name]) for c in spec.controls if picture or not c.picture_only)


class _LRU(OrderedDict):
    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


_MODULES: _LRU = _LRU()      # setting -> (module, input)
_COUNTS: _LRU = _LRU()       # setting -> Counts: traced and counted once per module and shape
_PICTURES: _LRU = _LRU()     # setting (picture-only knobs included) and language -> viewer


def _build(spec: ExplorerSpec, s: Mapping, seed: int) -> tuple[nn.Module, torch.Tensor]:
    def make():
        with torch.random.fork_rng(devices=[]):      # fixed initialisation, global RNG left untouched
            torch.manual_seed(seed)
            module = spec.build(dict(s)).eval()
        return module, _example_input(spec, s, seed + 1)
    return _MODULES.get_or(_setting_key(spec, s, seed, picture=False), make)


def _op_name(op) -> str:
    text = str(getattr(op, "__name__", op))
    return text.replace("aten.", "").split(".default")[0]


@dataclass(frozen=True)
class Counts:
    """What a setting costs, for one example input: parameters, FLOPs (total and by operator), shapes."""
    params: int
    flops: float
    by_operator: dict
    input_shape: tuple
    output_shape: tuple
    records: tuple                  # the shape trace (attention_lib.toolkit.instruments.ShapeRecord)


def _counts(spec: ExplorerSpec, s: Mapping, seed: int, module: nn.Module, x: torch.Tensor) -> Counts:
    from . import instruments

    def make():
        one = x[:1]
        records = instruments.trace_shapes(module, one, views=False)
        flops = instruments.count_flops(module, one)
        return Counts(int(instruments.count_parameters(module)), float(flops.total),
                      {_op_name(k): float(v) for k, v in dict(flops.by_operator).items()},
                      tuple(one.shape), tuple(records[0].outputs[0]), tuple(records))
    return _COUNTS.get_or(_setting_key(spec, s, seed, picture=False), make)


@dataclass
class Frame:
    """Everything shown for one setting: its counts and its picture (a viewer, or PNG bytes)."""
    settings: dict
    counts: Counts
    picture: Any = None

    @property
    def params(self) -> int:
        return self.counts.params

    @property
    def flops(self) -> float:
        return self.counts.flops

    @property
    def table_html(self) -> str:
        from . import instruments
        return instruments.shape_table(list(self.counts.records))._repr_html_()

    def counts_html(self, notes: Sequence[str] = ()) -> str:
        c = self.counts
        ops = sorted(c.by_operator.items(), key=lambda kv: -kv[1])[:4]
        keep = lambda text: html.escape(text).replace(" ", "&nbsp;")   # noqa: E731  (a number and its unit stay on one line)
        ops_text = ", ".join(keep(f"{k} {format_si(v)}") for k, v in ops if v)
        lines = [f"<b>{html.escape(t('widgets.params'))}</b>: {format_count(c.params)} &nbsp;·&nbsp; "
                 f"<b>{html.escape(t('widgets.flops'))}</b>: {keep(format_si(c.flops))}"
                 + (f" &nbsp;({html.escape(t('widgets.top_ops'))}: {ops_text})" if ops_text else ""),
                 f"{html.escape(t('widgets.input'))} {format_shapes(c.input_shape)} → "
                 f"{html.escape(t('widgets.output'))} {format_shapes(c.output_shape)}"]
        lines += [f"<i>{html.escape(t(k))}</i>" for k in notes]
        return '<div class="attention-explorer-counts">' + "<br>".join(lines) + "</div>"

    def trace_html(self) -> str:
        return (f"<details><summary>{html.escape(t('widgets.shape_trace'))}</summary>"
                f"{self.table_html}</details>")


def _picture(obj, title: str) -> Any:
    """A plot's result as a viewer: viewers pass, a tuple becomes a stack, a Figure a PNG picture."""
    if isinstance(obj, viewer.Viewer):
        return obj
    if isinstance(obj, (tuple, list)) and obj and all(isinstance(v, viewer.Viewer) for v in obj):
        return viewer.stack(*obj, title=title)
    if hasattr(obj, "savefig"):
        return viewer.figure(obj, title=title)
    raise ValueError(f"explorer plot: expected an attention_lib.viewer viewer, a tuple of them or a matplotlib "
                     f"Figure, got {type(obj).__name__}")


def render_frame(name: str, settings: Optional[Mapping] = None, *, seed: int = 0, picture: bool = True) -> Frame:
    """The module at ``settings`` (defaults filled in): its counts and trace, and its picture (all cached).

    The picture shows up to :data:`GALLERY` example inputs, fewer where one input costs more than a
    share of :data:`PICTURE_FLOPS`, so that a heavy setting still answers at once.
    """
    spec = _spec(name)
    s = {c.name: c.default for c in spec.controls}
    s.update(settings or {})
    threads = torch.get_num_threads()
    # One thread: on a busy machine two threads wait for each other, 10-50x slower for these small tensors.
    torch.set_num_threads(1)
    try:
        module, x = _build(spec, s, seed)
        with torch.no_grad():
            counts = _counts(spec, s, seed, module, x)
            shown = None
            if picture:
                g = int(max(1, min(GALLERY, PICTURE_FLOPS // max(counts.flops, 1.0))))
                lang = i18n.get_language()
                shown = _PICTURES.get_or(_setting_key(spec, s, seed, picture=True) + (lang,),
                                         lambda: _picture(spec.plot(module, x[:g], s), spec.display_name()))
    finally:
        torch.set_num_threads(threads)
    return Frame(dict(s), counts, shown)


# --------------------------------------------------------------------------------------------
# explorer(): live widgets or the static explorer
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
        tuple_valued = isinstance(c.default, tuple)       # e.g. kernel_sizes=(3, 5): a tuple is one value
        if tuple_valued and all(isinstance(k, int) for k in value):
            value = tuple(value)                          # one setting, e.g. kernel_sizes=[3, 5]
        if isinstance(value, list) or (isinstance(value, tuple) and not tuple_valued):
            values = tuple(tuple(v) if tuple_valued else v for v in value)
            if not values:
                raise ValueError(f"explorer({spec.name!r}): {c.name} needs at least one value, got {value!r}")
            default = c.default if c.default in values else values[0]
            controls.append(dataclasses.replace(c, options=values, default=default, static=values))
        else:
            if value not in c.options:
                raise ValueError(f"explorer({spec.name!r}): {c.name}={value!r} is not offered; "
                                 f"expected one of {list(c.options)} (or pass a list of values)")
            static = c.static if value in c.static else tuple(sorted({*c.static, value}, key=c.options.index))
            controls.append(dataclasses.replace(c, default=value, static=static))
    return tuple(controls)


def is_static() -> bool:
    """True when the book build asked for static viewers (``ATTENTION_BOOK_STATIC=1``)."""
    return os.environ.get(STATIC_ENV) == "1"


def explorer(name: str, *, static: Optional[bool] = None, seed: int = 0, **options):
    """An explorer for mechanism ``name`` (see :func:`names`).

    ``options`` set a knob's starting value (``reduction=4``) or restrict its values
    (``reduction=[4, 16]``). ``static`` forces the mode; by default it follows ``ATTENTION_BOOK_STATIC``.
    Returns the ipywidgets box (live) or an ``IPython.display.HTML`` explorer (static).
    """
    spec = _spec(name)
    controls = _resolve(spec, options)
    if static is None:
        static = is_static()
    if static:
        return static_viewer(name, seed=seed, **{c.name: list(c.static) for c in controls},
                             _defaults={c.name: c.default for c in controls})
    return ExplorerWidget(spec, controls, seed)


#: The width of a live slider's track, in em: long enough to drag (JupyterLab gives a slider 300 px in all, which left
#: a long label's track at 54 px).
SLIDER_TRACK_EM = 12


def label_em(text: str) -> float:
    """About how many em a widget label takes: a Chinese character 1 em, other characters 0.55 em."""
    return sum(1.0 if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" else 0.55 for ch in text) + 1.0


#: What a drop-down holds for the value None (ECA's "ψ(C), adaptive"): ipywidgets reads a value of None as "nothing
#: selected" and shows a blank box.
_NONE = "__none__"


def _widget_value(value):
    return _NONE if value is None else value


class ExplorerWidget(ipywidgets.VBox):
    """The live explorer: controls on top, then the counts and the shape trace, then the map viewer.

    ``controls`` maps each knob to its widget; ``frame`` is the :class:`Frame` shown now, ``updates``
    counts the redraws and ``last_update_s`` times the last one (for tests and curious readers).
    The viewer keeps the query the reader points at when a knob changes (one state key per explorer).
    """

    def __init__(self, spec: ExplorerSpec, controls: Sequence[Control], seed: int = 0):
        self.spec, self.seed = spec, seed
        self.key = f"ae-{uuid.uuid4().hex[:10]}"
        self.controls = {}
        for c in controls:
            options = [(c.label_of(v), _widget_value(v)) for v in c.options]
            kwargs = dict(options=options, value=_widget_value(c.default), description=t(c.label),
                          style={"description_width": "initial"})
            if c.dropdown or len(c.options) == 1:
                widget = ipywidgets.Dropdown(**kwargs)
            else:                 # the label takes what it needs, the track keeps SLIDER_TRACK_EM whatever the label
                width = label_em(t(c.label)) + SLIDER_TRACK_EM + 5      # + the value shown at the right
                widget = ipywidgets.SelectionSlider(continuous_update=c.continuous,
                                                    layout=ipywidgets.Layout(width=f"{width:.1f}em"), **kwargs)
            self.controls[c.name] = widget
        self.info = ipywidgets.HTML()
        self.plot_output = ipywidgets.Output()
        self.frame: Optional[Frame] = None
        self.error: Optional[str] = None
        self.updates = 0
        self.last_update_s = 0.0
        title = ipywidgets.HTML(f"<b>{html.escape(t('widgets.title', name=spec.display_name()))}</b>")
        row = ipywidgets.HBox(list(self.controls.values()), layout=ipywidgets.Layout(flex_flow="row wrap"))
        super().__init__([title, row, self.info, self.plot_output])
        for widget in self.controls.values():
            widget.observe(self.update, names="value")
        self.update()

    @property
    def settings(self) -> dict:
        return {name: None if widget.value == _NONE else widget.value for name, widget in self.controls.items()}

    def set(self, **settings) -> None:
        """Move several knobs at once, then redraw once."""
        unknown = sorted(set(settings) - set(self.controls))
        if unknown:
            raise ValueError(f"explorer({self.spec.name!r}).set: unknown knob(s) {unknown}; "
                             f"expected some of {sorted(self.controls)}")
        self._quiet = True
        try:
            for name, value in settings.items():
                self.controls[name].value = _widget_value(value)
        finally:
            self._quiet = False
        self.update()

    def update(self, change=None) -> None:
        """Show the frame of the current settings (replacing the last one, never stacking)."""
        import time

        from IPython.display import HTML
        if getattr(self, "_quiet", False):
            return
        start = time.perf_counter()
        try:
            frame = render_frame(self.spec.name, self.settings, seed=self.seed)
        except ValueError as err:     # a combination the module refuses: say why, keep the widget alive
            self.error = str(err)
            self.info.value = f"<b>{html.escape(type(err).__name__)}</b>: {html.escape(str(err))}"
            return
        self.error = None
        self.frame = frame
        self.updates += 1
        self.info.value = frame.counts_html(self.spec.notes) + frame.trace_html()
        frame.picture.state_key = self.key
        _show(self.plot_output, HTML(frame.picture.html()))
        self.last_update_s = time.perf_counter() - start


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
# The static explorer (attention_lib.toolkit.static_explorer)
# --------------------------------------------------------------------------------------------

def static_viewer(name: str, *, seed: int = 0, _defaults: Optional[Mapping] = None, **grid):
    """The self-contained HTML/JavaScript explorer: viewer data precomputed for every combination of ``grid``.

    ``grid`` maps a knob to the values to precompute (defaults: the knob's static values); at most
    :data:`MAX_FRAMES` combinations. Returns ``IPython.display.HTML``.
    """
    from IPython.display import HTML
    return HTML(static_html(name, seed=seed, _defaults=_defaults, **grid))


def static_html(name: str, *, seed: int = 0, _defaults: Optional[Mapping] = None, **grid) -> str:
    """The HTML string of :func:`static_viewer`."""
    from .static_explorer import page
    return page(name, seed=seed, defaults=_defaults, **grid)
