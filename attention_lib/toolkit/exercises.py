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

``check(key, answer)`` shows the verdict in the chapter's language (a coloured block in Jupyter, plain text
elsewhere); ``verdict(key, answer)`` returns ``(True | False | None, message)``. Neither ever raises: ``...`` is
"not answered yet" (and ``None``, what ``answer = print(...)`` leaves, is named as such), a student's function
that crashes, calls ``sys.exit()``, loops for ever, returns ``None``, edits its inputs (inside lists, tuples and
dicts too) or makes a call its exercise forbids (torch's attention in an exercise that asks for it by hand,
recorded at run time however it is spelled: :func:`watching`) gets a verdict that says so, and a judge that fails on an answer nobody foresaw still yields a verdict
(the property test of ``tests/test_exercise_engine.py`` makes sure that this last net is never needed). A verdict
runs under a time limit (:data:`TIME_LIMIT`) and leaves the global random state (torch, ``random``, NumPy) as it
found it, so that checking an answer never changes the notebook's later numbers.

The helpers a judge uses, each raising :class:`Slip` with a named verdict:

- answers: :func:`as_count`, :func:`as_number`, :func:`as_shape`, :func:`as_name`, :func:`as_function`;
- a student's function: :func:`call` runs it on copies of the inputs (so that the reference, computed
  first on the originals, cannot be changed by it) and reports an exception with its message, or an
  input changed in place; :func:`expect_tensor` names ``None``, NumPy, a tuple, another dtype, device
  or shape; :func:`close` compares without raising; :func:`which` names the variant a wrong result
  matches (the common slips of the chapter, computed the wrong way on purpose); :func:`expect_close` does all
  three at the end of a test case;
- test cases: a function check tries several sizes, each later case changing ONE thing of the first
  (the batch size, the number of tokens, the kernel size...), inside ``with case("ex.<key>.case.<what>")``:
  a slip found there is followed by the sentence that says what this case changed, so that the verdict
  names the cause only when it fits.

