"""Readings you can trust: the checks that tie a sentence of the prose to the numbers it reads.

A chapter's prose is written once; its numbers are recomputed by every build. So every sentence that reads
a measured result (more, less, the same sign in every seed, within the spread, above chance, a ceiling, a
slope) has a check, and the notebook runs it right after it prints the numbers. When a rebuild stops
supporting the sentence the check raises :class:`ReadingError`, the cell fails, and the strict build with it::

    from attention_lib.toolkit import readings as rd
    change = rd.paired(with_sk, without_sk)          # per-seed differences, same data and initial weights
    rd.expect("SK is below the baseline in every seed", change.negative == change.n, change=change)

A chapter keeps its checks together in one function per experiment (``ch.check_scale_readings(...)``),
written next to the figure functions, so the sentence and its check are read and changed together; the
chapter's tests feed each function numbers that contradict the prose and expect it to fail.

Statistics: :func:`seeds` summarises per-seed values with the *sample* standard deviation (n - 1), and
:func:`paired` summarises per-seed differences of two conditions that share seeds (data and initial weights):
the uncertainty of a change is the spread of the per-seed changes, not the spread of either condition's level.
:func:`clearly_less` compares timings with a margin that a busy machine cannot reverse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

__all__ = ["ReadingError", "Seeds", "seeds", "paired", "expect", "clearly_less", "checked", "reset"]


class ReadingError(AssertionError):
    """A sentence of the prose no longer reads the printed numbers right: fix the prose or the experiment."""


def _floats(values: Iterable[float], what: str) -> Tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a sequence of numbers (one per seed), got {values!r}") from None
    if not out:
        raise ValueError(f"{what}: expected at least one value (one per seed), got none")
    return out


@dataclass(frozen=True)
class Seeds:
    """Values of one quantity, one per seed: ``mean``, sample ``sd`` (n - 1; 0 for one seed), ``low``/``high``,
    and how many are above / below zero (``positive``, ``negative``: for per-seed changes)."""
    values: Tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def sd(self) -> float:
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def positive(self) -> int:
        return sum(v > 0 for v in self.values)

    @property
    def negative(self) -> int:
        return sum(v < 0 for v in self.values)

    def count(self, predicate) -> int:
        """How many seeds satisfy ``predicate(value)``: ``acc.count(lambda a: a > 0.9)``."""
        return sum(bool(predicate(v)) for v in self.values)

    def format(self, digits: int = 3, signed: bool = False) -> str:
        """``0.640 ± 0.004 (0.636, 0.641, 0.644)``; ``signed`` writes + on positive values (for changes)."""
        sign = "+" if signed else ""

        def f(v: float) -> str:
            v = 0.0 if round(v, digits) == 0 else v          # never "-0.000"
            return f"{v:{sign}.{digits}f}"

        return f"{f(self.mean)} ± {self.sd:.{digits}f} ({', '.join(f(v) for v in self.values)})"

    def __str__(self) -> str:
        return self.format()


def seeds(values: Iterable[float]) -> Seeds:
    """Per-seed values (accuracies, shares...) as a :class:`Seeds` summary."""
    return Seeds(_floats(values, "seeds"))


def paired(a: Sequence[float], b: Sequence[float]) -> Seeds:
    """The per-seed differences ``a[i] - b[i]`` of two conditions run on the same seeds."""
    a, b = _floats(a, "paired: a"), _floats(b, "paired: b")
    if len(a) != len(b):
        raise ValueError(f"paired: expected one value per seed in both conditions, got {len(a)} and {len(b)}")
    return Seeds(tuple(x - y for x, y in zip(a, b)))


_CHECKED: List[Tuple[str, dict]] = []


def expect(claim: str, holds: bool, **numbers) -> None:
    """Fails with :class:`ReadingError` when ``holds`` is false: the sentence ``claim`` (quoted from the prose,
    in English) no longer reads the numbers right. ``numbers`` are shown in the message (and kept for
    :func:`checked`)."""
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"expect: the claim must be the sentence it guards, got {claim!r}")
    _CHECKED.append((claim, dict(numbers)))
    if not bool(holds):
        shown = ", ".join(f"{k} = {v}" for k, v in numbers.items())
        raise ReadingError(f"the prose says '{claim}', but this build measured {shown or 'otherwise'}: "
                           "the sentence and its numbers disagree")


def clearly_less(a: float, b: float, factor: float = 1.5) -> bool:
    """True when ``a * factor <= b``: a time (or cost) that is less by a margin a busy machine cannot reverse."""
    if factor < 1:
        raise ValueError(f"clearly_less: expected a margin factor of at least 1, got {factor}")
    return float(a) * factor <= float(b)


def checked() -> List[Tuple[str, dict]]:
    """The readings checked so far in this process, in order: ``(claim, numbers)``."""
    return list(_CHECKED)


def reset() -> None:
    """Forgets :func:`checked`'s record (tests)."""
    _CHECKED.clear()
