"""Instruments for the notebooks: shape traces, parameter and FLOP counts, a model summary, honest timing.

- :func:`trace_shapes` runs a module once and records every submodule call *and* the functional tensor
  steps between them (``x.mean``, ``softmax``, ``@``, ``reshape``, ...), in call order, so the
  records read as the paper's equations: pool -> FC -> ReLU -> FC -> sigmoid -> scale for SE, or
  qkv -> reshape -> scaled dot-product attention -> proj for self-attention.
- :func:`count_flops` counts floating-point operations with ``torch.utils.flop_counter.FlopCounterMode``
  (2 FLOPs per multiply-add), under the SDPA math backend so attention is counted, and with formulas
  for the pooling, softmax, normalisation and elementwise operators (see :data:`FLOP_CONVENTIONS`).
- :func:`benchmark` times a callable with ``torch.utils.benchmark`` (warm-up, device synchronisation).
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .format import Table, format_count, format_shapes, format_si, format_time
from .i18n import register, t

register({
    "table.step": {"en": "step", "zh": "步骤"},
    "table.name": {"en": "name", "zh": "名称"},
    "table.type": {"en": "type", "zh": "类型"},
    "table.inputs": {"en": "input shape", "zh": "输入形状"},
    "table.outputs": {"en": "output shape", "zh": "输出形状"},
    "table.params": {"en": "parameters", "zh": "参数量"},
    "table.kind.module": {"en": "module", "zh": "模块"},
    "table.kind.function": {"en": "function", "zh": "函数"},
    "table.kind.view": {"en": "reshape", "zh": "变形"},
    "flops.total": {"en": "total", "zh": "合计"},
    "bench.median": {"en": "median", "zh": "中位数"},
    "bench.result": {"en": "{label}median {median}, interquartile range {iqr}, {runs} runs × {calls} calls",
                     "zh": "{label}中位数 {median}，四分位距 {iqr}，共 {runs} 轮、每轮 {calls} 次调用"},
})

# --------------------------------------------------------------------------------------------
# Shape traces
# --------------------------------------------------------------------------------------------

Shape = tuple[int, ...]

# Functional tensor operations recorded by trace_shapes (torch function name -> readable name).
_FUNCTION_OPS = {
    "mean": "mean", "amax": "amax", "amin": "amin", "max": "max", "min": "min", "sum": "sum",
    "softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid", "tanh": "tanh",
    "relu": "relu", "gelu": "gelu", "silu": "silu", "exp": "exp", "sqrt": "sqrt", "abs": "abs",
    "pow": "pow", "clamp": "clamp", "where": "where", "normalize": "normalize",
    "matmul": "matmul", "__matmul__": "matmul", "bmm": "bmm", "mm": "mm", "einsum": "einsum",
    "mul": "mul", "__mul__": "mul", "__rmul__": "mul", "add": "add", "__add__": "add",
    "__radd__": "add", "sub": "sub", "__sub__": "sub", "__rsub__": "sub", "div": "div",
    "__truediv__": "div", "__rtruediv__": "div", "cat": "cat", "stack": "stack",
    "scaled_dot_product_attention": "scaled_dot_product_attention",
    "linear": "linear", "conv1d": "conv1d", "conv2d": "conv2d", "batch_norm": "batch_norm",
    "layer_norm": "layer_norm", "adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "adaptive_max_pool2d": "adaptive_max_pool2d", "avg_pool2d": "avg_pool2d", "max_pool2d": "max_pool2d",
}
# Operations that only rearrange (no arithmetic): recorded as kind "view" so they can be hidden.
_VIEW_OPS = {
    "reshape": "reshape", "view": "view", "permute": "permute", "transpose": "transpose",
    "unbind": "unbind", "flatten": "flatten", "unflatten": "unflatten", "unsqueeze": "unsqueeze",
    "squeeze": "squeeze", "__getitem__": "index", "chunk": "chunk", "split": "split",
    "expand": "expand", "expand_as": "expand_as", "t": "t",
}


@dataclass(frozen=True)
class ShapeRecord:
    """One step of a traced forward pass.

    ``name`` is the qualified module name (``"channel_gate.mlp.0"``; ``""`` is the traced module
    itself), or for a functional step the enclosing module's name and the operation
    (``"mean"``, ``"attn.softmax"``). ``params`` counts the parameters the module owns directly
    (``recurse=False``), so over the module records of one trace they add up to
    ``count_parameters(module)`` (a module called twice is listed twice). Functional steps have 0.
    ``kind`` is ``"module"``, ``"function"`` (arithmetic) or ``"view"`` (reshape, permute, index...).
    ``depth`` is the nesting level (0 for the traced module), ``leaf`` is True for modules without
    children and for functional steps: the leaves, in order, are the computation's steps.
    """

    name: str
    type: str
    inputs: tuple[Shape, ...]
    outputs: tuple[Shape, ...]
    params: int
    kind: str = "module"
    depth: int = 0
    leaf: bool = True

    @property
    def label(self) -> str:
        """A short label for diagrams: the last part of the name (or the type for the root)."""
        return self.name.rsplit(".", 1)[-1] if self.name else self.type


def _shapes(obj: Any) -> tuple[Shape, ...]:
    """Shapes of every tensor in ``obj`` (tensors, tuples/lists/named tuples/dicts of them), in order."""
    if isinstance(obj, torch.Tensor):
        return (tuple(obj.shape),)
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return tuple(s for item in obj for s in _shapes(item))
    return ()


class _FunctionRecorder(TorchFunctionMode):
    """Records whitelisted torch functions called directly by non-leaf modules."""

    def __init__(self, tracer: "_Tracer"):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _FUNCTION_OPS:
            kind, readable = "function", _FUNCTION_OPS[name]
        elif name in _VIEW_OPS:
            kind, readable = "view", _VIEW_OPS[name]
        else:
            return out
        self.tracer.record_function(readable, kind, _shapes((args, kwargs)), _shapes(out))
        return out


class _Tracer:
    def __init__(self, root: nn.Module, functions: bool, views: bool):
        self.root = root
        self.functions = functions
        self.views = views
        self.entries: list[dict] = []
        self.stack: list[tuple[str, nn.Module, dict]] = []    # modules currently running
        self.names = {m: n for n, m in root.named_modules()}

    def push(self, name: str, module: nn.Module, inputs: Any) -> None:
        entry = dict(name=name, type=type(module).__name__, inputs=_shapes(inputs), outputs=(),
                     params=sum(p.numel() for p in module.parameters(recurse=False)),
                     kind="module", depth=len(self.stack), leaf=not any(True for _ in module.children()))
        self.entries.append(entry)
        self.stack.append((name, module, entry))

    def pop(self, output: Any) -> None:
        _, _, entry = self.stack.pop()
        entry["outputs"] = _shapes(output)

    def record_function(self, op: str, kind: str, inputs, outputs) -> None:
        if not self.stack or self.stack[-1][2]["leaf"]:
            return     # inside a leaf module: its own record already covers this step
        if (kind == "function" and not self.functions) or (kind == "view" and not self.views):
            return
        parent = self.stack[-1][0]
        self.entries.append(dict(name=f"{parent}.{op}" if parent else op, type=op, inputs=inputs,
                                 outputs=outputs, params=0, kind=kind, depth=len(self.stack), leaf=True))


def trace_shapes(module: nn.Module, x: Any, *, method: str = "auto", functions: bool = True,
                 views: bool = True) -> list[ShapeRecord]:
    """Run ``module`` once on ``x`` (no gradients) and return one :class:`ShapeRecord` per step, in call order.

    The first record is the traced module itself, then each submodule call (forward pre- and
    post-hooks) and each functional step called directly by a non-leaf module (a
    ``TorchFunctionMode``): ``x.mean((2, 3))``, ``torch.sigmoid``, ``q @ k.transpose(-2, -1)``,
    ``softmax``, ``F.scaled_dot_product_attention``, ``x * s``, and, when ``views``, the reshapes.
    ``method="auto"`` (the default) traces ``forward_explicit`` where a module has one (the
    paper's equations written out with the registered layers, which a fast ``forward`` may
    reorganise) and ``forward`` elsewhere; ``method="forward"`` or ``"attention_map"`` trace those.
    ``x`` may be a tensor or a tuple of positional inputs.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"trace_shapes: expected an nn.Module, got {type(module).__name__}")
    if method == "auto":
        method = "forward_explicit" if callable(getattr(module, "forward_explicit", None)) else "forward"
    fn = getattr(module, method, None)
    if not callable(fn):
        raise ValueError(f"trace_shapes: {type(module).__name__} has no method {method!r}")
    args = x if isinstance(x, tuple) else (x,)
    tracer = _Tracer(module, functions, views)
    handles = []
    for name, sub in module.named_modules():
        if sub is module:
            continue
        handles.append(sub.register_forward_pre_hook(
            lambda m, inp, _name=name: tracer.push(_name, m, inp)))
        handles.append(sub.register_forward_hook(lambda m, inp, out: tracer.pop(out)))
    try:
        with torch.no_grad(), _FunctionRecorder(tracer):
            tracer.push("", module, args)
            out = fn(*args)
            tracer.pop(out)
    finally:
        for h in handles:
            h.remove()
    return [ShapeRecord(**entry) for entry in tracer.entries]


