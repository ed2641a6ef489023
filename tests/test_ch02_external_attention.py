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


def test_plot_experiment_shows_accuracy_and_step_time(lang):
    summary = {k: dict(acc=[0.5, 0.6, 0.55], ms=[10.0, 11.0, 10.5], params=p)
               for k, p in (("none", 0), ("external", 1024), ("slot_softmax", 1024), ("self", 4128))}
    fig = draws_cleanly(lambda: ch.plot_experiment(summary))
    left, right = fig.axes
    assert left.get_ylabel() == i18n.t("ch02.experiment.acc") and right.get_ylabel() == i18n.t("ch02.experiment.ms")
    assert [tick.get_text() for tick in left.get_xticklabels()] == [i18n.t(f"ch02.variant.{k}") for k in summary]
    table = ch.experiment_table(summary)
    assert len(table) == 4 and table[0][2] == "0.550 ± 0.050" and table[1][1] == "1024"


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


def test_step_seconds_leaves_the_model_untouched_and_summarise_reads_the_runs():
    model = al.models.TinyTokenNet("external_attention", dim=16, memory_size=4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(4, 3, 32, 32), torch.randint(4, (4,))
    seconds = ch.step_seconds(model, x, y, repeats=1)
    assert seconds > 0 and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # BN statistics too

    class Run:
        history = {"val_acc": [0.3, 0.7]}
        model = al.models.TinyTokenNet(None, dim=16)

    summary = ch.summarise({"none": [Run(), Run()]}, x, y)
    assert summary["none"]["acc"] == [0.7, 0.7] and summary["none"]["params"] == 0
    assert len(summary["none"]["ms"]) == 2


def test_experiment_compares_four_mixers_on_one_network():
    assert list(ch.EXPERIMENT) == ["none", "external", "slot_softmax", "self"] and len(ch.SEEDS) >= 3
    widths = {name: cfg.dim for name, cfg in ch.EXPERIMENT.items()}
    assert len(set(widths.values())) == 1                        # the same width for every mixer
    ablation = ch.EXPERIMENT["slot_softmax"].build()
    assert isinstance(ablation.block.attn, ch.SlotSoftmaxExternalAttention)
    assert count_parameters(ablation) == count_parameters(ch.EA_DEMO.build())
    assert ch.EXPERIMENT["external"] == ch.EA_DEMO and ch.EA_DEMO.attention == "external_attention"


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
