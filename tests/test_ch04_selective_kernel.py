"""Chapter 04's module: figures draw in both languages, the helpers compute what they claim, the checks judge."""
import re
import warnings

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import MECHANISMS, exercises, i18n  # noqa: E402
from attention_lib.chapters import ch04_selective_kernel as ch  # noqa: E402
from attention_lib.toolkit import readings as rd  # noqa: E402
from attention_lib.toolkit.instruments import count_flops, count_parameters  # noqa: E402


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


# ---------------------------------------------------------------- figures

def test_every_figure_draws_with_its_labels(lang):
    photo = torch.rand(3, 48, 48)
    fig = draws_cleanly(lambda: ch.plot_windows(photo, stride=4))
    assert i18n.t("ch04.windows.title") in texts(fig) and len(fig.legends) == 1
    fields = [torch.rand(11, 11) for _ in range(3)]
    fig = draws_cleanly(lambda: ch.plot_receptive_fields(fields, ["a", "b", "c"], [9, 9, 25]))
    assert i18n.t("ch04.rf.colorbar") in texts(fig) and len(fig.axes) == 4          # three maps and a colour bar
    sets = ch.scale_sets(radii=(2, 6), n=3)
    fig = draws_cleanly(lambda: ch.plot_scale_examples(sets))
    assert i18n.t("ch04.scales.radius", r=6) in texts(fig)
    fig = draws_cleanly(lambda: ch.plot_scale_response((2, 6), torch.tensor([[[0.1, 0.2], [0.0, -0.1]],
                                                                             [[0.0, 0.3], [0.1, 0.1]]])))
    assert i18n.t("ch04.response.unit", stride=4) in texts(fig) and len(fig.legends) == 1 and len(fig.axes) == 2
    accs = {b: rd.seeds([0.8, 0.85]) for b in ("sk", "mean", "single")}
    fig = draws_cleanly(lambda: ch.plot_accuracies(accs))
    ticks = ["".join(t.get_text().split()) for t in fig.axes[0].get_xticklabels()]        # wrapped to its slot
    assert "".join(al.viz.tight_times(i18n.t("ch04.block.mean")).split()) in ticks        # 3×3 in a narrow tick
    with pytest.raises(ValueError, match="seeds, units"):
        ch.plot_scale_response((2, 6), torch.zeros(2, 2))


