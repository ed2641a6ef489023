"""Exercise checks for the chapters.

Each exercise has a key (``"se.params"``); ``check(key, answer)`` prints a short verdict in the
chapter's language: right, wrong (saying what is wrong) or not answered yet. ``verdict`` returns it
as ``(True | False | None, message)`` for tests. Neither raises: the book executes every check with
the answer left blank, and a reader's function that crashes is reported, not re-raised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from .i18n import register, t

register({
    "ex.unanswered": {"en": "Not answered yet: replace the ... with your answer and run the cell again.",
                      "zh": "尚未作答：把 ... 换成你的答案，再运行本单元格。"},
    "ex.correct": {"en": "Correct!", "zh": "正确！"},
    "ex.wrong": {"en": "Not quite: {hint}", "zh": "还不对：{hint}"},
    "ex.unknown": {"en": "No exercise is called {name!r}; known: {known}.",
                   "zh": "没有名为 {name!r} 的练习；已有：{known}。"},
    # Squeeze-and-Excitation
    "ex.se.params.no_bias": {"en": "that is W1 and W2 alone; both FC layers also have a bias (C/r and C values).",
                             "zh": "这只算了 W1 和 W2；两个全连接层还各有偏置（分别是 C/r 和 C 个值）。"},
    "ex.se.params.one_fc": {"en": "SE has two FC layers: C -> C/r and C/r -> C.",
                            "zh": "SE 有两个全连接层：C -> C/r 和 C/r -> C。"},
    "ex.se.params.other": {"en": "count W1 (C/r x C), b1 (C/r), W2 (C x C/r) and b2 (C) with C = 256, r = 16.",
                           "zh": "分别数出 W1（C/r × C）、b1（C/r）、W2（C × C/r）和 b2（C），其中 C = 256，r = 16。"},
    "ex.se.shape.not_shape": {"en": "give the shape as a tuple of four integers, e.g. (1, 2, 3, 4).",
                              "zh": "请把形状写成四个整数的元组，例如 (1, 2, 3, 4)。"},
    "ex.se.shape.flat": {"en": "(B, C) is the excitation s before reshaping; the gate keeps two singleton axes so that "
                               "x * gate broadcasts over H and W.",
                         "zh": "(B, C) 是变形之前的激励 s；门控保留两个长度为 1 的轴，x * gate 才能在 H 和 W 上广播。"},
    "ex.se.shape.full": {"en": "the gate holds one number per channel, not one per pixel.",
                         "zh": "门控每个通道只有一个数，而不是每个像素一个。"},
    "ex.se.shape.other": {"en": "one weight per sample and per channel, shaped to broadcast against (B, C, H, W).",
                          "zh": "每个样本、每个通道一个权重，形状要能与 (B, C, H, W) 广播。"},
    "ex.se.gate.not_callable": {"en": "the answer is a function se_gate(x, fc1, fc2) returning a (B, C, 1, 1) tensor.",
                                "zh": "答案应是函数 se_gate(x, fc1, fc2)，返回形状为 (B, C, 1, 1) 的张量。"},
    "ex.se.gate.raised": {"en": "your function raised {error} for an input of shape {shape}{extra}",
                          "zh": "输入形状为 {shape} 时，你的函数抛出了 {error}{extra}"},
    "ex.se.gate.batch1": {"en": " (batch size 1: does a .squeeze() remove the batch axis too?).",
                          "zh": "（批大小为 1：是不是 .squeeze() 把批维度也挤掉了？）"},
    "ex.se.gate.shape": {"en": "the result has shape {got}; expected {expected}.",
                         "zh": "结果的形状是 {got}，应为 {expected}。"},
    "ex.se.gate.softmax": {"en": "the channel weights come from a sigmoid, not a softmax: channels do not compete "
                                 "for a fixed budget.",
                           "zh": "通道权重来自 sigmoid 而不是 softmax：各通道并不争夺一份固定的总量。"},
    "ex.se.gate.no_relu": {"en": "the ReLU (δ) between the two FC layers is missing.",
                           "zh": "两个全连接层之间缺了 ReLU（δ）。"},
    "ex.se.gate.max_pool": {"en": "the squeeze is a global AVERAGE pool, not a max pool.",
                            "zh": "挤压（squeeze）是全局平均池化，而不是最大池化。"},
    "ex.se.gate.no_sigmoid": {"en": "the sigmoid (σ) at the end is missing: the gate must lie in (0, 1).",
                              "zh": "末尾缺了 sigmoid（σ）：门控值必须落在 (0, 1) 之间。"},
    "ex.se.gate.other": {"en": "the values differ from sigma(W2 relu(W1 z)) with z the channel means.",
                         "zh": "数值与 σ(W2 ReLU(W1 z)) 不一致（z 为各通道的均值）。"},
})


@dataclass(frozen=True)
class Exercise:
    key: str
    judge: Callable[[Any], Optional[str]]   # None if right, else the i18n key of what is wrong


EXERCISES: dict[str, Exercise] = {}


def _exercise(key):
    def wrap(judge):
        EXERCISES[key] = Exercise(key, judge)
        return judge
    return wrap





def verdict(key: str, answer: Any) -> tuple[Optional[bool], str]:
    """``(True, message)`` when right, ``(False, what is wrong)``, ``(None, "not answered")`` for ``...``/None."""
    if key not in EXERCISES:
        return False, t("ex.unknown", name=key, known=", ".join(sorted(EXERCISES)))
    if answer is ... or answer is None:
        return None, t("ex.unanswered")
    problem = EXERCISES[key].judge(answer)
    if problem is None:
        return True, t("ex.correct")
    hint_key, fmt = problem if isinstance(problem, tuple) else (problem, {})
    return False, t("ex.wrong", hint=t(hint_key, **fmt))


def check(key: str, answer: Any) -> None:
    """Prints the verdict on ``answer`` in the chapter's language (returns nothing, so a cell shows only the text)."""
    print(verdict(key, answer)[1])