class ShapeTable(Table):
    """A shape trace as a table (one row per record, nested names indented)."""

    def __init__(self, records: Sequence[ShapeRecord], leaves_only: bool = False):
        self.records = [r for r in records if r.leaf or not leaves_only]
        super().__init__(
            [t("table.step"), t("table.name"), t("table.type"), t("table.inputs"), t("table.outputs"),
             t("table.params")],
            [[str(i), ("  " * r.depth) + (r.name or r.type), r.type, format_shapes(r.inputs),
              format_shapes(r.outputs), format_count(r.params) if r.kind == "module" else ""]
             for i, r in enumerate(self.records)])

    def _html_cells(self, i: int) -> list[str]:
        import html

        rec = self.records[i]
        cells = super()._html_cells(i)
        cells[1] = "&nbsp;" * (2 * rec.depth) + html.escape(rec.name or rec.type)
        return [f"<code>{c}</code>" for c in cells]


def shape_table(records: Sequence[ShapeRecord], leaves_only: bool = False) -> ShapeTable:
    """The records of :func:`trace_shapes` as a table (headers in the current language).

    ``leaves_only`` drops container modules (the traced module and ``nn.Sequential`` blocks),
    leaving the computation's steps.
    """
    return ShapeTable(records, leaves_only=leaves_only)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared parameter once); ``trainable_only`` counts only ``requires_grad``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------

