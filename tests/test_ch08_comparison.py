"""Chapter 08's module: the cost table's readings, the scaling readings, the accuracy experiment with its capacity
control and the "when to pick which" table; every reading check holds on numbers that support its sentence and
fails with ReadingError on numbers that contradict it."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib.chapters import ch08_comparison as ch  # noqa: E402
from attention_lib.toolkit.readings import ReadingError  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    _, rows = ch.cost_table(batch_size=2, channels=64, size=28, tokens=196, dim=64, min_run_time=0.01)
    return rows


def _with_latency(rows, **ms):
    """The rows with the given latencies (ms) and SK and the gates at rates far apart, as a quiet machine gives."""
    out = []
    for r in rows:
        r = dict(r)
        r["latency_ms"] = ms.get(r["name"], r["flops"] / 1e7)          # 10 GFLOP/s unless given
        out.append(r)
    return out


def test_conv_flops_is_the_plain_3x3_convolution_count():
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
    assert ch.conv_flops(64, 28) == al.count_flops(conv, torch.zeros(1, 64, 28, 28)).total


def test_conv_comparison_prices_bam_and_sk_in_convolutions(rows):
    c = ch.conv_comparison(rows)
    assert c["conv"] == pytest.approx(57.8, abs=0.05)
    assert 0.015 < c["bam_share"] < 0.025 and 1.9 < c["sk_convs"] < 2.1


def test_cost_readings_hold_and_fail_when_the_rates_do_not_differ(rows):
    sk = next(r for r in rows if r["name"] == "selective_kernel")
    quiet = _with_latency(rows, selective_kernel=sk["flops"] / 1e8)  # SK at 100 GFLOP/s, the gates at 10
    ch.check_cost_readings(quiet, ch.conv_comparison(quiet))
    flat = _with_latency(rows, selective_kernel=sk["flops"] / 1e7)   # SK no faster than the gates
    with pytest.raises(ReadingError, match="rate"):
        ch.check_cost_readings(flat, ch.conv_comparison(flat))
    burst = _with_latency(rows, selective_kernel=sk["flops"] / 1e8,
                          eca=10 * next(r for r in quiet if r["name"] == "squeeze_excitation")["latency_ms"])
    with pytest.raises(ReadingError, match="sane timing"):                    # ECA 10x SE: a burst of load
        ch.check_cost_readings(burst, ch.conv_comparison(burst))
    wrong = dict(ch.conv_comparison(quiet), bam_share=0.5)
    with pytest.raises(ReadingError, match="BAM"):
        ch.check_cost_readings(quiet, wrong)


def _scaling(explicit_slope=2.4, sdpa_slope=1.8, external_slope=0.9, ratio=100.0):
    ns = [256, 512, 1024, 2048, 4096]
    names = ("explicit", "sdpa", "external")
    ext = [1e-4 * (n / 256) ** external_slope for n in ns]
    seconds = {"explicit": [1e-4 * (n / 256) ** explicit_slope for n in ns[:4]],
               "sdpa": [ext[-1] * ratio * (n / 4096) ** sdpa_slope for n in ns], "external": ext}
    memory = {"explicit": [n * n * 64 for n in ns[:4]], "sdpa": [n * 320 for n in ns], "external": [n * 512 for n in ns]}
    return ns, seconds, memory, names


def test_scaling_readings_hold_and_fail_on_contradicting_slopes():
    ns, seconds, memory, names = _scaling()
    ch.check_scaling_readings(ns, seconds, memory, *names)
    for changes, match in ((dict(explicit_slope=1.4), "its FLOP slope"), (dict(ratio=10.0), "more than 20 times")):
        ns, seconds, memory, names = _scaling(**changes)
        with pytest.raises(ReadingError, match=match):
            ch.check_scaling_readings(ns, seconds, memory, *names)


def _results(sk=(0.944, 0.962, 0.962), cbam=(0.964, 0.974, 0.97), bam=(0.956, 0.936, 0.952), train=0.999,
             branches_params=18560, branches=(0.962, 0.968, 0.964), head=(0.938, 0.946, 0.942), head_params=464):
    """The numbers of the 15-epoch build: baseline and per-variant accuracies."""
    def run(acc, params):
        return dict(acc=list(acc), train=[train, 1.0, 1.0], params=params, n_val=500)
    return {None: run((0.958, 0.956, 0.966), 0),
            "squeeze_excitation": run((0.96, 0.948, 0.952), 552),
            "eca": run((0.96, 0.956, 0.964), 3),
            "cbam": run(cbam, 652), "bam": run(bam, 2057),
            "selective_kernel": run(sk, 21696),
            "sk_branches": run(branches, branches_params), "mlp_head": run(head, head_params)}


def test_accuracy_readings_hold_and_fail_on_contradicting_numbers():
    ch.check_accuracy_readings(_results())
    with pytest.raises(ReadingError, match="fits its training images"):         # one run not at a plateau
        ch.check_accuracy_readings(_results(train=0.95))
    with pytest.raises(ReadingError, match="about 96 %"):
        ch.check_accuracy_readings({k: dict(v, acc=[a - 0.1 for a in v["acc"]]) for k, v in _results().items()})
    with pytest.raises(ReadingError, match="more than 1.5 points"):             # a block that buys 4 points
        ch.check_accuracy_readings(_results(bam=(0.99, 0.99, 0.99)))
    with pytest.raises(ReadingError, match="CBAM is the only"):                 # SK above in every seed too
        ch.check_accuracy_readings(_results(sk=(0.964, 0.962, 0.97)))
    with pytest.raises(ReadingError, match="CBAM is the only"):                 # CBAM not above in every seed
        ch.check_accuracy_readings(_results(cbam=(0.954, 0.974, 0.97)))
    with pytest.raises(ReadingError, match="14 % fewer"):                       # a control of equal size
        ch.check_accuracy_readings(_results(branches_params=21696))
    with pytest.raises(ReadingError, match="BAM the only one below"):           # BAM above in one seed
        ch.check_accuracy_readings(_results(bam=(0.96, 0.936, 0.952)))
    with pytest.raises(ReadingError, match="two points or less"):               # BAM 2.4 points below
        ch.check_accuracy_readings(_results(bam=(0.934, 0.946, 0.962)))
    with pytest.raises(ReadingError, match="neither SK nor"):                   # the control below in every seed
        ch.check_accuracy_readings(_results(branches=(0.952, 0.95, 0.964)))
    with pytest.raises(ReadingError, match="MLP head is below"):                # the MLP head above in one seed
        ch.check_accuracy_readings(_results(head=(0.96, 0.946, 0.942)))
    with pytest.raises(ReadingError, match="not below the MLP head"):           # SE below the MLP head in seed 1
        ch.check_accuracy_readings(_results(head=(0.938, 0.95, 0.942)))
    with pytest.raises(ReadingError, match="about as many parameters as SE"):
        ch.check_accuracy_readings(_results(head_params=2000))
    assert ch.head_comparison(_results())["eca"].values == pytest.approx((0.022, 0.010, 0.022))
    assert "SE +0.011" in ch.head_comparison_text(_results())


def test_accuracy_table_pairs_the_seeds_and_uses_the_sample_sd():
    table = ch.accuracy_table(_results())
    se = next(row for row in table if row[0] == "SE")
    assert se[3] == "0.953 ± 0.006"                                    # sample sd (ddof = 1) of 0.96, 0.948, 0.952
    assert se[5] == "-0.007 ± 0.008" and se[6] == "1/3"               # per-seed changes against no attention
    assert se[2] == "0.999" and len(se) == 7                           # lowest training accuracy; no epoch-5 column
    assert ch.binomial_sd(_results())["sd"] == pytest.approx((0.96 * 0.04 / 500) ** 0.5, rel=1e-3)


def test_the_capacity_control_is_sk_without_its_selection():
    torch.manual_seed(0)
    control = ch.BranchesCNN().build()
    sk = al.models.TinyCNN("selective_kernel", width=16).attention
    assert [b[0].kernel_size for b in control.attention.branches] == [b[0].kernel_size for b in sk.branches]
    assert 0.8 < al.count_parameters(control.attention) / al.count_parameters(sk) < 1.0
    x = torch.randn(2, 3, 32, 32)
    assert control(x).shape == (2, 4)
    assert ch.variant_demo("sk_branches", 1).seed == 1 and ch.variant_demo(None, 0).attention is None


def test_pick_table_and_its_readings(rows):
    quiet = _with_latency(rows, selective_kernel=next(r for r in rows if r["name"] == "selective_kernel")["flops"] / 1e8)
    table = ch.pick_table(quiet, _results())
    assert len(table) == len(rows) and table.rows[0][-1] == "—"          # a token mechanism: no §5 change
    ch.check_pick_readings(quiet, _results())
    with pytest.raises(ReadingError, match="fraction of SK"):
        ch.check_pick_readings(_with_latency(rows), _results())
    fastest = min(r["latency_ms"] for r in quiet if r["name"] in ("squeeze_excitation", "eca"))
    with pytest.raises(ReadingError, match="at most half the time"):           # CBAM as fast as the faster gate
        ch.check_pick_readings([dict(r, latency_ms=fastest) if r["name"] == "cbam" else r for r in quiet], _results())
    slow_se = [dict(r, latency_ms=0.8 * fastest / 0.4) if r["name"] == "squeeze_excitation" else r for r in quiet]
    ch.check_pick_readings(slow_se, _results())                                  # one of SE and ECA slow: still read


def test_cost_table_times_round_robin_and_reads_equal_work_apart():
    assert ch._apart([[1.0, 5.0], [0.9, 4.0]], [(0, 1)], 3.0)                 # 0.9 against 4.0: apart
    assert not ch._apart([[1.0, 5.0], [0.9, 1.1]], [(0, 1)], 3.0)             # the smallest medians agree
    with pytest.raises(ValueError, match="rounds"):
        ch.cost_table(rounds=0)


def test_sdpa_ratio_reads_the_times_and_the_equations_flops():
    r = ch.sdpa_ratio(4096, 0.5, 0.005)
    assert r["time"] == pytest.approx(100) and r["n"] == 4096
    sa = al.MECHANISMS["self_attention"].expected_flops((1, 4096, 64), dim=64, num_heads=8)
    assert r["flops"] == pytest.approx(sa / (4 * 4096 * 64 * 64), rel=0.03)   # External Attention: 4NSD + lower


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_accuracy_figure_draws_in_both_languages(lang):
    al.setup(lang=lang)
    try:
        fig = ch.plot_accuracy_changes(_results())
        fig.canvas.draw()
        assert fig.axes[0].get_title()
        plt.close(fig)
    finally:
        al.setup(lang="en")


def test_variant_results_train_each_seed_and_evaluate_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ch, "ACCURACY_CONFIG", dict(n_train=32, n_val=16, epochs=2))
    monkeypatch.setattr(ch, "VARIANTS", (None, "sk_branches"))
    monkeypatch.setenv("ATTENTION_LIB_WORKERS", "1")
    al.train.set_cache_dir(tmp_path)
    try:
        results = ch.variant_results()
    finally:
        al.train.set_cache_dir(None)
    r = results["sk_branches"]
    assert set(results) == {None, "sk_branches"} and r["n_val"] == 16
    assert len(r["acc"]) == len(ch.ACCURACY_SEEDS) and all(0 <= a <= 1 for a in r["acc"] + r["train"])
    assert r["params"] == al.count_parameters(ch.BranchesCNN().build().attention)


def test_the_mlp_head_control_is_the_plain_network_with_a_two_layer_head():
    torch.manual_seed(0)
    plain = ch.ShapesCNN().build()
    torch.manual_seed(0)
    head = ch.MLPHeadCNN().build()
    assert torch.equal(plain.stem[0][0].weight, head.stem[0][0].weight)       # the same initial convolutions
    assert al.count_parameters(head) - al.count_parameters(plain) == 464       # 32*16 + 16 + 16*4 + 4 - (32*4 + 4)
    assert head(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    assert isinstance(ch.variant_demo("mlp_head", 2), ch.MLPHeadCNN) and ch.variant_demo("mlp_head", 2).seed == 2
