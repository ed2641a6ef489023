"""The exercise-check engine: a verdict a student can trust, whatever the answer.

A chapter registers one *judge* per exercise with :func:`exercise`::

    from attention_lib.toolkit.exercises import exercise, as_count

    @exercise("se.params")
    def _se_params(answer):
        n = as_count(answer)            # the engine names every type slip (a string, 1.5, an array...)
        if n == 8464:
            return None                 # right
        if n == 8192:
            return "ex.se.params.no_bias"                       # wrong: the i18n key of the slip
        return "ex.se.params.other", dict(C=256)                # or (key, format fields)

``check(key, answer)`` prints the verdict in the chapter's language; ``verdict(key, answer)`` returns
``(True | False | None, message)``. Neither ever raises: ``...`` (and ``None``) is "not answered yet",
a student's function that crashes, returns ``None`` or edits its inputs gets a verdict that says so,
and a judge that fails on an answer nobody foresaw still yields a verdict (the property test of
``tests/test_exercises.py`` makes sure that this last net is never needed).

The helpers a judge uses, each raising :class:`Slip` with a named verdict:

- answers: :func:`as_count`, :func:`as_number`, :func:`as_shape`, :func:`as_name`, :func:`as_function`;
- a student's function: :func:`call` runs it on copies of the inputs (so that the reference, computed
  first on the originals, cannot be changed by it) and reports an exception with its message, or an
  input changed in place; :func:`expect_tensor` names ``None``, NumPy, a tuple, another dtype, device
  or shape; :func:`close` compares without raising; :func:`which` names the variant a wrong result
  matches (the common slips of the chapter, computed the wrong way on purpose).

Hint keys follow the convention ``"ex.<exercise key>.<slip>"`` (``"ex.se.gate.softmax"``); the
teacher's guide lists them by exercise. Engine keys start with ``"ex.answer."`` and ``"ex.fn."``.
"""
from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import nn

from .i18n import get_language, register, t

Problem = Union[None, str, "tuple[str, Mapping[str, Any]]", "Slip"]