FLOP_CONVENTIONS = """\
Matrix products and convolutions: 2 FLOPs per multiply-add (torch's FlopCounterMode); the bias
addition inside a Linear or convolution is not counted (torch's convention).
Scaled dot-product attention: counted through the SDPA math backend, i.e. as its parts
(scaling of Q and K, Q K^T, softmax, weights x V).
Elementwise arithmetic and activations (add, sub, mul, div, neg, exp, sqrt, relu, sigmoid, tanh,
gelu, silu, hard sigmoid/swish...): 1 FLOP per output element (broadcast included).
Reductions (mean, sum, amax, amin, max, min; global pooling): 1 FLOP per input element.
Windowed pooling: 1 FLOP per window element per output element.
Softmax: 3 FLOPs per element (exp, sum, divide; the max-shift for stability is not counted).
Batch norm: 2 FLOPs per element (normalise-and-affine folded into one scale and one shift;
the batch statistics of training mode are not counted). Layer/group norm: 5 per element.
Reshapes, copies, indexing, concatenation: 0."""


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _first_shape(args):
    for a in args:
        if isinstance(a, (tuple, list)) and all(isinstance(d, int) for d in a):
            return a
        if isinstance(a, torch.Size):
            return a
    return ()


def _out_numel(out_shape) -> int:
    if isinstance(out_shape, (tuple, list)) and out_shape and not isinstance(out_shape[0], int):
        out_shape = out_shape[0]     # ops returning several tensors: the first is the result
    return _numel(out_shape)


