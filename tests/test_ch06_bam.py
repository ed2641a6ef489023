"""Chapter 06 (BAM): the three-stage residual network and the chapter's helpers compute what they claim, every figure draws
in both languages, every exercise check names the typical slips."""
import re
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import environment, i18n  # noqa: E402
from attention_lib.chapters import ch06_bam as ch  # noqa: E402
from attention_lib.toolkit.exercises import verdict  # noqa: E402
from attention_lib.toolkit import readings as rd  # noqa: E402
from attention_lib.toolkit.train import Demo  # noqa: E402

from .test_viz import follows_page_rule, overlapping_texts  # noqa: E402


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
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


# ---------------------------------------------------------------- the staged network

def test_staged_network_has_bam_at_two_of_three_stage_boundaries_with_the_right_sizes():
    net = randomize(ch.StagedNet("bam", width=8, reduction=4))
    x = torch.rand(2, 3, 32, 32)
    early, late = net.bam_maps(x)
    assert early.shape == (2, 8, 16, 16) and late.shape == (2, 16, 8, 8)
    assert len(net.attention_modules()) == 2 and not any(isinstance(m, al.CBAM) for m in net.modules())
    with torch.no_grad():
        f1 = net.stage1(net.stem(x))                              # the end of stage 1
        f2 = net.stage2(net.bam1(f1))                             # the end of stage 2
        assert torch.allclose(early, net.bam1.attention_map(f1)) and torch.allclose(late, net.bam2.attention_map(f2))
        assert torch.allclose(net.stage2_features(x), f2)
        h = net.stage3(net.bam2(f2))                              # stage 3: no BAM before the global pool
        assert h.shape == (2, 16, 4, 4) and torch.allclose(net(x), net.head[2](h.mean((2, 3))), atol=1e-6)
        one, two = net.gates(x)
        assert torch.allclose(one, early.mean(1)) and torch.allclose(two, late.mean(1))


def test_residual_block_adds_the_identity_to_the_cbam_refined_branch():
    block = randomize(ch.ResidualBlock(8, 8, cbam_reduction=2))
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        r = block.conv2(torch.relu(block.conv1(x)))               # conv, BN, ReLU, conv, BN
        a = block.cbam.attention_map(r)
        assert torch.allclose(block.branch(x), r)
        assert torch.allclose(block(x), torch.relu(x + r * a.channel * a.spatial), atol=1e-6)
    plain = randomize(ch.ResidualBlock(8, 16))                    # channels change: a 1x1 projection
    assert isinstance(plain.cbam, torch.nn.Identity) and isinstance(plain.shortcut[0], torch.nn.Conv2d)
    with torch.no_grad():
        assert torch.allclose(plain(x), torch.relu(plain.shortcut(x) + plain.branch(x)))


def test_staged_network_with_cbam_puts_one_on_every_residual_branch():
    net = randomize(ch.StagedNet("cbam", width=8, reduction=4, cbam_reduction=2))
    assert len(net.attention_modules()) == 3 and isinstance(net.bam1, torch.nn.Identity)
    assert all(isinstance(stage[-1].cbam, al.CBAM) for stage in (net.stage1, net.stage2, net.stage3))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        f = net.stem(x)
        a = net.stage1[-1].cbam.attention_map(net.stage1[-1].branch(f))
        one, two = net.gates(x)
        assert torch.allclose(one, (a.channel * a.spatial).mean(1))
        assert torch.allclose(one / one.flatten(1).amax(1)[:, None, None],
                              a.spatial[:, 0] / a.spatial.flatten(1).amax(1)[:, None, None], atol=1e-5)
        assert two.shape == (2, 8, 8)
    base = ch.StagedNet(None)
    assert base.attention_modules() == [] and len(base.stage_ends(x)) == 2
    with pytest.raises(ValueError):
        base.gates(x)
    with pytest.raises(ValueError):
        ch.StagedNet("se")