register({
    "ex.unanswered": {"en": "Not answered yet: replace the ... with your answer and run the cell again.",
                      "zh": "尚未作答：把 ... 换成你的答案，再运行这个代码单元。"},
    "ex.correct": {"en": "Correct!", "zh": "正确！"},
    "ex.wrong": {"en": "Not quite: {hint}", "zh": "还不对：{hint}"},
    "ex.unknown": {"en": "No exercise is called {name!r}; known: {known}.",
                   "zh": "没有名为 {name!r} 的练习；已有：{known}。"},
    "ex.check_failed": {"en": "the check could not judge this answer ({error}). Look at the type of your answer; "
                              "if it looks right, please report this check.",
                        "zh": "检查程序无法评判这个答案（{error}）。请先看看答案的类型；如果类型没错，请报告这个检查的问题。"},
    # answers of the wrong type
    "ex.answer.bool": {"en": "{answer} is a truth value, not a number.", "zh": "{answer} 是布尔值，不是数值。"},
    "ex.answer.string": {"en": "that is text ({answer}), not a number: write it without quotes.",
                         "zh": "这是字符串（{answer}），不是数值：请去掉引号再试。"},
    "ex.answer.not_number": {"en": "the answer is one number; you gave {what}.",
                             "zh": "答案应是一个数值，而你给出的是 {what}。"},
    "ex.answer.not_finite": {"en": "{answer} is not a finite number.", "zh": "{answer} 不是有限的数值。"},
    "ex.answer.not_whole": {"en": "a count is a whole number; {answer} is not.",
                            "zh": "个数应是整数，{answer} 不是。"},
    "ex.answer.many": {"en": "give one number, not {n} values.", "zh": "请只给出一个数值，而不是 {n} 个值。"},
    "ex.answer.shape.not_shape": {"en": "give the shape as a tuple of integers, e.g. (2, 3); you gave {what}.",
                                  "zh": "请把形状写成整数元组，例如 (2, 3)；你给出的是 {what}。"},
    "ex.answer.shape.tensor": {"en": "that is a tensor; the answer is a shape, a tuple of integers such as (2, 3).",
                               "zh": "这是一个张量；答案应是形状，即形如 (2, 3) 的整数元组。"},
    "ex.answer.shape.strings": {"en": "the sizes are text: {answer}; write them as integers, without quotes.",
                                "zh": "各维大小写成了字符串：{answer}；请写成整数，不要加引号。"},
    "ex.answer.shape.not_int": {"en": "every size in a shape is a whole number; {value} is not.",
                                "zh": "形状中的每一维都是整数，{value} 不是。"},
    "ex.answer.shape.not_positive": {"en": "every size in a shape is at least 1; {value} is not.",
                                     "zh": "形状中的每一维至少为 1，{value} 不满足。"},
    "ex.answer.name.not_string": {"en": "answer with a name in quotes, e.g. {example}; you gave {what}.",
                                  "zh": "请用带引号的名字作答，例如 {example}；你给出的是 {what}。"},
    "ex.answer.function.not_callable": {"en": "the answer is a function ({usage}); you gave {what}.",
                                        "zh": "答案应是一个函数（{usage}），而你给出的是 {what}。"},
    "ex.answer.function.called": {"en": "that is {what}, the result of a call; pass the function itself: its name, "
                                        "without parentheses.",
                                  "zh": "这是调用函数得到的结果（{what}）；请传入函数本身，即不带括号的函数名。"},
    # what a student's function did
    "ex.fn.raised": {"en": "your function raised {error} for an input of shape {shape}.",
                     "zh": "输入形状为 {shape} 时，你的函数抛出了 {error}。"},
    "ex.fn.raised_plain": {"en": "your function raised {error}.", "zh": "你的函数抛出了 {error}。"},
    "ex.fn.returned_none": {"en": "your function returned None: did you forget `return`?",
                            "zh": "你的函数返回了 None：是不是忘了写 `return`？"},
    "ex.fn.numpy": {"en": "your function returned a NumPy array; return a torch tensor (no .numpy(), stay in torch).",
                    "zh": "你的函数返回了 NumPy 数组；请返回 torch 张量（不要调用 .numpy()，全程使用 torch）。"},
    "ex.fn.tuple": {"en": "your function returned a {kind} of {n} values; return one tensor.",
                    "zh": "你的函数返回了含 {n} 个值的 {kind}；请只返回一个张量。"},
    "ex.fn.not_tensor": {"en": "your function returned {what}, not a tensor.",
                         "zh": "你的函数返回的是 {what}，而不是张量。"},
    "ex.fn.bool": {"en": "the result is a tensor of True/False values: a comparison, not numbers.",
                   "zh": "结果是由 True/False 组成的张量：那是比较的结果，而不是数值。"},
    "ex.fn.shape": {"en": "the result has shape {got}; expected {expected}.",
                    "zh": "结果的形状是 {got}，应为 {expected}。"},
    "ex.fn.device": {"en": "the result is on the device {got}; the input is on {expected}.",
                     "zh": "结果位于设备 {got} 上，而输入位于 {expected} 上。"},
    "ex.fn.dtype": {"en": "the result has dtype {got} but the input is {expected}: keep the input's dtype "
                          "(look for .double(), .half(), .float() or a NumPy round trip).",
                    "zh": "结果的数据类型是 {got}，而输入是 {expected}：请保持输入的数据类型"
                          "（检查 .double()、.half()、.float() 或经过 NumPy 的转换）。"},
    "ex.fn.not_finite": {"en": "the result contains NaN or infinite values.", "zh": "结果中含有 NaN 或无穷大。"},
    "ex.fn.mutated": {"en": "your function changed its input {name} in place (an operation ending in _, "
                            "an assignment into it, or a changed layer); compute new tensors instead.",
                      "zh": "你的函数原地修改了输入 {name}（以 _ 结尾的操作、对它的赋值，或改动了层）；"
                            "请计算新的张量，不要修改输入。"},
})


