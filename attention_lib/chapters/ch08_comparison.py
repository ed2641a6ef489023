"""Chapter 08 · Comparison: the chapter's strings, cost table and exercises.

The notebook imports it as ``ch``: ``from attention_lib.chapters import ch08_comparison as ch``.
"""
from __future__ import annotations

import html
import re
from typing import Optional

import torch

from ..registry import MECHANISMS, by_chapter
from ..toolkit.exercises import as_name, as_number, describe, exercise
from ..toolkit.format import Table, format_count, format_shape
from ..toolkit.i18n import register, t
from ..toolkit.instruments import benchmark, count_flops, count_parameters

register({
    "ch08.table.mechanism": {"en": "mechanism", "zh": "机制"},
    "ch08.table.input": {"en": "input", "zh": "输入"},
    "ch08.table.params": {"en": "parameters", "zh": "参数量"},
    "ch08.table.flops": {"en": "FLOPs", "zh": "浮点运算次数"},
    "ch08.table.params_formula": {"en": "params = formula", "zh": "参数量 = 公式"},
    "ch08.table.flops_formula": {"en": "FLOPs = formula", "zh": "浮点运算次数 = 公式"},
    "ch08.table.latency": {"en": "latency (ms)", "zh": "延迟（毫秒）"},
    "ch08.table.yes": {"en": "yes", "zh": "是"},
    "ch08.table.no": {"en": "NO", "zh": "否"},
    "ch08.none": {"en": "no attention", "zh": "无注意力"},
    "ch08.method.explicit": {"en": "self-attention, explicit", "zh": "自注意力（显式计算）"},
    "ch08.method.sdpa": {"en": "self-attention, SDPA", "zh": "自注意力（SDPA 融合核函数）"},
    "ch08.method.external": {"en": "External Attention", "zh": "外部注意力"},
    "ch08.rate": {"en": "{name:>14}: {mflop:7.1f} MFLOP in {ms:7.3f} ms -> {rate:5.1f} GFLOP/s",
                  "zh": "{name:>14}：{mflop:7.1f} MFLOP，耗时 {ms:7.3f} ms -> {rate:5.1f} GFLOP/s"},
    "ch08.slopes": {"en": "{name}: time slope {time:.2f}, memory slope {memory:.2f}",
                    "zh": "{name}：时间斜率 {time:.2f}，内存斜率 {memory:.2f}"},
    "ch08.scores": {"en": "{gib:.2f} GiB of float32 scores, and as much again for the softmax",
                    "zh": "float32 分数矩阵占 {gib:.2f} GiB，softmax 的结果还要再占同样多"},
    "ch08.accuracy": {"en": "{label:>12}: accuracy {mean:.3f} ± {std:.3f}, block parameters {params:,}",
                      "zh": "{label:>12}：准确率 {mean:.3f} ± {std:.3f}，模块参数量 {params:,}"},
    "ex.cmp.slope.linear": {"en": "1 is the slope of External Attention and of the projections; the score matrix "
                                  "Q K^T has N × N entries.",
                            "zh": "1 是外部注意力和线性投影的斜率；而分数矩阵 Q K^T 有 N × N 个元素。"},
    "ex.cmp.slope.factor": {"en": "{answer} is how much the work grows when N doubles; on log-log axes the slope s "
                                  "is an exponent: the time grows like N^s, so doubling N multiplies it by 2^s.",
                            "zh": "{answer} 是 N 翻倍时计算量增长的倍数；而双对数坐标上的斜率 s 是一个指数：时间按 N^s 增长，"
                                  "所以 N 翻倍时时间乘以 2^s。"},
    "ex.cmp.slope.measured": {"en": "{answer} looks like a measured slope; the question asks what the score matrix "
                                    "predicts, an exponent that is a whole number here.",
                              "zh": "{answer} 像是测量得到的斜率；题目问的是由分数矩阵推出的预期斜率，这里是一个整数指数。"},
    "ex.cmp.slope.other": {"en": "count how the size of Q K^T grows when N doubles, then write that growth as a power "
                                 "of 2.",
                           "zh": "数一数 N 翻倍时 Q K^T 的大小如何增长，再把这个增长写成 2 的幂。"},
    "ex.cmp.memory.one_factor": {"en": "that is one eighth of the answer: every sample of the batch and every head has "
                                       "its own N × N matrix.",
                                 "zh": "这只是答案的八分之一：批量中的每个样本、每个头都有自己的 N × N 矩阵。"},
    "ex.cmp.memory.one_matrix": {"en": "that is a single N × N matrix; the batch holds one per sample and per head.",
                                 "zh": "这只是一个 N × N 矩阵；批量中每个样本、每个头各有一个。"},
    "ex.cmp.memory.decimal": {"en": "1 GiB is 2^30 bytes, not 10^9.", "zh": "1 GiB 是 2^30 字节，而不是 10^9。"},
    "ex.cmp.memory.float64": {"en": "a float32 value takes 4 bytes, not 8.", "zh": "一个 float32 值占 4 字节，而不是 8。"},
    "ex.cmp.memory.float16": {"en": "the scores are float32, 4 bytes each, not 2.",
                              "zh": "分数是 float32，每个值占 4 字节，而不是 2。"},
    "ex.cmp.memory.bits": {"en": "that counts bits; memory is counted in bytes (8 bits).",
                           "zh": "这是按位（bit）计算的；内存按字节计算（1 字节 = 8 位）。"},
    "ex.cmp.memory.mib": {"en": "that is in MiB; the question asks for GiB (1 GiB = 1024 MiB).",
                          "zh": "这是以 MiB 为单位的结果；题目要的是 GiB（1 GiB = 1024 MiB）。"},
    "ex.cmp.memory.bytes": {"en": "that is in bytes; the question asks for GiB.",
                            "zh": "这是以字节为单位的结果；题目要的是 GiB。"},
    "ex.cmp.memory.other": {"en": "count the N × N matrices of the whole batch, then the bytes of one float32 value, "
                                  "then convert bytes to GiB.",
                            "zh": "先数出整个批量共有多少个 N × N 矩阵，再看一个 float32 值占几个字节，最后把字节换算成 GiB。"},
    "ex.cmp.cheapest.unknown": {"en": "{name} is not a name the check knows for one of the table's mechanisms; answer "
                                      "with a name as the table shows it, or its registry name, e.g. 'CBAM' or 'cbam'.",
                                "zh": "检查不认识 {name} 这个名字，它对不上表中的任何机制名称；请用表中显示的机制名称或它在注册表中的名字作答，"
                                      "例如 'CBAM' 或 'cbam'。"},
    "ex.cmp.cheapest.ambiguous": {"en": "{name} names more than one mechanism; give one.",
                                  "zh": "{name} 同时指向了不止一种机制；请只给出一种。"},
    "ex.cmp.cheapest.tokens": {"en": "that one works on tokens; the question is about feature-map mechanisms.",
                               "zh": "它作用于词元；题目问的是作用于特征图的机制。"},
    "ex.cmp.cheapest.other": {"en": "{name} is not the cheapest: compare its parameter count with the other feature-map "
                                    "mechanisms' in the table (C = 64).",
                              "zh": "{name} 不是参数最少的：请在表中把它的参数量与其他作用于特征图的机制比一比（C = 64）。"},
})


