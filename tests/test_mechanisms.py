"""Every mechanism against its paper: naive references, attention_map semantics, edge cases, dtypes."""
import copy
import io
import math

import pytest
import torch
from torch import nn

import attention_lib as al
from attention_lib import MECHANISMS

from . import references as ref

NAMES = list(MECHANISMS)
FEATURE_MAP = [n for n in NAMES if MECHANISMS[n].layout == "feature_map"]
TOKENS = [n for n in NAMES if MECHANISMS[n].layout == "tokens"]


def randomize(module: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(1)
    for mod in module.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            with torch.no_grad():
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
    return module.eval()


def build(name, **kw):
    return randomize(MECHANISMS[name].build(**kw))


def apply_map(name, m, x):
    """Applies attention_map(x) as the paper's equation says; must reproduce forward(x) in eval mode."""
    return ref.APPLY[name](m, m.attention_map(x), x)


# ---------------------------------------------------------------- the registry


def test_registry_lists_the_eight_mechanisms_with_their_papers():
    assert set(NAMES) == {"self_attention", "external_attention", "multi_head_external_attention",
                          "squeeze_excitation", "selective_kernel", "cbam", "bam", "eca"}
    years = {n: MECHANISMS[n].year for n in NAMES}
    assert years["self_attention"] == 2017 and years["squeeze_excitation"] == 2018 and years["eca"] == 2020
    for n, m in MECHANISMS.items():
        assert m.name == n and m.title and m.authors and m.venue and re.fullmatch(r"\d{4}\.\d{5}", m.arxiv)
        assert m.layout in ("tokens", "feature_map")
        x = m.example_input(3)
        assert x.dim() == (3 if m.layout == "tokens" else 4) and x.shape[0] == 3
    with pytest.raises(Exception):
        MECHANISMS["x"] = None
    with pytest.raises(Exception):
        MECHANISMS["eca"].year = 1999


def test_patch_embedding_is_a_building_block_not_a_mechanism():
    assert al.PatchEmbedding not in {m.cls for m in MECHANISMS.values()}
    assert not hasattr(al.PatchEmbedding(), "attention_map")


import re  # noqa: E402  (used above)


# ---------------------------------------------------------------- naive references


def test_self_attention_equals_per_head_equations():
    m = build("self_attention", qkv_bias=True)
    x = torch.randn(2, 13, 64)
    expected, heads = ref.self_attention(m, x)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.forward_explicit(x), expected, atol=1e-5, rtol=1e-5)


def test_self_attention_sdpa_path_equals_explicit_path():
    m = build("self_attention")
    x = torch.randn(3, 31, 64)
    torch.testing.assert_close(m(x), m.forward_explicit(x), atol=1e-5, rtol=1e-5)


def test_self_attention_equals_torch_multihead_attention_with_copied_weights():
    m = build("self_attention", qkv_bias=True)
    mha = nn.MultiheadAttention(64, 8, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(m.qkv.weight)
        mha.in_proj_bias.copy_(m.qkv.bias)
        mha.out_proj.weight.copy_(m.proj.weight)
        mha.out_proj.bias.copy_(m.proj.bias)
    x = torch.randn(2, 9, 64)
    out, weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(m(x), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.attention_map(x), weights, atol=1e-6, rtol=1e-5)


def test_timm_style_state_dict_loads_directly():
    keys = set(al.MultiHeadSelfAttention(64).state_dict())
    assert keys == {"qkv.weight", "proj.weight", "proj.bias"}
    assert al.MultiHeadSelfAttention(64, qkv_bias=True).qkv.bias.shape == (192,)


def test_external_attention_equals_double_normalisation_equations():
    m = build("external_attention", memory_size=24)
    x = torch.randn(2, 11, 64)
    expected, A = ref.external_attention(m, x)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.attention_map(x), A, atol=1e-6, rtol=1e-5)


def test_external_attention_softmax_is_over_tokens_then_l1_over_slots():
    m = build("external_attention", memory_size=5)
    x = torch.randn(1, 7, 64)
    logits = x @ m.M_k.weight.T
    a = m.attention_map(x)
    torch.testing.assert_close(a.sum(-1), torch.ones(1, 7), atol=1e-6, rtol=0)
    # Column ratios are those of the softmax over tokens: renormalising rows does not change them.
    col = logits.softmax(dim=1)
    torch.testing.assert_close(a / a[:, :1], (col / col.sum(-1, keepdim=True)) / (col / col.sum(-1, keepdim=True))[:, :1])