Hint keys follow the convention ``"ex.<exercise key>.<slip>"`` (``"ex.se.gate.softmax"``); the
teacher's guide lists them by exercise. Engine keys start with ``"ex.answer."`` and ``"ex.fn."``.
A printed verdict is feedback, not evidence: ``python -m attention_lib.grade`` re-runs submitted answers.
"""
from __future__ import annotations

import concurrent.futures
import copy
import html
import linecache
import math
import numbers
import random
import re
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .i18n import get_language, register, t

Problem = Union[None, str, "tuple[str, Mapping[str, Any]]", "Slip"]

#: Seconds one verdict may take, the student's code included; a function still running then gets a verdict
#: that says so (an endless loop), instead of a cell that never ends.
TIME_LIMIT = 10.0

register({
    "ex.unanswered": {"en": "Not answered yet: replace the ... with your answer and run the cell again.",
                      "zh": "尚未作答：把 ... 换成你的答案，再运行这个代码单元。"},
    "ex.answer.none": {"en": "Not answered yet: your answer is None. If you wrote answer = print(...), print shows "
                             "the value but gives back None: assign the value itself.",
                       "zh": "尚未作答：你的答案是 None。如果你写的是 answer = print(...)，要知道 print 只负责显示，"
                             "返回的是 None：请把值本身赋给变量。"},
    "ex.correct": {"en": "Correct!", "zh": "正确！"},
    "ex.reference": {"en": "Reference solution: {verdict}", "zh": "参考答案：{verdict}"},
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
    "ex.answer.shape.array": {"en": "that is a NumPy array of values; the answer is a shape, a tuple of integers such "
                                    "as (2, 3).",
                              "zh": "这是一个 NumPy 数组；答案应是形状，即形如 (2, 3) 的整数元组。"},
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
    "ex.fn.raised": {"en": "your function raised {error} for {inputs}.",
                     "zh": "当 {inputs} 时，你的函数抛出了 {error}。"},
    "ex.fn.inputs.tensors": {"en": "{names} of shape {shape}", "zh": "{names} 的形状为 {shape}"},
    "ex.fn.inputs.list": {"en": "{name} ({n} tensors of shape {shape})", "zh": "{name} 为 {n} 个张量、形状均为 {shape}"},
    "ex.fn.fixed_size": {"en": "{n} is not a size of these inputs: is a size fixed in your code (a number, or a "
                               "variable of the notebook)? Read every size off the inputs (x.shape).",
                         "zh": "{n} 不是这些输入的任何一维的大小：代码里是不是写死了某个大小（一个数字，或 Jupyter 笔记本里的某个变量）？"
                               "请从输入本身读取各维大小（x.shape）。"},
    "ex.fn.fixed_sizes": {"en": "{n} are not sizes of these inputs: are sizes fixed in your code (numbers, or "
                                "variables of the notebook)? Read every size off the inputs (x.shape).",
                          "zh": "{n} 都不是这些输入的任何一维的大小：代码里是不是写死了几个大小（数字，或 Jupyter 笔记本里的变量）？"
                                "请从输入本身读取各维大小（x.shape）。"},
    "ex.fn.inputs.sizes": {"en": "{first} and {last}", "zh": "{first} 和 {last}"},
    "ex.fn.return_types": {"en": "torch.max(x, dim) and torch.min(x, dim) give back a pair (values, indices): take "
                                 ".values, or use x.amax(dim).",
                           "zh": "torch.max(x, dim) 和 torch.min(x, dim) 返回的是一对结果（values, indices）：请取 .values，"
                                 "或改用 x.amax(dim)。"},
    "ex.fn.timeout": {"en": "your function did not finish within {seconds:g} s: is there a loop that never ends "
                            "(a while loop whose condition never changes)?",
                      "zh": "你的函数在 {seconds:g} 秒内没有运行完：是不是有一个永远不会结束的循环（例如条件始终不变的 while 循环）？"},
    "ex.fn.exit": {"en": "your function called exit() or sys.exit() (SystemExit), which would stop the whole "
                         "program; return the result instead.",
                   "zh": "你的函数调用了 exit() 或 sys.exit()（SystemExit），这会终止整个程序；请返回结果。"},
    "ex.fn.raised_plain": {"en": "your function raised {error}.", "zh": "你的函数抛出了 {error}。"},
    "ex.name_elsewhere": {"en": "`{name}` is defined in another cell, and an answer cell must stand on its own: when "
                                "your work is graded, each answer cell is re-run alone, after the notebook's "
                                "imports, so define in it everything it uses.",
                          "zh": "`{name}` 定义在另一个代码单元里，而作答的代码单元必须能独立运行：评分时每个作答的代码单元都会在 Jupyter 笔记本的导入之后单独重新运行，所以它用到的一切都要在本单元里定义。"},
    "ex.fn.returned_none": {"en": "your function returned None: did it print the result, or forget `return`?",
                            "zh": "你的函数返回了 None：是把结果打印了出来，还是忘了写 `return`？"},
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
    "ex.fn.values": {"en": "the shape is right, the values are not.", "zh": "形状对了，数值不对。"},
    "ex.forbidden.scaled_dot_product_attention": {
        "en": "this exercise asks you to compute attention yourself, and your function called "
              "F.scaled_dot_product_attention, the check's reference. Write it from torch operations: a matrix "
              "product, the scale, a softmax.",
        "zh": "这个练习要求你自己计算注意力，而你的函数调用了 F.scaled_dot_product_attention，也就是检查程序用作参考的函数。"
              "请只用 torch 的基本运算来写：矩阵乘法、缩放和 softmax。"},
    "ex.forbidden.is_causal": {
        "en": "this exercise asks you to build the causal mask yourself, and your function called "
              "F.scaled_dot_product_attention with is_causal=True, the check's reference. Build the (N, N) mask "
              "and pass it as attn_mask.",
        "zh": "这个练习要求你自己构造因果掩码，而你的函数以 is_causal=True 调用了 F.scaled_dot_product_attention，"
              "也就是检查程序用作参考的写法。请自己构造 (N, N) 的掩码，作为 attn_mask 传入。"},
    "ex.forbidden.count_parameters": {
        "en": "this exercise asks you to count by hand, and your code called count_parameters.",
        "zh": "这个练习要求你手工计算，而你的代码调用了 count_parameters。"},
    "ex.forbidden.flex_attention": {
        "en": "this exercise asks you to compute attention yourself, and your function called torch's "
              "flex_attention. Write it from torch operations: a matrix product, the scale, a softmax.",
        "zh": "这个练习要求你自己计算注意力，而你的函数调用了 torch 的 flex_attention。"
              "请只用 torch 的基本运算来写：矩阵乘法、缩放和 softmax。"},
    "ex.forbidden.multi_head_attention_forward": {
        "en": "this exercise asks you to compute attention yourself, and your function called "
              "F.multi_head_attention_forward. Write it from torch operations: a matrix product, the scale, a softmax.",
        "zh": "这个练习要求你自己计算注意力，而你的函数调用了 F.multi_head_attention_forward。"
              "请只用 torch 的基本运算来写：矩阵乘法、缩放和 softmax。"},
    "ex.forbidden.threaded": {
        "en": "your function waited on another thread (Future.result, Thread.join, a queue), where this check cannot "
              "see which calls it makes; compute the result in the function itself.",
        "zh": "你的函数在等待另一个线程的结果（Future.result、Thread.join 或队列），检查看不到那个线程调用了什么；"
              "请在函数本身里算出结果。"},
    "ex.forbidden.unwatched": {
        "en": "your function switched off the recording of the calls this exercise forbids (sys.setprofile, or "
              "torch's function modes); write it without touching them.",
        "zh": "你的函数关掉了对本练习禁止的调用的记录（sys.setprofile 或 torch 的函数模式）；请不要改动它们。"},
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
        self.complete = False        # True: the verdict already names the case (a test case adds nothing)

    def also(self, key: str, **fmt) -> "Slip":
        """Append a second sentence (e.g. the likely cause) to this verdict; returns the slip."""
        self.more.append((key, fmt))
        return self

    def whole(self) -> "Slip":
        """Mark this verdict as complete: the sentence of the test case it was found in is not added."""
        self.complete = True
        return self


class TimeUp(BaseException):
    """Raised into a check when its time limit runs out: a ``BaseException``, so that a student's
    ``except Exception:`` cannot swallow it."""


@dataclass(frozen=True)
class Exercise:
    key: str
    judge: Callable[[Any], Problem]   # None if right, else the i18n key of what is wrong (or (key, fmt), or a Slip)
    chapter: str = ""                 # the module that registered it, e.g. "ch03_squeeze_excitation"
    forbid: tuple[str, ...] = ()      # names an answer must not use (flagged; recorded at run time if WATCHABLE)
    allow: tuple[str, ...] = ()       # the library's names the book's own solution uses (the grader does not flag them)


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, forbid: tuple[str, ...] = (), allow: tuple[str, ...] = ()):
    """Decorator: register ``judge(answer)`` as the check of exercise ``key`` (a chapter module does this).

    ``judge`` returns None when the answer is right, else the i18n key of what is wrong, or
    ``(key, format_fields)``, or raises a :class:`Slip` (the helpers below do); it is only called with an
    answer (``...`` and None mean "not answered"). ``forbid`` names what the exercise asks the student not to
    use (``("scaled_dot_product_attention",)``): ``python -m attention_lib.grade`` flags an answer cell that names
    it, and the names among :data:`WATCHABLE` are recorded at run time (:func:`watching`): a student's function
    that makes such a call inside the check gets a verdict that says to compute it yourself. ``allow`` names the
    library's names an answer may use because the book's own solution does (``("eca_kernel_size",)``): the grader
    does not flag ``al.eca_kernel_size`` there.
    """
    def wrap(judge):
        module = getattr(judge, "__module__", "") or ""
        EXERCISES[key] = Exercise(key, judge, module.rsplit(".", 1)[-1], tuple(forbid), tuple(allow))
        return judge
    return wrap


# ---------------------------------------------------------------- verdicts


def verdict(key: str, answer: Any, calls: Optional[set] = None) -> tuple[Optional[bool], str]:
    """``(True, message)`` when right, ``(False, what is wrong)``, ``(None, "not answered")`` for ``...``/None.

    A student's function that makes a call its exercise forbids (``Exercise.forbid``, watched at run time by
    :func:`watching` inside :func:`call`) gets ``(False, "... asks you to compute it yourself ...")``, whatever its
    values; the names of those calls are added to ``calls`` if given (the grading command flags them)."""
    if key not in EXERCISES:
        from .. import chapters
        chapters.load_all()          # the chapters register their exercises when imported
    if key not in EXERCISES:
        return False, t("ex.unknown", name=key, known=", ".join(sorted(EXERCISES)))
    if answer is ...:
        return None, t("ex.unanswered")
    if answer is None:               # what `answer = print(...)` leaves behind
        return None, t("ex.answer.none")
    judge = EXERCISES[key].judge
    seen: set = set()
    _FORBIDDEN.append((EXERCISES[key].forbid, seen))      # what call() watches while the student's function runs
    try:
        with _random_state_kept():
            problem = run_limited(lambda: judge(answer), TIME_LIMIT)
    except Slip as slip:
        problem = slip
    except TimeUp:
        problem = Slip("ex.fn.timeout", seconds=TIME_LIMIT)
    except SystemExit:               # from an answer's own methods, outside call()
        problem = Slip("ex.fn.exit")
    except Exception as error:       # a gap in the judge: still a verdict, never a traceback
        problem = Slip("ex.check_failed", error=describe_error(error))
    finally:
        _FORBIDDEN.pop()
    if calls is not None:
        calls.update(seen)
    if seen:                         # the exercise's rule comes first: right values by a forbidden call are not right
        return False, t("ex.wrong", hint=t(f"ex.forbidden.{sorted(seen)[0]}"))
    if problem is None:
        return True, t("ex.correct")
    try:
        return False, t("ex.wrong", hint=_hint(problem))
    except Exception as error:       # an unknown key or a missing format field
        return False, t("ex.wrong", hint=t("ex.check_failed", error=describe_error(error)))


def check(key: str, answer: Any) -> None:
    """Shows the verdict on ``answer`` in the chapter's language and returns nothing.

    In Jupyter it is a coloured block (:class:`Verdict`); elsewhere the message is printed. In a hidden
    solution cell (first line ``# @title Solution``) the verdict says that it is the reference solution's.
    """
    result, message = verdict(key, answer)
    shown = Verdict(result, message, reference=_called_from_a_solution())
    shell = _ipython()
    if shell is None:
        print(shown)
        return
    from IPython.display import display
    display(shown)


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


# ---------------------------------------------------------------- how a verdict looks

#: (symbol, text colour, background, border) per outcome: dark text on a light background of its own, so that the
#: contrast (at least 7:1, tested) holds in light and dark themes alike; the symbol and the first words say the
#: outcome too, so colour is never the only cue.
VERDICT_COLOURS = {True: ("✓", "#0b3d1c", "#dcf3e3", "#1a7f37"),
                   None: ("…", "#3d2c00", "#fff2c4", "#9a6700"),
                   False: ("✗", "#5c0b08", "#fde4e1", "#c0271d")}
_KIND = {True: "right", None: "unanswered", False: "wrong"}


@dataclass(frozen=True)
class Verdict:
    """A verdict as Jupyter shows it: text (``repr``) for any front end, a coloured block (HTML) where HTML is shown."""
    result: Optional[bool]
    message: str
    reference: bool = False            # the verdict on a notebook's hidden reference solution

    @property
    def text(self) -> str:
        return t("ex.reference", verdict=self.message) if self.reference else self.message

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _lead(self) -> str:
        """The words that say the outcome ("Correct!", "Not quite:", "Not answered yet:"), bold in the block."""
        for lead in (t("ex.correct"), t("ex.wrong", hint="").rstrip(), t("ex.unanswered").split("：")[0] + "：",
                     t("ex.unanswered").split(":")[0] + ":"):
            if lead and self.message.startswith(lead):
                return lead
        return ""

    def _repr_html_(self) -> str:
        symbol, colour, background, border = VERDICT_COLOURS[self.result]
        lead = self._lead()
        rest = self.message[len(lead):]
        label = t("ex.reference", verdict="") if self.reference else ""
        lang = "zh-CN" if get_language() == "zh" else "en"      # as the Chinese pages say it
        style = (f"margin:0.3em 0;padding:0.45em 0.8em;border-left:0.3em solid {border};border-radius:0.25em;"
                 f"background:{background};color:{colour};font-family:inherit;font-size:inherit;line-height:1.5;"
                 "white-space:normal;word-break:normal;overflow-wrap:break-word;hyphens:manual;max-width:52em")
        return (f'<div class="attention-verdict attention-verdict-{_KIND[self.result]}" lang="{lang}" '
                f'style="{style}"><span aria-hidden="true" style="font-weight:700;margin-right:0.4em">{symbol}</span>'
                f'{html.escape(label)}<strong>{html.escape(lead)}</strong>{html.escape(rest)}</div>')


def _ipython():
    """The running IPython shell (a Jupyter kernel, Colab), else None (a script, pytest)."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:              # pragma: no cover
        return None
    return get_ipython()


SOLUTION_TITLE = "# @title Solution"


def _called_from_a_solution() -> bool:
    """Whether ``check`` was called from a notebook's hidden solution cell (its first line is the solution's title).

    IPython keeps every cell's source in ``linecache`` under the cell's file name, so the first line of the
    calling cell can be read back; outside IPython this is the first line of the calling file.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("attention_lib."):
        frame = frame.f_back
    if frame is None:
        return False
    return linecache.getline(frame.f_code.co_filename, 1).startswith(SOLUTION_TITLE)


# ---------------------------------------------------------------- a verdict's time limit and random state


def run_limited(function: Callable[[], Any], seconds: Optional[float]) -> Any:
    """``function()``, stopped by :class:`TimeUp` once it has run for ``seconds``.

    Signals or a thread: in the main thread on Linux and macOS (a Jupyter kernel runs cells there, and so
    does a script), a ``SIGALRM`` timer raises ``TimeUp`` inside the running code at its next Python
    instruction, and repeats every 50 ms should the code swallow one; the previous handler and any outer
    timer are restored afterwards, so that limits nest. Where signals cannot be used (Windows, or a check
    called from another thread), ``function`` runs in a worker thread and gets an asynchronous ``TimeUp``
    when the time is up; the caller is answered either way. Neither can stop one long call into C (a huge
    matrix product): that ends first, then the code stops.
    """
    if seconds is None or seconds <= 0:
        return function()
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _with_alarm(function, seconds)
    return _in_a_thread(function, seconds)


def _with_alarm(function, seconds):
    armed = [True]

    def alarm(signum, frame):
        if armed[0]:
            raise TimeUp()

    start = time.monotonic()
    before = signal.signal(signal.SIGALRM, alarm)
    outer, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer) if outer else seconds, 0.05)
    try:
        return function()
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before if before is not None else signal.SIG_DFL)
        if outer:                                   # an enclosing limit keeps what is left of its time
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3), outer_interval)


def _in_a_thread(function, seconds):
    box: dict = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as error:             # handed back to the caller's thread
            box["error"] = error

    worker = threading.Thread(target=target, name="attention-lib-check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        _raise_in(worker, TimeUp)
        worker.join(1.0)
        raise TimeUp()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _raise_in(thread: threading.Thread, error: type) -> None:
    """Raise ``error`` in ``thread`` at its next Python instruction (CPython's asynchronous exceptions)."""
    try:
        import ctypes
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(error))
    except Exception:                               # pragma: no cover - another Python: the thread runs on, unseen
        pass


@contextmanager
def _random_state_kept():
    """Whatever the judge and the student's code draw, the global random states are as they were afterwards;
    inside, torch and ``random`` start from seed 0, so that a verdict never depends on the notebook's state."""
    state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else []
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)                    # and a judge's own draws are the same in every run
            random.seed(0)
            torch.set_num_threads(1)                # tiny tensors: one thread is fastest, and fair on a shared machine
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(state)
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)


