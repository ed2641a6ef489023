"""Every optimised forward equals the plain equation it replaces (see each module's docstring).

The fast paths: MultiHeadExternalAttention (head chunks, [M_v; 1] product, division after it),
SelectiveKernel (BatchNorm folded, channels_last, in-place accumulation), CBAM (in-place
final product without autograd), ECA (window product instead of a conv1d call),
MultiHeadSelfAttention (SDPA). The benchmark suite that
motivates them is smoke-tested at the end, at tiny sizes: it must produce its table and JSON.
"""
import json

import pytest
import torch
from torch import nn

import attention_lib as al
import attention_lib.external_attention as ea

from . import references as ref
from .test_mechanisms import randomize


# ---------------------------------------------------------------- multi-head External Attention

def eanet_all_heads(m, x):
    """The official EANet layer, all heads at once, A built in full (the plain equation)."""
    B, N, _ = x.shape
    t = ref.linear(x, m.trans_dims).view(B, N, m.num_heads, m.head_dim).transpose(1, 2)   # (B, H, N, d)
    attn = ref.double_norm(ref.linear(t, m.M_k))                                        # (B, H, N, S)
    y = ref.linear(attn, m.M_v).transpose(1, 2).reshape(B, N, -1)                        # (B, N, coef D)
    return ref.linear(y, m.proj)


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
@pytest.mark.parametrize("chunk_bytes", [1, 5 * 64 * 17 * 4, 1 << 30])   # one pair, 5 pairs (+ remainder), all
def test_multi_head_external_attention_chunked_forward_equals_equation(monkeypatch, chunk_bytes, grad, device):
    monkeypatch.setattr(ea, "_CHUNK_BYTES", chunk_bytes)
    m = randomize(al.MultiHeadExternalAttention(24, num_heads=2, memory_size=64, coef=4)).to(device)   # 8 heads
    x = torch.randn(3, 17, 24, device=device)
    with torch.set_grad_enabled(grad):
        out = m(x)
    torch.testing.assert_close(out, eanet_all_heads(m, x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, m.forward_explicit(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("make", [lambda: (al.MultiHeadExternalAttention(16, 2), torch.randn(2, 9, 16)),
                                  lambda: (al.SelectiveKernel(16, (3, 5, 7), min_dim=4), torch.randn(2, 16, 7, 5))],
                         ids=["multi_head_external_attention", "selective_kernel"])
def test_inference_paths_compile_in_full_graph(make):
    torch._dynamo.reset()
    m, x = make()
    m = randomize(m)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), m.forward_explicit(x), atol=1e-5, rtol=1e-4)


def test_multi_head_external_attention_fast_path_is_exact_in_double(monkeypatch):
    monkeypatch.setattr(ea, "_CHUNK_BYTES", 1)
    m = randomize(al.MultiHeadExternalAttention(16, num_heads=4)).double()
    x = torch.randn(2, 33, 16, dtype=torch.float64) * 3
    torch.testing.assert_close(m(x), eanet_all_heads(m, x), atol=1e-12, rtol=1e-10)


def test_multi_head_external_attention_fast_path_gradients_equal_the_equation(monkeypatch):
    monkeypatch.setattr(ea, "_CHUNK_BYTES", 1)
    m = randomize(al.MultiHeadExternalAttention(16, num_heads=2)).double().train()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    g = torch.randn(2, 9, 16, dtype=torch.float64)
    grads = []
    for fn in (m, lambda v: eanet_all_heads(m, v)):
        m.zero_grad()
        (fn(x) * g).sum().backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_multi_head_external_attention_with_attention_dropout_trains_on_the_equation_path():
    m = al.MultiHeadExternalAttention(16, num_heads=2, attn_drop=0.5).train()
    x = torch.randn(2, 9, 16)
    torch.manual_seed(3)
    a = m(x)
    torch.manual_seed(3)
    b = m.forward_explicit(x)
    torch.testing.assert_close(a, b)


def test_multi_head_external_attention_large_logits_stay_finite_under_float16_autocast(device):
    m = randomize(al.MultiHeadExternalAttention(16, num_heads=2)).to(device)
    x = torch.randn(2, 300, 16, device=device) * 30     # softmax over tokens: most entries underflow float16
    with torch.autocast(device.type, dtype=torch.float16):
        out = m(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), eanet_all_heads(m, x), atol=0.05, rtol=0.05)


# ---------------------------------------------------------------- Selective Kernel

@pytest.mark.parametrize("kw", [dict(kernel_sizes=(3, 5)), dict(kernel_sizes=(3, 5, 7), groups=16),
                                dict(kernel_sizes=(3, 5), dilated=False)])