def test_the_compared_networks_hold_about_the_same_attention_parameters():
    bam = ch.attention_parameters(ch.BAM_DEMO.build())
    cbam = ch.attention_parameters(ch.CBAM_DEMO.build())
    entry = al.MECHANISMS["bam"]
    assert bam == entry.expected_params(channels=16, reduction=4) + entry.expected_params(channels=32, reduction=4)
    assert bam == 2606 and cbam == 2724 and abs(bam - cbam) / bam < 0.05
    assert ch.attention_parameters(ch.BASELINE_DEMO.build()) == 0


def test_the_demos_share_chapter_5s_recipe_and_images():
    from attention_lib.chapters import ch05_cbam
    for cfg in ch.DEMOS.values():
        for field in ("n_train", "epochs", "batch_size", "lr", "width", "reduction", "n_val", "size"):
            assert getattr(cfg, field) == getattr(ch05_cbam.CBAM_DEMO, field), field
    val = ch.BAM_DEMO.replace(n_val=8).data("val")
    assert torch.equal(val.images, ch05_cbam.CBAM_DEMO.replace(n_val=8).data("val").images)
    assert ch.PRODUCT_DEMO.build().bam1.fusion == "product" and ch.BAM_DEMO.build().bam2.fusion == "sum"


@pytest.mark.parametrize("fusion", ["sum", "product"])
def test_branches_recombine_into_the_modules_map(fusion):
    bam = randomize(al.BAM(32, reduction=4, fusion=fusion))
    f = torch.randn(2, 32, 6, 5)
    parts = ch.branches(bam, f)
    assert parts.m_c.shape == (2, 32) and parts.m_s.shape == (2, 6, 5)
    m_c, m_s = parts.m_c[:, :, None, None], parts.m_s[:, None]
    fused = m_c + m_s if fusion == "sum" else m_c * m_s
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(fused), bam.attention_map(f), atol=1e-6)


def test_bam_params_helper_counts_the_official_layout_and_its_slips():
    for C, r in ((64, 16), (256, 16), (32, 4)):
        assert ch.bam_params(C, r) == al.count_parameters(al.BAM(C, reduction=r))
        assert ch.bam_params(C, r) == al.MECHANISMS["bam"].expected_params(channels=C, reduction=r)
    deep = ch.DeepChannelMLP(64, 16, hidden_layers=2)
    one = ch.DeepChannelMLP(64, 16, hidden_layers=1)
    assert al.count_parameters(one) == al.count_parameters(al.BAM(64).channel_mlp)
    assert ch.bam_params(64, 16, hidden_layers=2) - ch.bam_params(64, 16) == \
        al.count_parameters(deep) - al.count_parameters(one)
    assert sum(isinstance(m, torch.nn.Linear) for m in deep) == 3


def test_resnet50_costs_equal_the_counters_module_by_module():
    table = ch.resnet50_costs()
    cbam_p = sum(n * al.count_parameters(al.CBAM(C)) for n, C, S in ch.RESNET50)
    bam_p = sum(al.count_parameters(al.BAM(C)) for n, C, S in ch.RESNET50[:3])
    bam_f = sum(al.count_flops(al.BAM(C).eval(), torch.zeros(1, C, S, S)).total for n, C, S in ch.RESNET50[:3])
    assert table.rows[0][1] == "16" and table.rows[0][2] == f"{cbam_p:,}"
    assert table.rows[1][1] == "3" and table.rows[1][2] == f"{bam_p:,}"
    assert table.rows[1][3] == al.format.format_si(bam_f)


def _demo(cfg, seed=0, n_val=16, acc=0.5):
    cfg = cfg.replace(n_val=n_val, seed=seed)
    torch.manual_seed(seed)
    return Demo(cfg.build().eval(), {"val_acc": [acc]}, cfg, True, None, cfg.data("val"))


def test_spatial_branch_peaks_score_both_signs():
    demo = _demo(ch.BAM_DEMO)
    (plus, minus), = ch.spatial_branch_peaks([demo])
    f = demo.model.stage2_features(demo.val_data.images)
    m_s = ch.branches(demo.model.bam2, f).m_s
    expected = al.data.box_scores(m_s - m_s.amin((1, 2), keepdim=True), demo.val_data.boxes, 32).peak_in_box
    assert plus == pytest.approx(expected) and 0.0 <= minus <= 1.0


