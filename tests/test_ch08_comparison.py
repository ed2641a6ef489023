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
    wrong = dict(ch.conv_comparison(quiet), bam_share=0.5)
    with pytest.raises(ReadingError, match="BAM"):
        ch.check_cost_readings(quiet, wrong)


def _scaling(explicit_slope=2.4, sdpa_slope=1.8, external_slope=0.9, ratio=20.0):
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
    for changes, match in ((dict(explicit_slope=1.7), "2 or above"), (dict(ratio=2.0), "five times")):
        ns, seconds, memory, names = _scaling(**changes)
        with pytest.raises(ReadingError, match=match):
            ch.check_scaling_readings(ns, seconds, memory, *names)


def _results(sk=(0.91, 0.93, 0.92), branches=(0.905, 0.93, 0.915), se=(0.82, 0.86, 0.80), cbam=(0.85, 0.89, 0.76),
             bam=(0.865, 0.892, 0.80)):
    base = (0.848, 0.88, 0.816)
    return {None: dict(acc=list(base), params=0), "squeeze_excitation": dict(acc=list(se), params=552),
            "eca": dict(acc=[0.82, 0.87, 0.81], params=3), "cbam": dict(acc=list(cbam), params=652),
            "bam": dict(acc=list(bam), params=2057), "selective_kernel": dict(acc=list(sk), params=21696),
            "sk_branches": dict(acc=list(branches), params=18560)}


def test_accuracy_readings_hold_and_fail_on_contradicting_numbers():
    ch.check_accuracy_readings(_results())
    with pytest.raises(ReadingError, match="below the network without attention"):
        ch.check_accuracy_readings(_results(se=(0.9, 0.9, 0.82)))
    with pytest.raises(ReadingError, match="no gate is above"):
        ch.check_accuracy_readings(_results(cbam=(0.9, 0.9, 0.9)))
    with pytest.raises(ReadingError, match="SK is above"):
        ch.check_accuracy_readings(_results(sk=(0.8, 0.93, 0.92)))
    with pytest.raises(ReadingError, match="differs from them by less than two points"):
        ch.check_accuracy_readings(_results(branches=(0.86, 0.89, 0.83)))


def test_accuracy_table_pairs_the_seeds_and_uses_the_sample_sd():
    table = ch.accuracy_table(_results())
    se = next(row for row in table if row[0] == "SE")
    assert se[2] == "0.827 ± 0.031"                                    # sample sd (ddof = 1) of 0.82, 0.86, 0.80
    assert se[4] == "-0.021 ± 0.006" and se[5] == "0/3"               # per-seed changes against no attention


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
    monkeypatch.setattr(ch, "ACCURACY_CONFIG", dict(n_train=32, n_val=16, epochs=1))
    al.train.set_cache_dir(tmp_path)
    try:
        r = ch.variant_results("sk_branches")
    finally:
        al.train.set_cache_dir(None)
    assert len(r["acc"]) == len(ch.ACCURACY_SEEDS) and all(0 <= a <= 1 for a in r["acc"])
    assert r["params"] == al.count_parameters(ch.BranchesCNN().build().attention)