@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_selective_kernel_fast_forward_equals_stacked_equation(kw, grad, device):
    m = randomize(al.SelectiveKernel(16, reduction=4, min_dim=4, **kw)).to(device)
    x = torch.randn(2, 16, 9, 7, device=device)
    expected, _ = ref.selective_kernel(m, x)
    with torch.set_grad_enabled(grad):
        out = m(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, m.forward_explicit(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_selective_kernel_keeps_the_input_memory_format(grad, device):
    m = randomize(al.SelectiveKernel(16, kernel_sizes=(3, 5, 7), reduction=4, min_dim=4)).to(device)
    x = torch.randn(2, 16, 9, 7, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.set_grad_enabled(grad):
        out, out_cl = m(x), m(x_cl)
    assert out.is_contiguous()
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, out, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("channels", [64, 256, 2048])
def test_eca_window_product_equals_conv1d_across_channels(channels, device):
    m = al.EfficientChannelAttention(channels)
    nn.init.normal_(m.conv.weight)
    m = m.to(device)
    x = torch.randn(2, channels, 3, 4, device=device)
    y = x.mean((2, 3))[:, None, :]                                                   # (B, 1, C)
    expected = torch.sigmoid(torch.nn.functional.conv1d(y, m.conv.weight, padding=m.kernel_size // 2))
    torch.testing.assert_close(m.attention_map(x), expected.view(2, channels, 1, 1))
    torch.testing.assert_close(m(x), m.forward_explicit(x))


def test_selective_kernel_training_forward_and_gradients_equal_the_equation():
    m = randomize(al.SelectiveKernel(8, reduction=2, min_dim=4)).double().train()
    x = torch.randn(3, 8, 5, 6, dtype=torch.float64)
    g = torch.randn(3, 8, 5, 6, dtype=torch.float64)
    grads, outs = [], []
    for fn in (m, m.forward_explicit):
        m.zero_grad()
        out = fn(x)
        (out * g).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in m.parameters()])
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_selective_kernel_folded_batchnorm_gradients_match_in_eval_mode():
    m = randomize(al.SelectiveKernel(8, reduction=2, min_dim=4)).double()    # eval: the folded path
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64, requires_grad=True)
    out_fast = m(x)
    gx_fast, = torch.autograd.grad(out_fast.sum(), x)
    out_ref, _ = ref.selective_kernel(m, x)
    gx_ref, = torch.autograd.grad(out_ref.sum(), x)
    torch.testing.assert_close(out_fast, out_ref)
    torch.testing.assert_close(gx_fast, gx_ref)


# ---------------------------------------------------------------- CBAM and self-attention

def test_cbam_in_place_inference_path_equals_the_autograd_path(device):
    m = randomize(al.CBAM(16, reduction=4)).to(device)
    x = torch.randn(2, 16, 6, 5, device=device)
    expected, _, _ = ref.cbam(m, x)
    with torch.inference_mode():
        fast = m(x)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-4)


def test_cbam_does_not_modify_its_input():
    m = randomize(al.CBAM(16, reduction=4))
    x = torch.randn(2, 16, 6, 5)
    before = x.clone()
    with torch.no_grad():
        m(x)
    assert torch.equal(x, before)


def test_self_attention_sdpa_forward_equals_per_head_equation(device):
    m = randomize(al.MultiHeadSelfAttention(32, num_heads=4, qkv_bias=True)).to(device)
    x = torch.randn(2, 21, 32, device=device)
    expected, _ = ref.self_attention(m, x)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- the benchmark suite (smoke, not timings)

def test_benchmark_quick_mode_writes_table_and_json(tmp_path, capsys):
    from benchmarks import run
    out = tmp_path / "results.json"
    result = run.main(["--quick", "--no-memory", "--rounds", "1", "--case-budget", "0", "--min-sample", "0",
                       "--json", str(out)])
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    modules = {r["module"] for r in data["rows"]}
    assert {"MultiHeadSelfAttention", "MultiHeadExternalAttention", "SelectiveKernel", "CBAM",
            "SqueezeExcitation", "EfficientChannelAttention"} <= modules
    for r in data["rows"]:
        assert r["ours_ms"] > 0 and r["baseline_ms"] > 0 and r["ratio"] > 0
        assert r["module"] in table and r["baseline"] in table
    targets = [r for r in data["rows"] if r["target"] is not None]
    assert len(targets) == 11     # MHSA 2 x 2, MHEA 2, SK 2, CBAM, SE, ECA
    assert result["meta"]["quick"] is True


def test_benchmark_memory_probe_runs_in_a_fresh_process():
    from benchmarks import run
    index = next(i for i, c in enumerate(run.build_cases(run.QUICK)) if c.module == "SqueezeExcitation")
    mib = run.memory_cpu("case", index, quick=True, threads=1)
    assert mib is not None and 0 <= mib < 50