def test_plot_windows_rejects_a_batch():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        ch.plot_windows(torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------- receptive fields

def _support(field):
    rows, cols = torch.nonzero(field > 0, as_tuple=True)
    return sorted(set(rows.tolist())), sorted(set(cols.tolist()))


@pytest.mark.parametrize("k,dilated,taps,positions", [
    (3, True, 9, [4, 5, 6]), (5, True, 9, [3, 5, 7]), (5, False, 25, [3, 4, 5, 6, 7]), (7, True, 9, [2, 5, 8])])
def test_receptive_field_is_the_kernel_support_around_the_centre(k, dilated, taps, positions):
    branch = al.SelectiveKernel(4, kernel_sizes=(k,), dilated=dilated, min_dim=2).branches[0]
    field = ch.receptive_field(branch, size=11)
    assert field.max() == 1.0 and int((field > 0).sum()) == taps
    rows, cols = _support(field)
    assert rows == positions and cols == positions


# ---------------------------------------------------------------- the blocks of the experiment

def test_branch_mean_averages_sk_branches_and_single_is_one_conv_bn_relu():
    torch.manual_seed(0)
    both, one = ch.BranchMean(8, (3, 5)).eval(), ch.BranchMean(8, (3,)).eval()
    x = torch.randn(2, 8, 6, 7)
    with torch.no_grad():
        expected = (both.branches[0](x) + both.branches[1](x)) / 2
        conv, bn = one.branches[0][0], one.branches[0][1]
        single = torch.relu(bn(conv(x)))
    torch.testing.assert_close(both(x), expected)
    torch.testing.assert_close(one(x), single)
    assert one.branches[0][0].kernel_size == (3, 3) and both.branches[1][0].dilation == (2, 2)
    assert count_parameters(both) == 2 * (9 * 8 * 8 + 2 * 8) and count_parameters(one) == 9 * 8 * 8 + 2 * 8


def test_tiny_sknet_builds_each_block_in_every_unit_and_refuses_others():
    nets = {b: ch.SK_DEMO.replace(block=b).build() for b in ("sk", "mean", "single")}
    assert all(isinstance(u, al.SelectiveKernel) for u in nets["sk"].units) and len(nets["sk"].units) == 2
    unit = nets["sk"].units[0]
    assert unit.channels == 16 and unit.fuse[0].out_features == 32 and unit.branches[1][0].dilation == (2, 2)
    assert [ch.block_parameters(nets[b]) for b in ("sk", "mean", "single")] == [
        2 * count_parameters(al.SelectiveKernel(16, min_dim=32)), 2 * 2 * (9 * 16 * 16 + 32), 2 * (9 * 16 * 16 + 32)]
    x = torch.rand(3, 3, 32, 32)
    assert all(m.eval()(x).shape == (3, 4) for m in nets.values())
    maps = nets["sk"].attention_maps(x)
    assert [tuple(a.shape) for a in maps] == [(3, 2, 16, 1, 1)] * 2
    with torch.no_grad():
        logits, again = nets["sk"].logits_and_maps(x)                  # one pass: the same logits and maps
    torch.testing.assert_close(logits, nets["sk"](x))
    torch.testing.assert_close(again[1], maps[1])
    torch.testing.assert_close(maps[0], unit.attention_map(nets["sk"].reduce(nets["sk"].stem(x))))
    with pytest.raises(ValueError, match="block='sk'"):
        nets["mean"].attention_maps(x)
    with pytest.raises(ValueError, match="block"):
        ch.SK_DEMO.replace(block="sum").build()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        nets["sk"](torch.rand(3, 1, 32, 32))
    d = ch.SK_DEMO.replace(n_train=16, n_val=8).data("val")
    w = d.boxes[:, 2] - d.boxes[:, 0]
    assert len(d.images) == 8 and (w >= 5).all() and (w <= 22).all()


def test_scale_sets_are_the_same_scenes_with_only_the_target_size_changed():
    sets = ch.scale_sets(radii=(2, 4, 8), n=12)
    labels = [d.labels for d in sets.values()]
    assert all(torch.equal(labels[0], lab) for lab in labels)
    widths = [(d.boxes[:, 2] - d.boxes[:, 0]).float().mean() for d in sets.values()]
    assert widths[0] < widths[1] < widths[2]
    mean, most = ch.centre_shift(sets)
    assert 0 < mean <= most < 16


def test_scale_response_is_each_units_per_channel_branch_weight_difference():
    model = al.train.untrained_model(ch.SK_DEMO)
    sets = ch.scale_sets(radii=(3, 7), n=6)
    diffs, accs = ch.scale_response(model, sets)
    with torch.no_grad():
        a = model.attention_maps(sets[7].images)[1][..., 0, 0]                # (n, M, C): the stride-4 unit
    torch.testing.assert_close(diffs[1, 1], (a[:, 1] - a[:, 0]).mean(0))
    assert diffs.shape == (2, 2, 16) and accs.shape == (2,) and ((accs >= 0) & (accs <= 1)).all()
    per_seed = torch.stack([diffs, diffs + 1])                               # (seeds, units, sizes, C)
    torch.testing.assert_close(ch.scale_changes(per_seed), (diffs[:, 1] - diffs[:, 0]).mean(-1).expand(2, 2))
    rises = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]]])   # (1 seed, 2 units, 2 sizes, 2 C)
    assert ch.channel_rises(rises).tolist() == [0.5, 0.0]


