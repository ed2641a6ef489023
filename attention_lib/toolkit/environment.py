"""The one set-up line of every notebook: device, seeds, plotting style, language and fonts.

``device = attention_lib.setup(lang="zh")`` is the only code line that may differ between an
English notebook and its Chinese twin. It is idempotent: calling it twice leaves the same state.
"""
from __future__ import annotations

import glob
import os
import random
import subprocess
import sys

import numpy as np
import torch

from . import i18n

# Families tried in order for Chinese text. Pan-CJK Noto faces (SC, JP, ...) all carry the full
# simplified-Chinese repertoire; the charmap is checked anyway before a face is chosen.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "Noto Sans CJK JP", "Noto Sans CJK TC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Microsoft YaHei", "SimHei", "Arial Unicode MS",
)
LATIN_FAMILY = "DejaVu Sans"      # ships with matplotlib: always present
_PROBE = "注意力权重通道"          # characters a CJK face must map to be chosen

# Files looked for on disk when the matplotlib font cache predates the font's installation.
_CJK_FILE_GLOBS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/truetype/noto/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/**/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/**/NotoSansSC*.[ot]t[fc]",
    "/usr/share/fonts/**/SourceHanSans*.[ot]t[fc]",
    "/usr/share/fonts/**/wqy-*.tt[cf]",
    os.path.expanduser("~/.fonts/**/*CJK*.tt[cf]"),
    os.path.expanduser("~/.local/share/fonts/**/*CJK*.tt[cf]"),
    "/Library/Fonts/*.tt[cf]", "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.tt[cf]", "C:/Windows/Fonts/simhei.ttf",
)

_state: dict = {"cjk_family": None, "cjk_searched": False}


def best_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's (all devices) random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)   # also seeds every CUDA device


def _has_glyphs(family: str) -> bool:
    """True when matplotlib resolves ``family`` to a face that maps every probe character."""
    from matplotlib import font_manager as fm

    if not any(entry.name == family for entry in fm.fontManager.ttflist):
        return False     # asking findfont would log a "not found" warning to stderr
    try:
        path = fm.findfont(fm.FontProperties(family=family), fallback_to_default=False)
        charmap = fm.get_font(path).get_charmap()
    except (ValueError, RuntimeError, OSError):
        return False
    return all(ord(ch) in charmap for ch in _PROBE)


def _find_cjk_family() -> str | None:
    for family in CJK_FAMILIES:
        if _has_glyphs(family):
            return family
    return None


def _add_cjk_files_on_disk() -> None:
    """Register CJK font files that exist on disk but are missing from matplotlib's (older) font cache."""
    from matplotlib import font_manager as fm

    known = {os.path.realpath(entry.fname) for entry in fm.fontManager.ttflist}
    for pattern in _CJK_FILE_GLOBS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if os.path.realpath(path) in known:
                continue
            try:
                fm.fontManager.addfont(path)   # recent matplotlib adds every face of a .ttc
            except (RuntimeError, OSError, ValueError):
                continue
            known.add(os.path.realpath(path))


def _install_cjk_font_on_colab() -> None:
    """On Colab only: apt-get install fonts-noto-cjk quietly (nothing reaches stderr)."""
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=600)
    install = ["apt-get", "install", "-y", "-qq", "fonts-noto-cjk"]
    try:
        if subprocess.run(install, **quiet).returncode != 0:       # stale package lists: refresh once
            subprocess.run(["apt-get", "update", "-qq"], **quiet)
            subprocess.run(install, **quiet)
    except (OSError, subprocess.SubprocessError):
        pass


def cjk_font_family(install: bool = False) -> str | None:
    """The name of a font family matplotlib can draw Chinese with, or None.

    Looks in matplotlib's font list, then registers CJK font files found on disk (a font cache
    built before the font was installed), then, if ``install`` and running on Colab, installs
    fonts-noto-cjk. The result is remembered.
    """
    if _state["cjk_family"] is not None:
        return _state["cjk_family"]
    family = _find_cjk_family()
    if family is None and not _state["cjk_searched"]:
        _add_cjk_files_on_disk()
        _state["cjk_searched"] = True
        family = _find_cjk_family()
    if family is None and install and "google.colab" in sys.modules:
        _install_cjk_font_on_colab()
        _add_cjk_files_on_disk()
        family = _find_cjk_family()
    _state["cjk_family"] = family
    return family


def plot_style(cjk_family: str | None = None) -> dict:
    """The rcParams of the book's figures: white backgrounds, readable sizes, a Latin+CJK font list.

    Sizes follow the site's rule (:mod:`~attention_lib.toolkit.figure_output`): a figure is at most
    ``PAGE_WIDTH_IN`` wide, so it is shown at its own size, and no text is under ``MIN_FONT_PT``, the
    size of the page's captions.
    """
    from .figure_output import DISPLAY_DPI, MIN_FONT_PT, PAGE_WIDTH_IN

    families = [LATIN_FAMILY] + ([cjk_family] if cjk_family else [])
    small = MIN_FONT_PT                  # ticks and legends: the smallest text a figure may have
    return {
        # White everywhere, so figures stay legible on a dark notebook or site theme.
        "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
        "figure.edgecolor": "white", "savefig.edgecolor": "white", "savefig.transparent": False,
        "text.color": "black", "axes.labelcolor": "black", "axes.edgecolor": "#333333",
        "xtick.color": "#333333", "ytick.color": "#333333",
        "figure.dpi": DISPLAY_DPI, "savefig.dpi": 150, "figure.figsize": (PAGE_WIDTH_IN, 4.0),
        "font.size": small + 0.5, "axes.titlesize": small + 1.5, "axes.labelsize": small + 0.5,
        "xtick.labelsize": small, "ytick.labelsize": small, "legend.fontsize": small,
        "legend.title_fontsize": small + 0.5, "figure.titlesize": small + 2.5, "figure.labelsize": small + 0.5,
        "legend.frameon": False,
        "axes.spines.top": False, "axes.spines.right": False,
        "image.cmap": "viridis", "figure.constrained_layout.use": False,
        # A list, not a single name: matplotlib falls back glyph by glyph, so Latin text and
        # digits come from DejaVu Sans and Chinese characters from the CJK face.
        "font.family": families,
        "font.sans-serif": families,
        "axes.unicode_minus": True,
    }


def setup(lang: str = "en", seed: int = 0) -> torch.device:
    """Pick the device, seed every generator, set the language and the plotting style; return the device.

    For ``lang="zh"`` a CJK font is put in the font list (installed on Colab if none is found).
    """
    if lang not in i18n.LANGUAGES:
        raise ValueError(f"setup: lang must be one of {list(i18n.LANGUAGES)}, got {lang!r}")
    import matplotlib as mpl

    from . import figure_output

    i18n.set_language(lang)
    seed_everything(seed)
    cjk = cjk_font_family(install=(lang == "zh"))
    mpl.rcParams.update(plot_style(cjk))
    figure_output.install()          # in a notebook: figures as PNGs with their alt text and measured facts
    return best_device()