# ---------------------------------------------------------------- Squeeze-and-Excitation


@_exercise("se.params")
def _se_params(answer):
    C, r = 256, 16
    h = C // r
    if answer == 2 * C * h + h + C:
        return None
    if answer == 2 * C * h:
        return "ex.se.params.no_bias"
    if answer in (C * h, C * h + h, C * h + C):
        return "ex.se.params.one_fc"
    return "ex.se.params.other"


@_exercise("se.shape")
def _se_shape(answer):
    try:
        shape = tuple(int(s) for s in answer)
    except (TypeError, ValueError):
        return "ex.se.shape.not_shape"
    if shape == (8, 256, 1, 1):
        return None
    if shape == (8, 256):
        return "ex.se.shape.flat"
    if shape == (8, 256, 14, 14):
        return "ex.se.shape.full"
    return "ex.se.shape.other"


def _se_variants(x, fc1, fc2):
    """What common mistakes compute, to name the mistake a wrong answer made."""
    z_avg, z_max = x.mean((2, 3)), x.amax((2, 3))
    return {
        "ex.se.gate.softmax": torch.softmax(fc2(torch.relu(fc1(z_avg))), dim=1),
        "ex.se.gate.no_relu": torch.sigmoid(fc2(fc1(z_avg))),
        "ex.se.gate.max_pool": torch.sigmoid(fc2(torch.relu(fc1(z_max)))),
        "ex.se.gate.no_sigmoid": fc2(torch.relu(fc1(z_avg))),
    }