# ---------------------------------------------------------------- describing what came in

_MAX = 80


def describe(value: Any) -> str:
    """A short description of any value, for a verdict: ``'8'``, ``[1, 2]``, ``tensor(2, 3)``, ``ndarray(4,)``."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if _is_numpy(value):
        return f"ndarray{tuple(value.shape)}"
    if isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) or _is_numpy(v) for v in value):
        inner = ", ".join(describe(v) for v in value[:4]) + (", …" if len(value) > 4 else "")
        if isinstance(value, list):
            return f"[{inner}]"
        name = "" if type(value) is tuple else type(value).__name__      # a named tuple keeps its name
        return f"{name}({inner})"
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


def describe_inputs(labels, args) -> str:
    """The tensors a function was given, by name and shape: ``q, k, v of shape (3, 2, 5, 12)``."""
    groups: list[tuple[list[str], Any]] = []          # consecutive tensors of one shape share a phrase
    parts = []
    for label, a in zip(labels, args):
        if isinstance(a, torch.Tensor):
            if groups and groups[-1][1] == tuple(a.shape):
                groups[-1][0].append(label)
            else:
                groups.append(([label], tuple(a.shape)))
            continue
        if groups:
            parts.append(groups.pop())
        if isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            shapes = {tuple(x.shape) for x in a}
            shape = shapes.pop() if len(shapes) == 1 else " / ".join(str(tuple(x.shape)) for x in a)
            parts.append((label, len(a), shape))
    parts += groups
    names_sep, sep = ("、", "，") if get_language() == "zh" else (", ", ", ")
    phrases = [t("ex.fn.inputs.tensors", names=names_sep.join(p[0]), shape=p[1]) if len(p) == 2 else
               t("ex.fn.inputs.list", name=p[0], n=p[1], shape=p[2]) for p in parts]
    if get_language() != "zh" and len(phrases) > 1:
        return sep.join(phrases[:-1]) + " and " + phrases[-1]
    return sep.join(phrases)


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
    if isinstance(answer, torch.Tensor):
        raise Slip("ex.answer.shape.tensor")
    if _is_numpy(answer):
        raise Slip("ex.answer.shape.array")
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


# ---------------------------------------------------------------- what an exercise forbids, watched as it runs

#: The calls an exercise may forbid by name (``@exercise(key, forbid=(...))``) and that are watched at run time:
#: torch's attention, the same with ``is_causal=True``, and the library's parameter count.
WATCHABLE = ("scaled_dot_product_attention", "is_causal", "count_parameters", "flex_attention",
             "multi_head_attention_forward")
#: Forbidden Python functions recorded by their code (a profile hook's "call" event), whatever name reached them:
#: name -> (the function's name, the end of its file's path); compared by name and file, so that watching does not
#: import ``torch.nn.attention.flex_attention`` (slow) for an answer that never touches it
#: The attention functions an exercise may forbid: where one is, waiting on another thread is recorded too
_ATTENTION = ("scaled_dot_product_attention", "is_causal", "flex_attention", "multi_head_attention_forward")
#: Waiting on another thread's work (``Future.result``, ``Thread.join``, and ``Condition.wait`` under
#: ``queue.Queue.get`` and ``threading.Event.wait``): recorded as ``"threaded"``, since the record follows only the
#: threads started inside the block, not a pool warmed up before it. Busy-polling a shared list escapes it; the
#: grading command sends a right answer whose cell names ``threading``/``concurrent`` to review (grade.py)
_WAITS = {concurrent.futures.Future.result.__code__, threading.Thread.join.__code__,
          threading.Condition.wait.__code__}
_BY_CODE = {"flex_attention": ("flex_attention", "torch/nn/attention/flex_attention.py"),
            "multi_head_attention_forward": ("multi_head_attention_forward", "torch/nn/functional.py")}
#: (forbidden names, the set that records them) of the verdict running now: :func:`call` watches its student function
_FORBIDDEN: list[tuple[tuple[str, ...], set]] = []
_SDPA = "scaled_dot_product"


class _Recorder(TorchFunctionMode):
    """Sees every torch function call while pushed, by any route (``F.``, ``torch._C._nn.``, ``torch.ops.aten.``, a
    name bound before the check, one looked up from text), with its arguments: records torch's attention and its
    ``is_causal=True``. It only records; each call runs as it would."""

    def __init__(self, names, seen: set):
        super().__init__()
        self.names, self.seen = names, seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _SDPA in str(getattr(func, "__name__", "")):
            if "scaled_dot_product_attention" in self.names:
                self.seen.add("scaled_dot_product_attention")
            if "is_causal" in self.names and _causal(func, args, kwargs):
                self.seen.add("is_causal")
        return func(*args, **kwargs)


def _causal(func, args, kwargs) -> bool:
    """Whether a call of torch's attention asked for ``is_causal=True`` (a keyword or a positional argument)."""
    if "is_causal" in kwargs:
        return bool(kwargs["is_causal"])
    schema = getattr(func, "_schema", None)            # an aten overload names its arguments; else F.'s order
    names = [a.name for a in schema.arguments] if schema is not None else \
        ["query", "key", "value", "attn_mask", "dropout_p", "is_causal"]
    where = names.index("is_causal") if "is_causal" in names else len(args)
    return where < len(args) and bool(args[where])


