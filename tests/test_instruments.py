"""Instruments: shape traces follow the equations, FLOP counts equal the analytic formulas, timing is sane."""
import time

import pytest
import torch

import attention_lib as al
from attention_lib import i18n
from attention_lib.toolkit.instruments import (FlopCount, benchmark, count_flops, count_parameters, shape_table,
                                       summary, trace_shapes)


@pytest.fixture(autouse=True)
def _english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def _steps(records):
    """(label, output shapes) of the leaf records: the computation's steps."""
    return [(r.label, r.outputs) for r in records if r.leaf]


# --- trace_shapes ---------------------------------------------------------------------------------

def test_se_trace_reads_pool_fc_relu_fc_gate_scale_with_shapes():
    B, C, H, W, r = 2, 32, 5, 6, 4
    se = al.SqueezeExcitation(C, reduction=r).eval()
    records = trace_shapes(se, torch.randn(B, C, H, W))
    root = records[0]
    assert (root.name, root.type, root.depth, root.leaf) == ("", "SqueezeExcitation", 0, False)
    assert root.inputs == ((B, C, H, W),) and root.outputs == ((B, C, H, W),)
    assert _steps(records) == [
        ("mean", ((B, C),)),                  # squeeze: global average pool
        ("fc1", ((B, C // r),)),              # W_1
        ("act", ((B, C // r),)),              # δ
        ("fc2", ((B, C),)),                   # W_2
        ("gate", ((B, C),)),                  # σ
        ("index", ((B, C, 1, 1),)),           # [:, :, None, None]
        ("mul", ((B, C, H, W),)),             # scale
    ]
    kinds = {r.label: r.kind for r in records}
    assert kinds["mean"] == "function" and kinds["fc1"] == "module" and kinds["index"] == "view"
    assert [r.params for r in records if r.type == "Linear"] == [C * C // r + C // r, C // r * C + C]


def test_mhsa_trace_reads_qkv_attention_proj_and_views_can_be_hidden():
    B, N, D, h = 2, 7, 32, 4
    mhsa = al.MultiHeadSelfAttention(D, num_heads=h).eval()
    x = torch.randn(B, N, D)
    # By default the trace follows the equations (forward_explicit): scores, scale, softmax, weighted sum.
    steps = [r.label for r in trace_shapes(mhsa, x) if r.leaf]
    assert steps == ["qkv", "reshape", "permute", "unbind", "transpose", "matmul", "mul", "softmax", "matmul",
                     "transpose", "reshape", "proj"]
    # The fast forward fuses them into one kernel.
    steps = [r.label for r in trace_shapes(mhsa, x, method="forward") if r.leaf]
    assert steps == ["qkv", "reshape", "permute", "unbind", "scaled_dot_product_attention", "transpose",
                     "reshape", "proj", "proj_drop"]
    compact = [(r.label, r.outputs) for r in trace_shapes(mhsa, x, method="forward", views=False) if r.leaf]
    assert compact == [("qkv", ((B, N, 3 * D),)), ("scaled_dot_product_attention", ((B, h, N, D // h),)),
                       ("proj", ((B, N, D),)), ("proj_drop", ((B, N, D),))]


def test_attention_map_trace_shows_scores_then_softmax():
    B, N, D, h = 1, 5, 16, 2
    mhsa = al.MultiHeadSelfAttention(D, num_heads=h).eval()
    records = trace_shapes(mhsa, torch.randn(B, N, D), method="attention_map", views=False)
    assert [(r.label, r.outputs) for r in records if r.leaf] == [
        ("qkv", ((B, N, 3 * D),)), ("matmul", ((B, h, N, N),)), ("mul", ((B, h, N, N),)),
        ("softmax", ((B, h, N, N),))]
    assert records[0].outputs == ((B, h, N, N),)


def test_nested_modules_have_qualified_names_and_depths():
    cbam = al.CBAM(32, reduction=4).eval()
    records = trace_shapes(cbam, torch.randn(1, 32, 5, 6))
    by_name = {r.name: r for r in records}
    assert by_name["channel_gate"].depth == 1 and not by_name["channel_gate"].leaf
    assert by_name["channel_gate.mlp.0"].type == "Linear" and by_name["channel_gate.mlp.0"].depth == 3
    assert by_name["spatial_gate.conv"].outputs == ((1, 1, 5, 6),)
    assert "channel_gate.amax" in by_name and by_name["channel_gate.amax"].outputs == ((1, 32),)


@pytest.mark.parametrize("name", sorted(al.MECHANISMS))
def test_trace_parameters_add_up_to_count_parameters(name, device):
    entry = al.MECHANISMS[name]
    module = entry.build().eval().to(device)
    x = entry.example_input(batch_size=1, device=device)
    records = trace_shapes(module, x)
    assert records[0].inputs == (tuple(x.shape),)
    assert records[0].outputs == (tuple(x.shape),)
    assert sum(r.params for r in records if r.kind == "module") == count_parameters(module)
    assert sum(r.leaf for r in records) >= 3


def test_trace_shapes_rejects_non_modules_and_unknown_methods():
    with pytest.raises(ValueError, match="nn.Module"):
        trace_shapes(lambda x: x, torch.zeros(1))
    with pytest.raises(ValueError, match="no_such"):
        trace_shapes(al.SqueezeExcitation(32, 4), torch.zeros(1, 32, 2, 2), method="no_such")


def test_shape_table_renders_text_html_markdown_in_current_language():
    records = trace_shapes(al.SqueezeExcitation(32, 4).eval(), torch.randn(2, 32, 5, 6))
    table = shape_table(records)
    assert len(table) == len(records) == 8
    assert table[2][2] == "Linear" and table[2][4] == "(2, 8)" and table[2][5] == "264"
    assert "input shape" in repr(table) and "(2, 32, 5, 6)" in repr(table)
    assert table._repr_html_().startswith("<table>") and "<code>fc1</code>" in table._repr_html_().replace(
        "&nbsp;", "")
    assert table.to_markdown().count("\n") == len(records) + 1
    assert len(shape_table(records, leaves_only=True)) == 7
    i18n.set_language("zh")
    assert shape_table(records).headers[3] == "输入形状"


# --- parameters and FLOPs -------------------------------------------------------------------------

def test_count_parameters_matches_se_formula():
    C, r = 64, 16
    se = al.SqueezeExcitation(C, reduction=r)
    assert count_parameters(se) == 2 * C * (C // r) + C // r + C == 580   # W_1, W_2 + both biases
    se.fc1.weight.requires_grad_(False)
    assert count_parameters(se, trainable_only=True) == 580 - C * (C // r)


def se_flops(B, C, H, W, r):
    """SE forward, per the conventions in instruments.FLOP_CONVENTIONS (bias additions not counted)."""
    h = C // r
    return B * (C * H * W           # squeeze: mean reads every element once
                + 2 * C * h         # W_1 z
                + h                 # ReLU
                + 2 * h * C         # W_2 δ
                + C                 # sigmoid
                + C * H * W)        # scale x * s


@pytest.mark.parametrize("B, C, H, W, r", [(2, 32, 5, 6, 4), (1, 64, 9, 7, 16)])
def test_se_flops_equal_analytic_formula(B, C, H, W, r, device):
    se = al.SqueezeExcitation(C, reduction=r).eval().to(device)
    flops = count_flops(se, torch.randn(B, C, H, W, device=device))
    assert isinstance(flops, FlopCount)
    assert flops.total == se_flops(B, C, H, W, r)
    assert flops.by_operator == {"mean": B * C * H * W, "addmm": B * 4 * C * (C // r), "relu": B * (C // r),
                                 "sigmoid": B * C, "mul": B * C * H * W}


def test_se_flops_grow_with_spatial_size():
    se = al.SqueezeExcitation(32, reduction=4).eval()
    small = count_flops(se, torch.randn(1, 32, 4, 4)).total
    large = count_flops(se, torch.randn(1, 32, 8, 8)).total
    assert large - small == 2 * 32 * (64 - 16)     # pool and scale: 2 C per extra pixel


def mhsa_flops(B, N, D, h):
    """MHSA forward under the SDPA math backend (bias additions not counted)."""
    return B * (2 * N * D * 3 * D    # qkv projection (Q, K, V together)
                + 2 * N * D          # math backend scales Q and K by d_k^(-1/4) each: N·D + N·D
                + 2 * N * N * D      # scores Q K^T, all heads: h · 2 N N d_k
                + 3 * h * N * N      # softmax: exp, sum, divide per score
                + 2 * N * N * D      # weighted sum A V, all heads
                + 2 * N * D * D)     # output projection W^O


@pytest.mark.parametrize("B, N, D, h", [(2, 7, 32, 4), (1, 16, 64, 8)])
def test_mhsa_flops_equal_analytic_formula(B, N, D, h, device):
    mhsa = al.MultiHeadSelfAttention(D, num_heads=h).eval().to(device)
    flops = count_flops(mhsa, torch.randn(B, N, D, device=device))
    assert flops.total == mhsa_flops(B, N, D, h)
    assert flops.by_operator["bmm"] == B * 4 * N * N * D      # attention itself is counted
    assert flops.by_operator["softmax"] == B * 3 * h * N * N
    assert flops.by_operator["mm"] == B * 6 * N * D * D and flops.by_operator["addmm"] == B * 2 * N * D * D


def test_count_flops_keeps_grad_mode_and_training_mode():
    mhsa = al.MultiHeadSelfAttention(16, num_heads=2)       # training mode, dropout 0
    flops = count_flops(mhsa, torch.randn(1, 5, 16))
    assert torch.is_grad_enabled() and mhsa.training
    assert int(flops) == mhsa_flops(1, 5, 16, 2)
    assert sum(flops.by_operator.values()) == flops.total


# --- summary and benchmark ------------------------------------------------------------------------

def test_summary_wraps_torchinfo_silently(capfd):
    se = al.SqueezeExcitation(64, reduction=16)
    stats = summary(se, (1, 64, 8, 8))
    assert stats.total_params == 580
    assert "Linear" in str(stats)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_summary_of_a_whole_network_fits_a_page_without_wrapping():
    net = al.TinyCNN(attention="bam")
    lines = str(summary(net, (1, 3, 32, 32))).splitlines()
    assert len(lines) > 20 and max(len(line) for line in lines) <= 80   # the site's output column holds 81


def test_benchmark_measures_a_known_duration():
    result = benchmark(time.sleep, 0.002, min_run_time=0.05, warmup=1)
    assert 0.002 <= result.median < 0.05
    assert result.iqr >= 0 and result.runs >= 1 and result.calls_per_run >= 1
    assert "ms" in repr(result) and "median" in repr(result)


def test_benchmark_times_a_module_and_ranks_sizes():
    se = al.SqueezeExcitation(32, reduction=4).eval()
    small = benchmark(se, torch.randn(1, 32, 4, 4), min_run_time=0.05)
    large = benchmark(se, torch.randn(8, 32, 64, 64), min_run_time=0.05)
    assert 0 < small.median < 1 and large.median > small.median


def test_count_flops_counts_matrix_vector_products():
    # aten.mv (ECA's window product) has no formula in torch's counter: 2 FLOPs per multiply-add, as mm.
    m, v = torch.randn(6, 5), torch.randn(5)
    assert count_flops(lambda a: a @ v, m).total == 2 * 6 * 5
    eca = al.EfficientChannelAttention(32).eval()
    x = torch.randn(2, 32, 4, 5)
    assert count_flops(eca, x).total == count_flops(eca, x, method="forward_explicit").total


@pytest.mark.parametrize("seconds,shown", [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 µs"), (7e-9, "7 ns")])
def test_format_time_picks_the_unit_and_writes_micro_as_the_sign(seconds, shown):
    from attention_lib.toolkit.format import format_time
    assert format_time(seconds) == shown