@_exercise("se.gate")
def _se_gate(answer):
    if not callable(answer):
        return "ex.se.gate.not_callable"
    g = torch.Generator().manual_seed(0)
    C, h = 32, 4
    fc1, fc2 = nn.Linear(C, h), nn.Linear(h, C)
    with torch.no_grad():
        for p in (*fc1.parameters(), *fc2.parameters()):
            p.copy_(torch.randn(p.shape, generator=g))
    for B in (3, 1):
        x = torch.randn(B, C, 5, 7, generator=g)
        try:
            with torch.no_grad():
                got = answer(x, fc1, fc2)
        except Exception as error:  # the reader's code: report, never raise
            extra = t("ex.se.gate.batch1") if B == 1 else "."
            return "ex.se.gate.raised", dict(error=type(error).__name__, shape=tuple(x.shape), extra=extra)
        expected = torch.sigmoid(fc2(torch.relu(fc1(x.mean((2, 3))))))[:, :, None, None]
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return "ex.se.gate.shape", dict(got=shape, expected=tuple(expected.shape))
        if not torch.allclose(got, expected, atol=1e-5):
            for key, variant in _se_variants(x, fc1, fc2).items():
                if torch.allclose(got.reshape(variant.shape), variant, atol=1e-5):
                    return key
            return "ex.se.gate.other"
    return None


# ---------------------------------------------------------------- Comparison (chapter 08)

register({
    "ex.cmp.slope.not_number": {"en": "the answer is one number: the exponent a in time ∝ N^a.",
                                "zh": "答案是一个数：时间 ∝ N^a 中的指数 a。"},
    "ex.cmp.slope.linear": {"en": "1 is the slope of External Attention and of the projections; the score matrix "
                                  "Q K^T has N × N entries.",
                            "zh": "1 是外部注意力和线性投影的斜率；而打分矩阵 Q K^T 有 N × N 个元素。"},
    "ex.cmp.slope.other": {"en": "count how the size of Q K^T grows when N doubles.",
                           "zh": "数一数 N 翻倍时 Q K^T 的大小如何增长。"},
    "ex.cmp.memory.not_number": {"en": "give the size in GiB as a number.", "zh": "请以 GiB 为单位给出一个数。"},
    "ex.cmp.memory.one_head": {"en": "that is one head; every head has its own N × N matrix.",
                               "zh": "这只是一个头；每个头都有自己的 N × N 矩阵。"},
    "ex.cmp.memory.decimal": {"en": "1 GiB is 2^30 bytes, not 10^9.", "zh": "1 GiB 是 2^30 字节，而不是 10^9。"},
    "ex.cmp.memory.other": {"en": "B × heads × N × N values of 4 bytes each (float32), divided by 2^30.",
                            "zh": "共 B × 头数 × N × N 个值，每个 4 字节（float32），再除以 2^30。"},
    "ex.cmp.cheapest.unknown": {"en": "answer with a registry name, e.g. 'cbam'.",
                                "zh": "请用注册表中的名字作答，例如 'cbam'。"},
    "ex.cmp.cheapest.tokens": {"en": "that one works on tokens; the question is about feature-map mechanisms.",
                               "zh": "它作用于 token；题目问的是作用于特征图的机制。"},
    "ex.cmp.cheapest.other": {"en": "look at the parameter column again: one mechanism needs only k weights.",
                              "zh": "再看一遍参数量那一列：有一种机制只需要 k 个权重。"},
})


@_exercise("cmp.slope")
def _cmp_slope(answer):
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return "ex.cmp.slope.not_number"
    if abs(value - 2) <= 0.25:
        return None
    return "ex.cmp.slope.linear" if abs(value - 1) <= 0.25 else "ex.cmp.slope.other"


@_exercise("cmp.memory")
def _cmp_memory(answer):
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return "ex.cmp.memory.not_number"
    B, h, N = 8, 8, 3136
    exact = B * h * N * N * 4 / 2 ** 30
    if abs(value - exact) <= 0.02 * exact:
        return None
    if abs(value - exact / h) <= 0.02 * exact / h:
        return "ex.cmp.memory.one_head"
    if abs(value - B * h * N * N * 4 / 1e9) <= 0.01 * exact:
        return "ex.cmp.memory.decimal"
    return "ex.cmp.memory.other"


@_exercise("cmp.cheapest")
def _cmp_cheapest(answer):
    from .registry import MECHANISMS

    name = str(answer).strip().lower()
    if name not in MECHANISMS:
        return "ex.cmp.cheapest.unknown"
    if MECHANISMS[name].layout != "feature_map":
        return "ex.cmp.cheapest.tokens"
    return None if name == "eca" else "ex.cmp.cheapest.other"
