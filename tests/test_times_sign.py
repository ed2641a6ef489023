"""The multiplication sign is spaced in the book's prose, in English as in Chinese: ``3 × 3``, ``H × W``.

The rule covers every registered i18n string a reader sees (exercise verdicts, hints, printed sentences, table
headers and cells, figure titles, axis labels, captions and alt text) and the markdown of every notebook and page
outside code and maths. A tight ``3×3`` stays only in the figure and viewer labels listed in
:data:`TIGHT_LABELS`, where the slot is too narrow for a spaced product. ``tools/zh_typography.py`` holds the
check (:func:`tight_products`); zh-r3 (S1) found 69 tight forms in the strings of both languages.
"""
from __future__ import annotations

import pytest

import attention_lib as al
from attention_lib.toolkit import i18n

from .test_glossary import _rel
from .tool_modules import load

zt = load("zh_typography")
al.chapters.load_all()                  # every chapter registers its strings

#: Registered strings that keep the tight form, each a label in a slot too small for ``3 × 3``. Add a key here
#: only for such a label (look at the figure first); everything a reader reads as a sentence is spaced.
TIGHT_LABELS = {
    # chapter 4's channel viewer: the branch buttons and the prefix of each read-out ("5×5: 0.62"), named
    # like the explorer's generated "3×3" / "5×5" buttons (attention_lib/chapters/ch04_selective_kernel.py)
    "ch04.branch.small", "ch04.branch.large",
    # chapter 5's CBAM block diagram: two or three short lines inside each box ("7×7 conv\nBN, σ", "x\nC×H×W")
    "ch05.diagram.conv1", "ch05.diagram.conv2", "ch05.diagram.conv7", "ch05.diagram.input", "ch05.diagram.m_c",
    "ch05.diagram.m_s", "ch05.diagram.pool_hw",
    # chapter 6's BAM block diagram: the same kind of box text ("1×1\nconv", "$M_s$\n1×H×W")
    "ch06.diagram.dilated", "ch06.diagram.m_c", "ch06.diagram.m_s", "ch06.diagram.one", "ch06.diagram.pool",
    "ch06.diagram.reduce",
}


# ---------------------------------------------------------------- the check can fail

def test_a_tight_product_is_found_and_a_factor_or_a_spaced_product_is_not():
    for tight in ("a 3×3 convolution", "H×W", "{S}×{S} pixels", "7×7 卷积", "遮住 {side}×{side} 个像素", "3 ×3",
                  "3× 3", "`k`×`k`"):
        assert zt.tight_products(tight), tight
    for fine in ("a 3 × 3 convolution", "{S} × {S}", "7 × 7 卷积", "1.5× larger", "({ratio:.0f}×)", "conv ×2",
                 "2×（中心裁剪放大）", "$3\\times3$", "`x.view(3×3)`", "$k$ × $k$"):
        assert not zt.tight_products(fine), fine
    assert zt.space_products("a 3×3 and a {S}×{S} map, `3×3`, 1.5×") == "a 3 × 3 and a {S} × {S} map, `3×3`, 1.5×"


def test_the_string_check_fails_on_a_tight_string_and_passes_an_allowed_label():
    assert _tight_strings({"ex.demo": {"en": "a 7×7 conv", "zh": "一个 7 × 7 卷积"}}) == ["ex.demo [en]: a 7×7 conv"]
    assert _tight_strings({"ch06.diagram.one": {"en": "1×1\nconv", "zh": "1×1\n卷积"}}) == []


# ---------------------------------------------------------------- the book's strings and pages

def _tight_strings(table) -> list[str]:
    return [f"{key} [{lang}]: {excerpt}" for key, texts in table.items() if key not in TIGHT_LABELS
            for lang, text in texts.items() for excerpt in zt.tight_products(text)]


def test_registered_strings_space_the_multiplication_sign_in_both_languages():
    found = _tight_strings({key: i18n._strings[key] for key in i18n.keys()})
    assert not found, ("a registered string writes a tight product; write 3 × 3 (or, for a label in a cramped "
                       "slot, add its key to TIGHT_LABELS with the reason):\n" + "\n".join(found))


def test_every_tight_label_is_registered_and_still_tight():
    """The allow-list stays honest: a key that was renamed or spaced leaves it."""
    stale = sorted(key for key in TIGHT_LABELS if key not in i18n.keys()
                   or not any(zt.tight_products(text) for text in i18n._strings[key].values()))
    assert not stale, f"TIGHT_LABELS names keys that are gone or no longer tight: {stale}"


def _markdown_sources():
    root = zt.ROOT
    return sorted(root.glob("notebooks/*/*.ipynb")) + sorted((root / "book").rglob("*.md"))


@pytest.mark.parametrize("path", _markdown_sources(), ids=_rel)
def test_markdown_prose_spaces_the_multiplication_sign(path):
    found = [f"{'cell ' + str(index) + ', ' if path.suffix == '.ipynb' else ''}line {block.start + k + 1}: {excerpt}"
             for index, text in zt.read_cells(path) for block in zt.blocks(text) if block.kind != "other"
             for k, line in enumerate(block.lines) for excerpt in zt.tight_products(line, strings=False)]
    assert not found, f"{_rel(path)}: a tight product in prose; write 3 × 3:\n" + "\n".join(found)
