"""The chapters' shared figures draw cleanly in both languages; show_source shows the real source."""
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import chapter, i18n  # noqa: E402


@pytest.fixture(params=["en", "zh"])
def lang(request):
    al.setup(lang=request.param)
    yield request.param
    al.setup(lang="en")
    plt.close("all")


def texts(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return [s for s in out if s]


def draws_cleanly(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = make()
        fig.canvas.draw()
    return fig


def test_show_source_is_the_library_source():
    code = chapter.show_source(al.SqueezeExcitation)
    assert "class SqueezeExcitation" in code.data and "def forward" in code.data


def test_plot_squeeze_labels_each_channel_with_its_mean(lang):
    chans = [torch.full((4, 5), 0.25), torch.arange(20.).view(4, 5)]
    fig = draws_cleanly(lambda: chapter.plot_squeeze(chans, ["a", "b"]))
    labels = texts(fig)
    assert i18n.t("chapter.squeeze.value", z=0.25) in labels and i18n.t("chapter.squeeze.value", z=9.5) in labels
    assert i18n.t("chapter.squeeze.title") in labels
    assert len(fig.axes) == 4 and fig.axes[2].get_ylabel() == i18n.t("chapter.squeeze.colorbar")   # colour bar
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        chapter.plot_squeeze([torch.zeros(1, 4, 4)])


def test_plot_cost_growth_is_log_log_with_labels(lang):
    fig = draws_cleanly(lambda: chapter.plot_cost_growth([8, 16], [16, 32], lambda C, S: C * S * S,
                                                         lambda C: C * C, lambda C, S: 9 * C * C * S * S))
    left, right = fig.axes
    assert left.get_xscale() == left.get_yscale() == "log" and right.get_yscale() == "log"
    assert i18n.t("chapter.cost.side") in texts(fig) and len(left.get_lines()) == 2


def test_plot_gate_by_class_has_a_colour_bar(lang):
    fig = draws_cleanly(lambda: chapter.plot_gate_by_class(torch.rand(4, 32), ["a", "b", "c", "d"]))
    assert len(fig.axes) == 2 and i18n.t("chapter.gate_by_class.title") in texts(fig)
    with pytest.raises(ValueError):
        chapter.plot_gate_by_class(torch.rand(32))


def test_every_chapter_string_has_chinese():
    assert not [k for k in i18n.missing_translations("zh") if k.startswith("chapter.")]


def test_cost_formulas_cover_the_registry_and_match_the_parameter_counts():
    assert set(chapter.COST_FORMULAS) == set(al.MECHANISMS)
    C, r, h = 64, 16, 4
    # Evaluate the parameter formulas at the registry's example sizes: they must equal the real counts.
    values = {
        "squeeze_excitation": 2 * C * C // r + C // r + C,
        "eca": 3,
        "cbam": 2 * C * C // r + C // r + C + 2 * 49 + 2,
        "bam": 3 * C * C // r + 18 * h * h + 13 * h + C + 1,
        "selective_kernel": 9 * 2 * C * C + 2 * 2 * C + C * 32 + 2 * 32 + 32 * 2 * C,
        "self_attention": 4 * 64 ** 2 + 64,
        "external_attention": 2 * 64 * 64,
        "multi_head_external_attention": 2 * 4 * 64 ** 2 + 4 * 64 + 64 + 2 * 8 * 64 + 64 + 8,
    }
    for name, value in values.items():
        assert al.count_parameters(al.MECHANISMS[name].build()) == value, name