def test_inside_outside_is_one_for_a_flat_map_ignores_a_scale_but_not_an_offset():
    boxes = torch.tensor([[0, 0, 8, 8], [16, 16, 32, 32]])
    flat = torch.full((2, 8, 8), 0.4)
    assert ch.inside_outside(flat, boxes, 32) == pytest.approx(1.0)
    peaked = flat.clone()
    peaked[0, :2, :2] = 0.8
    peaked[1, 4:, 4:] = 0.8
    assert ch.inside_outside(peaked, boxes, 32) == pytest.approx(2.0)
    assert ch.inside_outside(3 * peaked, boxes, 32) == pytest.approx(2.0)               # scale-free
    assert ch.inside_outside(peaked + 1, boxes, 32) == pytest.approx(1.8 / 1.4)         # BAM's +1 pulls it to 1
    assert ch.inside_outside(1 + torch.where(peaked > 0.5, 1.0, 1e-6), boxes, 32) < 2   # and caps it at 2


def test_saturated_counts_maps_high_almost_everywhere():
    maps = torch.full((4, 8, 8), 0.5)
    maps[0] = 0.9
    maps[1, :7] = 0.9                                 # 56 of 64 cells: more than three quarters
    maps[2, :4] = 0.9                                 # half the cells
    assert ch.saturated(maps) == pytest.approx(0.5)


def test_score_maps_scores_every_map_and_place_per_seed():
    runs = {k: [_demo(cfg, s) for s in (0, 1)] for k, cfg in ch.DEMOS.items()}
    scores = ch.score_maps(runs)
    assert set(scores.peak) == {(k, i) for k in ch.SCORE_ROWS for i in (0, 1)}
    assert set(scores.ratio) == {(k, i) for k in ch.RATIO_ROWS for i in (0, 1)}
    assert all(len(v) == 2 for v in scores.peak.values()) and len(scores.factor[1]) == 2
    demo = runs["cbam"][1]
    late = demo.model.gates(demo.val_data.images)[1]
    assert scores.ratio[("cbam", 1)][1] == pytest.approx(ch.inside_outside(late, demo.val_data.boxes, 32))
    bam = runs["bam"][0]
    f, m, r = bam.model.stage_ends(bam.val_data.images)[0]
    assert r is None
    assert scores.ratio[("bam_in", 0)][0] == pytest.approx(ch.inside_outside(f.mean(1), bam.val_data.boxes, 32))
    assert scores.factor[0][0] == pytest.approx(ch.inside_outside(1 + m.mean(1), bam.val_data.boxes, 32))
    base = runs["none"][1]
    f = base.model.stage_ends(base.val_data.images)[1].features
    assert scores.peak[("none", 1)][1] == pytest.approx(
        al.data.box_scores(f.mean(1), base.val_data.boxes, 32).peak_in_box)
    # what CBAM receives: the residual branch r of the stage's block, before its CBAM and the identity
    net = runs["cbam"][0].model
    end = net.stage_ends(demo.val_data.images)[0]
    block = net.stage1[-1]
    assert torch.allclose(end.branch, block.branch(net.stem(demo.val_data.images)))
    assert scores.peak[("cbam_in", 0)][0] == pytest.approx(
        al.data.box_scores(end.branch.mean(1), demo.val_data.boxes, 32).peak_in_box)
    rows = {row[0]: row for row in scores.at(1).rows}
    assert rows[i18n.t("ch06.score.row.cbam_in")][3] == "–" and rows[i18n.t("ch06.score.row.centre")][3] == "–"
    assert len(scores.at(0)) == len(ch.SCORE_ROWS)
    assert len(scores.table()) == 2 * len(ch.SCORE_ROWS) + 1 and "1 + M(F)" in scores.bam_factor()
    acc = ch.accuracies(runs)
    assert acc["bam"] == [0.5, 0.5] and len(ch.accuracy_table(acc)) == 4
    assert len(ch.parameter_table(runs)) == 4


# ---------------------------------------------------------------- the reading guards fail on contrary numbers

