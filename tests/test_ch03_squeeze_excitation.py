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


# ---------------------------------------------------------------- §6: the readings and their guards

from attention_lib.toolkit import readings as rd  # noqa: E402
from attention_lib.toolkit.data import context_dataset  # noqa: E402


def _gates(n=256, C=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    trained = 0.9 + 0.1 * torch.rand(n, C, generator=g)
    trained[:, :4] = 0.6                                              # a few damped channels: 4 of 32 below 0.9
    random = 0.5 + 0.05 * (torch.rand(n, C, generator=g) - 0.5)
    return trained, random


def test_class_spread_is_the_std_across_class_means_and_the_null_shuffles_labels():
    gate = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    labels = torch.tensor([0, 1, 2, 3])
    assert ch.class_spread(gate, labels) == pytest.approx(torch.tensor([0.0, 0.0, 1.0, 1.0]).std().item())
    gate = torch.rand(40, 3)
    labels = torch.arange(4).repeat(10)
    null = ch.permuted_spreads(gate, labels, n=5, seed=1)
    assert null.shape == (5,) and torch.equal(null, ch.permuted_spreads(gate, labels, n=5, seed=1))
    with pytest.raises(ValueError, match=r"\(n, C\)"):
        ch.class_spread(torch.rand(8), labels[:8])


def test_shapes_readings_hold_for_the_printed_kind_of_numbers_and_fail_otherwise():
    trained, random = _gates()
    ch.check_shapes_readings(0.966, 0.966, trained, random, spread=0.031, null=torch.tensor([0.004, 0.008]))
    bad = [dict(acc=0.966, base_acc=0.90),                                  # not "about the same accuracy"
           dict(random_gate=random + 0.3),                                  # the random gate is not near 0.5
           dict(trained_gate=torch.full_like(trained, 0.95)),               # no damped channel
           dict(spread=0.006),                                              # within the shuffled labels' spread
           dict(spread=0.2, null=torch.tensor([0.01]))]                     # not "a few hundredths"
    for change in bad:
        args = dict(acc=0.966, base_acc=0.966, trained_gate=trained, random_gate=random, spread=0.031,
                    null=torch.tensor([0.004, 0.008]))
        args.update(change)
        with pytest.raises(rd.ReadingError):
            ch.check_shapes_readings(**args)


def _context_accs(none=(0.52, 0.51, 0.50, 0.53, 0.50), mlp=(0.89, 0.95, 1.0, 0.90, 0.99),
                  se=(0.998, 1.0, 1.0, 1.0, 1.0)):
    return {"none": rd.seeds(none), "mlp": rd.seeds(mlp), "se": rd.seeds(se)}


def test_context_readings_hold_for_the_printed_numbers_and_fail_for_contradicting_ones():
    ch.check_context_readings(_context_accs(), rule=0.738, ce=0.504)
    for accs, rule, ce in [
            (_context_accs(), 0.62, 0.504),                                        # the rule is not about 3/4
            (_context_accs(), 0.738, 0.70),                                        # cross-entropy does not land at 1/2
            (_context_accs(none=(0.52, 0.51, 0.70, 0.53, 0.50)), 0.738, 0.504),    # a baseline run far above 1/2
            (_context_accs(se=(0.998, 1.0, 0.85, 1.0, 1.0)), 0.738, 0.504),        # SE misses the switch once
            (_context_accs(mlp=(0.95, 0.95, 1.0, 0.95, 0.99)), 0.738, 0.504),      # the MLP head fully, every time
            (_context_accs(mlp=(0.70, 0.95, 1.0, 0.90, 0.99)), 0.738, 0.504),      # an MLP run below 3/4: not learned
            (_context_accs(mlp=(0.80, 0.85, 1.0, 0.81, 0.99)), 0.738, 0.504),      # ... fully in a minority of runs
            (_context_accs(mlp=(0.89, 0.95, 1.0, 0.90, 1.0),
                           se=(0.998, 1.0, 1.0, 1.0, 0.99)), 0.738, 0.504),        # SE behind the MLP in one seed
            (_context_accs(se=(0.95, 0.95, 0.95, 0.95, 0.95),
                           mlp=(0.99, 1.0, 1.0, 0.85, 1.0)), 0.738, 0.504)]:       # SE below the MLP on average
        with pytest.raises(rd.ReadingError):
            ch.check_context_readings(accs, rule, ce)


def test_gate_readings_hold_for_the_printed_numbers_and_fail_for_contradicting_ones():
    moves = dict(up=6, down=4, closed=5)
    swap = dict(own=0.998, same=0.69, same_band=0.471, same_plain=0.922, other=0.252, other_answer=0.306)
    ch.check_gate_readings(0.51, moves, swap)
    for share, m, s in [(0.2, moves, swap), (0.51, dict(moves, down=0), swap), (0.51, dict(moves, closed=1), swap),
                        (0.51, moves, dict(swap, same=0.55)), (0.51, moves, dict(swap, other=0.5)),
                        (0.51, moves, dict(swap, other=0.05, other_answer=0.9)),     # it answers the other question
                        (0.51, moves, dict(swap, other_answer=0.45)),                # nearly half, not a third
                        (0.51, moves, dict(swap, same_band=0.9)),                    # the mean gate restores the band
                        (0.51, moves, dict(swap, own=0.7))]:
        with pytest.raises(rd.ReadingError):
            ch.check_gate_readings(share, m, s)


def test_gate_moves_counts_channels_by_hand():
    context = torch.tensor([1, 1, 0, 0])
    gate = torch.tensor([[0.9, 0.1, 0.1, 0.5], [0.9, 0.1, 0.2, 0.5],
                         [0.1, 0.9, 0.1, 0.4], [0.1, 0.9, 0.2, 0.4]])           # (4 images, 4 channels)
    assert ch.gate_moves(gate, context) == dict(up=1, down=1, closed=1)


def test_the_hand_built_additive_read_out_is_right_where_the_argument_says():
    val = context_dataset(400, seed=3)
    band = val.context == 1
    expected = ((~band) | (val.colour < val.orientation)).float().mean().item()
    rule, ce = ch.additive_readouts(context_dataset(300, seed=4), val)
    assert rule == pytest.approx(expected) and 0.65 < rule < 0.85
    assert 0.3 < ce < rule                                        # the cross-entropy optimum is not the best rule


def test_context_demos_and_the_mlp_head_has_more_parameters_than_se():
    base = ch.CONTEXT_DEMOS["none"].build()
    assert ch.extra_parameters(ch.CONTEXT_DEMOS["se"].build(), base) == 2 * 16 * 16 + 2 * 16
    assert ch.extra_parameters(ch.CONTEXT_DEMOS["mlp"].build(), base) == 16 * 32 + 32 + 32 * 4 + 4 - (16 * 4 + 4)
    assert all(c.after == 1 for c in ch.CONTEXT_DEMOS.values())


def test_gate_swap_of_a_constant_gate_changes_nothing():
    model = al.train.untrained_model(ch.CONTEXT_DEMOS["se"])
    with torch.no_grad():
        model.attention.fc2.weight.zero_()                       # the gate no longer depends on the image
    swap = ch.gate_swap(model, context_dataset(64, seed=2))
    assert swap["own"] == pytest.approx(swap["same"]) == pytest.approx(swap["other"])


def test_trained_runs_trains_every_config_in_one_call_and_groups_them_back(monkeypatch):
    calls = []

    def fake(configs, **options):                    # one demo per config: the config itself, tagged
        calls.append((list(configs), options))
        return [("demo", c) for c in configs]
    monkeypatch.setattr(ch, "trained_demos", fake)
    a, b = ch.CONTEXT_DEMOS["none"], ch.CONTEXT_DEMOS["se"]
    groups = {"none": [a.replace(seed=0), a.replace(seed=1)], "se": [b.replace(seed=2)]}
    runs = ch.trained_runs(groups)
    assert len(calls) == 1 and calls[0][0] == groups["none"] + groups["se"]     # one pool for the experiment
    assert calls[0][1] == {"progress": False, "val_every": a.epochs}            # validate once, after training
    assert runs == {"none": [("demo", groups["none"][0]), ("demo", groups["none"][1])],
                    "se": [("demo", groups["se"][0])]}


def test_gate_swap_reads_each_question_and_the_other_answer_on_a_model_built_by_hand():
    """Features: one-hot colour, one-hot orientation, the band. The gate opens the colour channels with the band and
    the orientation channels without it; the read-out adds both parts. Its own gate (here the same as its question's
    mean gate) is right on every image; the other question's mean gate makes it give the other question's answer."""
    val = context_dataset(40, seed=5)
    one_hot = torch.nn.functional.one_hot
    feats = torch.cat([one_hot(val.colour, 4), one_hot(val.orientation, 4), val.context[:, None]], 1).float()

    class Switch(torch.nn.Module):
        attention = property(lambda self: self)

        def features(self, images):                                      # (n, 9, 1, 1)
            return feats[..., None, None]

        def attention_map(self, f):                                      # (n, 9, 1, 1)
            band = f[:, 8:9]
            return torch.cat([band.expand(-1, 4, -1, -1), (1 - band).expand(-1, 4, -1, -1), torch.ones_like(band)], 1)

        def read_out(self, f):                                           # (n, 4)
            return f[:, :4, 0, 0] + f[:, 4:8, 0, 0]

    swap = ch._gate_swap(Switch(), val)
    assert swap["own"] == swap["same"] == swap["same_band"] == swap["same_plain"] == 1.0
    assert swap["other"] == 0.0 and swap["other_answer"] == 1.0