def _elementwise(per_element: int):
    def formula(*args, out_shape=None, **kwargs):
        return per_element * _out_numel(out_shape)
    return formula


def _reduction(*args, out_shape=None, **kwargs):
    return _numel(_first_shape(args))


def _window_pool(*args, out_shape=None, **kwargs):
    kernel = args[1] if len(args) > 1 else kwargs.get("kernel_size", (1,))
    kernel = [kernel] if isinstance(kernel, int) else list(kernel)
    window = kernel[0] ** 2 if len(kernel) == 1 else math.prod(kernel)    # 2-D pooling: k x k
    return _out_numel(out_shape) * window


def _matrix_vector(matrix, vector, *args, out_shape=None, **kwargs):
    """``aten.mv`` (n, m) @ (m,): n dot products of length m, 2nm (torch's counter has no formula for it)."""
    return 2 * _numel(matrix)


def _flop_mapping() -> dict:
    aten = torch.ops.aten
    mapping = {}

    def add(names, formula):
        for n in names:
            packet = getattr(aten, n, None)
            if packet is not None:
                mapping[packet] = formula

    add(["add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "reciprocal",
         "exp", "sqrt", "rsqrt", "pow", "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_",
         "gelu", "silu", "silu_", "hardsigmoid", "hardswish", "leaky_relu", "elu", "prelu",
         "_prelu_kernel", "clamp", "clamp_min", "maximum", "minimum", "abs", "where"], _elementwise(1))
    add(["mean", "sum", "amax", "amin", "max", "min", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
         "_adaptive_avg_pool3d", "linalg_vector_norm"], _reduction)
    add(["avg_pool2d", "max_pool2d_with_indices", "max_pool2d"], _window_pool)
    add(["mv"], _matrix_vector)
    add(["_softmax", "_safe_softmax", "_log_softmax"], _elementwise(3))
    add(["_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "native_batch_norm",
         "cudnn_batch_norm", "_batch_norm_with_update", "_batch_norm_no_update"], _elementwise(2))
    add(["native_layer_norm", "native_group_norm"], _elementwise(5))
    return mapping


def _op_name(op) -> str:
    name = str(op)
    name = name[5:] if name.startswith("aten.") else name
    return {"_safe_softmax": "softmax", "_softmax": "softmax", "_log_softmax": "log_softmax",
            "_native_batch_norm_legit_no_training": "batch_norm", "_native_batch_norm_legit": "batch_norm",
            "native_batch_norm": "batch_norm", "native_layer_norm": "layer_norm",
            "_adaptive_avg_pool2d": "adaptive_avg_pool2d", "convolution": "conv"}.get(name, name)


@dataclass(frozen=True)
class FlopCount:
    """Total FLOPs of one call and their breakdown by operator (``"mm"``, ``"softmax"``, ...) and by module."""

    total: int
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)

    def __int__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={format_si(v)}" for k, v in sorted(self.by_operator.items(), key=lambda kv: -kv[1]))
        return f"FlopCount(total={format_si(self.total, 'FLOP')}; {parts})"