def test_external_attention_has_no_nan_when_a_token_gets_no_mass():
    # Token 0 is tiny next to a huge token 1: exp underflows to exactly 0 for token 0 in every slot,
    # so its L1 sum is 0 and 0 / 0 would be NaN without the epsilon.
    m = al.ExternalAttention(4, memory_size=3).eval()
    with torch.no_grad():
        m.M_k.weight.copy_(torch.ones(3, 4))
    x = torch.zeros(1, 2, 4)
    x[0, 1] = 100.0
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        out = m.to(dtype)(x.to(dtype))
        assert torch.isfinite(out).all(), dtype
        assert torch.equal(m.attention_map(x.to(dtype))[0, 0], torch.zeros(3, dtype=dtype))


def test_external_attention_normalises_in_float32_under_autocast():
    m = al.ExternalAttention(64).eval()
    x = torch.randn(2, 50, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = m.attention_map(x)
    assert a.dtype == torch.bfloat16          # computed in float32, handed back in the autocast dtype
    torch.testing.assert_close(a.float(), m.attention_map(x), atol=2e-2, rtol=5e-2)


def test_multi_head_external_attention_equals_official_layout_equations():
    m = build("multi_head_external_attention")
    x = torch.randn(2, 10, 64)
    torch.testing.assert_close(m(x), ref.multi_head_external_attention(m, x), atol=1e-5, rtol=1e-5)


def test_multi_head_external_attention_official_layout_sizes():
    m = al.MultiHeadExternalAttention(64, num_heads=8)
    assert (m.coef, m.num_heads, m.head_dim, m.memory_size) == (4, 32, 8, 64)   # 64 = 256 // coef
    assert m.trans_dims.weight.shape == (256, 64) and m.proj.weight.shape == (64, 256)
    assert m.M_k.bias is not None and m.M_v.bias is not None


def test_squeeze_excitation_equals_equations():
    m = build("squeeze_excitation")
    x = torch.randn(2, 64, 5, 7)
    out, s = ref.squeeze_excitation(m, x)
    torch.testing.assert_close(m(x), out)
    torch.testing.assert_close(m.attention_map(x)[:, :, 0, 0], s)
    assert isinstance(m.act, nn.ReLU) and m.fc1.bias is not None and m.fc2.bias is not None


@pytest.mark.parametrize("channels,k", [(64, 3), (256, 5), (512, 5), (2048, 7), (1, 1), (16, 3), (8, 3)])
def test_eca_kernel_rule_of_the_official_code(channels, k):
    t = int(abs((math.log2(channels) + 1) / 2))
    assert k == (t if t % 2 else t + 1)
    assert al.eca_kernel_size(channels) == k
    assert al.EfficientChannelAttention(channels).kernel_size == k


@pytest.mark.parametrize("kernel_size", [None, 5, 1])
def test_eca_equals_local_cross_channel_equation(kernel_size):
    m = build("eca", kernel_size=kernel_size)
    x = torch.randn(2, 64, 4, 6)
    out, s = ref.eca(m, x)
    torch.testing.assert_close(m(x), out)
    torch.testing.assert_close(m.attention_map(x)[:, :, 0, 0], s)
    assert m.conv.bias is None and m.conv.weight.numel() == (kernel_size or 3)


@pytest.mark.parametrize("spatial_norm", [True, False])
def test_cbam_equals_equations(spatial_norm):
    m = build("cbam", spatial_norm=spatial_norm)
    x = torch.randn(2, 64, 6, 9)
    out, Mc, Ms = ref.cbam(m, x, spatial_norm)
    torch.testing.assert_close(m(x), out, atol=1e-5, rtol=1e-5)
    a = m.attention_map(x)
    torch.testing.assert_close(a.channel, Mc)
    torch.testing.assert_close(a.spatial, Ms, atol=1e-6, rtol=1e-5)
    assert isinstance(m.spatial_gate.norm, nn.BatchNorm2d) == spatial_norm
    assert (m.spatial_gate.conv.bias is None) == spatial_norm


def test_cbam_spatial_pooling_order_is_average_then_max():
    m = build("cbam")
    x = torch.randn(1, 64, 5, 5)
    with torch.no_grad():
        m.spatial_gate.conv.weight.zero_()
        m.spatial_gate.conv.weight[0, 0, 3, 3] = 1.0        # reads only the first pooled map, centre tap
    f1 = x * m.attention_map(x).channel
    expected = torch.sigmoid(ref.bn_eval(f1.mean(1, keepdim=True), m.spatial_gate.norm))
    torch.testing.assert_close(m.attention_map(x).spatial, expected)


def test_cbam_has_no_residual_inside():
    m = build("cbam")
    x = torch.randn(2, 64, 4, 4)
    a = m.attention_map(x)
    torch.testing.assert_close(m(x), x * a.channel * a.spatial)
    assert not torch.allclose(m(x), x + x * a.channel * a.spatial)


@pytest.mark.parametrize("fusion", ["sum", "product"])
def test_bam_equals_equations(fusion):
    m = build("bam", fusion=fusion)
    x = torch.randn(2, 64, 7, 5)
    out, M = ref.bam(m, x, fusion)
    torch.testing.assert_close(m(x), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.attention_map(x), M, atol=1e-6, rtol=1e-5)


def test_bam_official_layout_one_hidden_layer_two_dilated_convs():
    m = al.BAM(64)
    convs = [c for c in m.spatial if isinstance(c, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3), (1, 1)]
    assert [c.dilation for c in convs] == [(1, 1), (4, 4), (4, 4), (1, 1)]
    assert all(c.bias is not None for c in convs)
    assert [type(l).__name__ for l in m.channel_mlp] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]