class Slip(Exception):
    """A named wrong answer: raised by the helpers (and by judges, if they like), turned into a verdict."""

    def __init__(self, key: str, **fmt):
        super().__init__(key)
        self.key, self.fmt = key, fmt
        self.more: list[tuple[str, dict]] = []

    def also(self, key: str, **fmt) -> "Slip":
        """Append a second sentence (e.g. the likely cause) to this verdict; returns the slip."""
        self.more.append((key, fmt))
        return self


@dataclass(frozen=True)
class Exercise:
    key: str
    judge: Callable[[Any], Problem]   # None if right, else the i18n key of what is wrong (or (key, fmt), or a Slip)
    chapter: str = ""                 # the module that registered it, e.g. "ch03_squeeze_excitation"


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str):
    """Decorator: register ``judge(answer)`` as the check of exercise ``key`` (a chapter module does this).

    ``judge`` returns None when the answer is right, else the i18n key of what is wrong, or
    ``(key, format_fields)``, or raises a :class:`Slip` (the helpers below do); it is only called with an
    answer (``...`` and None mean "not answered").
    """
    def wrap(judge):
        module = getattr(judge, "__module__", "") or ""
        EXERCISES[key] = Exercise(key, judge, module.rsplit(".", 1)[-1])
        return judge
    return wrap


# ---------------------------------------------------------------- verdicts


def verdict(key: str, answer: Any) -> tuple[Optional[bool], str]:
    """``(True, message)`` when right, ``(False, what is wrong)``, ``(None, "not answered")`` for ``...``/None."""
    if key not in EXERCISES:
        from .. import chapters
        chapters.load_all()          # the chapters register their exercises when imported
    if key not in EXERCISES:
        return False, t("ex.unknown", name=key, known=", ".join(sorted(EXERCISES)))
    if answer is ... or answer is None:
        return None, t("ex.unanswered")
    try:
        problem = EXERCISES[key].judge(answer)
    except Slip as slip:
        problem = slip
    except Exception as error:   # a gap in the judge: still a verdict, never a traceback
        return False, t("ex.wrong", hint=t("ex.check_failed", error=describe_error(error)))
    if problem is None:
        return True, t("ex.correct")
    try:
        return False, t("ex.wrong", hint=_hint(problem))
    except Exception as error:   # an unknown key or a missing format field
        return False, t("ex.wrong", hint=t("ex.check_failed", error=describe_error(error)))


def check(key: str, answer: Any) -> None:
    """Prints the verdict on ``answer`` in the chapter's language (returns nothing, so a cell shows only the text)."""
    print(verdict(key, answer)[1])


def _hint(problem: Problem) -> str:
    if isinstance(problem, Slip):
        parts = [(problem.key, problem.fmt), *problem.more]
    elif isinstance(problem, tuple):
        parts = [(problem[0], dict(problem[1]))]
    elif isinstance(problem, str):
        parts = [(problem, {})]
    else:
        raise TypeError(f"a judge returned {type(problem).__name__}; expected None, a key or (key, fields)")
    sentences = [t(k, **fmt) if fmt else t(k) for k, fmt in parts]
    return ("" if get_language() == "zh" else " ").join(sentences)   # Chinese sentences join without a space


# ---------------------------------------------------------------- describing what came in

_MAX = 80


def describe(value: Any) -> str:
    """A short description of any value, for a verdict: ``'8'``, ``[1, 2]``, ``tensor(2, 3)``, ``ndarray(4,)``."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if _is_numpy(value):
        return f"ndarray{tuple(value.shape)}"
    if isinstance(value, (str, bytes, numbers.Number, tuple, list)) or value is None:
        text = repr(value)
        return text if len(text) <= _MAX else text[:_MAX - 1] + "…"
    if isinstance(value, type):
        return value.__name__
    return type(value).__name__


def describe_error(error: BaseException) -> str:
    """``TypeError: f() takes 2 positional arguments but 3 were given`` (first line, shortened)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = message.rstrip(".。")
    if len(message) > 160:
        message = message[:159] + "…"
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _is_numpy(value) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype")


