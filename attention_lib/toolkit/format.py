"""One way to write each kind of number, one table renderer, one slope fit: shared by the whole toolkit.

- :func:`format_count` (``12,345``), :func:`format_si` (``1.23 M``), :func:`format_time` (``4.56 ms``) and
  :func:`format_shapes` (``(2, 64, 8, 8), (2, 64)``; one shape: ``attention_lib._checks.format_shape``);
- :class:`Table`: rows of text under headers, shown as HTML in a notebook, aligned text elsewhere, Markdown on request;
- :class:`Tabs`: pages of HTML behind tabs, self-contained (the same object in a notebook and on the website);
- :func:`fit_slope`: the exponent of a power law fitted on log-log axes.
"""
from __future__ import annotations

import html
import math
from typing import Any, Optional, Sequence

from .._checks import format_shape

__all__ = ["format_count", "format_si", "format_time", "format_shape", "format_shapes", "Table", "ShowsTable",
           "Tabs", "fit_slope"]


def format_count(n: float) -> str:
    """An integer count with thousands separators: ``12,345``."""
    return f"{int(n):,}"


def format_si(n: float, unit: str = "") -> str:
    """Three significant digits and an SI prefix: ``format_si(1.234e6, "FLOP")`` is ``"1.23 MFLOP"``."""
    n = float(n)
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}".rstrip()


