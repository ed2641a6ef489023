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
from ._checks import format_shape
from .i18n import t

STATIC_ENV = "ATTENTION_BOOK_STATIC"   #: environment variable that switches to the static viewer
MAX_FRAMES = 30                        #: most precomputed frames in one static viewer
MAX_HTML_BYTES = 1_000_000             #: size budget of one static viewer
CSS_CLASS = "attention-explorer-static"
MAX_WIDTH_PX = 560                     # embedded pictures: at most this wide, at most MAX_DPI
MAX_DPI = 80
PNG_COLORS = 256                       # palette PNGs: a quarter of the bytes of full colour

i18n.register({
    "widgets.title": {"en": "Explorer: {name}", "zh": "交互探索：{name}"},
    "widgets.name.self_attention": {"en": "multi-head self-attention", "zh": "多头自注意力"},
    "widgets.name.external_attention": {"en": "External Attention", "zh": "外部注意力"},
    "widgets.name.multi_head_external_attention": {"en": "multi-head External Attention",
                                                   "zh": "多头外部注意力"},
    "widgets.name.squeeze_excitation": {"en": "Squeeze-and-Excitation (SE)", "zh": "挤压-激励（SE）"},
    "widgets.name.selective_kernel": {"en": "Selective Kernel (SK)", "zh": "选择性卷积核（SK）"},
    "widgets.name.cbam": {"en": "CBAM", "zh": "CBAM"},
    "widgets.name.bam": {"en": "BAM", "zh": "BAM"},
    "widgets.name.eca": {"en": "Efficient Channel Attention (ECA)", "zh": "高效通道注意力（ECA）"},
    "widgets.name.patch_embedding": {"en": "patch embedding", "zh": "图块嵌入"},
    "widgets.tokens": {"en": "tokens N", "zh": "词元数 N"},
    "widgets.dim": {"en": "width D", "zh": "维度 D"},
    "widgets.heads": {"en": "heads h", "zh": "头数 h"},
    "widgets.temperature": {"en": "softmax temperature τ", "zh": "softmax 温度 τ"},
    "widgets.memory_size": {"en": "memory slots S", "zh": "记忆单元数 S"},
    "widgets.coef": {"en": "expansion coef", "zh": "扩展系数 coef"},
    "widgets.height": {"en": "height H", "zh": "高 H"},
    "widgets.width": {"en": "width W", "zh": "宽 W"},
    "widgets.channels": {"en": "channels C", "zh": "通道数 C"},
    "widgets.reduction": {"en": "reduction r", "zh": "压缩比 r"},
    "widgets.kernel_size": {"en": "kernel size k", "zh": "卷积核大小 k"},
    "widgets.auto": {"en": "ψ(C)", "zh": "ψ(C) 自适应"},
    "widgets.spatial_kernel": {"en": "spatial kernel", "zh": "空间卷积核"},
    "widgets.spatial_norm": {"en": "spatial BatchNorm", "zh": "空间分支 BatchNorm"},
    "widgets.yes": {"en": "yes", "zh": "是"},
    "widgets.no": {"en": "no", "zh": "否"},
    "widgets.dilation": {"en": "dilation d", "zh": "空洞率 d"},
    "widgets.fusion": {"en": "fusion", "zh": "融合方式"},
    "widgets.fusion.sum": {"en": "sum (paper)", "zh": "相加（论文）"},
    "widgets.fusion.product": {"en": "product (official code)", "zh": "相乘（官方代码）"},
    "widgets.kernel_sizes": {"en": "branch kernels", "zh": "分支卷积核"},
    "widgets.dilated": {"en": "dilated 3×3 for k > 3", "zh": "k > 3 时用空洞 3×3"},
    "widgets.image_size": {"en": "image size H = W", "zh": "图像尺寸 H = W"},
    "widgets.patch_size": {"en": "patch size P", "zh": "图块大小 P"},
    "widgets.params": {"en": "parameters", "zh": "参数量"},
    "widgets.flops": {"en": "FLOPs", "zh": "浮点运算数（FLOPs）"},
    "widgets.input": {"en": "input", "zh": "输入"},
    "widgets.output": {"en": "output", "zh": "输出"},
    "widgets.top_ops": {"en": "by operator", "zh": "按算子"},
    "widgets.shape_trace": {"en": "Shape trace", "zh": "形状追踪"},
    "widgets.temperature_note": {"en": "τ only rescales the scores before the softmax in the plot: "
                                       "shapes and costs do not change.",
                                 "zh": "τ 只在绘图时缩放 softmax 之前的得分，形状和计算量不变。"},
    "widgets.static_note": {"en": "Precomputed when the book was built ({n} settings); run the notebook "
                                  "to try every setting.",
                            "zh": "以下 {n} 组设置在构建本书时预先计算；运行笔记本可尝试全部设置。"},
})


