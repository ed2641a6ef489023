"""Chapter 03's module and the shared figures draw cleanly in both languages; show_source shows the real source."""
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import i18n  # noqa: E402
from attention_lib.chapters import ch03_squeeze_excitation as ch  # noqa: E402
from attention_lib.toolkit import figures  # noqa: E402


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
    code = figures.show_source(al.SqueezeExcitation)
    assert "class SqueezeExcitation" in code.data and "def forward" in code.data


def test_plot_squeeze_labels_each_channel_with_its_mean(lang):
    chans = [torch.full((4, 5), 0.25), torch.arange(20.).view(4, 5)]
    fig = draws_cleanly(lambda: ch.plot_squeeze(chans, ["a", "b"]))
    labels = texts(fig)
    assert i18n.t("ch03.squeeze.value", z=0.25) in labels and i18n.t("ch03.squeeze.value", z=9.5) in labels
    assert i18n.t("ch03.squeeze.title") in labels
    assert len(fig.axes) == 4 and fig.axes[2].get_ylabel() == i18n.t("ch03.squeeze.colorbar")   # colour bar
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        ch.plot_squeeze([torch.zeros(1, 4, 4)])


def test_plot_cost_growth_is_log_log_with_labels(lang):
    fig = draws_cleanly(lambda: figures.plot_cost_growth([8, 16], [16, 32], lambda C, S: C * S * S,
                                                         lambda C: C * C, lambda C, S: 9 * C * C * S * S))
    left, right = fig.axes
    assert left.get_xscale() == left.get_yscale() == "log" and right.get_yscale() == "log"
    assert i18n.t("figures.cost.side") in texts(fig) and len(left.get_lines()) == 2


def test_plot_gate_by_class_has_a_colour_bar(lang):
    fig = draws_cleanly(lambda: ch.plot_gate_by_class(torch.rand(4, 32), ["a", "b", "c", "d"]))
    assert len(fig.axes) == 2 and i18n.t("ch03.gate_by_class.title") in texts(fig)
    with pytest.raises(ValueError):
        ch.plot_gate_by_class(torch.rand(32))


def test_se_explorer_and_demos_are_declared_by_the_chapter():
    assert ch.EXPLORER.name == "squeeze_excitation"
    assert ch.SE_DEMO.attention == "squeeze_excitation" and ch.BASELINE_DEMO.attention is None


def test_gate_gallery_embeds_the_networks_own_gates_for_two_images_per_class(lang):
    model = ch.SE_DEMO.build().eval()                     # the chapter's network (untrained here: no training)
    val = al.data.shapes_dataset(64, size=32, seed=1)
    payload, = al.viewer.read_html(ch.gate_gallery(model, val.images, val.labels).html())
    pick = ch.gallery_indices(val.labels)
    assert val.labels[pick].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with torch.no_grad():
        gates = model.attention_map(val.images[pick])[:, :, 0, 0]           # (8, C)
    embedded = al.viewer.decode(payload)[:, 0]                               # (8, C)
    step = (gates.amax(1) - gates.amin(1))[:, None] / 255
    assert embedded.shape == gates.shape and ((embedded - gates).abs() <= step / 2 + 1e-6).all()
    assert payload["labels"] == [al.data.shape_names()[k] for k in (0, 0, 1, 1, 2, 2, 3, 3)]
    assert payload["title"] == i18n.t("ch03.gallery.title", n=8)