# ---------------------------------------------------------------- answers


def _scalar(answer: Any) -> Any:
    """A Python scalar from a one-element tensor or array; a Slip for anything holding several values or none."""
    if isinstance(answer, torch.Tensor) or _is_numpy(answer):
        n = int(answer.numel()) if isinstance(answer, torch.Tensor) else int(answer.size)
        if n != 1:
            raise Slip("ex.answer.many", n=n) if n > 1 else Slip("ex.answer.not_number", what=describe(answer))
        try:
            return answer.reshape(()).item() if isinstance(answer, torch.Tensor) else answer.reshape(()).item()
        except Exception:    # a meta tensor, an object array...
            raise Slip("ex.answer.not_number", what=describe(answer)) from None
    if isinstance(answer, (list, tuple, set, dict)):
        raise Slip("ex.answer.many", n=len(answer)) if len(answer) > 1 else \
            Slip("ex.answer.not_number", what=describe(answer))
    return answer


def as_number(answer: Any) -> float:
    """The answer as a finite float; a named Slip for text, truth values, several values, NaN..."""
    value = _scalar(answer)
    if isinstance(value, bool):
        raise Slip("ex.answer.bool", answer=repr(value))
    if isinstance(value, (str, bytes)):
        raise Slip("ex.answer.string", answer=describe(value))
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise Slip("ex.answer.not_number", what=describe(value))
    if not isinstance(value, numbers.Real):
        raise Slip("ex.answer.not_number", what=describe(value))
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise Slip("ex.answer.not_number", what=describe(value)) from None
    if not math.isfinite(number):
        raise Slip("ex.answer.not_finite", answer=describe(value))
    return number


def as_count(answer: Any) -> int:
    """The answer as an int (``8464``, ``8464.0`` or a one-element integer tensor); a named Slip otherwise."""
    value = _scalar(answer)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    number = as_number(value)
    if number != int(number):
        raise Slip("ex.answer.not_whole", answer=describe(value))
    return int(number)


def as_shape(answer: Any) -> tuple[int, ...]:
    """The answer as a tuple of positive ints (a tuple, a list or a ``torch.Size``); a named Slip otherwise."""
    if isinstance(answer, torch.Size):
        return tuple(int(s) for s in answer)
    if isinstance(answer, torch.Tensor) or _is_numpy(answer):
        raise Slip("ex.answer.shape.tensor")
    if not isinstance(answer, (tuple, list)):
        raise Slip("ex.answer.shape.not_shape", what=describe(answer))
    if answer and all(isinstance(s, (str, bytes)) for s in answer):
        raise Slip("ex.answer.shape.strings", answer=describe(answer))
    shape = []
    for size in answer:
        if isinstance(size, torch.Tensor) and size.numel() == 1 and not size.is_floating_point() \
                and size.dtype != torch.bool and size.device.type != "meta":
            size = int(size.item())
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise Slip("ex.answer.shape.not_int", value=describe(size))
        if size < 1:
            raise Slip("ex.answer.shape.not_positive", value=describe(size))
        shape.append(int(size))
    return tuple(shape)


def as_name(answer: Any, example: str = "'cbam'") -> str:
    """The answer as a stripped, lower-case name; a named Slip for anything but text."""
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    if not isinstance(answer, str):
        raise Slip("ex.answer.name.not_string", example=example, what=describe(answer))
    return answer.strip().strip("'\"").strip().lower()


def as_function(answer: Any, usage: str = "f(x)") -> Callable:
    """The answer if it can be called; a named Slip for a tensor (a call's result) or anything else."""
    if isinstance(answer, torch.Tensor) or _is_numpy(answer):
        raise Slip("ex.answer.function.called", what=describe(answer))
    if not callable(answer):
        raise Slip("ex.answer.function.not_callable", usage=usage, what=describe(answer))
    return answer