def format_time(seconds: float) -> str:
    """A duration with three significant digits in s, ms, µs or ns."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_shapes(shapes: Any) -> str:
    """One shape, or several (nested tuples of shapes) separated by commas; ``""`` for None."""
    if shapes is None:
        return ""
    if hasattr(shapes, "__len__") and all(isinstance(d, int) for d in shapes):
        return format_shape(shapes)
    return ", ".join(format_shapes(s) for s in shapes)


class Table:
    """Rows of text cells under headers: plain text in ``repr``, HTML in a notebook, Markdown on request.

    ``html_cells``: cells that already are HTML (links, ``<code>``), used as they are by ``_repr_html_``;
    every other cell is escaped.
    """

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 html_rows: Optional[Sequence[Sequence[str]]] = None, css_class: str = ""):
        self.headers = [str(h) for h in headers]
        self.rows = [[str(c) for c in row] for row in rows]
        self.html_rows = [list(r) for r in html_rows] if html_rows is not None else None
        self.css_class = css_class

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def __repr__(self) -> str:
        widths = [max(len(h), *(len(row[j]) for row in self.rows)) if self.rows else len(h)
                  for j, h in enumerate(self.headers)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        return "\n".join([line(self.headers), line(["-" * w for w in widths])] + [line(r) for r in self.rows])

    __str__ = __repr__

    def to_markdown(self) -> str:
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731
        out = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        out += ["| " + " | ".join(esc(c.strip()) for c in row) + " |" for row in self.rows]
        return "\n".join(out)

    def _html_cells(self, i: int) -> list[str]:
        if self.html_rows is not None:
            return self.html_rows[i]
        return [html.escape(c) for c in self.rows[i]]

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in self._html_cells(i))
                       + "</tr>" for i in range(len(self.rows)))
        cls = f' class="{self.css_class}"' if self.css_class else ""
        return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Tabs:
    """Pages of HTML behind a row of tabs: the WAI-ARIA tabs pattern in plain HTML and one small inline
    script (click or arrow keys, Home and End), so it needs no widget manager on the website and works in
    any notebook that runs the scripts of HTML outputs; without JavaScript every page shows, one after the
    other, under its title. ``titles[i]`` names ``pages[i]`` (HTML)."""

    _SCRIPT = ("(function(r){var t=[].slice.call(r.querySelectorAll('[role=tab]')),"
               "p=[].slice.call(r.querySelectorAll('[role=tabpanel]'));"
               "function go(i,f){t.forEach(function(b,j){b.setAttribute('aria-selected',j===i);"
               "b.tabIndex=j===i?0:-1;p[j].hidden=j!==i;});if(f){t[i].focus();}}"
               "t.forEach(function(b,i){b.addEventListener('click',function(){go(i);});"
               "b.addEventListener('keydown',function(e){var k={ArrowRight:i+1,ArrowLeft:i-1,Home:0,"
               "End:t.length-1}[e.key];if(k!==undefined){e.preventDefault();go((k+t.length)%t.length,true);}});});"
               "r.classList.add('book-tabs-ready');go(0);})(document.currentScript.parentNode);")
    _STYLE = (".book-tabs [role=tablist]{display:flex;flex-wrap:wrap;gap:4px;border-bottom:1px solid #767676;"
              "margin:0 0 8px}.book-tabs [role=tab]{font:inherit;color:#222;background:#f2f2f2;border:1px solid #767676;"
              "border-bottom:none;border-radius:4px 4px 0 0;padding:4px 12px;cursor:pointer;min-height:24px}"
              ".book-tabs [role=tab][aria-selected=true]{background:#fff;color:#000;font-weight:600;"
              "box-shadow:inset 0 3px 0 #0b57d0}.book-tabs [role=tab]:focus-visible{outline:3px solid #0b57d0;"
              "outline-offset:2px}.book-tabs [role=tabpanel]{color:#222;background:#fff;padding:4px 8px}"
              ".book-tabs [role=tabpanel] *{color:#222!important}.book-tabs [role=tabpanel] a{color:#0b57d0!important}"
              ".book-tabs:not(.book-tabs-ready) [role=tablist]{display:none}")

    def __init__(self, titles: Sequence[str], pages: Sequence[str]):
        if len(titles) != len(pages) or not titles:
            raise ValueError(f"Tabs: expected one title per page and at least one page, got {len(titles)} titles "
                             f"and {len(pages)} pages")
        self.titles, self.pages = [str(x) for x in titles], [str(p) for p in pages]

    def __len__(self) -> int:
        return len(self.pages)

    def __repr__(self) -> str:
        return "\n".join(f"[{title}]" for title in self.titles)

    def _repr_html_(self) -> str:
        import uuid
        uid = f"tabs-{uuid.uuid4().hex[:8]}"
        tabs = "".join(f'<button type="button" role="tab" id="{uid}-t{i}" aria-controls="{uid}-p{i}" '
                       f'aria-selected="{str(i == 0).lower()}" tabindex="{0 if i == 0 else -1}">{html.escape(t)}</button>'
                       for i, t in enumerate(self.titles))
        pages = "".join(f'<div role="tabpanel" id="{uid}-p{i}" aria-labelledby="{uid}-t{i}" tabindex="0">'
                        f'<div class="book-tabs-title" hidden>{html.escape(t)}</div>{page}</div>'
                        for i, (t, page) in enumerate(zip(self.titles, self.pages)))
        return (f'<div class="book-tabs"><style>{self._STYLE}</style><div role="tablist">{tabs}</div>{pages}'
                f"<script>{self._SCRIPT}</script></div>")


class ShowsTable:
    """A result (per-seed numbers, say) that shows itself as its :meth:`table`: HTML in a notebook, text elsewhere.
    A dataclass that mixes it in needs ``repr=False``, or its generated ``__repr__`` would hide the table."""

    def table(self) -> Table:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.table())


def fit_slope(ns: Sequence[float], values: Sequence[float], last: Optional[int] = None) -> float:
    """The exponent a of ``value ∝ N^a``: least squares on log-log axes.

    ``last``: fit only the ``last`` largest N (small N are dominated by fixed overheads). Points with a
    non-positive value are left out; fewer than two points give NaN.
    """
    pairs = [(float(n), float(v)) for n, v in zip(ns, values)]
    if last is not None:
        pairs = pairs[-last:]
    pts = [(math.log(n), math.log(v)) for n, v in pairs if n > 0 and v > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else float("nan")
