"""setup(): device, seeds, language, white plotting style and a CJK font that leaves no missing glyph."""
import random
import sys
import types
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager as fm  # noqa: E402

import attention_lib  # noqa: E402
from attention_lib import environment, i18n  # noqa: E402

CHINESE = "注意力权重：通道 (B, C, H, W) −1"


def _draw_text_warnings(text):
    """Draw ``text`` as a title and return the warning messages matplotlib emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots()
        ax.set_title(text)
        fig.canvas.draw()
        plt.close(fig)
    return [str(w.message) for w in caught]


@pytest.fixture(autouse=True)
def _restore():
    saved = mpl.rcParams.copy()
    yield
    mpl.rcParams.update(saved)
    i18n.set_language("en")


def test_i18n_returns_current_language_and_falls_back_to_english():
    i18n.register({"test.greeting": {"en": "head {i}", "zh": "第 {i} 个头"}, "test.only_en": {"en": "only"}})
    i18n.set_language("en")
    assert i18n.t("test.greeting", i=3) == "head 3"
    i18n.set_language("zh")
    assert i18n.get_language() == "zh"
    assert i18n.t("test.greeting", i=3) == "第 3 个头"
    assert i18n.t("test.only_en") == "only"
    with pytest.raises(KeyError, match="test.nope"):
        i18n.t("test.nope")
    with pytest.raises(ValueError, match="'fr'"):
        i18n.set_language("fr")
    with pytest.raises(ValueError, match="unknown languages"):
        i18n.register({"test.bad": {"en": "x", "de": "y"}})
    assert i18n.get_language() == "zh"


def test_setup_is_exported_and_returns_best_device():
    assert attention_lib.setup is environment.setup
    device = attention_lib.setup("en")
    assert isinstance(device, torch.device)
    assert device == environment.best_device()
    if not torch.cuda.is_available():
        assert device.type in ("mps", "cpu")


def test_setup_seeds_python_numpy_and_torch_reproducibly():
    attention_lib.setup("en", seed=123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    attention_lib.setup("en", seed=123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])
    attention_lib.setup("en", seed=124)
    assert random.random() != first[0]


def test_setup_sets_language_and_rejects_unknown_language():
    attention_lib.setup("zh")
    assert i18n.get_language() == "zh"
    attention_lib.setup("en")
    assert i18n.get_language() == "en"
    with pytest.raises(ValueError, match="lang"):
        attention_lib.setup("de")


def test_setup_gives_white_backgrounds_and_font_family_list():
    attention_lib.setup("zh")
    for key in ("figure.facecolor", "axes.facecolor", "savefig.facecolor"):
        assert mpl.colors.to_hex(mpl.rcParams[key]) == "#ffffff", key
    families = mpl.rcParams["font.family"]
    assert isinstance(families, list) and families[0] == "DejaVu Sans"
    if environment.cjk_font_family() is not None:
        assert families[1:] == [environment.cjk_font_family()]
        assert families[1] in environment.CJK_FAMILIES


def test_setup_is_idempotent():
    attention_lib.setup("zh", seed=5)
    state = dict(mpl.rcParams)
    attention_lib.setup("zh", seed=5)
    assert dict(mpl.rcParams) == state
    assert i18n.get_language() == "zh"


def test_chinese_text_draws_without_missing_glyph_warnings_after_setup_zh():
    attention_lib.setup("zh")
    assert _draw_text_warnings(CHINESE) == []


def test_without_cjk_font_chinese_text_would_warn_missing_glyph():
    """The check above can fail: DejaVu Sans alone has no Chinese glyphs."""
    attention_lib.setup("en")
    mpl.rcParams["font.family"] = ["DejaVu Sans"]
    messages = _draw_text_warnings(CHINESE)
    assert any("missing from font" in m or "Glyph" in m for m in messages)


def test_setup_prints_nothing_to_stderr(capfd):
    attention_lib.setup("zh")
    attention_lib.setup("en")
    captured = capfd.readouterr()
    assert captured.err == ""


def test_cjk_font_missing_from_stale_cache_is_added_from_disk(monkeypatch):
    """A font cache built before fonts-noto-cjk was installed: the file on disk is registered."""
    if environment.cjk_font_family() is None:
        pytest.skip("no CJK font installed on this machine")
    cjk_entries = [e for e in fm.fontManager.ttflist if "CJK" in e.name]
    stale = [e for e in fm.fontManager.ttflist if "CJK" not in e.name]
    monkeypatch.setattr(fm.fontManager, "ttflist", stale)
    fm.fontManager._findfont_cached.cache_clear()
    monkeypatch.setitem(environment._state, "cjk_family", None)
    monkeypatch.setitem(environment._state, "cjk_searched", False)
    try:
        family = environment.cjk_font_family()
        assert family is not None
        assert any(e.name == family for e in fm.fontManager.ttflist)
        attention_lib.setup("zh")
        assert _draw_text_warnings(CHINESE) == []
    finally:
        fm.fontManager._findfont_cached.cache_clear()
    assert cjk_entries  # restored by monkeypatch


def test_cjk_font_is_installed_only_on_colab_for_chinese(monkeypatch):
    calls = []
    found = {"family": None}
    monkeypatch.setattr(environment, "_find_cjk_family", lambda: found["family"])
    monkeypatch.setattr(environment, "_add_cjk_files_on_disk", lambda: None)

    def fake_install():
        calls.append("apt")
        found["family"] = "Noto Sans CJK SC"
    monkeypatch.setattr(environment, "_install_cjk_font_on_colab", fake_install)
    monkeypatch.setitem(environment._state, "cjk_family", None)
    monkeypatch.setitem(environment._state, "cjk_searched", False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert environment.cjk_font_family(install=True) is None and calls == []       # not on Colab
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert environment.cjk_font_family(install=False) is None and calls == []      # English: no install
    assert environment.cjk_font_family(install=True) == "Noto Sans CJK SC" and calls == ["apt"]


def test_every_string_of_the_toolkit_and_the_chapters_has_a_chinese_text():
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(attention_lib.__path__, "attention_lib."):
        importlib.import_module(module.name)      # every module registers its strings on import
    assert [k for k in i18n.missing_translations("zh") if not k.startswith("test.")] == []
    ours = ("viz.", "table.", "flops.", "bench.", "widgets.", "figures.", "ex.", "ch00", "ch03.", "ch08.")
    assert sum(k.startswith(ours) for k in i18n.keys()) > 100