def test_accuracy_readings_fail_when_sk_gains_consistently_or_never_leads():
    # the printed accuracies as counts of the 400 validation images (seeds 0-7)
    sk = [c / 400 for c in (347, 353, 326, 325, 334, 306, 340, 339)]
    mean = [c / 400 for c in (345, 336, 325, 325, 333, 357, 335, 341)]
    single = [c / 400 for c in (342, 349, 318, 321, 327, 351, 339, 334)]
    accs = {"sk": rd.seeds(sk), "mean": rd.seeds(mean), "single": rd.seeds(single)}
    ch.check_accuracy_readings(accs)
    assert ch.tie_margin(400) == pytest.approx(2.5 / 400)
    no_loss = dict(accs, sk=rd.seeds(sk[:5] + [0.900] + sk[6:]))              # no seed far behind: a real gain
    behind = dict(accs, mean=rd.seeds([a + 0.01 for a in sk[:5]] + mean[5:]))  # SK behind 'mean' in most seeds
    far = dict(accs, single=rd.seeds([0.75] + single[1:]))                     # a gain of 12 points in one seed
    two = dict(accs, sk=rd.seeds(sk[:4] + [0.70, 0.765] + sk[6:]))             # far behind in two seeds
    leads = dict(accs, mean=rd.seeds([a - 3 / 400 if i in (0, 2, 3, 4) else m   # the ties become 3-image leads
                                      for i, (a, m) in enumerate(zip(sk, mean))]))
    tied = dict(accs, single=rd.seeds([a - 1 / 400 if i in (0, 1) else m        # two of the six leads are ties
                                       for i, (a, m) in enumerate(zip(sk, single))]))
    early = dict(accs, mean=rd.seeds([sk[0] + 1 / 400] + mean[1:]))             # seed 0: SK one image behind
    for case in (no_loss, behind, far, two, leads, tied, early):
        with pytest.raises(rd.ReadingError):
            ch.check_accuracy_readings(case)


def test_scale_readings_fail_for_numbers_that_contradict_the_prose():
    changes = torch.tensor([[0.17, 0.04], [0.41, 0.02], [0.37, 0.11], [0.52, 0.04], [0.28, 0.17]])
    before = torch.full((5, 2), 0.001)
    rises, acc = torch.tensor([0.8, 0.6]), torch.tensor([[0.4, 0.9, 0.98, 0.99, 0.99]] * 5)
    ch.check_scale_readings(changes, before, rises, acc)
    flipped = changes.clone()
    flipped[2, 0] = -0.02                                          # one seed against the trend in the stride-2 unit
    second = changes.clone()
    second[:, 1] = -0.1                                              # the stride-4 unit mostly falls
    for args in [(flipped, before, rises, acc), (second, before, rises, acc), (changes, before + 0.1, rises, acc),
                 (changes * 3, before, rises, acc),
                 (changes, before, torch.tensor([0.3, 0.6]), acc), (changes, before, rises, acc.flip(1))]:
        with pytest.raises(rd.ReadingError):
            ch.check_scale_readings(*args)


def test_selection_readings_fail_when_the_untrained_unit_already_chooses():
    random = 0.5 + 0.02 * torch.rand(10, 2, 16)
    trained = torch.rand(10, 2, 16)
    trained[0, 0, 0], trained[0, 0, 1] = 0.01, 0.99
    ch.check_selection_readings(trained, random)
    with pytest.raises(rd.ReadingError):
        ch.check_selection_readings(trained, random + 0.2)
    with pytest.raises(rd.ReadingError):
        ch.check_selection_readings(0.4 + 0.2 * torch.rand(10, 2, 16), random)


def test_plain_list_hides_its_layers_from_parameters_and_state_dict():
    broken = ch.PlainListSelect(16, d=8, branches=3)
    assert count_parameters(broken) == 16 * 8 + 8
    assert ch.missing_parameters(broken) == 3 * (8 * 16 + 16)
    assert sorted(broken.state_dict()) == ["fuse.bias", "fuse.weight"]
    assert broken(torch.randn(2, 16)).sum(1).allclose(torch.ones(2, 16))


def test_selection_gallery_holds_the_weights_of_both_sizes():
    model = al.train.untrained_model(ch.SK_DEMO)
    sets = ch.scale_sets(radii=(2, 10), n=3)
    view = ch.selection_gallery(model, sets, per_scale=2)
    assert view.kind == "channel_gallery" and view.data["G"] == 4 and view.data["K"] == 2


# ---------------------------------------------------------------- cost: the registry and the chapter's formulas