#: The chapter's numbers, per (map, place): peak, distractor, ratio per seed.
GOOD = {
    ("bam", 0): ([0.888, 0.98, 1.0], [0.0, 0.018, 0.0], [1.11, 1.38, 1.38]),
    ("bam", 1): ([0.996, 0.99, 0.998], [0.0, 0.004, 0.0], [2.32, 1.56, 1.60]),
    ("bam_in", 0): ([1.0, 0.996, 1.0], [0.0] * 3, [4.46, 3.59, 3.99]),
    ("bam_in", 1): ([0.988, 1.0, 1.0], [0.002, 0.0, 0.0], [6.77, 5.52, 5.54]),
    ("cbam", 0): ([1.0, 1.0, 0.994], [0.0] * 3, [2.08, 2.17, 2.13]),
    ("cbam", 1): ([1.0, 0.878, 0.992], [0.0, 0.05, 0.002], [1.85, 1.66, 1.98]),
    ("cbam_in", 0): ([0.522, 0.96, 0.844], [0.008, 0.0, 0.004], None),
    ("cbam_in", 1): ([0.998, 0.742, 0.962], [0.002, 0.042, 0.004], None),
    ("product", 0): ([0.168, 0.272, 0.578], [0.106, 0.128, 0.054], [0.99, 1.0, 1.0]),
    ("product", 1): ([0.82, 0.872, 0.788], [0.046, 0.022, 0.066], [1.07, 1.08, 1.02]),
    ("none", 0): ([1.0, 0.942, 1.0], [0.0] * 3, [3.78, 3.89, 6.20]),
    ("none", 1): ([0.994, 0.894, 1.0], [0.002, 0.022, 0.0], [5.73, 4.88, 7.89]),
    ("centre", 0): ([0.124, 0.092, 0.102], [0.2, 0.214, 0.19], None),
    ("centre", 1): ([0.218, 0.17, 0.204], [0.354, 0.356, 0.322], None),
    ("bright", 0): ([0.334, 0.324, 0.36], [0.666, 0.676, 0.64], [2.35, 2.40, 2.43]),
    ("bright", 1): ([0.346, 0.35, 0.376], [0.654, 0.65, 0.624], [1.85, 1.88, 1.90]),
}


def _scores(changes=None, factor=None, saturated=None):
    table = dict(GOOD)
    table.update(changes or {})
    return ch.Scores({k: list(v[0]) for k, v in table.items()}, {k: list(v[1]) for k, v in table.items()},
                     {k: list(v[2]) for k, v in table.items() if v[2] is not None},
                     factor or {0: [1.04, 1.10, 1.11], 1: [1.37, 1.17, 1.20]}, saturated or {0: [0.0] * 3, 1: [0.0] * 3})


def test_score_readings_pass_on_the_chapters_numbers():
    ch.check_score_readings(_scores())


