"""Chapter 05 (CBAM): the ablation's variants follow their equations, the chapter's helpers compute what they
claim, every figure draws in both languages, every exercise check names the typical slips."""
import re
import warnings

import matplotlib
import pytest
import torch
import torch.nn.functional as F

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import environment, i18n  # noqa: E402
from attention_lib.chapters import ch05_cbam as ch  # noqa: E402
from attention_lib.toolkit.exercises import verdict  # noqa: E402
from attention_lib.toolkit import readings as rd  # noqa: E402
from attention_lib.toolkit.train import CueCNN, Demo  # noqa: E402


@pytest.fixture(params=["en", "zh"])
def lang(request):
    if request.param == "zh" and environment.cjk_font_family() is None:
        pytest.skip("no CJK font installed")
    al.setup(lang=request.param)
    yield request.param
    al.setup(lang="en")
    plt.close("all")


def draws_cleanly(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a missing glyph is a warning: it fails here
        fig = make()
        fig.canvas.draw()
    return fig


def texts(fig):
    out = [fig.get_suptitle()]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return [s for s in out if s]


def randomize(module, seed=0):
    """Random weights and BatchNorm statistics, so that no term of an equation is trivially zero or one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


def naive_maps(v: ch.CBAMVariant, x):
    """M_c and M_s of the variant, written from the paper's equations with explicit weights."""
    fc0, fc1 = v.channel_gate.mlp[0], v.channel_gate.mlp[2]
    conv, bn = v.spatial_gate.conv, v.spatial_gate.norm

    def mlp(d):
        return torch.relu(d @ fc0.weight.T + fc0.bias) @ fc1.weight.T + fc1.bias

    def m_c(f):
        total = mlp(f.mean((2, 3))) + mlp(f.flatten(2).max(2).values)
        return torch.sigmoid(total)[:, :, None, None]

    def m_s(f):
        pooled = torch.stack([f.mean(1), f.max(1).values], 1)                     # [avg; max]
        s = F.conv2d(pooled, conv.weight, padding=conv.kernel_size[0] // 2)
        s = (s - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
        return torch.sigmoid(s * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))

    if v.order == "channel_first":
        mc = m_c(x)
        ms = m_s(mc * x)
    elif v.order == "spatial_first":
        ms = m_s(x)
        mc = m_c(ms * x)
    else:
        mc, ms = m_c(x), m_s(x)
    return mc, ms


# ---------------------------------------------------------------- the ablation's variants

@pytest.mark.parametrize("order", ch.ORDERS)
def test_cbam_variants_equal_their_equations(order):
    v = randomize(ch.CBAMVariant(16, reduction=4, order=order))
    x = torch.randn(3, 16, 5, 7)
    with torch.no_grad():
        mc, ms = naive_maps(v, x)
        maps = v.attention_map(x)
        assert torch.allclose(maps.channel, mc, atol=1e-5) and torch.allclose(maps.spatial, ms, atol=1e-5)
        assert torch.allclose(v(x), x * mc * ms, atol=1e-5)


def test_channel_first_with_both_descriptors_is_the_library_cbam():
    cbam = randomize(al.CBAM(16, reduction=4))
    v = ch.CBAMVariant(16, reduction=4).eval()
    v.load_state_dict(cbam.state_dict())
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert torch.allclose(v(x), cbam(x), atol=1e-6)
        assert torch.allclose(v.attention_map(x).spatial, cbam.attention_map(x).spatial, atol=1e-6)


def test_orders_differ_so_the_ablation_compares_different_models():
    x = torch.randn(2, 16, 6, 6)
    outs = []
    for order in ch.ORDERS:
        v = randomize(ch.CBAMVariant(16, reduction=4, order=order))
        with torch.no_grad():
            outs.append(v(x))
    assert not torch.allclose(outs[0], outs[1], atol=1e-4) and not torch.allclose(outs[0], outs[2], atol=1e-4)


def test_variants_refuse_unknown_orders():
    with pytest.raises(ValueError, match="order"):
        ch.CBAMVariant(16, order="sideways")


def test_ablation_configs_share_cbam_runs_with_the_main_demo():
    assert ch.ablation_config("channel_first", 2) == ch.CBAM_DEMO.replace(seed=2)
    other = ch.ablation_config("parallel", 1)
    assert isinstance(other, ch.CBAMAblation) and other.seed == 1 and other.order == "parallel"
    for field in ("n_train", "epochs", "batch_size", "lr", "width", "reduction", "n_val", "size"):
        assert getattr(other, field) == getattr(ch.CBAM_DEMO, field), field
    model = other.build()
    assert isinstance(model.attention, ch.CBAMVariant) and model.attention.order == "parallel"
    assert model.spatial_map(torch.rand(2, 3, 32, 32)).shape == (2, 8, 8)


def test_exercise_4_trains_a_smaller_kernel_with_the_chapters_recipe():
    small = ch.ablation_config(spatial_kernel=3, seed=1)
    assert small.order == "channel_first" and small.seed == 1
    assert (small.n_train, small.epochs, small.lr, small.batch_size) == \
        (ch.CBAM_DEMO.n_train, ch.CBAM_DEMO.epochs, ch.CBAM_DEMO.lr, ch.CBAM_DEMO.batch_size)
    assert small.build().attention.spatial_gate.conv.kernel_size == (3, 3)


def test_chapter_00_shows_this_chapters_seed_0_model():
    from attention_lib.chapters import ch00_introduction
    assert ch00_introduction.DEMO == ch.CBAM_DEMO


def test_the_demos_train_on_the_cue_images():
    assert isinstance(ch.CBAM_DEMO, CueCNN) and ch.BASELINE_DEMO == ch.CBAM_DEMO.replace(attention=None)
    val = ch.CBAM_DEMO.replace(n_val=8).data("val")
    assert isinstance(val, al.data.CueData) and val.distractor_boxes.shape == (8, 2, 4)


def test_recipe_line_names_the_hidden_units():
    assert "C/r = 8" in ch.recipe(ch.CBAM_DEMO) and "(r = 16 would leave 2)" in ch.recipe(ch.CBAM_DEMO)


# ---------------------------------------------------------------- helpers of §6 and §8

def test_spatial_maps_are_m_s_of_the_models_cbam():
    torch.manual_seed(0)
    model = al.TinyCNN("cbam").eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = model.attention.attention_map(model.features(x)).spatial[:, 0]
    assert torch.allclose(ch.spatial_maps(model, x), expected)


def test_centre_and_brightness_maps_peak_where_they_say():
    centre = ch.centre_maps(2, 8, 8)
    assert centre.flatten(1).argmax(1).tolist() == [4 * 8 + 4] * 2
    images = torch.zeros(1, 3, 32, 32)
    images[0, 1, 8:12, 20:24] = 1.0                          # a bright square in cell (2, 5)
    bright = ch.brightness_maps(images, 8, 8)
    assert bright.shape == (1, 8, 8) and bright[0].argmax().item() == 2 * 8 + 5


def test_class_activation_maps_add_up_to_the_logit():
    torch.manual_seed(0)
    model = al.TinyCNN(None).eval()
    x, labels = torch.rand(3, 3, 32, 32), torch.tensor([0, 3, 1])
    with torch.no_grad():
        features = model.features(x)                                              # (3, 32, 8, 8)
        raw = torch.einsum("kc,nchw->nkhw", model.head[-1].weight, features)[torch.arange(3), labels]
        logits = model(x)[torch.arange(3), labels]
    # the mean of w_k . F(x, y) over the positions plus the bias is the class's logit
    assert torch.allclose(raw.mean((1, 2)) + model.head[-1].bias[labels], logits, atol=1e-5)
    cam = ch.class_activation_maps(model, x, labels)
    assert torch.allclose(cam, raw - raw.amin((1, 2), keepdim=True), atol=1e-6)
    assert cam.amin((1, 2)).abs().max() == 0
    with pytest.raises(ValueError, match="without attention"):
        ch.class_activation_maps(al.TinyCNN("cbam").eval(), x, labels)


def test_feature_energy_is_the_channel_mean_of_what_cbam_receives():
    torch.manual_seed(0)
    model = al.TinyCNN("cbam").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ch.feature_energy(model, x), model.features(x).mean(1))


def test_cover_paints_a_square_of_the_background_around_each_centre():
    images = torch.full((2, 3, 32, 32), 0.1)
    images[:, 0, 10:14, 10:14] = 1.0
    covered = ch.cover(images, torch.tensor([[12, 12], [0, 31]]))
    assert torch.all(covered[0, :, 6:18, 6:18] == 0.1) and covered[0].max() == 0.1   # the red square is gone
    assert covered[1, 0, 10:14, 10:14].min() == 1.0                                 # far from the corner: kept
    assert ch.MASK == 12 and torch.equal(ch.cover(images, torch.tensor([[12, 12], [12, 12]]))[1],
                                         covered[0])


def test_peak_and_random_centres_stay_on_the_image():
    maps = torch.zeros(2, 8, 8)
    maps[0, 2, 5] = 1.0
    maps[1, 7, 0] = 1.0
    assert ch.peak_centres(maps, 32).tolist() == [[10, 22], [30, 2]]
    c = ch.random_centres(500, 32, seed=3)
    assert c.min() >= 6 and c.max() <= 26 and torch.equal(c, ch.random_centres(500, 32, seed=3))


def _fake_runs(n_val=24, seeds=(0, 1)):
    runs, bases = [], []
    for seed in seeds:
        for attention, out in (("cbam", runs), (None, bases)):
            cfg = CueCNN(attention=attention, n_val=n_val, seed=seed)
            torch.manual_seed(seed)
            out.append(Demo(cfg.build().eval(), {"val_acc": [0.5]}, cfg, True, None, cfg.data("val")))
    return runs, bases


def test_where_it_looks_scores_seven_maps_per_seed():
    runs, bases = _fake_runs()
    where = ch.where_it_looks(runs, bases)
    assert set(where.peak) == set(ch.WHERE_ROWS) and all(len(v) == 2 for v in where.peak.values())
    centre = [al.data.box_scores(ch.centre_maps(24, 8, 8), r.val_data.boxes, 32).peak_in_box for r in runs]
    assert where.peak["centre"] == pytest.approx(centre)
    trained = [al.data.box_scores(ch.spatial_maps(r.model, r.val_data.images), r.val_data.boxes, 32).mass_in_box
               for r in runs]
    assert where.mass["trained"] == pytest.approx(trained)
    table = where.table()
    assert len(table) == len(ch.WHERE_ROWS) + 1 and "±" in table.rows[0][1]


def test_where_it_looks_scores_the_random_module_in_eval_mode():
    runs, bases = _fake_runs(seeds=(0,))
    torch.manual_seed(0)
    random_model = al.TinyCNN("cbam", width=runs[0].config.width, reduction=runs[0].config.reduction).eval()
    val = runs[0].val_data
    peak = al.data.box_scores(ch.spatial_maps(random_model, val.images), val.boxes, 32).peak_in_box
    assert ch.where_it_looks(runs, bases).peak["random"] == [pytest.approx(peak)]


def test_masking_test_asks_both_networks_about_the_same_covered_images():
    runs, bases = _fake_runs()
    m = ch.masking_test(runs, bases)
    keys = {(net, key) for net in ch.MASK_NETS for key in ch.MASK_ROWS}
    assert set(m.drop) == set(m.accuracy) == keys and all(len(v) == 2 for v in m.drop.values())
    val = runs[0].val_data
    random = ch.cover(val.images, ch.random_centres(24, 32, seed=0))
    for net, demo in (("cbam", runs[0]), ("none", bases[0])):
        before = ch.true_logits(demo.model, val.images, val.labels)
        after = ch.true_logits(demo.model, random, val.labels)
        assert m.drop[(net, "random")][0] == pytest.approx((before - after).mean().item(), abs=1e-6)
    cam = ch.class_activation_maps(bases[0].model, val.images, val.labels)
    covered = ch.cover(val.images, ch.peak_centres(cam, 32))
    with torch.no_grad():
        acc = (runs[0].model(covered).argmax(1) == val.labels).float().mean().item()
    assert m.accuracy[("cbam", "cam")][0] == pytest.approx(acc)
    assert len(m.table()) == len(ch.MASK_NETS) * (1 + len(ch.MASK_ROWS))


def test_where_reports_the_trained_maps_mean_inside_and_outside_the_box():
    runs, bases = _fake_runs(seeds=(0,))
    where = ch.where_it_looks(runs, bases)
    val = runs[0].val_data
    m_s = ch.spatial_maps(runs[0].model, val.images)
    inside = al.data.box_masks(val.boxes, 8, 8, 32)
    expected_in = torch.stack([m[b].mean() for m, b in zip(m_s, inside)]).mean().item()
    expected_out = torch.stack([m[~b].mean() for m, b in zip(m_s, inside)]).mean().item()
    assert where.inside == [pytest.approx(expected_in, abs=1e-6)]
    assert where.outside == [pytest.approx(expected_out, abs=1e-6)]
    assert "±" in where.means()


# ---------------------------------------------------------------- the reading guards fail on contrary numbers

def _where(inside=0.98, outside=0.52, **changes):
    good = dict(trained=(1.0, 0.0, 0.20), random=(0.05, 0.15, 0.12), centre=(0.2, 0.34, 0.2),
                bright=(0.35, 0.65, 0.195), features=(1.0, 0.0, 0.49), base_features=(0.97, 0.0, 0.49),
                base_cam=(0.97, 0.0, 0.47))
    good.update(changes)
    return ch.Where({k: [v[0]] * 3 for k, v in good.items()}, {k: [v[1]] * 3 for k, v in good.items()},
                    {k: [v[2]] * 3 for k, v in good.items()}, [0.115] * 3, [inside] * 3, [outside] * 3)


def test_where_readings_pass_on_the_chapters_numbers():
    ch.check_where_readings(_where())


@pytest.mark.parametrize("changes", [
    dict(trained=(0.9, 0.0, 0.20)),                  # the map misses the target in one image in ten
    dict(trained=(1.0, 0.05, 0.20)),                 # it lands on distractors
    dict(trained=(1.0, 0.0, 0.15)),                  # its mass is barely above the box's share
    dict(outside=0.2),                               # the map is not broad: low outside the box
    dict(inside=0.7),                                # nor near its top inside it
    dict(random=(0.3, 0.1, 0.12)),                   # a random module finds the target too often
    dict(centre=(0.45, 0.3, 0.45)),                  # the centre guess is not "one in five"
    dict(bright=(0.7, 0.3, 0.3)),                    # saliency finds the target: the test means nothing
    dict(bright=(0.35, 0.65, 0.15)),                 # the brightness map's mass is far below the trained map's
    dict(features=(0.9, 0.05, 0.49)),                # the features do not localise as well as the map
    dict(features=(1.0, 0.0, 0.18)),                 # the map concentrates more than its input
    dict(base_cam=(0.6, 0.3, 0.3)),                  # the network without attention does not localise
])
def test_where_readings_fail_when_the_numbers_contradict_the_prose(changes):
    with pytest.raises(rd.ReadingError):
        ch.check_where_readings(_where(**changes))


def _masking(peak=(3.69, 3.78, 3.07), random=(0.97, 1.14, 0.89), bright=(1.38, 1.43, 1.13),
             cam=(3.82, 3.91, 3.06), covered=(0.268, 0.264, 0.242), none_peak=(3.68, 3.66, 3.02),
             none_cam=(3.84, 3.69, 3.01), none_covered=(0.288, 0.304, 0.316)):
    drop = {("cbam", "peak"): peak, ("cbam", "cam"): cam, ("cbam", "random"): random, ("cbam", "bright"): bright,
            ("none", "peak"): none_peak, ("none", "cam"): none_cam, ("none", "random"): (1.0, 1.09, 0.87),
            ("none", "bright"): (1.38, 1.4, 1.15)}
    acc = {("cbam", "peak"): covered, ("none", "peak"): none_covered}
    acc.update({(net, k): (0.7, 0.7, 0.7) for net in ch.MASK_NETS for k in ("cam", "random", "bright")})
    return ch.Masking({k: list(v) for k, v in drop.items()}, {k: list(v) for k, v in acc.items()},
                      {"cbam": [0.96, 0.98, 0.978], "none": [0.964, 0.984, 0.978]})


def test_masking_readings_pass_on_the_chapters_numbers():
    ch.check_masking_readings(_masking())


@pytest.mark.parametrize("kwargs", [
    dict(peak=(3.69, 1.9, 3.07)),                    # one seed: less than twice the random drop
    dict(bright=(1.38, 3.9, 1.13)),                  # the brightest cell costs more than the map's peak
    dict(covered=(0.268, 0.45, 0.242)),              # covering the map's square leaves more than chance
    dict(covered=(0.268, 0.15, 0.242)),              # or far less (below chance: not "at chance")
    dict(none_peak=(3.68, 2.0, 3.02)),               # the control: the network without attention loses less
    dict(none_covered=(0.288, 0.5, 0.316)),          # and keeps half its accuracy
    dict(cam=(3.82, 2.5, 3.06)),                     # covering the CAM's peak costs the CBAM network far less
    dict(none_cam=(3.84, 3.69, 1.5)),                # or the network without attention
])
def test_masking_readings_fail_when_the_numbers_contradict_the_prose(kwargs):
    with pytest.raises(rd.ReadingError):
        ch.check_masking_readings(_masking(**kwargs))


def test_accuracy_readings():
    ch.check_accuracy_readings([0.96, 0.98, 0.978], [0.964, 0.984, 0.978])
    with pytest.raises(rd.ReadingError):             # CBAM two points above in one seed
        ch.check_accuracy_readings([0.96, 0.98, 0.998], [0.964, 0.984, 0.978])
    with pytest.raises(rd.ReadingError):             # one run below 95%
        ch.check_accuracy_readings([0.96, 0.94, 0.978], [0.964, 0.984, 0.978])


#: The chapter's ablation accuracies per seed: channel first, spatial first, parallel; no attention.
ABLATION = {"a": [0.960, 0.980, 0.978], "b": [0.958, 0.978, 0.962], "c": [0.964, 0.990, 0.960]}
NONE = [0.964, 0.984, 0.978]


def _ablation(accuracy=None, peak=None, baseline=NONE):
    accuracy = {**ABLATION, **(accuracy or {})}
    return ch.Ablation(accuracy, peak or {k: [1.0] * 3 for k in accuracy}, {k: [0.0] * 3 for k in accuracy},
                       list(baseline))


def test_ablation_readings_pass_on_the_chapters_numbers():
    ch.check_ablation_readings(_ablation())


@pytest.mark.parametrize("kwargs", [
    dict(peak={"a": [1.0] * 3, "b": [1.0, 0.7, 1.0], "c": [1.0] * 3}),   # one order's map misses the target
    dict(accuracy={"b": [0.958, 0.982, 0.962]}),          # channel first is behind spatial first in one seed
    dict(accuracy={"b": [0.940, 0.978, 0.962]}),          # or ahead by 10 images: more than the prose says
    dict(baseline=[0.964, 0.976, 0.978]),                 # spatial first is above the baseline in one seed
    dict(accuracy={"c": [0.950, 0.970, 0.960]}),          # channel first ahead of parallel in every seed
    dict(baseline=[0.970, 0.990, 0.990]),                 # and every order below the baseline in every seed
])
def test_ablation_readings_fail_when_the_numbers_contradict_the_prose(kwargs):
    with pytest.raises(rd.ReadingError):
        ch.check_ablation_readings(_ablation(**kwargs))


def test_ablation_pairs_the_seeds_and_counts_images():
    result = _ablation()
    pairs = result.paired()
    assert list(pairs) == [("a", "b"), ("a", "c")] + [(k, i18n.t("ch05.ablation.baseline")) for k in "abc"]
    assert pairs[("a", "b")].values == pytest.approx((0.002, 0.002, 0.016))
    assert result.images(pairs[("a", "b")]) == [1, 1, 8]
    assert result.images(pairs[("b", i18n.t("ch05.ablation.baseline"))]) == [-3, -3, -8]
    table = result.paired_table()
    assert len(table) == 5 and table.rows[0][2] == "+1, +1, +8" and table.rows[2][2] == "-2, -2, 0"
    assert len(result.table()) == 4


def test_gallery_readings():
    flat = torch.full((4, 8, 8), 0.5)
    ch.check_gallery_readings({i18n.t("ch05.random"): flat})
    bumpy = flat.clone()
    bumpy[2, 3, 3] = 0.7
    with pytest.raises(rd.ReadingError):             # the random map is not uniform
        ch.check_gallery_readings({i18n.t("ch05.random"): bumpy})


def test_photo_readings():
    ch.check_photo_readings({32: (0.58, -0.09), 96: (0.69, 0.25)})
    with pytest.raises(rd.ReadingError):             # the map follows brightness as much as redness
        ch.check_photo_readings({32: (0.58, -0.09), 96: (0.69, 0.55)})
    with pytest.raises(rd.ReadingError):             # it hardly follows redness
        ch.check_photo_readings({32: (0.3, -0.09), 96: (0.69, 0.25)})


def test_fold_spatial_norm_gives_the_equations_module_with_the_same_output():
    official = randomize(al.CBAM(32, reduction=8))
    equation = ch.fold_spatial_norm(official)
    assert isinstance(equation.spatial_gate.norm, torch.nn.Identity) and equation.spatial_gate.conv.bias is not None
    x = torch.randn(2, 32, 5, 9)
    with torch.no_grad():
        assert torch.allclose(official(x), equation(x), atol=1e-5)


def test_unshared_channel_gate_doubles_the_gates_parameters():
    shared = al.count_parameters(al.CBAM(64, reduction=16).channel_gate)
    assert al.count_parameters(ch.UnsharedChannelGate(64, reduction=16)) == 2 * shared == 2 * 580


def test_cbam_registry_formulas_equal_the_counters_at_several_sizes():
    entry = al.MECHANISMS["cbam"]
    for C, r, k, H, W in ((64, 16, 7, 8, 8), (32, 4, 3, 5, 11), (256, 16, 7, 14, 14), (48, 8, 5, 9, 6)):
        m = al.CBAM(C, reduction=r, spatial_kernel=k).eval()
        x = torch.zeros(2, C, H, W)
        kwargs = dict(channels=C, reduction=r, spatial_kernel=k)
        assert al.count_parameters(m) == entry.expected_params(**kwargs)
        assert al.count_flops(m, x).total == entry.expected_flops(x.shape, **kwargs)


# ---------------------------------------------------------------- figures

def test_plot_two_poolings_shows_both_directions(lang):
    chans = [torch.rand(12, 16) for _ in range(3)]
    fig = draws_cleanly(lambda: ch.plot_two_poolings(chans, ["a", "b", "c"]))
    labels = texts(fig)
    assert i18n.t("ch05.pool.title") in labels and i18n.t("ch05.pool.mean_map") in labels
    assert i18n.t("ch05.pool.max_map") in labels and i18n.t("ch05.pool.value") in labels
    assert sum(getattr(a, "_colorbar", None) is not None for a in fig.axes) == 2
    with pytest.raises(ValueError):
        ch.plot_two_poolings(chans, ["a"])


def test_plot_photo_maps_overlays_each_size(lang):
    torch.manual_seed(0)
    model = al.TinyCNN("cbam").eval()
    fig = draws_cleanly(lambda: ch.plot_photo_maps(model, sizes=(32, 64)))
    titles = [ax.get_title() for ax in fig.axes]
    assert i18n.t("ch05.photo.title", s=64, h=16, w=16) in titles


def test_block_diagram_draws_both_gates_in_the_chosen_language(lang):
    fig = draws_cleanly(ch.plot_block_diagram)
    words = [t.get_text() for t in fig.axes[0].texts]
    assert fig.axes[0].get_title() == i18n.t("ch05.diagram.title")
    assert i18n.t("ch05.diagram.channel") in words and i18n.t("ch05.diagram.spatial") in words
    assert fig.get_size_inches()[0] <= 7.5


def test_masking_example_shows_the_uncovered_image_and_three_squares(lang):
    runs, _ = _fake_runs(seeds=(0,))
    fig = draws_cleanly(lambda: ch.plot_masking_example(runs[0], index=1))
    assert [ax.get_title() for ax in fig.axes] == [i18n.t(k) for k in (
        "ch05.mask.original", "ch05.mask.short.peak", "ch05.mask.short.random", "ch05.mask.short.bright")]
    assert all(ax.get_xlabel().startswith("p = ") for ax in fig.axes) and fig.get_size_inches()[0] <= 7.5


def test_the_gallery_of_the_chapter_has_readable_row_labels(lang):
    from .test_viz import follows_page_rule, overlapping_texts
    torch.manual_seed(0)
    model = al.TinyCNN("cbam").eval()
    images = torch.rand(8, 3, 32, 32)
    rows = ch.gallery_rows(model, images)
    fig = draws_cleanly(lambda: al.viz.plot_map_gallery(images, rows, title=i18n.t("ch05.gallery.title")))
    assert overlapping_texts(fig) == []                      # the five row labels used to run into each other
    follows_page_rule(fig)


def test_gallery_rows_scale_the_maps_that_need_no_attention():
    torch.manual_seed(0)
    model = al.TinyCNN("cbam").eval()
    rows = ch.gallery_rows(model, torch.rand(3, 3, 32, 32))
    assert len(rows) == 4 and all(m.shape == (3, 8, 8) for m in rows.values())
    scaled = list(rows.values())[2:]
    assert all(torch.allclose(m.amax((1, 2)), torch.ones(3)) and m.amin() == 0 for m in scaled)


def test_plot_ablation_has_a_panel_per_measure_and_the_baseline(lang):
    result = ch.Ablation({"a": [0.8, 0.9, 0.85], "b": [0.7, 0.72, 0.74]}, {"a": [0.9, 1, 1], "b": [1, 1, 0.95]},
                         {"a": [0.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0]}, [0.5, 0.6, 0.7])
    fig = draws_cleanly(lambda: ch.plot_ablation(result))
    labels = texts(fig)
    assert i18n.t("ch05.ablation.acc") in labels and i18n.t("ch05.ablation.peak") in labels
    assert fig.legends and fig.legends[0].get_texts()[0].get_text() == i18n.t("ch05.ablation.baseline")


def test_every_chapter_string_has_both_languages():
    assert not [k for k in i18n.missing_translations("zh") if k.startswith(("ch05.", "ex.cbam."))]


# ---------------------------------------------------------------- exercises

def spatial_solution(x, conv):
    return torch.sigmoid(conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


SOLUTIONS = {"cbam.shapes": ((8, 256, 1, 1), (8, 1, 14, 14)), "cbam.params": 8564, "cbam.spatial": spatial_solution}

WRONG = [
    ("cbam.shapes", ((8, 1, 14, 14), (8, 256, 1, 1)), "ex.cbam.shapes.swapped"),
    ("cbam.shapes", ((8, 256), (8, 14, 14)), "ex.cbam.shapes.squeezed"),
    ("cbam.shapes", ((8, 256, 14, 14), (8, 1, 14, 14)), "ex.cbam.shapes.channel"),
    ("cbam.shapes", ((8, 256, 1, 1), (8, 256, 14, 14)), "ex.cbam.shapes.spatial"),
    ("cbam.shapes", (8, 256, 1, 1), "ex.cbam.shapes.not_pair"),
    ("cbam.shapes", "two maps", "ex.cbam.shapes.not_pair"),
    ("cbam.params", 8192 + 98 + 2, "ex.cbam.params.no_bias"),
    ("cbam.params", 2 * 8464 + 100, "ex.cbam.params.unshared"),
    ("cbam.params", 8464, "ex.cbam.params.no_spatial"),
    ("cbam.params", 8464 + 49 + 2, "ex.cbam.params.conv_in"),
    ("cbam.params", 8464 + 98 + 1, "ex.cbam.params.norm"),
    ("cbam.params", 12345, "ex.cbam.params.other"),
    ("cbam.spatial", "sigmoid", "ex.answer.function.not_callable"),
    ("cbam.spatial", lambda x, conv: torch.sigmoid(conv(torch.cat([x.amax(1, keepdim=True),
                                                                    x.mean(1, keepdim=True)], 1))),
     "ex.cbam.spatial.order"),
    ("cbam.spatial", lambda x, conv: conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)),
     "ex.cbam.spatial.no_sigmoid"),
    ("cbam.spatial", lambda x, conv: torch.sigmoid(conv(torch.cat([x.mean(1, keepdim=True)] * 2, 1))),
     "ex.cbam.spatial.one_pool"),
    ("cbam.spatial", lambda x, conv: torch.sigmoid(conv(torch.cat([x.mean(1), x.amax(1)], 1))),
     "ex.cbam.spatial.axis"),
    ("cbam.spatial", lambda x, conv: torch.sigmoid(conv(torch.cat([x.mean(1, keepdim=True),
                                                                    x.amax(1, keepdim=True)], 1)))[:, 0],
     "ex.fn.shape"),
    ("cbam.spatial", lambda x, conv: spatial_solution(x, conv) * 0.9, "ex.cbam.spatial.other"),
]


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_solutions_are_accepted(key, lang):
    assert verdict(key, SOLUTIONS[key]) == (True, i18n.t("ex.correct"))


def stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    fields = re.findall(r"{(\w+)", i18n._strings[key]["en"])
    return i18n.t(key, **{f: "@" for f in fields}).split("@")[0]


@pytest.mark.parametrize("key,answer,hint", WRONG)
def test_typical_wrong_answers_are_named(key, answer, hint, lang):
    result, message = verdict(key, answer)
    assert result is False
    assert stem(hint) in message


def test_the_spatial_check_tries_batch_size_one():
    def breaks_at_one(x, conv):
        if x.shape[0] == 1:
            raise RuntimeError("batch of one")
        return spatial_solution(x, conv)
    result, message = verdict("cbam.spatial", breaks_at_one)
    assert result is False and "(1, 16, 5, 9)" in message


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_checks_never_raise_on_odd_answers(key):
    for odd in (torch.randn(3, 3), "x", object(), [1, 2], {}, 3.5, (8,), ((8,), "a")):
        result, message = verdict(key, odd)
        assert result is False and message