def cost_table(batch_size: int = 8, channels: int = 64, size: int = 28, tokens: int = 196, dim: int = 64,
               min_run_time: float = 0.2, device=None) -> tuple[Table, list[dict]]:
    """Parameters, FLOPs and latency of every registered mechanism at one common input size.

    Feature-map mechanisms get ``(batch_size, channels, size, size)``, token mechanisms
    ``(batch_size, tokens, dim)``; every module is the registry's default configuration at that width.
    FLOPs are those of the equations (``forward_explicit`` where a module has one) and are compared
    with the registry's formula; latency is the median of ``forward`` (the fast path) on ``device``.
    Returns the table (names in the current language) and its rows as dictionaries (numbers unformatted).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    rows = []
    for entry in by_chapter():
        sizes = dict(dim=dim) if entry.layout == "tokens" else dict(channels=channels)
        shape = dict(num_tokens=tokens, dim=dim) if entry.layout == "tokens" else \
            dict(channels=channels, height=size, width=size)
        module = entry.build(**sizes).eval()
        x = entry.example_input(batch_size, **shape)
        method = "forward_explicit" if hasattr(module, "forward_explicit") else "forward"
        flops = count_flops(module, x, method=method).total
        params = count_parameters(module)
        args = {**entry.example_kwargs, **sizes}
        module, x = module.to(device), x.to(device)
        latency = benchmark(module, x, min_run_time=min_run_time).median
        rows.append(dict(name=entry.name, input=tuple(x.shape), params=params, flops=flops,
                         latency_ms=latency * 1e3,
                         params_match=params == entry.expected_params(**args),
                         flops_match=flops == entry.expected_flops(x.shape, **args)))
    yes_no = lambda ok: t("ch08.table.yes") if ok else t("ch08.table.no")  # noqa: E731
    header = [t("ch08.table.mechanism"), t("ch08.table.input"), t("ch08.table.params"),
              t("ch08.table.params_formula"), t("ch08.table.flops"), t("ch08.table.flops_formula"),
              t("ch08.table.latency")]
    cells = [[MECHANISMS[r["name"]].display_name(short=True), format_shape(r["input"]), format_count(r["params"]),
              yes_no(r["params_match"]), format_count(r["flops"]), yes_no(r["flops_match"]),
              f"{r['latency_ms']:.3f}"] for r in rows]
    nowrap = [[f'<span style="white-space: nowrap">{html.escape(c)}</span>' for c in row] for row in cells]
    return Table(header, cells, html_rows=nowrap), rows


#: Other names students use for the mechanisms (the papers' network names); the Chinese names are the registry's.
ALIASES = {"squeeze_excitation": ("SENet", "squeeze excitation"), "selective_kernel": ("SKNet", "selective kernel network"),
           "external_attention": ("EANet",), "eca": ("ECA-Net", "ECANet"),
           "cbam": ("convolutional block attention module",), "bam": ("bottleneck attention module",),
           "self_attention": ("MHSA",)}
#: Words a name may carry around the mechanism's own name ("the SE block", "ECA 模块").
_SUFFIXES = ("network", "module", "block", "layer", "net", "网络", "模块", "机制", "注意力块", "块", "层")


def _normal(text: str) -> str:
    """A spelling reduced to letters and digits, lower case, without a trailing 'net', 'module', 'block'..."""
    text = re.sub(r"[\W_]+", "", text.lower().replace("&", "and"))
    text = re.sub(r"^the", "", text)
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            break
    return text


def _parts(text: str) -> list[str]:
    """``"Efficient Channel Attention (ECA)"`` → the whole, the part outside the parentheses and the part inside."""
    inside = re.findall(r"[(（]([^)）]*)[)）]", text)
    outside = re.sub(r"[(（][^)）]*[)）]", " ", text)
    return [p for p in (text, outside, *inside) if p.strip()]


def _spellings() -> dict[str, set[str]]:
    found = {}
    for name, entry in MECHANISMS.items():
        forms = {name, entry.cls.__name__, *entry.names.values(), *entry.short.values(), *ALIASES.get(name, ())}
        found[name] = {_normal(p) for form in forms for p in _parts(form)} - {""}
    return found


def _mechanism_named(answer) -> Optional[str]:
    """The registry key that ``answer`` names, ``"?"`` when it names several, None when none.

    Accepts a registry key, a display name in either language with or without its parenthesis (``"Efficient
    Channel Attention"``, ``"高效通道注意力"``), the class name, a paper's network name (``"ECA-Net"``), any case,
    spacing or hyphenation; also a registry entry or a mechanism's class handed in directly.
    """
    if getattr(answer, "name", None) in MECHANISMS and not isinstance(answer, str):
        return answer.name
    if isinstance(answer, type):
        return next((n for n, e in MECHANISMS.items() if e.cls is answer), None)
    if not isinstance(answer, str):
        return None
    spellings = _spellings()
    hits = set()
    for part in _parts(answer):
        hits |= {name for name, forms in spellings.items() if _normal(part) in forms}
    return hits.pop() if len(hits) == 1 else ("?" if hits else None)


@exercise("cmp.slope")
def _cmp_slope(answer):
    value = as_number(answer)
    if abs(value - 2) <= 0.05:                  # the exponent the question asks for (a float written 2.0 is fine)
        return None
    if abs(value - 1) <= 0.05:
        return "ex.cmp.slope.linear"
    if abs(value - 4) <= 0.05 or abs(value - 8) <= 0.05:
        return "ex.cmp.slope.factor", dict(answer=describe(answer))
    if abs(value - 2) <= 0.4:
        return "ex.cmp.slope.measured", dict(answer=describe(answer))
    return "ex.cmp.slope.other"


@exercise("cmp.memory")
def _cmp_memory(answer):
    value = as_number(answer)
    B, h, N = 8, 8, 3136
    values = B * h * N * N                       # float32 scores of the whole batch
    exact = values * 4 / 2 ** 30

    def near(target, tol=0.02):
        return abs(value - target) <= tol * abs(target)

    if near(exact):
        return None
    for slip, target in (("decimal", values * 4 / 1e9), ("one_factor", exact / 8), ("one_matrix", exact / 64),
                         ("float64", exact * 2), ("float16", exact / 2), ("bits", exact * 8),
                         ("mib", exact * 1024), ("bytes", values * 4)):
        if near(target):
            return f"ex.cmp.memory.{slip}"
    return "ex.cmp.memory.other"


@exercise("cmp.cheapest")
def _cmp_cheapest(answer):
    name = _mechanism_named(answer)
    if name is None:
        name = _mechanism_named(as_name(answer, example="'CBAM'"))
    if name is None:
        return "ex.cmp.cheapest.unknown", dict(name=describe(answer))
    if name == "?":
        return "ex.cmp.cheapest.ambiguous", dict(name=describe(answer))
    if MECHANISMS[name].layout != "feature_map":
        return "ex.cmp.cheapest.tokens"
    said = describe(answer) if isinstance(answer, (str, bytes)) else repr(MECHANISMS[name].display_name())
    return None if name == "eca" else ("ex.cmp.cheapest.other", dict(name=said))