@pytest.mark.parametrize("changes", [
    {("bam", 1): ([0.49, 0.99, 0.998], [0.204, 0.004, 0.0], [1.15, 1.56, 1.6])},     # BAM's gate misses in one seed
    {("cbam", 0): ([1.0, 1.0, 0.994], [0.0] * 3, [2.08, 0.95, 2.13])},              # CBAM's prefers the surround
    {("cbam", 1): ([1.0, 0.878, 0.992], [0.0, 0.1, 0.002], [1.85, 1.66, 1.98])},    # it lands on distractors
    {("bam_in", 0): ([0.85, 0.996, 1.0], [0.0] * 3, [4.46, 3.59, 3.99])},           # the gate beats its input
    {("bam_in", 1): ([0.988, 1.0, 1.0], [0.0] * 3, [3.0, 5.52, 5.54])},             # the input is barely sharper
    {("none", 1): ([0.994, 0.6, 1.0], [0.0] * 3, [5.73, 4.88, 7.89])},              # no attention: no localisation
    {("bright", 0): ([0.6, 0.324, 0.36], [0.4, 0.676, 0.64], [2.35, 2.4, 2.43])},   # saliency finds the target
    {("centre", 1): ([0.3, 0.17, 0.204], [0.354, 0.356, 0.322], None)},             # the centre guess is not poor
    {("product", 1): ([0.82, 0.872, 0.788], [0.046, 0.022, 0.066], [1.07, 1.2, 1.02])},   # the product's is peaked
    {("product", 0): ([0.168, 0.272, 0.578], [0.106, 0.128, 0.054], [0.99, 0.85, 1.0])},  # or inverted
    {("bam", 1): ([0.996, 0.99, 0.998], [0.0, 0.004, 0.0], [2.32, 1.05, 1.6])},     # the sum's is below the product's
    {("cbam_in", 1): ([0.998, 0.9, 0.962], [0.002, 0.042, 0.004], None)},           # CBAM's input beats its gate
    {("cbam_in", 0): ([0.95, 0.96, 0.844], [0.008, 0.0, 0.004], None)},             # its gate sharpens it less often
    {("cbam_in", 0): ([0.7, 0.96, 0.844], [0.008, 0.0, 0.004], None)},              # by much less in seed 0
    {("bright", 0): ([0.334, 0.324, 0.36], [0.666, 0.676, 0.64], [2.35, 2.1, 2.43])},  # saliency's ratio below a gate's
    {("bright", 1): ([0.346, 0.35, 0.376], [0.654, 0.65, 0.624], [1.85, 2.5, 1.9])},   # above both gates' range
    {("bright", 1): ([0.346, 0.45, 0.376], [0.554, 0.55, 0.624], [1.85, 1.88, 1.9])},  # the brightest cell finds it
    {("product", 1): ([0.82, 0.6, 0.788], [0.046, 0.022, 0.066], [1.07, 1.08, 1.02])},   # the product's late peak misses
    {("product", 0): ([0.168, 0.7, 0.578], [0.106, 0.128, 0.054], [0.99, 1.0, 1.0])},     # its early peak finds it
])
def test_score_readings_fail_when_the_numbers_contradict_the_prose(changes):
    with pytest.raises(rd.ReadingError):
        ch.check_score_readings(_scores(changes))


@pytest.mark.parametrize("kwargs", [
    dict(factor={0: [1.04, 1.10, 1.11], 1: [1.37, 1.6, 1.20]}),     # BAM's factor is not mild (and above its gate)
    dict(factor={0: [0.98, 1.10, 1.11], 1: [1.37, 1.17, 1.20]}),    # or below 1
    dict(saturated={0: [0.26, 0.0, 0.0], 1: [0.0] * 3}),            # a quarter of one seed's maps saturate
])
def test_factor_and_saturation_readings_fail_on_contrary_numbers(kwargs):
    with pytest.raises(rd.ReadingError):
        ch.check_score_readings(_scores(**kwargs))


def test_accuracy_readings():
    good = {"bam": [0.982, 0.992, 0.968], "product": [0.986, 0.978, 0.972], "cbam": [0.966, 0.984, 0.970],
            "none": [0.974, 0.988, 0.966]}
    ch.check_accuracy_readings(good)
    for changes in ({"cbam": [0.856, 0.984, 0.970]},                  # one run below 95%
                    {"none": [0.955, 0.988, 0.966]},                  # the baseline leaves more than four points
                    {"product": [0.986, 0.97, 0.972]},                # a module costs 1.8 points in one seed
                    {"bam": [0.982, 0.984, 0.968]},                   # BAM is not above the baseline in every seed
                    {"bam": [0.986, 0.992, 0.978]},                   # or it is, by more than a point
                    {"cbam": [0.976, 0.99, 0.97]}):                   # CBAM is above it in every seed
        with pytest.raises(rd.ReadingError):
            ch.check_accuracy_readings({**good, **changes})