@contextmanager
def watching(names, seen: Optional[set] = None):
    """Record, while the block runs, the calls among ``names`` (see :data:`WATCHABLE`) that its code makes: yields
    the set ``seen`` (a new one if not given), which then holds the name of each kind of call made
    (``"scaled_dot_product_attention"``, ``"is_causal"``, ``"count_parameters"``, or ``"unwatched"`` when the code
    switched the recording off).

    Two recorders, so that no spelling hides a call: a torch function mode (every torch call with its arguments,
    whatever name reached the function: ``F.``, ``torch._C._nn.``, ``torch.ops.aten.``, a name bound before, one
    looked up from text) and a profile hook (``sys.setprofile``: a call of torch's attention even with torch's
    function modes disabled, and a call of the library's ``count_parameters`` by its code object, however it was
    imported); the profile hook is also set for the threads the block starts (``threading.setprofile``: torch's
    attention called from a ``threading.Thread`` or a ``ThreadPoolExecutor`` created inside the block), though not
    for threads that were running before it. Both are removed when the block ends, by an error or a time limit
    too. Code that calls
    ``sys.setprofile`` or pops torch's mode stack switches them off: that itself is recorded as ``"unwatched"``.
    """
    names = tuple(n for n in names if n in WATCHABLE)
    seen = set() if seen is None else seen
    if not names:
        yield seen
        return
    from .instruments import count_parameters
    codes = {count_parameters.__code__} if "count_parameters" in names else set()
    by_code = {_BY_CODE[n]: n for n in names if n in _BY_CODE}
    # a thread that was running before the block has no hook: a wait on another thread's work is recorded itself
    waits = _WAITS if set(names) & set(_ATTENTION) else set()
    sdpa = "scaled_dot_product_attention" in names
    handler = _Recorder.__torch_function__.__code__

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.add("count_parameters")
        elif event == "call" and frame.f_code in waits:
            seen.add("threaded")
        elif event == "call" and by_code and frame.f_code.co_name in {n for n, _ in by_code}:
            where = (frame.f_code.co_name, frame.f_code.co_filename.replace("\\", "/"))
            seen.update(name for (fn, tail), name in by_code.items() if where[0] == fn and where[1].endswith(tail))
        elif sdpa and event == "c_call" and frame.f_code is not handler \
                and _SDPA in str(getattr(arg, "__name__", "")):
            seen.add("scaled_dot_product_attention")

    recorder = _Recorder(names, seen)
    depth = torch._C._len_torch_function_stack()
    before, threads_before = sys.getprofile(), threading.getprofile()
    recorder.__enter__()
    sys.setprofile(profile)
    threading.setprofile(profile)       # torch's modes and sys.setprofile are per thread: a thread the code starts
    stopped = False                     # (threading.Thread, a ThreadPoolExecutor's worker) gets the hook too
    try:
        yield seen
    except (TimeUp, KeyboardInterrupt):
        # stopped from outside, maybe inside torch's own mode machinery (flex_attention pushes modes): the stack
        # it left says nothing about the student's code, and the verdict is the time limit's
        stopped = True
        raise
    finally:
        if not stopped and (sys.getprofile() is not profile or threading.getprofile() is not profile):
            seen.add("unwatched")
        sys.setprofile(before)
        threading.setprofile(threads_before)
        if torch._C._len_torch_function_stack() == depth + 1 \
                and torch.overrides._get_current_function_mode() is recorder:
            recorder.__exit__(None, None, None)
        else:                                               # the code popped the recorder (or pushed a mode)
            if not stopped:
                seen.add("unwatched")
            while torch._C._len_torch_function_stack() > depth:
                torch._C._pop_torch_function_stack()


