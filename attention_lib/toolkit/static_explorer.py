"""The static explorer: what ``explorer(name)`` shows on the website, where no kernel runs.

The viewer data of every setting of a small grid (at most :data:`~attention_lib.toolkit.widgets.MAX_FRAMES`)
is computed when the book is built, with the counts and the shape trace of each; the page's controls choose
a frame and the map viewer (:mod:`attention_lib.toolkit.viewer`) draws it, so the reader can still point at
queries, slots, images and channels. Inline HTML, data and script only: nothing is loaded from anywhere.
"""
from __future__ import annotations

import html
import itertools
import json
import math
import uuid
from typing import Mapping, Optional

from . import viewer
from .i18n import t
from .widgets import CSS_CLASS, MAX_FRAMES, _resolve, _spec, render_frame


def page(name: str, *, seed: int = 0, defaults: Optional[Mapping] = None, **grid) -> str:
    """The static explorer of ``name``: frames for every combination of ``grid`` (knob -> values; by
    default each knob's static values), starting at ``defaults``."""
    spec = _spec(name)
    controls = _resolve(spec, {k: list(v) for k, v in grid.items()})
    defaults = {**{c.name: c.default for c in controls}, **(defaults or {})}
    values = [c.static for c in controls]
    n = math.prod(len(v) for v in values)
    if n > MAX_FRAMES:
        raise ValueError(f"explorer({name!r}): the static grid has {n} settings, more than MAX_FRAMES="
                         f"{MAX_FRAMES}; pass shorter lists of values")
    vid = f"ae-{spec.name.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    tables, counts, images, frames = [], [], [], {}

    def index(items: list, item) -> int:
        if item not in items:
            items.append(item)
        return items.index(item)

    for combo in itertools.product(*[range(len(v)) for v in values]):
        settings = {c.name: c.static[i] for c, i in zip(controls, combo)}
        frame = render_frame(name, settings, seed=seed)
        payload = viewer.share_images(frame.picture.payload(), images)
        frames[",".join(map(str, combo))] = {"t": index(tables, frame.table_html),
                                             "c": index(counts, frame.counts_html(spec.notes)), "p": payload}
    data = {"controls": [{"name": c.name, "labels": [c.label_of(v) for v in c.static]} for c in controls],
            "frames": frames, "tables": tables, "counts": counts, "images": images}

    starts = [c.static.index(defaults[c.name]) if defaults[c.name] in c.static else 0 for c in controls]
    first = frames[",".join(map(str, starts))]
    parts = []
    for i, (c, start) in enumerate(zip(controls, starts)):
        label = html.escape(t(c.label))
        if len(c.static) == 1:   # a fixed knob: its value as text, not a control that cannot move
            parts.append(f'<span class="ae-fixed">{label} <b>{html.escape(c.label_of(c.static[0]))}</b>'
                         f'<input type="hidden" data-control="{i}" value="0"></span>')
        elif c.dropdown:
            opts = "".join(f'<option value="{j}"{" selected" if j == start else ""}>'
                           f"{html.escape(c.label_of(v))}</option>" for j, v in enumerate(c.static))
            parts.append(f'<label>{label} <select data-control="{i}" name="{c.name}">{opts}</select></label>')
        else:
            parts.append(f'<label>{label} <input type="range" data-control="{i}" name="{c.name}" min="0" '
                         f'max="{len(c.static) - 1}" step="1" value="{start}" '
                         f'aria-valuetext="{html.escape(c.label_of(c.static[start]))}">'
                         f'<output data-for="{i}">{html.escape(c.label_of(c.static[start]))}</output></label>')
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    title = html.escape(t("widgets.title", name=spec.display_name()))
    return (
        f'<div class="{CSS_CLASS}" id="{vid}" data-frames="{n}" data-mechanism="{spec.name}">'
        f"<div><b>{title}</b></div>"
        f'<div class="ae-controls">{"".join(parts)}</div>'
        f'<div class="ae-counts">{counts[first["c"]]}</div>'
        f'<details><summary>{html.escape(t("widgets.shape_trace"))}</summary>'
        f'<div class="ae-trace">{tables[first["t"]]}</div></details>'
        + viewer.shell(first["p"]["kind"], first["p"]["title"], state_key=vid)
        + f'<div class="ae-note">{html.escape(t("widgets.static_note", n=n))}</div>'
        f'<script type="application/json" class="ae-data">{payload}</script>'
        # On the website the engine is one deferred file that starts every explorer; in a notebook the
        # viewer above has just defined it.
        "<script>window.__attentionViewer&&window.__attentionViewer.explorer(document.currentScript);</script>"
        "</div>"
    )
