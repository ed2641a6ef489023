"""The exercise-check engine: each chapter module registers its checks with :func:`exercise`.

Each exercise has a key (``"se.params"``); ``check(key, answer)`` prints a short verdict in the
chapter's language: right, wrong (saying what is wrong) or not answered yet. ``verdict`` returns it
as ``(True | False | None, message)`` for tests. Neither raises: the book executes every check with
the answer left blank, and a reader's function that crashes is reported, not re-raised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from .i18n import register, t

register({
    "ex.unanswered": {"en": "Not answered yet: replace the ... with your answer and run the cell again.",
                      "zh": "尚未作答：把 ... 换成你的答案，再运行这个代码单元。"},
    "ex.correct": {"en": "Correct!", "zh": "正确！"},
    "ex.wrong": {"en": "Not quite: {hint}", "zh": "还不对：{hint}"},
    "ex.unknown": {"en": "No exercise is called {name!r}; known: {known}.",
                   "zh": "没有名为 {name!r} 的练习；已有：{known}。"},
})


@dataclass(frozen=True)
class Exercise:
    key: str
    judge: Callable[[Any], Optional[str]]   # None if right, else the i18n key of what is wrong


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str):
    """Decorator: register ``judge(answer)`` as the check of exercise ``key`` (a chapter module does this).

    ``judge`` returns None when the answer is right, else the i18n key of what is wrong, or
    ``(key, format_fields)``; it is only called with an answer (``...`` and None mean "not answered").
    """
    def wrap(judge):
        EXERCISES[key] = Exercise(key, judge)
        return judge
    return wrap


def verdict(key: str, answer: Any) -> tuple[Optional[bool], str]:
    """``(True, message)`` when right, ``(False, what is wrong)``, ``(None, "not answered")`` for ``...``/None."""
    if key not in EXERCISES:
        from .. import chapters
        chapters.load_all()          # the chapters register their exercises when imported
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
