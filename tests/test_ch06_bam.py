"""Chapter 06 (BAM): the two-stage network and the chapter's helpers compute what they claim, every figure draws
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
from attention_lib.toolkit.train import Demo  # noqa: E402


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


# ---------------------------------------------------------------- the two-stage network

def test_staged_network_has_bam_at_both_stage_boundaries_with_the_right_sizes():
    net = randomize(ch.StagedBAMNet(width=8, reduction=4))
    x = torch.rand(2, 3, 32, 32)
    early, late = net.attention_maps(x)
    assert early.shape == (2, 16, 16, 16) and late.shape == (2, 16, 8, 8)
    with torch.no_grad():
        f1 = net.stage1(x)                                           # features the first BAM refines
        f2 = net.stage2(net.bam1(f1))
        assert torch.allclose(early, net.bam1.attention_map(f1)) and torch.allclose(late, net.bam2.attention_map(f2))
        h = net.bam2(f2).mean((2, 3))                                # the head: global pool, linear
        assert torch.allclose(net(x), net.head[2](h), atol=1e-6)


def test_stages_demo_builds_the_staged_network_on_the_shapes_data():
    cfg = ch.STAGES_DEMO.replace(n_val=8)
    assert isinstance(cfg.build(), ch.StagedBAMNet)
    val = cfg.data("val")
    assert val.images.shape == (8, 3, 32, 32) and cfg.n_train == ch.QUICK["n_train"]
    assert cfg.build().bam1.fusion == "sum" and cfg.dilation == 4


def test_product_demo_builds_bam_with_the_official_fusion():
    model = ch.PRODUCT_DEMO.build()
    assert isinstance(model.attention, al.BAM) and model.attention.fusion == "product"
    assert ch.PRODUCT_DEMO.replace(fusion="sum") != ch.BAM_DEMO          # another demo kind: never mixed up


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


def test_spatial_branch_peaks_score_both_signs():
    cfg = ch.BAM_DEMO.replace(n_val=16)
    torch.manual_seed(0)
    demo = Demo(cfg.build().eval(), {}, cfg, True, None, cfg.data("val"))
    (plus, minus), = ch.spatial_branch_peaks([demo])
    m_s = ch.branches(demo.model.attention, demo.model.features(demo.val_data.images)).m_s
    expected = al.data.box_scores(m_s - m_s.amin((1, 2), keepdim=True), demo.val_data.boxes, 32).peak_in_box
    assert plus == pytest.approx(expected) and 0.0 <= minus <= 1.0


def test_score_table_gives_one_row_per_map():
    def demo(cfg, seed):
        cfg = cfg.replace(n_val=16, seed=seed)
        torch.manual_seed(seed)
        return Demo(cfg.build().eval(), {"val_acc": [0.5]}, cfg, True, None, cfg.data("val"))
    table = ch.score_table({"a": [demo(ch.BAM_DEMO, 0), demo(ch.BAM_DEMO, 1)]})
    assert len(table) == 1 and table.rows[0][0] == "a" and "±" in table.rows[0][2]
    staged = ch.score_table({"": [demo(ch.STAGES_DEMO, 0), demo(ch.STAGES_DEMO, 1)]}, stages=True)
    assert [row[0] for row in staged.rows] == [i18n.t("ch06.stages.early"), i18n.t("ch06.stages.late")]
    assert staged.rows[0][4] != staged.rows[1][4]             # box areas of a 16 x 16 and an 8 x 8 map


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


def test_plot_fusion_picks_positive_near_zero_and_negative_channels(lang):
    m_c = torch.tensor([[0.3, -2.0, 0.01, 1.5]])
    parts = ch.Branches(m_c, torch.randn(1, 5, 6))
    fig = draws_cleanly(lambda: ch.plot_fusion(parts))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [i18n.t("ch06.fusion.channel", c=c, v=m_c[0, c].item()) for c in (3, 2, 1)]
    assert i18n.t("ch06.fusion.value") in texts(fig)


def test_plot_photo_maps_draws_one_panel_per_model(lang):
    torch.manual_seed(0)
    models = {"A": al.TinyCNN("cbam").eval(), "B": al.TinyCNN("bam").eval()}
    fig = draws_cleanly(lambda: ch.plot_photo_maps(models, size=64))
    assert i18n.t("ch06.photo.title", name="B", s=64, h=16, w=16) in texts(fig)


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