@pytest.mark.parametrize("kw", [{}, {"dilated": False}, {"kernel_sizes": (3, 5, 7), "groups": 64},
                                {"kernel_sizes": (1, 3, 5, 7), "groups": 4, "dilated": False}])
def test_selective_kernel_equals_split_fuse_select_equations(kw):
    m = build("selective_kernel", **kw)
    x = torch.randn(2, 64, 9, 6)
    out, a = ref.selective_kernel(m, x)
    torch.testing.assert_close(m(x), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.attention_map(x)[..., 0, 0], a, atol=1e-6, rtol=1e-5)


def test_selective_kernel_realises_large_kernels_as_dilated_3x3():
    m = al.SelectiveKernel(64, kernel_sizes=(3, 5, 7))
    convs = [b[0] for b in m.branches]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert [c.dilation for c in convs] == [(1, 1), (2, 2), (3, 3)]
    true = al.SelectiveKernel(64, kernel_sizes=(3, 5, 7), dilated=False)
    assert [b[0].kernel_size for b in true.branches] == [(3, 3), (5, 5), (7, 7)]
    assert [type(l).__name__ for l in m.fuse] == ["Linear", "BatchNorm1d", "ReLU"]
    assert m.fuse[0].out_features == 32       # d = max(C / r, L) = max(4, 32)


def test_patch_embedding_equals_flattened_patches_times_E():
    m = al.PatchEmbedding(patch_size=4, in_channels=3, dim=10)
    x = torch.randn(2, 3, 8, 12)
    patches = x.unfold(2, 4, 4).unfold(3, 4, 4)                      # (B, C, 2, 3, 4, 4)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(2, 6, 48)    # (B, N, P^2 C), row-major patches
    expected = patches @ m.proj.weight.reshape(10, 48).T + m.proj.bias
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- attention_map semantics