# --------------------------------------------------------------------------------------------
# Knobs and the mechanisms that use them
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


def _yes_no(value) -> str:
    return t("widgets.yes") if value else t("widgets.no")


def _kernels(value) -> str:
    return ", ".join(str(k) for k in value)


def _eca_kernel(value) -> str:
    return t("widgets.auto") if value is None else str(value)


def _fusion(value) -> str:
    return t(f"widgets.fusion.{value}")


def _temperature(value) -> str:
    return f"{value:g}"


def _size(name, label, options, default, static):
    return Control(name, label, tuple(options), default, tuple(static))


def _token_controls(static_tokens=(8, 16)):
    return (_size("tokens", "widgets.tokens", (4, 8, 16, 32, 64), 16, static_tokens),
            Control("dim", "widgets.dim", (32, 64, 128), 64, (64,)))


def _map_controls(static_h=(8, 16), static_w=(8, 16)):
    return (_size("height", "widgets.height", (4, 8, 16, 32), 8, static_h),
            _size("width", "widgets.width", (4, 8, 16, 32), 8, static_w),
            Control("channels", "widgets.channels", (16, 32, 64, 128), 64, (64,)))


@dataclass(frozen=True)
class _Spec:
    name: str
    layout: str                                       # "tokens", "feature_map" or "image"
    controls: tuple
    build: Callable[[dict], nn.Module]
    plot: Callable[[nn.Module, torch.Tensor, dict], Any]   # -> matplotlib Figure
    notes: tuple = ()                                 # i18n keys shown under the counts

    def control(self, name: str) -> Control:
        return next(c for c in self.controls if c.name == name)


# ---- attention maps, drawn with attention_lib.viz ------------------------------------------

def _viz():
    from . import viz
    return viz


def _plot_self_attention(m, x, s):
    attn = m.attention_map(x)[0]                                   # (h, N, N)
    tau = float(s.get("temperature", 1.0))
    if tau != 1.0:
        # softmax(z / τ) = softmax(log softmax(z) / τ): the row constant cancels.
        attn = (attn.clamp_min(1e-30).log() / tau).softmax(dim=-1)  # (h, N, N)
    return _viz().plot_heads(attn)


def _plot_external(m, x, s):
    return _viz().plot_memory_map(m.attention_map(x)[0])            # (N, S)


def _plot_mh_external(m, x, s):
    return _viz().plot_memory_map(m.attention_map(x), head=0)       # (B, heads, N, S): first head


def _plot_channel_gate(m, x, s):
    return _viz().plot_channel_gate(m.attention_map(x)[0].flatten())   # (C,)


def _plot_cbam(m, x, s):
    import matplotlib.pyplot as plt
    a = m.attention_map(x)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained",
                                   gridspec_kw=dict(width_ratios=(3, 2)))
    _viz().plot_channel_gate(a.channel[0].flatten(), ax=ax1)       # (C,)
    _viz().plot_spatial_map(a.spatial[0, 0], ax=ax2)                # (H, W)
    return fig