def test_sign_readings():
    product, total = [(0.002, 1.0), (0.0, 0.91), (0.892, 0.006)], [(0.996, 0.0), (0.99, 0.0), (0.998, 0.0)]
    ch.check_sign_readings(product, total)
    with pytest.raises(rd.ReadingError):             # under the sum, -M_s finds the target in one seed
        ch.check_sign_readings(product, [(0.9, 0.0), (0.1, 0.8), (0.7, 0.0)])
    with pytest.raises(rd.ReadingError):             # under the sum, -M_s peaks on it in 8% of one seed's images
        ch.check_sign_readings(product, [(0.9, 0.0), (0.85, 0.08), (0.7, 0.0)])
    with pytest.raises(rd.ReadingError):             # under the product, -M_s never finds it
        ch.check_sign_readings([(0.8, 0.1), (0.7, 0.2), (0.81, 0.024)], total)
    with pytest.raises(rd.ReadingError):             # one seed mixes the signs
        ch.check_sign_readings([(0.002, 1.0), (0.45, 0.5), (0.892, 0.006)], total)
    with pytest.raises(rd.ReadingError):             # -M_s in all three seeds
        ch.check_sign_readings([(0.002, 1.0), (0.0, 0.91), (0.006, 0.892)], total)


def test_gallery_and_photo_readings():
    flat = torch.full((4, 8, 8), 0.44)
    ch.check_gallery_readings({i18n.t("ch06.row.random"): flat})
    bumpy = flat.clone()
    bumpy[0, 0, 0] = 0.6
    with pytest.raises(rd.ReadingError):
        ch.check_gallery_readings({i18n.t("ch06.row.random"): bumpy})
    ch.check_photo_readings({"bam": 0.27, "cbam": 0.38})
    with pytest.raises(rd.ReadingError):             # one gate follows redness closely
        ch.check_photo_readings({"bam": 0.6, "cbam": 0.38})
    with pytest.raises(rd.ReadingError):             # one avoids it
        ch.check_photo_readings({"bam": 0.27, "cbam": -0.1})


def test_every_bam_of_a_resnet50_costs_about_the_same():
    rows = ch.resnet50_bam_flops()
    assert len({c2hw for _, _, _, c2hw in rows}) == 1                   # C^2 HW is the same in every stage
    flops = [f for _, _, f, _ in rows]
    assert max(flops) / min(flops) < 1.1
    for C, S, f, _ in rows:
        assert f == al.count_flops(al.BAM(C).eval(), torch.zeros(1, C, S, S)).total


def test_bam_registry_formulas_equal_the_counters_for_both_fusions_and_dilations():
    entry = al.MECHANISMS["bam"]
    for C, r, d, fusion, H, W in ((64, 16, 4, "sum", 8, 8), (32, 4, 2, "product", 5, 11), (48, 8, 1, "sum", 9, 6)):
        m = al.BAM(C, reduction=r, dilation=d, fusion=fusion).eval()
        x = torch.zeros(2, C, H, W)
        assert al.count_parameters(m) == entry.expected_params(channels=C, reduction=r)
        assert al.count_flops(m, x).total == entry.expected_flops(x.shape, channels=C, reduction=r)


# ---------------------------------------------------------------- figures

def test_plot_dilation_reach_reports_the_span(lang):
    fig = draws_cleanly(lambda: ch.plot_dilation_reach(torch.rand(3, 40, 40), dilations=(1, 4)))
    titles = [ax.get_title() for ax in fig.axes]
    assert i18n.t("ch06.rf.panel", d=1, n=25, s=5) in titles and i18n.t("ch06.rf.panel", d=4, n=25, s=17) in titles
    assert i18n.t("ch06.rf.title") in texts(fig)
    assert overlapping_texts(fig) == [] and len(fig.axes) == 3              # two panels and one shared colour bar
    follows_page_rule(fig)


def test_plot_fusion_picks_positive_near_zero_and_negative_channels(lang):
    m_c = torch.tensor([[0.3, -2.0, 0.01, 1.5]])
    parts = ch.Branches(m_c, torch.randn(1, 5, 6))
    fig = draws_cleanly(lambda: ch.plot_fusion(parts))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [i18n.t("ch06.fusion.channel", c=c, v=m_c[0, c].item()) for c in (3, 2, 1)]
    assert i18n.t("ch06.fusion.value") in texts(fig) and fig.get_supxlabel() == i18n.t("ch06.fusion.x")
    assert overlapping_texts(fig) == []                                     # the titles ran into each other
    follows_page_rule(fig)


