"""Chapter 02's module: figures draw in both languages, exercise checks judge right, helpers compute what they claim."""
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import MECHANISMS, i18n  # noqa: E402
from attention_lib.chapters import ch02_external_attention as ch  # noqa: E402
from attention_lib.external_attention import double_normalization  # noqa: E402
from attention_lib.toolkit.data import box_masks  # noqa: E402
from attention_lib.toolkit.exercises import EXERCISES, Slip, verdict  # noqa: E402
from attention_lib.toolkit.instruments import count_flops, count_parameters  # noqa: E402


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
        warnings.simplefilter("error")          # a missing glyph is a warning
        fig = make()
        fig.canvas.draw()
    return fig


def random_map(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return double_normalization(torch.randn(*shape, generator=g))


# ---------------------------------------------------------------- figures

def test_plot_map_sizes_puts_the_two_maps_side_by_side(lang):
    fig = draws_cleanly(lambda: ch.plot_map_sizes(torch.rand(64, 64).softmax(-1), random_map(64, 16)))
    assert i18n.t("ch02.sizes.self", n=64) in texts(fig) and i18n.t("ch02.sizes.external", n=64, s=16) in texts(fig)
    assert len(fig.axes) == 4                                    # two maps, two colour bars
    with pytest.raises(ValueError, match=r"\(N, N\) and \(N, S\)"):
        ch.plot_map_sizes(torch.rand(64, 16), torch.rand(64, 16))


def test_plot_normalisations_draws_three_maps_with_colour_bars(lang):
    fig = draws_cleanly(lambda: ch.plot_normalisations(torch.randn(64, 16), index=3))
    assert i18n.t("ch02.norm.title", i=3) in texts(fig) and len(fig.axes) == 6
    assert i18n.t("ch02.norm.double") in texts(fig)
    with pytest.raises(ValueError, match=r"\(N, S\)"):
        ch.plot_normalisations(torch.randn(2, 64, 16))


def test_plot_slot_shares_compares_trained_random_and_chance(lang):
    fig = draws_cleanly(lambda: ch.plot_slot_shares(torch.rand(16), torch.rand(16), 0.15, 500))
    ax = fig.axes[0]
    assert ax.get_title() == i18n.t("ch02.share.title", n=500) and len(ax.patches) == 32
    assert ax.get_ylim() == (0.0, 1.0)


@pytest.mark.parametrize("n_images", [1, 4])
def test_plot_slot_gallery_draws_each_slot_over_each_image(lang, n_images):
    images, attn = torch.rand(n_images, 3, 32, 32), random_map(n_images, 64, 16)
    fig = draws_cleanly(lambda: ch.plot_slot_gallery(images, attn, [3, 0, 7], 8, shares=torch.rand(16)))
    image_axes = [ax for ax in fig.axes if ax.get_images()]
    assert len(image_axes) == 3 * n_images
    assert i18n.t("ch02.gallery.title") in texts(fig)
    assert any(i18n.t("ch02.gallery.weight") in s for s in texts(fig))      # a labelled colour bar
    with pytest.raises(ValueError, match=r"\(G, 64, S\)"):
        ch.plot_slot_gallery(images, random_map(n_images, 49, 16), [0], 8)


def _summary(ea=(0.84, 0.83, 0.82), sa=(0.87, 0.92, 0.89), ablation=(0.64, 0.64, 0.68), moved=0.02,
             train_ea=(1.0, 0.995, 1.0), train_sa=(1.0, 1.0, 1.0), loss_ea=(0.02, 0.016, 0.023),
             loss_sa=(0.005, 0.003, 0.004)):
    """Three seeds per mixer, as the build prints them: final and per-epoch validation accuracy (the last four
    epochs move by ``moved``), training accuracy, the mixer's parameters."""
    def runs(acc):
        return [[a - 0.3, a - 0.2, a - 0.1, a - moved, a, a, a] for a in acc]
    return {"slot_softmax": dict(acc=list(ablation), curves=runs(ablation), train=[1.0] * 3, loss=[0.01] * 3,
                                 params=4096),
            "external": dict(acc=list(ea), curves=runs(ea), train=list(train_ea), loss=list(loss_ea), params=4096),
            "self": dict(acc=list(sa), curves=runs(sa), train=list(train_sa), loss=list(loss_sa), params=4128)}


def test_plot_experiment_shows_final_accuracy_and_every_run_s_curve(lang):
    summary = _summary()
    fig = draws_cleanly(lambda: ch.plot_experiment(summary))
    left, right = fig.axes
    assert left.get_ylabel() == i18n.t("ch02.experiment.acc") and right.get_xlabel() == i18n.t("ch02.experiment.epoch")
    assert [" ".join(tick.get_text().split("\n")).replace("， ", "，") for tick in left.get_xticklabels()] \
        == [i18n.t(f"ch02.variant.{k}") for k in summary]                        # wrapped, nothing lost
    assert [text.get_text() for text in fig.legends[0].get_texts()][-1] == i18n.t("ch02.experiment.chance")
    assert len(right.get_lines()) == 9 + 1                        # one line per run, and chance
    table = ch.experiment_table(summary)
    assert len(table) == 3 and table[1][2] == "0.830 ± 0.010" and table[1][1] == "4,096"
    assert table[1][4] == "1.000, 0.995, 1.000"                   # the training accuracy of every seed
    assert table[1][5] == "0.0200, 0.0160, 0.0230"                # and its final training loss
    assert ch.lead_line(summary).endswith("+0.063 ± 0.031 (+0.030, +0.090, +0.070)")


def test_experiment_readings_hold_and_fail_on_contradicting_numbers():
    ch.check_experiment_readings(_summary())
    with pytest.raises(al.readings.ReadingError, match="fits its training images"):   # EA short of a plateau
        ch.check_experiment_readings(_summary(train_ea=(1.0, 0.95, 1.0)))
    with pytest.raises(al.readings.ReadingError, match="fits its training images"):
        ch.check_experiment_readings(_summary(train_sa=(1.0, 0.97, 1.0)))
    with pytest.raises(al.readings.ReadingError, match="moved by at most 0.03"):      # a curve still moving
        ch.check_experiment_readings(_summary(moved=0.05))
    with pytest.raises(al.readings.ReadingError, match="ablation"):
        ch.check_experiment_readings(_summary(ablation=(0.64, 0.76, 0.68)))   # one seed: no real gap
    with pytest.raises(al.readings.ReadingError, match="twice self-attention's"):   # one seed: 1.5 times
        ch.check_experiment_readings(_summary(loss_ea=(0.02, 0.0045, 0.023)))
    with pytest.raises(al.readings.ReadingError, match="ends ahead"):
        ch.check_experiment_readings(_summary(sa=(0.87, 0.84, 0.89)))       # one seed: a one-point lead
    with pytest.raises(al.readings.ReadingError, match="at most ten"):
        ch.check_experiment_readings(_summary(sa=(0.87, 0.95, 0.89)))       # one seed: 12 points
    unequal = _summary()
    unequal["self"]["params"] = 8256
    with pytest.raises(al.readings.ReadingError, match="same number of parameters"):
        ch.check_experiment_readings(unequal)


def _closing(ea_train=((0.83, 1.0),) * 3, sa_train=((0.93, 1.0),) * 3, lead=((0.17, 0.04), (0.11, 0.09), (0.17, 0.07))):
    """Curves of two epochs (the 12th and the 24th of the build): EA's and SA's training accuracy, SA's lead."""
    return {"external": dict(curves=[[0.7, 0.7]] * 3, train_curves=[list(c) for c in ea_train]),
            "self": dict(curves=[[0.7 + a, 0.7 + b] for a, b in lead], train_curves=[list(c) for c in sa_train])}


def test_closing_readings_hold_and_fail_on_contradicting_numbers():
    ch.check_closing_readings(_closing(), epochs=(1, 2))
    with pytest.raises(al.readings.ReadingError, match="below 0.9"):        # EA had fitted its images in one seed
        ch.check_closing_readings(_closing(ea_train=((0.83, 1.0), (0.92, 1.0), (0.83, 1.0))), epochs=(1, 2))
    with pytest.raises(al.readings.ReadingError, match="below 0.9"):        # SA had not
        ch.check_closing_readings(_closing(sa_train=((0.93, 1.0), (0.85, 1.0), (0.93, 1.0))), epochs=(1, 2))
    with pytest.raises(al.readings.ReadingError, match="larger than at epoch 2"):   # one seed: the same lead
        ch.check_closing_readings(_closing(lead=((0.17, 0.04), (0.095, 0.09), (0.17, 0.07))), epochs=(1, 2))
    table = ch.closing_table(_closing(), epochs=(1, 2))
    assert table[1] == ["1", "+0.110", "+0.090", "0.830", "1.000", "0.930", "1.000"]


# ---------------------------------------------------------------- helpers

def test_normalisations_sum_as_they_claim_and_match_the_library():
    logits = 3 * torch.randn(2, 20, 6)
    maps = ch.normalisations(logits)
    torch.testing.assert_close(maps["slots"].sum(-1), torch.ones(2, 20))
    torch.testing.assert_close(maps["tokens"].sum(-2), torch.ones(2, 6))
    torch.testing.assert_close(maps["double"], double_normalization(logits))
    # the rows of the tokens-only map average exactly S / N
    torch.testing.assert_close(maps["tokens"].sum(-1).mean(-1), torch.full((2,), 6 / 20))


def test_slot_softmax_ablation_never_looks_at_other_tokens_and_double_normalisation_does():
    torch.manual_seed(0)
    ablation = ch.SlotSoftmaxExternalAttention(8, memory_size=5).eval()
    x = torch.randn(1, 10, 8)
    y = x.clone()
    y[:, 1:] = torch.randn(1, 9, 8)                  # every token but the first replaced
    torch.testing.assert_close(ablation.attention_map(x)[0, 0], ablation.attention_map(y)[0, 0])
    torch.testing.assert_close(ablation.attention_map(x), ablation.M_k(x).softmax(-1))
    full = al.ExternalAttention(8, memory_size=5).eval()
    full.load_state_dict(ablation.state_dict())
    assert not torch.allclose(full.attention_map(x)[0, 0], full.attention_map(y)[0, 0])
    with pytest.raises(ValueError, match=r"\(B, N, 8\)"):
        ablation(torch.randn(10, 8))


def test_slot_target_share_equals_a_loop_over_images_and_slots():
    attn = random_map(3, 16, 5)
    boxes = torch.tensor([[0, 0, 8, 8], [8, 8, 16, 16], [4, 0, 12, 16]])
    share, chance = ch.slot_target_share(attn, boxes, 4, 16)
    inside = box_masks(boxes, 4, 4, 16).flatten(1)
    for g in range(3):
        assert chance[g] == pytest.approx(inside[g].float().mean().item())
        for j in range(5):
            column = attn[g, :, j]
            assert share[g, j] == pytest.approx((column[inside[g]].sum() / column.sum()).item(), abs=1e-6)
    with pytest.raises(ValueError, match="slot_target_share"):
        ch.slot_target_share(attn, boxes, 5, 16)


def test_per_head_loop_computes_the_official_layer_exactly():
    torch.manual_seed(0)
    m = al.MultiHeadExternalAttention(24, num_heads=3, memory_size=8, coef=2).double().eval()
    x = torch.randn(2, 11, 24, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ch.per_head_loop(m, x), m.forward_explicit(x))


def test_memories_in_a_python_list_are_invisible_to_pytorch_but_still_compute():
    slip = ch.ListMemoryExternalAttention(8, memory_size=4)
    assert count_parameters(slip) == 0 and list(slip.state_dict()) == []
    assert slip(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    slip.memories = torch.nn.ModuleList(slip.memories)
    assert count_parameters(slip) == 2 * 8 * 4


def test_summarise_reads_the_runs():
    class Run:
        history = {"val_acc": [0.3, 0.7], "acc": [0.4, 0.8], "loss": [1.2, 0.05]}
        model = al.models.TinyTokenNet("external_attention", dim=16, memory_size=4)

    summary = ch.summarise({"external": [Run(), Run()]})
    assert summary["external"]["acc"] == [0.7, 0.7] and summary["external"]["train"] == [0.8, 0.8]
    assert summary["external"]["curves"] == [[0.3, 0.7]] * 2 and summary["external"]["params"] == 2 * 16 * 4
    assert summary["external"]["loss"] == [0.05, 0.05]


def test_experiment_compares_three_mixers_of_equal_size_on_one_network():
    assert list(ch.EXPERIMENT) == ["slot_softmax", "external", "self"] and len(ch.SEEDS) >= 3
    widths = {name: cfg.dim for name, cfg in ch.EXPERIMENT.items()}
    assert len(set(widths.values())) == 1                        # the same width for every mixer
    models = {name: cfg.build() for name, cfg in ch.EXPERIMENT.items()}
    assert isinstance(models["slot_softmax"].block.attn, ch.SlotSoftmaxExternalAttention)
    mixer = {name: count_parameters(m.block.attn) for name, m in models.items()}
    assert mixer["slot_softmax"] == mixer["external"] == 2 * ch.MEMORY_SIZE * 32
    assert abs(mixer["self"] - mixer["external"]) <= 0.01 * mixer["self"]
    assert ch.EXPERIMENT["external"] == ch.EA_DEMO and ch.EA_DEMO.attention == "external_attention"


def test_crossover_is_near_2D_plus_4S_and_its_readings():
    rows = ch.crossovers([(64, 8, 64), (256, 4, 64), (384, 6, 64)], at=197)
    assert [r["crossover"] for r in rows] == [385, 763, 1015]        # the review's 763 and 1,015
    for r in rows:
        n = r["crossover"]
        sa = MECHANISMS["self_attention"].expected_flops((1, n, r["dim"]), dim=r["dim"], num_heads=r["heads"])
        mh = MECHANISMS["multi_head_external_attention"].expected_flops(
            (1, n, r["dim"]), dim=r["dim"], num_heads=r["heads"], memory_size=r["memory"], coef=4)
        assert sa > mh
    ch.check_crossover_readings(rows)
    assert len(ch.crossover_table(rows)) == 3
    with pytest.raises(al.readings.ReadingError, match="2D \\+ 4S"):
        ch.check_crossover_readings([dict(rows[0], crossover=500)] + rows[1:])


def _scaling(fused_rate=10.0, external_rate=3.0, explicit_ms=300.0, linear_external=False):
    ns = [128, 256, 512, 1024, 2048]
    names = ("external", "explicit", "fused")
    flops = {k: [ch._flops(name, n, 64, 8, 64) for n in ns]
             for k, name in (("external", "multi_head_external_attention"), ("fused", "self_attention"))}
    seconds = {"external": [f / (external_rate * 1e9) for f in flops["external"]],
               "fused": [f / (fused_rate * 1e9) for f in flops["fused"]],
               "explicit": [explicit_ms / 1e3 * (n / 1024) ** 2 for n in ns[:4]]}
    if not linear_external:                       # as measured: a slope near 1.8 at the largest N
        seconds["external"] = [v * (n / 2048) ** 0.8 for v, n in zip(seconds["external"], ns)]
    memory = {"external": [n * 600 for n in ns], "fused": [n * 50 for n in ns], "explicit": [n * n * 64 for n in ns[:4]]}
    return ns, seconds, memory, names


def test_scaling_readings_hold_and_fail_on_contradicting_times():
    ns, seconds, memory, names = _scaling()
    ch.check_scaling_readings(ns, seconds, memory, *names)
    for key, values in (("explicit", [n * 64 for n in ns[:4]]),          # the explicit path's memory linear
                        ("fused", [n * n for n in ns]),                  # the fused path's memory quadratic
                        ("external", [n ** 1.5 for n in ns])):           # External Attention's above linear
        with pytest.raises(al.readings.ReadingError, match="memory grows"):
            ch.check_scaling_readings(ns, seconds, {**memory, key: values}, *names)
    with pytest.raises(al.readings.ReadingError, match="several times the fused"):   # only twice, at N = 2048
        ch.check_scaling_readings(ns, seconds, {**memory, "external": [n * 600 for n in ns[:4]] + [2048 * 100]},
                                  *names)


def test_l1_step_keeps_each_token_s_ratios_between_slots():
    maps = ch.normalisations(3 * torch.randn(64, 16, generator=torch.Generator().manual_seed(0)))
    step = ch.l1_step(maps)
    assert step["ratio"] < 1e-4 and step["S"] == 16 and 0 <= step["same"] <= 16
    ch.check_l1_readings(dict(step, same=6))
    for same in (8, 16):                                                  # half of the slots, none
        with pytest.raises(al.readings.ReadingError, match="favourite token"):
            ch.check_l1_readings(dict(step, same=same))


def test_slot_and_gallery_readings():
    share = torch.tensor([0.75, 0.7, 0.6] + [0.35] * 10 + [0.15] * 40 + [0.05] * 11)
    summary = ch.slot_summary(share, 0.15, torch.full((64,), 0.17))
    assert summary["best"] == [5.0, 4.7, 4.0] and summary["above"] == 13 and summary["below"] == 11
    rules = dict(b1=1.9, b4=5.3, b8=6.4, peak=0.998)
    copies = dict(copies=35, S=64, level=0.8, n=500, best=[0.72, 0.7, 0.78])
    ch.check_slot_readings(summary, rules, copies)
    with pytest.raises(al.readings.ReadingError, match="about five times"):
        ch.check_slot_readings(dict(summary, best=[2.0, 1.9, 1.8]), rules, copies)
    with pytest.raises(al.readings.ReadingError, match="brightness"):            # the slots beat the rule
        ch.check_slot_readings(summary, dict(rules, b4=3.0), copies)
    with pytest.raises(al.readings.ReadingError, match="brightness"):
        ch.check_slot_readings(summary, dict(rules, peak=0.6), copies)
    with pytest.raises(al.readings.ReadingError, match="near copies"):
        ch.check_slot_readings(summary, rules, dict(copies, copies=5))
    with pytest.raises(al.readings.ReadingError, match="near copies"):
        ch.check_slot_readings(summary, rules, dict(copies, best=[0.72, 0.4, 0.3]))
    with pytest.raises(al.readings.ReadingError, match="below the level"):     # the best three are copies too
        ch.check_slot_readings(summary, rules, dict(copies, best=[0.98, 0.94, 0.91]))
    attn = torch.zeros(2, 64, 4)
    attn[0, 0, 0] = attn[1, 63, 0] = 1.0                          # slot 0: token 0 in image 0, token 63 in image 1
    boxes = torch.tensor([[0, 0, 8, 8], [0, 0, 8, 8]])             # both targets in the top-left corner
    hits = ch.gallery_hits(attn, boxes, [0], 8, 32)
    assert hits == dict(hits=1, pairs=2)
    ch.check_gallery_readings(dict(hits=17, pairs=18))
    with pytest.raises(al.readings.ReadingError, match="not in all"):
        ch.check_gallery_readings(dict(hits=18, pairs=18))


def test_relation_test_blocks_what_it_says():
    torch.manual_seed(0)
    model = al.models.TinyTokenNet("self_attention").eval()
    data = ch.EA_DEMO.replace(n_val=40).data("val")
    r = ch.relation_test(model, data)
    assert set(r) >= {"intact", "within", "within_random", "fetch", "fetch_random"}
    with torch.no_grad():
        assert r["intact"] == pytest.approx((model(data.images).argmax(-1) == data.labels).float().mean().item())
    masked = ch.MaskedSelfAttention(model.block.attn)
    x = torch.randn(2, 64, 32)
    masked.allowed = torch.ones(2, 64, 64, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(masked(x), model.block.attn(x), atol=1e-6)   # nothing blocked: the same module
    assert len(ch.relation_table([r] * 3)) == 3
    for k in ("within", "fetch"):                 # masses: shares of the image's attention, the block's the larger
        assert 0 <= r[f"{k}_random_mass"] <= 1 and 0 <= r[f"{k}_mass"] <= 1
    assert r["fetch_mass"] + r["rest_mass"] < 1 and len(ch.relation_masses([r] * 3)) == 3


def test_slot_copies_and_brightness_rules():
    attn = torch.rand(10, 64, 4, generator=torch.Generator().manual_seed(0))
    attn[..., 1] = 2 * attn[..., 0]                                # slot 1: slot 0's map, scaled
    copies = ch.slot_copies(attn, [0, 1, 2])
    assert copies["copies"] == 2 and copies["best"][0] == pytest.approx(1.0) and abs(copies["best"][1]) < 0.5
    images = torch.zeros(2, 3, 32, 32)
    images[:, :, :8, :8] = 1.0                                     # the only bright place: the target's box
    boxes = torch.tensor([[0, 0, 8, 8], [0, 0, 8, 8]])
    rules = ch.brightness_rules(images, boxes, 8, 32, chance=4 / 64)
    assert rules["peak"] == 1.0 and rules["b4"] == pytest.approx(16.0) and rules["b1"] == pytest.approx(16.0)


def test_relation_readings_hold_and_fail_on_contradicting_numbers():
    good = [dict(intact=0.9, within=0.9, within_random=0.9, fetch=0.27, fetch_random=0.9, within_mass=0.05,
                 within_random_mass=0.02, fetch_mass=0.6, fetch_random_mass=0.13, rest_mass=0.4)] * 3
    ch.check_relation_readings(good)
    with pytest.raises(al.readings.ReadingError, match="between two tokens of the target"):
        ch.check_relation_readings([dict(good[0], within=0.6)] * 3)
    with pytest.raises(al.readings.ReadingError, match="ten points of chance"):
        ch.check_relation_readings([dict(good[0], fetch=0.7)] * 3)
    with pytest.raises(al.readings.ReadingError, match="random pairs"):
        ch.check_relation_readings([dict(good[0], fetch_random=0.5)] * 3)
    with pytest.raises(al.readings.ReadingError, match="no control"):      # a control that could match the mass
        ch.check_relation_readings([good[0], dict(good[0], rest_mass=0.7), good[0]])
    with pytest.raises(al.readings.ReadingError, match="little attention"):
        ch.check_relation_readings([dict(good[0], within_mass=0.3)] * 3)


def test_the_loop_runs_many_more_operators_than_the_batched_forms():
    m = al.MultiHeadExternalAttention(64, num_heads=8).eval()
    x = torch.randn(1, 64, 64)
    counts = {k: ch.count_operators(fn, x) for k, fn in
              dict(loop=lambda x: ch.per_head_loop(m, x), explicit=m.forward_explicit, fast=m).items()}
    ch.check_loop_readings(counts)
    with pytest.raises(al.readings.ReadingError, match="five times"):
        ch.check_loop_readings(dict(loop=40, explicit=28, fast=28))


# ---------------------------------------------------------------- the registry's formulas

@pytest.mark.parametrize("D,S,N", [(32, 16, 48), (64, 64, 49), (8, 3, 5)])
def test_external_attention_formulas_equal_the_counters(D, S, N):
    entry, kwargs = MECHANISMS["external_attention"], dict(dim=D, memory_size=S)
    module, x = al.ExternalAttention(**kwargs).eval(), torch.randn(2, N, D)
    assert count_parameters(module) == entry.expected_params(**kwargs) == 2 * S * D
    assert count_flops(module, x).total == entry.expected_flops(x.shape, **kwargs) == 2 * (4 * N * S * D + 5 * N * S + N)


@pytest.mark.parametrize("D,h,S,e,N", [(32, 2, 16, 4, 48), (64, 8, 64, 4, 49), (24, 3, 8, 2, 7)])
def test_multi_head_external_attention_formulas_equal_the_counters(D, h, S, e, N):
    entry, kwargs = MECHANISMS["multi_head_external_attention"], dict(dim=D, num_heads=h, memory_size=S, coef=e)
    module, x = al.MultiHeadExternalAttention(**kwargs).eval(), torch.randn(2, N, D)
    d = D // h
    assert count_parameters(module) == entry.expected_params(**kwargs) == 2 * e * D * D + e * D + D + 2 * d * S + S + d
    assert count_flops(module, x, method="forward_explicit").total == entry.expected_flops(x.shape, **kwargs)


# ---------------------------------------------------------------- exercises

def problem(key, answer):
    """The i18n key of what the check finds wrong (None when right)."""
    try:
        found = EXERCISES[key].judge(answer)
    except Slip as slip:
        return slip.key
    return found[0] if isinstance(found, tuple) else found


def test_unanswered_exercises_say_so():
    for key in ("ea.shape", "ea.params", "ea.double_norm"):
        assert verdict(key, ...)[0] is None


def test_shape_check_accepts_the_module_and_names_the_slips():
    m = al.MultiHeadExternalAttention(**ch.SHAPE_MODULE)
    right = tuple(m.attention_map(torch.randn(ch.SHAPE_INPUT)).shape)
    assert verdict("ea.shape", right)[0] is True and verdict("ea.shape", list(right))[0] is True
    slips = {(3, 4, 49, 32): "no_coef", (3, 8, 32, 49): "transposed", (3, 49, 32): "no_heads",
             (3, 8, 49, 49): "self", (3, 8, 49, 64): "other"}
    for answer, key in slips.items():
        ok, message = verdict("ea.shape", answer)
        assert ok is False and message == i18n.t("ex.wrong", hint=i18n.t(f"ex.ea.shape.{key}"))
    assert problem("ea.shape", "3, 8") == "ex.answer.shape.not_shape" and verdict("ea.shape", None)[0] is None


def test_params_check_accepts_count_parameters_and_names_the_slips():
    m = al.MultiHeadExternalAttention(**ch.PARAMS_MODULE)
    right = count_parameters(m)
    assert verdict("ea.params", right)[0] is True and verdict("ea.params", float(right))[0] is True
    D, h, S, e = 256, 8, 64, 4
    d = D // h
    slips = {
        "per_head": 2 * e * D * D + e * D + D + e * h * (2 * d * S + S + d),
        "no_bias": 2 * e * D * D + 2 * d * S,
        "wide_head": 2 * e * D * D + e * D + D + 2 * (e * d) * S + S + e * d,
        "no_proj": e * D * D + e * D + 2 * d * S + S + d,
        "single": 2 * S * D, "other": right + 1,
    }
    for key, answer in slips.items():
        ok, message = verdict("ea.params", answer)
        assert ok is False and message == i18n.t("ex.wrong", hint=i18n.t(f"ex.ea.params.{key}")), key
    assert problem("ea.params", "529760") == "ex.answer.string"


def _library(logits):
    return double_normalization(logits)


def _float16_no_upcast(logits):
    a = logits.softmax(dim=-2)
    return a / (1e-9 + a.sum(dim=-1, keepdim=True))


def _returns_float32(logits):
    return double_normalization(logits.float())


def _squeezes(logits):
    a = logits.squeeze().float().softmax(dim=-2)
    return (a / (1e-9 + a.sum(dim=-1, keepdim=True))).to(logits.dtype)


@pytest.mark.parametrize("answer,key", [
    (lambda l: l.softmax(dim=-1), "slots_softmax"),
    (lambda l: l.softmax(dim=-2), "no_l1"),
    (lambda l: (l / (1e-9 + l.abs().sum(-1, keepdim=True))).softmax(dim=-2), "swapped"),
    (_float16_no_upcast, "nan"),
    (_returns_float32, "dtype"),
    (lambda l: l[..., :-1], "shape"),
    (lambda l: 1 / 0, "raised"),
    (lambda l: l.mul_(0).softmax(dim=-2), "mutated"),
    (_squeezes, "batch1"),                          # the (1, N, S) batch loses its batch axis
    (lambda l: torch.zeros_like(l), "other"),
    (42, "not_callable"),
])
def test_double_norm_check_names_each_slip(answer, key):
    engine = {"shape": "ex.fn.shape", "raised": "ex.fn.raised", "mutated": "ex.fn.mutated",
              "not_callable": "ex.answer.function.not_callable", "batch1": "ex.fn.shape"}
    assert problem("ea.double_norm", answer) == engine.get(key, f"ex.ea.norm.{key}")
    ok, message = verdict("ea.double_norm", answer)
    assert ok is False and message.startswith(i18n.t("ex.wrong", hint=""))
    if key == "batch1":                             # the case that failed is named, with the likely cause
        assert message.endswith(i18n.t("ex.ea.norm.batch1"))


def test_double_norm_check_accepts_the_solutions():
    assert verdict("ea.double_norm", _library)[0] is True

    def solution(logits):                           # the notebook's hidden solution
        a = logits.float().softmax(dim=-2)
        a = a / (1e-9 + a.sum(dim=-1, keepdim=True))
        return a.to(logits.dtype)

    assert verdict("ea.double_norm", solution)[0] is True


def test_checks_never_raise_whatever_they_are_handed():
    for answer in (object(), "x", [1, "a"], {"a": 1}, float("nan"), lambda *a: None, torch.zeros(3)):
        for key in ("ea.shape", "ea.params", "ea.double_norm"):
            ok, message = verdict(key, answer)
            assert ok is False and message


def test_row_sum_and_isolation_readings():
    maps = ch.normalisations(4 * torch.randn(64, 64, generator=torch.Generator().manual_seed(1)))
    rows = maps["tokens"].sum(dim=1)
    assert rows.mean().item() == pytest.approx(1.0, abs=1e-5)                # S/N = 64/64
    with pytest.raises(al.readings.ReadingError, match="a few tokens hold"):
        ch.check_row_sum_readings(torch.ones(64), 64)                       # every token the same total
    few = torch.full((64,), 0.01)
    few[:6] = (64 - 0.58) / 6                                                # six tokens hold 99 %, the mean S/N
    assert ch.top_share(few) == pytest.approx(0.991, abs=1e-3)
    ch.check_row_sum_readings(few, 64)
    ch.check_isolation_readings(0.0, 0.03)
    with pytest.raises(al.readings.ReadingError, match="does not move"):
        ch.check_isolation_readings(0.01, 0.03)
