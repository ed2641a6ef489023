"""The Chinese-edition rules that a source does not meet yet: ``tests/zh_pending.yml``.

The rules of the Chinese edition (glossary, typography, chapter skeleton) hold for every source at once,
but the chapters are rewritten one by one. A test reports a source's findings through :func:`verdict`:

- a finding of a rule that is not pending for its source fails the test, as always;
- a finding of a pending rule is tolerated;
- a pending rule that finds nothing any more fails the test too: delete its line, so that it cannot come back.

Never add an entry to make a test pass: fix the source (``python tools/zh_typography.py --fix`` does the
mechanical part).
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PENDING_FILE = ROOT / "tests" / "zh_pending.yml"


def pending() -> dict[str, set[str]]:
    data = yaml.safe_load(PENDING_FILE.read_text(encoding="utf-8")) or {}
    return {source: set(rules) for source, rules in data.items()}


def verdict(source: str, findings: list[tuple[str, str]], checked: set[str]) -> str | None:
    """``None`` when ``source`` passes, else the message to fail with.

    ``findings``: ``(rule, message)``; ``checked``: the rules this test checks (a pending rule of another test
    is not this test's business)."""
    waiting = pending().get(source, set()) & set(checked)
    new = [(rule, message) for rule, message in findings if rule not in waiting]
    done = sorted(waiting - {rule for rule, _ in findings})
    lines = []
    if new:
        lines.append(f"{source}:")
        lines += [f"  [{rule}] {message}" for rule, message in new]
    if done:
        lines.append(f"{source}: the rule(s) {done} find nothing here any more: delete them from "
                     f"{PENDING_FILE.relative_to(ROOT)} so that they stay fixed")
    return "\n".join(lines) or None