def _plot_bam(m, x, s):
    a = m.attention_map(x)[0]                                       # (C, H, W)
    return _viz().plot_spatial_map(a.mean(0))                       # (H, W): mean over channels


def _plot_sk(m, x, s):
    return _viz().plot_sk_weights(m.attention_map(x)[0, :, :, 0, 0], kernel_sizes=m.kernel_sizes)   # (K, C)


def _plot_patch(m, x, s):
    from . import instruments
    return _viz().plot_shape_trace(instruments.trace_shapes(m, x))


def _specs() -> dict[str, _Spec]:
    from . import registry
    from .patch_embedding import PatchEmbedding
    M = registry.MECHANISMS
    reduction = Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 16))
    specs = [
        _Spec("self_attention", "tokens",
              # Four heads to start (the registry builds eight): a readable grid and a quick frame.
              _token_controls() + (Control("heads", "widgets.heads", (1, 2, 4, 8), 4, (1, 4)),
                                   Control("temperature", "widgets.temperature",
                                                  (0.25, 0.5, 1.0, 2.0, 4.0), 1.0, (0.5, 1.0, 2.0),
                                                  fmt=_temperature)),
              lambda s: M["self_attention"].cls(s["dim"], num_heads=s["heads"]),
              _plot_self_attention, ("widgets.temperature_note",)),
        _Spec("external_attention", "tokens",
              _token_controls() + (Control("memory_size", "widgets.memory_size", (8, 16, 32, 64, 128), 64,
                                           (8, 16, 32, 64)),),
              lambda s: M["external_attention"].cls(s["dim"], memory_size=s["memory_size"]),
              _plot_external),
        _Spec("multi_head_external_attention", "tokens",
              _token_controls() + (
                  Control("heads", "widgets.heads", (1, 2, 4, 8), 8, (2, 8)),
                  Control("memory_size", "widgets.memory_size", (8, 16, 32, 64), 64, (16, 64)),
                  Control("coef", "widgets.coef", (1, 2, 4), 4, (1, 4))),
              lambda s: M["multi_head_external_attention"].cls(
                  s["dim"], num_heads=s["heads"], memory_size=s["memory_size"], coef=s["coef"]),
              _plot_mh_external),
        _Spec("squeeze_excitation", "feature_map",
              _map_controls() + (Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (4, 8, 16)),),
              lambda s: M["squeeze_excitation"].cls(s["channels"], reduction=s["reduction"]),
              _plot_channel_gate),
        _Spec("eca", "feature_map",
              _map_controls(static_w=(8,))[:2]
              + (Control("channels", "widgets.channels", (16, 32, 64, 128, 256), 64, (16, 64, 256)),
                 Control("kernel_size", "widgets.kernel_size", (None, 1, 3, 5, 7, 9), None, (None, 1, 9),
                         dropdown=True, fmt=_eca_kernel)),
              lambda s: M["eca"].cls(s["channels"], kernel_size=s["kernel_size"]),
              _plot_channel_gate),
        _Spec("cbam", "feature_map",
              _map_controls(static_w=(8,)) + (reduction,
                                 Control("spatial_kernel", "widgets.spatial_kernel", (3, 5, 7), 7, (3, 7)),
                                 Control("spatial_norm", "widgets.spatial_norm", (True, False), True, (True,),
                                         dropdown=True, fmt=_yes_no)),
              lambda s: M["cbam"].cls(s["channels"], reduction=s["reduction"],
                                      spatial_kernel=s["spatial_kernel"], spatial_norm=s["spatial_norm"]),
              _plot_cbam),
        _Spec("bam", "feature_map",
              _map_controls(static_w=(8,)) + (Control("reduction", "widgets.reduction", (2, 4, 8, 16), 16, (16,)),
                                 Control("dilation", "widgets.dilation", (1, 2, 4), 4, (1, 2, 4)),
                                 Control("fusion", "widgets.fusion", ("sum", "product"), "sum",
                                         ("sum", "product"), dropdown=True, fmt=_fusion)),
              lambda s: M["bam"].cls(s["channels"], reduction=s["reduction"], dilation=s["dilation"],
                                     fusion=s["fusion"]),
              _plot_bam),
        _Spec("selective_kernel", "feature_map",
              _map_controls(static_w=(8,)) + (
                  Control("kernel_sizes", "widgets.kernel_sizes", ((3, 5), (3, 5, 7), (1, 3, 5, 7)), (3, 5),
                          ((3, 5), (3, 5, 7)), dropdown=True, fmt=_kernels),
                  reduction,
                  Control("dilated", "widgets.dilated", (True, False), True, (True, False), dropdown=True,
                          fmt=_yes_no)),
              lambda s: M["selective_kernel"].cls(s["channels"], kernel_sizes=s["kernel_sizes"],
                                                  reduction=s["reduction"], dilated=s["dilated"]),
              _plot_sk),
        _Spec("patch_embedding", "image",
              (Control("image_size", "widgets.image_size", (32, 48, 64, 96), 32, (32, 64)),
               Control("patch_size", "widgets.patch_size", (4, 8, 16), 8, (4, 8, 16)),
               Control("dim", "widgets.dim", (16, 32, 64, 128), 32, (32, 128))),
              lambda s: PatchEmbedding(s["patch_size"], in_channels=3, dim=s["dim"]),
              _plot_patch),
    ]
    return {s.name: s for s in specs}