@pytest.mark.parametrize("C,kernels,groups,reduction", [(64, (3, 5), 1, 16), (32, (3, 5, 7), 4, 4), (48, (3, 5), 16, 8)])
def test_registry_formulas_hold_for_the_dilated_branches_of_the_chapter(C, kernels, groups, reduction):
    entry = MECHANISMS["selective_kernel"]
    m = al.SelectiveKernel(C, kernel_sizes=kernels, groups=groups, reduction=reduction).eval()
    x = torch.randn(2, C, 5, 6)
    kw = dict(channels=C, kernel_sizes=kernels, groups=groups, reduction=reduction)
    assert count_parameters(m) == entry.expected_params(**kw)
    assert count_flops(m, x, method="forward_explicit").total == entry.expected_flops(x.shape, **kw)


def test_a_true_5x5_branch_costs_25_instead_of_9_weights_per_filter():
    dilated, dense = al.SelectiveKernel(64), al.SelectiveKernel(64, dilated=False)
    assert count_parameters(dense) - count_parameters(dilated) == (25 - 9) * 64 * 64


# ---------------------------------------------------------------- exercises

def _select(feats, logits):
    B, C = feats[0].shape[:2]
    a = logits.view(B, len(feats), C).softmax(dim=1)
    return sum(a[:, m, :, None, None] * u for m, u in enumerate(feats))


def _stacked(feats, logits, softmax_dim=1, view=None):
    B, C, M = feats[0].shape[0], feats[0].shape[1], len(feats)
    a = logits.view(B, M, C)
    if view == "CM":
        a = logits.view(B, C, M).softmax(dim=2).transpose(1, 2)
    else:
        a = a.softmax(dim=softmax_dim)
    return (torch.stack(feats, 1) * a[..., None, None]).sum(1)


SOLUTIONS = {"sk.shape": (8, 3, 64, 1, 1), "sk.params": 80192, "sk.select": _select}   # read by test_exercises.py


@pytest.mark.parametrize("key,answer", [("sk.shape", (8, 3, 64, 1, 1)), ("sk.params", 80192), ("sk.select", _select)])
def test_solutions_are_accepted(key, answer, lang):
    assert exercises.verdict(key, answer) == (True, i18n.t("ex.correct"))


@pytest.mark.parametrize("key,answer,hint", [
    ("sk.shape", (8, 3, 64), "ex.sk.shape.flat"),
    ("sk.shape", (8, 64, 3, 1, 1), "ex.sk.shape.order"),
    ("sk.shape", (8, 64, 1, 1), "ex.sk.shape.no_branch"),
    ("sk.shape", (8, 3, 28, 28), "ex.sk.shape.other"),
    ("sk.params", 145728, "ex.sk.params.dense"),          # (9 + 25) C^2 + 4C + Cd + 2d + 2dC
    ("sk.params", 79936, "ex.sk.params.no_bn"),
    ("sk.params", 74760, "ex.sk.params.small_d"),         # d = C/r = 4
    ("sk.params", 80192 - 64, "ex.sk.params.no_fuse_bn"),
    ("sk.params", 73728, "ex.sk.params.other"),
    ("sk.select", lambda f, z: _stacked(f, z, softmax_dim=2), "ex.sk.select.channel_axis"),
    ("sk.select", lambda f, z: (torch.stack(f, 1) * z.view(f[0].shape[0], len(f), -1).sigmoid()[..., None, None])
     .sum(1), "ex.sk.select.sigmoid"),
    ("sk.select", lambda f, z: _stacked(f, z, view="CM"), "ex.sk.select.order"),
    ("sk.select", lambda f, z: torch.stack(f, 1).mean(1), "ex.sk.select.mean"),
    ("sk.select", lambda f, z: _select(f, z) * 2, "ex.sk.select.other"),
    ("sk.select", lambda f, z: _select(f, z).mean((2, 3)), "ex.fn.shape"),
])
def test_typical_wrong_answers_are_named(key, answer, hint, lang):
    ok, message = exercises.verdict(key, answer)
    assert ok is False and stem(hint) in message


def stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    fields = re.findall(r"{(\w+)", i18n._strings[key]["en"])
    return i18n.t(key, **{f: "\0" for f in fields}).split("\0")[0][:40]


def test_explorer_is_declared_by_the_chapter():
    assert ch.EXPLORER.name == "selective_kernel"