def count_flops(module: nn.Module | Callable, x: Any, *, method: str = "forward") -> FlopCount:
    """FLOPs of one call ``module(x)`` (a tensor or a tuple of inputs), counted as :data:`FLOP_CONVENTIONS` says.

    Runs without gradients and in the module's current mode (call ``.eval()`` first for inference
    counts), under the math backend of scaled dot-product attention, whose fused CPU kernel the
    counter cannot see.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    args = x if isinstance(x, tuple) else (x,)
    fn = getattr(module, method) if isinstance(module, nn.Module) else module
    counter = FlopCounterMode(display=False, custom_mapping=_flop_mapping())
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        fn(*args)
    counts = counter.get_flop_counts()
    by_op: dict[str, int] = {}
    for op, n in counts.get("Global", {}).items():
        by_op[_op_name(op)] = by_op.get(_op_name(op), 0) + int(n)
    by_module = {name: int(sum(ops.values())) for name, ops in counts.items() if name != "Global"}
    return FlopCount(total=int(counter.get_total_flops()), by_operator=by_op, by_module=by_module)


# --------------------------------------------------------------------------------------------
# Summary and timing
# --------------------------------------------------------------------------------------------

def summary(module: nn.Module, input_size: Sequence[int] | Sequence[Sequence[int]], **kwargs):
    """``torchinfo.summary`` with the book's columns, nothing printed; returns its ``ModelStatistics``.

    The columns are the layer, its output shape and its parameters, 72 characters in all: a summary fits
    the width of a notebook and of the book's pages without wrapping (each row's input shape is the output
    shape of the row before). Runs on the module's device; extra keyword arguments go to ``torchinfo.summary``.
    """
    import torchinfo

    param = next(module.parameters(), None)
    options = dict(col_names=("output_size", "num_params"), col_width=16, row_settings=("var_names",),
                   depth=4, device=param.device if param is not None else "cpu", verbose=0)
    options.update(kwargs)
    with contextlib.redirect_stdout(io.StringIO()):
        return torchinfo.summary(module, input_size=input_size, **options)


@dataclass(frozen=True)
class BenchmarkResult:
    """Timing of a callable: median and interquartile range in seconds over ``runs`` measured blocks."""

    median: float
    iqr: float
    runs: int
    calls_per_run: int
    label: str = ""

    @property
    def total_calls(self) -> int:
        return self.runs * self.calls_per_run

    def __repr__(self) -> str:
        label = f"{self.label}: " if self.label else ""
        return t("bench.result", label=label, median=format_time(self.median), iqr=format_time(self.iqr),
                 runs=self.runs, calls=self.calls_per_run)


def _devices(fn, inputs) -> set[str]:
    types = {a.device.type for a in inputs if isinstance(a, torch.Tensor)}
    if isinstance(fn, nn.Module):
        types |= {p.device.type for p in fn.parameters()}
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, nn.Module):
        types |= {p.device.type for p in owner.parameters()}
    return types


def benchmark(fn: Callable, *inputs, min_run_time: float = 0.2, warmup: int = 3, no_grad: bool = True,
              num_threads: int | None = 1, label: str = "") -> BenchmarkResult:
    """Time ``fn(*inputs)`` with ``torch.utils.benchmark.Timer.blocked_autorange``.

    ``warmup`` untimed calls first (lazy initialisation, caches, autotuning); each timed call is
    followed by a synchronisation of the device it ran on (CUDA or MPS), so the time covers the
    kernels and not only their launch. ``no_grad`` times inference. ``num_threads`` CPU threads
    (``torch.utils.benchmark``'s default of 1 is kept: on a busy or small machine more intra-op
    threads make timings of small modules erratic; ``None`` uses ``torch.get_num_threads()``).
    Compare modules only with timings taken in the same run on the same device.
    """
    from torch.utils import benchmark as tb

    devices = _devices(fn, inputs)

    def sync():
        if "cuda" in devices:
            torch.cuda.synchronize()
        if "mps" in devices:
            torch.mps.synchronize()

    def call():
        fn(*inputs)
        sync()

    grad = torch.no_grad() if no_grad else contextlib.nullcontext()
    with grad:
        for _ in range(max(0, warmup)):
            call()
        timer = tb.Timer(stmt="call()", globals={"call": call}, num_threads=num_threads or torch.get_num_threads(),
                         label=label or None)
        m = timer.blocked_autorange(min_run_time=min_run_time)
    return BenchmarkResult(median=float(m.median), iqr=float(m.iqr), runs=len(m.times),
                           calls_per_run=int(m.number_per_run), label=label)