# ---------------------------------------------------------------- a student's function


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _changed(a, b, label: str) -> Optional[str]:
    """Where ``b`` no longer equals the pristine ``a`` (``"feats[1]"``), or None: tensors exactly, modules by their
    parameters and buffers, lists, tuples and dicts item by item (an item added or removed counts)."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            return label
        b = b.detach()
        if a.is_floating_point() or a.is_complex():
            return None if bool(((a == b) | (a.isnan() & b.isnan())).all()) else label
        return None if torch.equal(a, b) else label
    if isinstance(a, nn.Module):
        if not isinstance(b, nn.Module):
            return label
        sa, sb = a.state_dict(), b.state_dict()
        if sa.keys() != sb.keys():
            return label
        return next((f"{label}.{k}" for k in sa if _changed(sa[k], sb[k], k) is not None), None)
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return label
        return next((w for w in (_changed(x, y, f"{label}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
                     if w is not None), None)
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return label
        return next((w for w in (_changed(a[k], b[k], f"{label}[{k!r}]") for k in a) if w is not None), None)
    return None   # plain values: a function cannot change an int or a string


def _same(a, b) -> bool:
    """Whether ``b`` still equals the pristine ``a`` (see :func:`_changed`)."""
    return _changed(a, b, "") is None


_SIZE_MISMATCH = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)")
#: the other errors whose numbers are sizes the code asked for: a reshape/view, a matrix product
_SIZES_ASKED = (re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size"),
                re.compile(r"shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"))


def _fixed_size(error: BaseException, args) -> Optional[str]:
    """The sizes in a broadcasting or reshape error that no input has (sizes fixed in the student's code): "256",
    "8 and 256", "2, 8 and 256" (more would be a coincidence, not a cause), else None."""
    numbers = None
    for pattern in (_SIZE_MISMATCH, *_SIZES_ASKED):
        found = pattern.search(str(error))
        if found:
            numbers = [int(n) for g in found.groups() for n in re.findall(r"-?\d+", g)]
            break
    if numbers is None:
        return None
    sizes = set()
    for a in args:
        for x in (a if isinstance(a, (list, tuple)) else [a]):
            tensors = [x] if isinstance(x, torch.Tensor) else list(x.parameters()) if isinstance(x, nn.Module) else []
            for tensor in tensors:                      # a layer's sizes count too (fc1's C and C / r)
                sizes.update(int(s) for s in tensor.shape)
    strangers = list(dict.fromkeys(n for n in numbers if n not in sizes and n not in (1, -1)))
    if not 1 <= len(strangers) <= 3:
        return None
    joined = ("、" if get_language() == "zh" else ", ").join(map(str, strangers[:-1]))
    return t("ex.fn.inputs.sizes", first=joined, last=strangers[-1]) if joined else str(strangers[0])


@contextmanager
def _warnings_shown_at(function: Callable):
    """Torch's warnings about the student's code (``x.T`` on a 4-D tensor) shown at the student's function, not at
    the line of this module whose function mode forwarded the call (which reads as the library's bug)."""
    code = getattr(function, "__code__", None)
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught_now:
            warnings.simplefilter("always")
            caught = caught_now
            yield
    finally:
        for w in caught:                                   # re-issued under the caller's own filters
            if code is not None and w.filename == __file__:
                warnings.warn_explicit(w.message, w.category, code.co_filename, code.co_firstlineno)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def call(function: Callable, *args, names: tuple[str, ...] = (), **kwargs) -> Any:
    """``function(*args, **kwargs)`` on copies of the inputs, without gradients; Slip if it raises or edits an input.

    ``names`` names the positional inputs for the verdict (``("x", "fc1", "fc2")``; unnamed ones are ``arg1``,
    ``arg2``...). Compute the reference *before* calling: the originals are never handed to the student's code.
    An input changed in place is named down to the item of a list, tuple or dict (``feats[1]``). A ``SystemExit``
    becomes a verdict; :class:`TimeUp` (the verdict's time limit) and ``KeyboardInterrupt`` pass through.
    """
    labels = list(names) + [f"arg{i + 1}" for i in range(len(names), len(args))]
    copies = [_copy(a) for a in args]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    forbid, seen = _FORBIDDEN[-1] if _FORBIDDEN else ((), set())
    try:
        with torch.no_grad(), watching(forbid, seen), _warnings_shown_at(function):   # forbidden calls, however
            result = function(*copies, **kw_copies)                                    # spelled, are recorded
    except (TimeUp, KeyboardInterrupt):
        raise
    except SystemExit:
        raise Slip("ex.fn.exit") from None
    except BaseException as error:   # the student's code: report, never raise
        inputs = describe_inputs(labels + list(kwargs), list(args) + list(kwargs.values()))
        slip = Slip("ex.fn.raised", error=describe_error(error), inputs=inputs) if inputs else \
            Slip("ex.fn.raised_plain", error=describe_error(error))
        stranger = _fixed_size(error, list(args) + list(kwargs.values()))
        if stranger is not None:
            slip.also("ex.fn.fixed_size" if stranger.isdigit() else "ex.fn.fixed_sizes", n=stranger)
        elif "torch.return_types.m" in str(error):       # a (values, indices) pair used as a tensor
            slip.also("ex.fn.return_types")
        raise slip from None
    for label, original, seen in zip(labels, args, copies):
        where = _changed(original, seen, label)
        if where is not None:
            raise Slip("ex.fn.mutated", name=where)
    for label, original in kwargs.items():
        where = _changed(original, kw_copies[label], label)
        if where is not None:
            raise Slip("ex.fn.mutated", name=where)
    if result is None:               # every function of an exercise returns a value: a print, or no return
        raise Slip("ex.fn.returned_none")
    return result


#: Slips that say all there is to say: a test case's sentence is not added to them.
_COMPLETE = ("ex.fn.mutated", "ex.fn.timeout", "ex.fn.exit", "ex.fn.return_types")


@contextmanager
def case(key: Optional[str] = None, **fmt):
    """One test case of a function check. ``key`` (None for the first case) is the sentence that says how this
    case differs from the first, e.g. "It passed the first test; this one differs only in its batch of one
    sample: does a .squeeze() remove the batch axis too?". A slip found inside is followed by it, so that the
    verdict names the case (and a likely cause) only when the first case passed and one thing changed."""
    try:
        yield
    except Slip as slip:
        if key is not None and not slip.complete and slip.key not in _COMPLETE \
                and not any(k in _COMPLETE for k, _ in slip.more):
            slip.also(key, **fmt)
        raise


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


def expect_close(got: Any, expected: torch.Tensor, variants=(), other: str = "ex.fn.values", **tolerance) -> None:
    """The usual end of a test case: raise the slip of a named variant ``got`` matches (:func:`which`), of a result
    that is not a tensor like ``expected`` (:func:`expect_tensor`), or ``other`` when the values differ."""
    slip = which(got, variants, **tolerance)
    if slip is not None:
        raise Slip(slip)
    expect_tensor(got, expected)
    if not close(got, expected, **tolerance):
        raise Slip(other)