def names() -> list[str]:
    """Every name :func:`explorer` accepts: the registry's mechanisms, then ``"patch_embedding"``."""
    from .registry import MECHANISMS
    return [*MECHANISMS, "patch_embedding"]


def _spec(name: str) -> _Spec:
    specs = _specs()
    if not isinstance(name, str) or name not in specs:
        raise ValueError(f"explorer: unknown mechanism {name!r}; expected one of {names()}")
    return specs[name]


# --------------------------------------------------------------------------------------------
# One frame: the module at one setting, its trace, costs and picture
# --------------------------------------------------------------------------------------------

def _example_input(spec: _Spec, s: Mapping, seed: int) -> torch.Tensor:
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


def _build(spec: _Spec, s: Mapping, seed: int) -> tuple[nn.Module, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):      # fixed initialisation, global RNG left untouched
        torch.manual_seed(seed)
        module = spec.build(dict(s)).eval()
    return module, _example_input(spec, s, seed + 1)


def _fmt_shape(shape) -> str:
    if shape is None:
        return ""
    if isinstance(shape, torch.Size) or (isinstance(shape, (tuple, list)) and all(isinstance(d, int) for d in shape)):
        return format_shape(shape)
    if isinstance(shape, (tuple, list)):
        return ", ".join(_fmt_shape(p) for p in shape)
    return str(shape)


def _fmt_count(n) -> str:
    return f"{int(n):,}"


def _fmt_flops(n: float) -> str:
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


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
        ops_text = ", ".join(f"{html.escape(_op_name(k))} {_fmt_flops(v)}" for k, v in ops if v)
        lines = [f"<b>{html.escape(t('widgets.params'))}</b>: {_fmt_count(self.params)} &nbsp;·&nbsp; "
                 f"<b>{html.escape(t('widgets.flops'))}</b>: {_fmt_flops(self.flops)}"
                 + (f" &nbsp;({html.escape(t('widgets.top_ops'))}: {ops_text})" if ops_text else ""),
                 f"{html.escape(t('widgets.input'))} {_fmt_shape(self.input_shape)} → "
                 f"{html.escape(t('widgets.output'))} {_fmt_shape(self.output_shape)}"]
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

def _resolve(spec: _Spec, options: Mapping) -> tuple[Control, ...]:
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

    def __init__(self, spec: _Spec, controls: Sequence[Control], seed: int = 0):
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
            f"<b>{html.escape(t('widgets.title', name=t('widgets.name.' + spec.name)))}</b>")
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
    title = html.escape(t("widgets.title", name=t("widgets.name." + spec.name)))
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