@pytest.mark.parametrize("name", NAMES)
def test_attention_map_reproduces_forward(name, device):
    m = build(name).to(device)
    x = MECHANISMS[name].example_input(2, device=device)
    torch.testing.assert_close(apply_map(name, m, x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_attention_map_shape_and_normalisation(name):
    m = build(name)
    x = MECHANISMS[name].example_input(2)
    ref.MAP_CHECKS[name](m.attention_map(x), 2)


# ---------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_independent_in_eval_mode(name, device):
    m = build(name).to(device)
    x = MECHANISMS[name].example_input(3, device=device)
    together = m(x)
    for i in range(3):
        torch.testing.assert_close(m(x[i:i + 1]), together[i:i + 1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_odd_sizes_non_square_and_one_by_one(name, device):
    entry = MECHANISMS[name]
    m = build(name).to(device)
    sizes = [dict(num_tokens=1), dict(num_tokens=7)] if entry.layout == "tokens" else \
        [dict(height=1, width=1), dict(height=3, width=11), dict(height=10, width=2)]
    for s in sizes:
        x = entry.example_input(1, **s, device=device)
        y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_batch_size_one_in_training_mode_where_batchnorm_allows(name, device):
    m = MECHANISMS[name].build().train().to(device)
    x = MECHANISMS[name].example_input(1, device=device)
    if not MECHANISMS[name].batch_one_training:   # BatchNorm1d on a (1, C) descriptor: one value per channel
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            m(x)
        m(MECHANISMS[name].example_input(2, device=device)).sum().backward()
    else:
        m(x).sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_in_float64(name):
    entry = MECHANISMS[name]
    small = entry.small_kwargs
    m = randomize(entry.cls(**small)).double()
    sizes = dict(num_tokens=5, dim=8) if entry.layout == "tokens" else dict(channels=8, height=3, width=4)
    x = entry.example_input(2, **sizes, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_autocast_bfloat16_is_close_to_float32(name, device):
    m = build(name).to(device)
    x = MECHANISMS[name].example_input(2, device=device)
    ref_out = m(x)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = m(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    rel = (out.float() - ref_out).norm() / ref_out.norm()
    assert rel < 0.05, f"relative error {rel:.3f}"


@pytest.mark.parametrize("name", NAMES)
def test_float16_autocast_runs_and_stays_finite(name, device):
    m = build(name).to(device)
    x = MECHANISMS[name].example_input(2, device=device)
    with torch.autocast(device.type, dtype=torch.float16):
        out = m(x)
    assert torch.isfinite(out).all()
    assert (out.float() - m(x)).norm() / m(x).norm() < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_double_and_state_dict_round_trip(name):
    m = build(name)
    x = MECHANISMS[name].example_input(2)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    other = MECHANISMS[name].build().eval()
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    torch.testing.assert_close(other(x), m(x))
    d = copy.deepcopy(m).double()
    torch.testing.assert_close(d(x.double()).float(), m(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_full_graph_twice_without_recompiling_errors(name, device):
    torch._dynamo.reset()
    m = build(name).to(device)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    for B in (2, 3):
        x = MECHANISMS[name].example_input(B, device=device)
        torch.testing.assert_close(compiled(x), m(x), atol=1e-5, rtol=1e-5)


def test_torch_compile_with_inductor():
    torch._dynamo.reset()
    m = build("squeeze_excitation")
    x = MECHANISMS["squeeze_excitation"].example_input(2)
    torch.testing.assert_close(torch.compile(m)(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_forward_prints_nothing(name, capsys):
    m = build(name)
    m(MECHANISMS[name].example_input(1))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------- parameter counts (analytic)


def test_parameter_counts_equal_the_formulas():
    def count(m):
        return sum(p.numel() for p in m.parameters())
    C, r, D = 64, 16, 64
    h = C // r
    # SE: W1 (C/r x C) + b1 (C/r) + W2 (C x C/r) + b2 (C)
    assert count(al.SqueezeExcitation(64)) == C * h + h + h * C + C == 580
    # ECA: k weights, no bias
    assert count(al.EfficientChannelAttention(256)) == 5
    # CBAM: shared MLP (2 C C/r + C/r + C) + k^2 * 2 conv weights + BN (2)
    assert count(al.CBAM(64)) == 2 * C * h + h + C + 7 * 7 * 2 + 2 == 680
    assert count(al.CBAM(64, spatial_norm=False)) == 2 * C * h + h + C + 7 * 7 * 2 + 1
    # BAM: MLP (C C/r + C/r + 2 C/r BN + C/r C + C) + spatial (C C/r + C/r + 2 C/r) + 2 (9 (C/r)^2 + C/r + 2 C/r) + (C/r + 1)
    bam = C * h + h + 2 * h + h * C + C + (C * h + h + 2 * h) + 2 * (9 * h * h + h + 2 * h) + (h + 1)
    assert count(al.BAM(64)) == bam == 1173
    # SK (3, 5), dilated: K (9 C^2 + 2 C) + C d + 2 d + d K C with d = max(C / r, 32) = 32
    d, K = 32, 2
    assert count(al.SelectiveKernel(64)) == K * (9 * C * C + 2 * C) + C * d + 2 * d + d * K * C == 80192
    # SK (3, 5) with true kernels: (9 + 25) C^2 instead of 2 * 9 C^2
    assert count(al.SelectiveKernel(64, dilated=False)) == (9 + 25) * C * C + K * 2 * C + C * d + 2 * d + d * K * C
    # MHSA: 3 D^2 (qkv, no bias) + D^2 + D (proj)
    assert count(al.MultiHeadSelfAttention(64)) == 3 * D * D + D * D + D == 16448
    # External: S D + D S
    assert count(al.ExternalAttention(64, memory_size=64)) == 2 * 64 * 64
    # Multi-head External: D coefD + coefD, (d S + S) + (S d + d), coefD D + D; d = D / heads
    dd, S, c = 8, 64, 4
    assert count(al.MultiHeadExternalAttention(64)) == D * c * D + c * D + (dd * S + S) + (S * dd + dd) + c * D * D + D
    # Patch embedding: D (P^2 C) + D
    assert count(al.PatchEmbedding(16, 3, 768)) == 768 * 16 * 16 * 3 + 768


def test_every_layer_is_registered():
    # The seed kept heads and branches in plain lists: their parameters were invisible to the optimiser.
    assert sum(p.numel() for p in al.MultiHeadExternalAttention(64).parameters()) > 0
    sk = al.SelectiveKernel(64)
    assert len(list(sk.branches.parameters())) == 2 * 3 and isinstance(sk.branches, nn.ModuleList)
    for name in NAMES:
        m = MECHANISMS[name].build()
        assert {n for n, _ in m.named_parameters()} == set(dict(m.named_parameters()))
        assert len(m.state_dict()) >= len(list(m.parameters()))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", NAMES)
def test_wrong_rank_wrong_width_and_integer_input_raise_value_error(name):
    m = MECHANISMS[name].build().eval()
    if MECHANISMS[name].layout == "tokens":
        bad = [torch.randn(16, 64), torch.randn(2, 16, 32), torch.randn(2, 3, 16, 64)]
        expected = r"\(B, N, 64\)"
    else:
        bad = [torch.randn(64, 8, 8), torch.randn(2, 32, 8, 8), torch.randn(2, 64, 8)]
        expected = r"\(B, 64, H, W\)"
    for x in bad:
        with pytest.raises(ValueError, match=expected) as info:
            m(x)
        assert "(" + ", ".join(map(str, x.shape)) + ")" in str(info.value)
        with pytest.raises(ValueError, match=expected):
            m.attention_map(x)
    x = MECHANISMS[name].example_input(1).to(torch.int64)
    with pytest.raises(ValueError, match="floating"):
        m(x)


@pytest.mark.parametrize("make,match", [
    (lambda: al.MultiHeadSelfAttention(64, num_heads=7), "divisible"),
    (lambda: al.MultiHeadExternalAttention(64, num_heads=5), "divisible"),
    (lambda: al.MultiHeadSelfAttention(0), "positive"),
    (lambda: al.ExternalAttention(64, memory_size=0), "positive"),
    (lambda: al.SqueezeExcitation(8, reduction=16), "no hidden unit"),
    (lambda: al.SqueezeExcitation(0), "positive"),
    (lambda: al.CBAM(8, reduction=16), "no hidden unit"),
    (lambda: al.BAM(8, reduction=16), "no hidden unit"),
    (lambda: al.CBAM(64, spatial_kernel=6), "odd"),
    (lambda: al.EfficientChannelAttention(64, kernel_size=4), "odd"),
    (lambda: al.SelectiveKernel(64, kernel_sizes=(3, 4)), "odd"),
    (lambda: al.SelectiveKernel(64, kernel_sizes=()), "at least one"),
    (lambda: al.SelectiveKernel(64, groups=5), "divisible"),
    (lambda: al.BAM(64, fusion="mean"), "sum"),
    (lambda: al.PatchEmbedding(patch_size=0), "positive"),
])
def test_impossible_configurations_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_selective_kernel_floor_keeps_a_hidden_layer_for_few_channels():
    assert al.SelectiveKernel(8, reduction=16).fuse[0].out_features == 32


def test_patch_embedding_refuses_to_drop_pixels():
    m = al.PatchEmbedding(patch_size=16, in_channels=3, dim=32)
    with pytest.raises(ValueError, match=r"divisible by patch_size=16.*\(1, 3, 30, 32\)"):
        m(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m(torch.randn(1, 4, 32, 32))
    assert m(torch.randn(1, 3, 32, 48)).shape == (1, 6, 32)
