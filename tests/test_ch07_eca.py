"""Chapter 07's module: figures draw in both languages, the helpers compute what they claim, the checks judge."""
import math
import re
import warnings

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import exercises, i18n  # noqa: E402
from attention_lib.chapters import ch03_squeeze_excitation as ch03  # noqa: E402
from attention_lib.chapters import ch07_eca as ch  # noqa: E402
from attention_lib.toolkit import data, figures  # noqa: E402


@pytest.fixture(params=["en", "zh"])
def lang(request):
    al.setup(lang=request.param)
    yield request.param
    al.setup(lang="en")
    plt.close("all")


def draws_cleanly(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a missing glyph warns: it must fail here
        fig = make()
        fig.canvas.draw()
    return fig


def texts(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return [s for s in out if s]


# ---------------------------------------------------------------- figures (the chapter's and the context task's)

def test_every_figure_draws_with_its_labels(lang):
    mats = {"a": torch.randn(8, 8), "b": ch.eca_matrix(al.EfficientChannelAttention(8))}
    fig = draws_cleanly(lambda: ch.plot_matrices(mats, "title"))
    assert i18n.t("ch07.matrix.colorbar") in texts(fig) and len(fig.axes) == 3
    gates = {"eca": [torch.rand(20, 6), torch.rand(20, 6)], "se1": [torch.ones(20, 6)]}
    runs, m = ch.similarity(gates)
    fig = draws_cleanly(lambda: ch.plot_similarity(runs, m, n=20))
    assert i18n.t("ch07.cka.title", n=20) in texts(fig) and len(fig.axes) == 2
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells.count(i18n.t("ch07.cka.undefined")) == 5 and "0.00" not in cells    # the constant gate's row, column
    accs = {n: rd.seeds([0.5, 0.9, 1.0]) for n in ("eca", "se16", "se1")}
    fig = draws_cleanly(lambda: ch.plot_accuracies(accs, "after"))
    assert fig._suptitle.get_text() == i18n.t("ch07.where.after")
    d = data.context_dataset(8, seed=1)
    fig = draws_cleanly(lambda: figures.plot_context_examples(d))
    assert i18n.t("figures.context.title") in texts(fig)
    fig = draws_cleanly(lambda: figures.plot_gate_by_context({"SE": torch.rand(8, 5), "ECA": torch.rand(8, 5)},
                                                             d.context))
    assert i18n.t("figures.gate_context.x") in texts(fig) and i18n.t("figures.gate_context.y") in texts(fig)


# ---------------------------------------------------------------- interaction matrices

def _conv_reference(y, w):
    """C1D_k with zero padding written as a loop: logit_i = sum_j w_j y_{i + j - (k - 1) / 2}."""
    C, k = y.shape[-1], len(w)
    out = torch.zeros_like(y)
    for i in range(C):
        for j in range(k):
            c = i + j - (k - 1) // 2
            if 0 <= c < C:
                out[..., i] += w[j] * y[..., c]
    return out


@pytest.mark.parametrize("C,k", [(16, 3), (10, 5), (7, 1), (12, 9)])
def test_eca_matrix_is_the_band_of_the_1d_convolution(C, k):
    eca = al.EfficientChannelAttention(C, kernel_size=k)
    y = torch.randn(4, C)
    m = ch.eca_matrix(eca)
    torch.testing.assert_close(y @ m.T, _conv_reference(y, eca.conv.weight.detach().view(k)))
    assert int((m != 0).sum()) <= C * k and torch.equal(m.triu(k // 2 + 1), torch.zeros(C, C))


def test_se_matrix_is_w2w1_or_the_mean_jacobian_of_the_logits():
    torch.manual_seed(0)
    se = al.SqueezeExcitation(12, reduction=3)
    torch.testing.assert_close(ch.se_matrix(se), se.fc2.weight.detach() @ se.fc1.weight.detach())
    z = torch.randn(5, 12)

    def logits(v):                                           # the pre-sigmoid logits of one descriptor
        return se.fc2(se.act(se.fc1(v)))
    jac = torch.stack([torch.autograd.functional.jacobian(logits, v) for v in z]).mean(0)   # (C, C)
    torch.testing.assert_close(ch.se_matrix(se, z), jac)


# ---------------------------------------------------------------- the kernel-size rule

def test_psi_is_the_nearest_odd_number_with_ties_upwards():
    assert [ch.nearest_odd(v) for v in (0.2, 1.0, 1.9, 2.0, 2.1, 3.99, 4.0, 5.5, 6.0)] == [1, 1, 1, 3, 3, 3, 5, 5, 7]
    for C in range(1, 5000, 7):
        assert al.eca_kernel_size(C) == ch.nearest_odd((math.log2(C) + 1) / 2)


def test_kernel_size_table_lists_the_three_rules():
    table = ch.kernel_size_table((4, 64, 2048))
    text = str(table)
    rows = [line.split() for line in text.splitlines()[2:]]
    assert [r[0] for r in rows] == ["4", "64", "2048"]
    assert [r[2:] for r in rows] == [["1", "1", "3"], ["3", "3", "3"], ["7", "7", "7"]]


# ---------------------------------------------------------------- gate statistics

def test_linear_cka_ignores_channel_order_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 6, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    assert ch.linear_cka(a, 3 * a @ q) == pytest.approx(1.0)
    assert ch.linear_cka(a, a[:, torch.randperm(6, generator=g)]) == pytest.approx(1.0)
    b = torch.randn(200, 4, generator=g)
    assert ch.linear_cka(a, b) < 0.1 and ch.linear_cka(a, b) == pytest.approx(ch.linear_cka(b, a))
    assert math.isnan(ch.linear_cka(a, torch.ones(200, 3)))            # a constant gate: 0/0, undefined


def test_variants_are_chapter_3s_runs_where_they_overlap():
    assert ch.VARIANTS["se1"] == ch03.CONTEXT_DEMOS["se"]
    assert set(ch.RUN_SEEDS["se1"]) == set(ch03.CONTEXT_SEEDS)        # all of chapter 3's runs, not a subset
    assert ch.VARIANTS["se16"].reduction == 16 and ch.VARIANTS["eca"].attention == "eca"
    assert all(v.after == 1 for v in ch.VARIANTS.values()) and all(c.after == 0 for c in ch.CONTROLS.values())
    assert ch.variant_label("se16") == i18n.t("ch07.variant.se16", h=1)
    assert ch.variant_label("eca") == i18n.t("ch07.variant.eca", k=3)


def test_gate_gallery_shows_band_and_no_band_images():
    torch.manual_seed(0)
    model = ch.VARIANTS["eca"].build().eval()
    d = data.context_dataset(20, seed=3)
    view = ch.gate_gallery(model, d.images, d.context, per_question=2)
    assert view.kind == "channel_gallery" and view.data["G"] == 4 and view.data["C"] == 16
    assert view.data["labels"] == [i18n.t("ch07.gallery.band")] * 2 + [i18n.t("ch07.gallery.none")] * 2


# ---------------------------------------------------------------- exercises

def _gate(x, weight):
    k = weight.shape[-1]
    y = x.mean((2, 3))[:, None, :]
    return torch.sigmoid(torch.nn.functional.conv1d(y, weight, padding=(k - 1) // 2)).transpose(1, 2)[..., None]


def _gate_squeeze(x, weight):                               # the .squeeze() slip: fails at batch size 1
    y = torch.nn.functional.adaptive_avg_pool2d(x, 1).squeeze()[:, None, :]
    return torch.sigmoid(torch.nn.functional.conv1d(y, weight, padding=weight.shape[-1] // 2)).transpose(1, 2)[..., None]


def _gate_no_padding(x, weight):
    y = x.mean((2, 3))[:, None, :]
    return torch.sigmoid(torch.nn.functional.conv1d(y, weight)).transpose(1, 2)[..., None]


def _gate_no_sigmoid(x, weight):
    y = x.mean((2, 3))[:, None, :]
    return torch.nn.functional.conv1d(y, weight, padding=weight.shape[-1] // 2).transpose(1, 2)[..., None]


def _gate_spatial(x, weight):                               # a 1-D convolution along the image rows
    B, C, H, W = x.shape
    rows = x.mean(1).reshape(B * H, 1, W)
    out = torch.nn.functional.conv1d(rows, weight, padding=weight.shape[-1] // 2).reshape(B, 1, H, W)
    return torch.sigmoid(out)


SOLUTIONS = {"eca.k": 7, "eca.params": 86, "eca.gate": _gate}   # read by test_exercises.py


@pytest.mark.parametrize("key,answer", [("eca.k", 7), ("eca.params", 86), ("eca.gate", _gate)])
def test_solutions_are_accepted(key, answer, lang):
    assert exercises.verdict(key, answer) == (True, i18n.t("ex.correct"))


def stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    fields = re.findall(r"{(\w+)", i18n._strings[key]["en"])
    return i18n.t(key, **{f: "\0" for f in fields}).split("\0")[0][:40]


@pytest.mark.parametrize("key,answer,hint", [
    ("eca.k", 6, "ex.eca.k.even"),
    ("eca.k", 5.5, "ex.eca.k.other"),
    ("eca.k", 6.0, "ex.eca.k.even"),
    ("eca.k", 3, "ex.eca.k.fixed"),
    ("eca.k", 13, "ex.eca.k.no_gamma"),
    ("eca.k", 9, "ex.eca.k.other"),
    ("eca.params", 80, "ex.eca.params.released"),
    ("eca.params", 48, "ex.eca.params.fixed"),
    ("eca.params", 22, "ex.eca.params.per_stage"),
    ("eca.params", 100, "ex.eca.params.other"),
    ("eca.gate", _gate_squeeze, "ex.eca.gate.batch1"),
    ("eca.gate", _gate_no_padding, "ex.eca.gate.no_padding"),
    ("eca.gate", _gate_no_sigmoid, "ex.eca.gate.no_sigmoid"),
    ("eca.gate", lambda x, w: _gate(x.amax((2, 3), keepdim=True), w), "ex.eca.gate.max_pool"),
    ("eca.gate", _gate_spatial, "ex.eca.gate.spatial"),
    ("eca.gate", lambda x, w: _gate(x, w)[..., 0, 0], "ex.fn.shape"),
    ("eca.gate", lambda x, w: _gate(x, w.flip(-1)), "ex.eca.gate.other"),
])
def test_typical_wrong_answers_are_named(key, answer, hint, lang):
    ok, message = exercises.verdict(key, answer)
    assert ok is False and stem(hint) in message


def test_explorer_is_declared_by_the_chapter():
    assert ch.EXPLORER.name == "eca"


# ---------------------------------------------------------------- §6: the controls and the readings

from attention_lib.toolkit import readings as rd  # noqa: E402


def test_the_controls_build_the_gate_they_name_right_before_the_read_out():
    models = {name: cfg.build().eval() for name, cfg in ch.CONTROLS.items()}
    assert all(m.after is None for m in models.values())
    assert models["eca31_bias"].attention.eca.kernel_size == 31 and isinstance(models["full"].attention, ch.FullGate)
    assert models["eca3"].attention.kernel_size == 3 and set(ch.CONTROLS) == {"eca3", "eca31_bias", "full"}
    assert sum(p.numel() for p in models["full"].attention.parameters()) == 16 * 16 + 16
    assert sum(p.numel() for p in models["eca31_bias"].attention.parameters()) == 31 + 16
    x = torch.rand(5, 3, 32, 32)
    for m in models.values():
        gate = m.attention_map(x)
        assert gate.shape == (5, 16, 1, 1) and m(x).shape == (5, 4)
        torch.testing.assert_close(m.attention(m.features(x)), m.features(x) * gate)
    with pytest.raises(ValueError, match="gate"):
        ch.GateAlone(gate="conv").build()
    with pytest.raises(ValueError, match=r"\(B, 16, H, W\)"):
        models["full"].attention.attention_map(torch.rand(2, 8, 4, 4))


def test_the_nonlinearity_control_is_chapter_3s_eca_network_without_its_1x1_convolution():
    model = ch.GateBNReLU(seed=0).build().eval()
    full = ch.VARIANTS["eca"].build().eval()
    assert isinstance(model.attention, al.EfficientChannelAttention) and model.attention.kernel_size == 3
    kinds = [type(m) for m in model.after]
    assert kinds == [torch.nn.BatchNorm2d, torch.nn.ReLU] and not any(
        isinstance(m, torch.nn.Conv2d) for m in model.after.modules())
    assert any(isinstance(m, torch.nn.Conv2d) for m in full.after.modules())    # the network it is compared with
    assert [c.seed for c in ch.experiment_configs()["eca_bn_relu"]] == list(ch.SEEDS)
    assert model(torch.rand(3, 3, 32, 32)).shape == (3, 4)


def test_a_1x1_convolution_without_a_nonlinearity_folds_into_the_linear_read_out():
    # The identity of §6: GAP(W (w * x)) = W (w * GAP(x)), so gate, 1x1 conv and linear read-out compute what a
    # gate and one linear read-out compute.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 8, 12, generator=g)
    gate = torch.rand(4, 16, 1, 1, generator=g)
    conv = torch.nn.Conv2d(16, 16, 1, bias=False)
    read = torch.nn.Linear(16, 4)
    with torch.no_grad():
        through_conv = read(conv(gate * x).mean((2, 3)))
        folded = torch.nn.functional.linear((gate * x).mean((2, 3)), read.weight @ conv.weight[:, :, 0, 0],
                                            read.bias)
        torch.testing.assert_close(through_conv, folded)
        relu = torch.nn.functional.relu
        after = relu(conv(gate * x)).mean((2, 3))               # a threshold per cell, then the average
        before = relu(conv((gate * x).mean((2, 3), keepdim=True)))[..., 0, 0]
        assert (after - before).abs().max() > 0.01                        # with a non-linearity it does not fold


def test_shared_band_bias_is_eca_plus_a_bias_per_channel():
    gate = ch.SharedBandBias(12, kernel_size=5)
    with torch.no_grad():
        gate.bias.copy_(torch.linspace(-1, 1, 12))
    x = torch.randn(3, 12, 4, 4)
    eca = gate.eca
    y = x.mean((2, 3))
    expected = torch.sigmoid(_conv_reference(y, eca.conv.weight.detach().view(5)) + gate.bias.detach())
    torch.testing.assert_close(gate.attention_map(x)[..., 0, 0], expected)


def _accs(values):
    return {name: rd.seeds(v) for name, v in values.items()}


VARIANT_ACCS = {"se1": [0.998, 1, 1, 1, 1], "eca": [1, 1, 1, 0.852, 1], "se16": [0.502, 0.914, 1]}
CONTROL_ACCS = {"eca3": [0.51, 0.53, 0.54], "eca31_bias": [0.55, 0.86, 0.53],
                "full": [0.98, 1.0, 0.95]}


def test_variant_readings_fail_for_numbers_that_contradict_the_prose():
    ch.check_variant_readings(_accs(VARIANT_ACCS))
    for change in ({"se1": [0.998, 1, 0.8, 1, 1]}, {"eca": [1, 1, 1, 1, 1]}, {"eca": [0.5, 0.5, 1, 0.5, 1]},
                   {"eca": [1, 1, 1, 0.7, 1]},                       # seed 3 below 3/4: not "most of it"
                   {"eca": [1, 1, 0.852, 1, 1]},                     # another seed in between than the one named
                   {"se16": [0.95, 0.914, 1]}, {"se16": [0.5, 0.5, 0.5]},
                   {"se16": [0.7, 0.914, 1]}):                       # the run that missed is not near one half
        with pytest.raises(rd.ReadingError):
            ch.check_variant_readings(_accs({**VARIANT_ACCS, **change}))


def test_control_readings_fail_when_a_band_learns_the_switch_or_the_full_layer_misses_it():
    ch.check_control_readings(_accs(CONTROL_ACCS))
    for change in ({"eca3": [0.54, 0.95, 0.52]}, {"eca3": [0.54, 0.7, 0.52]}, {"eca31_bias": [0.55, 0.92, 0.53]},
                   {"eca31_bias": [0.55, 0.6, 0.53]},                # no band run learned even part of it
                   {"eca31_bias": [0.8, 0.862, 0.53]},               # two did
                   {"full": [0.98, 0.7, 0.95]}):
        with pytest.raises(rd.ReadingError):
            ch.check_control_readings(_accs({**CONTROL_ACCS, **change}))


def test_nonlinearity_readings_fail_when_bn_relu_misses_the_switch_or_the_gate_alone_learns_it():
    bn_relu = {"eca_bn_relu": [0.992, 1.0, 0.964, 0.578, 0.976]}
    ch.check_nonlinearity_readings(_accs(bn_relu), _accs(CONTROL_ACCS))
    for accs, controls in (({"eca_bn_relu": [0.992, 1.0, 0.964, 0.95, 0.976]}, CONTROL_ACCS),   # five of five
                           ({"eca_bn_relu": [0.992, 0.55, 0.964, 0.578, 0.976]}, CONTROL_ACCS),  # three of five
                           ({"eca_bn_relu": [0.992, 1.0, 0.964, 0.7, 0.976]}, CONTROL_ACCS),   # not near one half
                           ({"eca_bn_relu": [0.992, 1.0, 0.578, 0.95, 0.976]}, CONTROL_ACCS),  # a shared seed fails
                           (bn_relu, {**CONTROL_ACCS, "eca3": [0.51, 0.8, 0.54]})):          # the gate alone learns
        with pytest.raises(rd.ReadingError):
            ch.check_nonlinearity_readings(_accs(accs), _accs(controls))


def test_share_similarity_matrix_and_hidden_unit_readings_fail_for_contradicting_numbers():
    accs = _accs(VARIANT_ACCS)
    shares = _accs({"eca": [0.48, 0.6, 0.32, 0.17, 0.5], "se16": [0.0, 0.56, 0.88],
                    "se1": [0.51, 0.83, 0.61, 0.67, 0.73]})
    ch.check_share_readings(shares, accs)
    for change in ({"se1": [0.1, 0.2, 0.2, 0.2, 0.2]}, {"eca": [0.1, 0.6, 0.32, 0.17, 0.5]},
                   {"se16": [0.05, 0.56, 0.88]}):
        with pytest.raises(rd.ReadingError):
            ch.check_share_readings({**shares, **_accs(change)}, accs)
    runs = [("eca", 0), ("se16", 0), ("se1", 0)]
    m = np.array([[1.0, np.nan, 0.7], [np.nan] * 3, [0.7, np.nan, 1.0]])
    ch.check_similarity_readings(runs, m, accs)
    for bad in (np.where(np.isnan(m), np.nan, 0.2) + np.eye(3) * 0.8, np.nan_to_num(m)):
        with pytest.raises(rd.ReadingError):
            ch.check_similarity_readings(runs, bad, accs)
    ch.check_matrix_readings(0.53, channels=16)
    with pytest.raises(rd.ReadingError):
        ch.check_matrix_readings(0.33, channels=16)
    ch.check_hidden_readings([0.0, 0.67, 0.75], VARIANT_ACCS["se16"])
    for active, hidden in (([0.1, 0.67, 0.75], VARIANT_ACCS["se16"]),
                           ([0.0, 0.67, 0.75], [0.502, 0.6, 1]),
                           ([0.0, 0.67, 0.75], [0.702, 0.914, 1]),
                           ([0.0, 0.0, 0.75], [0.502, 0.51, 1]),      # two dead units, not one
                           ([0.0, 0.67, 1.0], VARIANT_ACCS["se16"])):   # active on every image, not on part
        with pytest.raises(rd.ReadingError):
            ch.check_hidden_readings(active, hidden)


def test_column_share_by_hand():
    m = torch.zeros(4, 4)
    m[:, 0] = 1.0
    m[:, 1] = 1.0
    assert ch.column_share(m, top=1) == pytest.approx(0.5) and ch.column_share(m, top=2) == pytest.approx(1.0)
    assert math.isnan(ch.column_share(torch.zeros(3, 3)))