# ---------------------------------------------------------------- a student's function


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _same(a, b) -> bool:
    """Whether ``b`` still equals the pristine ``a`` (tensors exactly; modules by their parameters and buffers)."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            return False
        b = b.detach()
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return bool(torch.equal(a, b))
    if isinstance(a, nn.Module):
        if not isinstance(b, nn.Module):
            return False
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(_same(sa[k], sb[k]) for k in sa)
    return True   # plain values: a function cannot change an int or a tuple


def call(function: Callable, *args, names: tuple[str, ...] = (), **kwargs) -> Any:
    """``function(*args, **kwargs)`` on copies of the inputs, without gradients; Slip if it raises or edits an input.

    ``names`` names the positional inputs for the verdict (``("x", "fc1", "fc2")``; unnamed ones are ``arg1``,
    ``arg2``...). Compute the reference *before* calling: the originals are never handed to the student's code.
    """
    copies = [_copy(a) for a in args]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    try:
        with torch.no_grad():
            result = function(*copies, **kw_copies)
    except Exception as error:   # the student's code: report, never raise
        shape = next((tuple(a.shape) for a in args if isinstance(a, torch.Tensor)), None)
        if shape is None:
            raise Slip("ex.fn.raised_plain", error=describe_error(error)) from None
        raise Slip("ex.fn.raised", error=describe_error(error), shape=shape) from None
    labels = list(names) + [f"arg{i + 1}" for i in range(len(names), len(args))]
    for label, original, seen in zip(labels, args, copies):
        if not _same(original, seen):
            raise Slip("ex.fn.mutated", name=label)
    for label, original in kwargs.items():
        if not _same(original, kw_copies[label]):
            raise Slip("ex.fn.mutated", name=label)
    return result


def expect_tensor(got: Any, expected: torch.Tensor) -> torch.Tensor:
    """``got`` if it is a tensor of ``expected``'s shape, dtype and device, with finite values; else a named Slip."""
    if got is None:
        raise Slip("ex.fn.returned_none")
    if _is_numpy(got):
        raise Slip("ex.fn.numpy")
    if isinstance(got, (tuple, list)):
        raise Slip("ex.fn.tuple", kind=type(got).__name__, n=len(got))
    if not isinstance(got, torch.Tensor):
        raise Slip("ex.fn.not_tensor", what=describe(got))
    if got.dtype == torch.bool:
        raise Slip("ex.fn.bool")
    if got.shape != expected.shape:
        raise Slip("ex.fn.shape", got=tuple(got.shape), expected=tuple(expected.shape))
    if got.device != expected.device:
        raise Slip("ex.fn.device", got=str(got.device), expected=str(expected.device))
    if got.dtype != expected.dtype:
        raise Slip("ex.fn.dtype", got=str(got.dtype).replace("torch.", ""),
                   expected=str(expected.dtype).replace("torch.", ""))
    if got.is_floating_point() and not bool(torch.isfinite(got).all()):
        raise Slip("ex.fn.not_finite")
    return got


def close(got: Any, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Whether ``got`` holds ``expected``'s values (same number of elements; any dtype or layout); never raises."""
    try:
        if not isinstance(got, torch.Tensor) or got.numel() != expected.numel() or got.device.type == "meta":
            return False
        a = got.detach().to("cpu", torch.float64).reshape(expected.shape)
        b = expected.detach().to("cpu", torch.float64)
        return bool(torch.allclose(a, b, atol=atol, rtol=rtol))
    except Exception:
        return False


def which(got: Any, variants, **tolerance) -> Optional[str]:
    """The key of the first variant whose values ``got`` holds (a named slip), else None.

    ``variants``: a mapping or a sequence of ``(key, tensor)`` pairs (a slip may have several forms).
    """
    pairs = variants.items() if isinstance(variants, Mapping) else variants
    return next((key for key, value in pairs if close(got, value, **tolerance)), None)