def test_block_diagram_draws_both_branches_in_the_chosen_language(lang):
    fig = draws_cleanly(ch.plot_block_diagram)
    words = [t.get_text() for t in fig.axes[0].texts]
    assert fig.axes[0].get_title() == i18n.t("ch06.diagram.title")
    for key in ("ch06.diagram.channel", "ch06.diagram.spatial", "ch06.diagram.m_c", "ch06.diagram.m_s",
                "ch06.diagram.identity", "ch06.diagram.out"):
        assert i18n.t(key) in words, key
    assert words.count("BAM") == 2 and fig.get_size_inches()[0] <= 7.5
    follows_page_rule(fig)


def test_gallery_of_the_chapter_has_readable_row_labels(lang):
    rows = {i18n.t(f"ch06.row.{k}"): torch.rand(4, 8, 8) for k in ("random", "early", "late", "cbam_early",
                                                                 "cbam_late")}
    fig = draws_cleanly(lambda: al.viz.plot_map_gallery(torch.rand(4, 3, 32, 32), rows,
                                                        title=i18n.t("ch06.gallery.title")))
    assert overlapping_texts(fig) == []
    follows_page_rule(fig)


def test_plot_photo_maps_draws_one_panel_per_model(lang):
    torch.manual_seed(0)
    models = {"A": ch.StagedNet("cbam").eval(), "B": ch.StagedNet("bam").eval()}
    fig = draws_cleanly(lambda: ch.plot_photo_maps(models, size=64))
    assert i18n.t("ch06.photo.title", name="B", h=16, w=16) in texts(fig)
    follows_page_rule(fig)


def test_every_chapter_string_has_both_languages():
    assert not [k for k in i18n.missing_translations("zh") if k.startswith(("ch06.", "ex.bam."))]


# ---------------------------------------------------------------- exercises

SOLUTIONS = {"bam.shape": (8, 512, 28, 28), "bam.params": 17361,
             "bam.combine": lambda F, m_c, m_s: F * (1 + torch.sigmoid(m_c + m_s))}

WRONG = [
    ("bam.shape", (8, 512, 1, 1), "ex.bam.shape.channel"),
    ("bam.shape", torch.Size([8, 1, 28, 28]), "ex.bam.shape.spatial"),
    ("bam.shape", (512, 28, 28), "ex.bam.shape.other"),
    ("bam.shape", "B, C, H, W", "ex.answer.shape.not_shape"),
    ("bam.params", 17361 - 8 * 16, "ex.bam.params.no_bn"),
    ("bam.params", 17361 + 16 * 16 + 16 + 32, "ex.bam.params.three_fc"),
    ("bam.params", ch.bam_params(256, 16, bias=False), "ex.bam.params.no_bias"),
    ("bam.params", 8564, "ex.bam.params.other"),
    ("bam.combine", 3, "ex.answer.function.not_callable"),
    ("bam.combine", lambda F, m_c, m_s: F * (1 + torch.sigmoid(m_c * m_s)), "ex.bam.combine.product"),
    ("bam.combine", lambda F, m_c, m_s: F * torch.sigmoid(m_c + m_s), "ex.bam.combine.no_residual"),
    ("bam.combine", lambda F, m_c, m_s: F * (1 + torch.sigmoid(m_c) * torch.sigmoid(m_s)),
     "ex.bam.combine.two_sigmoids"),
    ("bam.combine", lambda F, m_c, m_s: F * (1 + torch.sigmoid(m_c) + torch.sigmoid(m_s)),
     "ex.bam.combine.two_sigmoids"),
    ("bam.combine", lambda F, m_c, m_s: F + torch.sigmoid(m_c + m_s), "ex.bam.combine.added"),
    ("bam.combine", lambda F, m_c, m_s: F @ m_s, "ex.fn.raised"),
    ("bam.combine", lambda F, m_c, m_s: torch.sigmoid(m_c + m_s)[:, :1], "ex.fn.shape"),
    ("bam.combine", lambda F, m_c, m_s: 2 * F * (1 + torch.sigmoid(m_c + m_s)), "ex.bam.combine.other"),
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


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_checks_never_raise_on_odd_answers(key):
    for odd in (torch.randn(3, 3), "x", object(), [1, 2], {}, 3.5, (8,)):
        result, message = verdict(key, odd)
        assert result is False and message
