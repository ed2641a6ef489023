"""Naive references written from the papers' equations, independent of attention_lib's code.

Each takes a module only to borrow its weights; the computation is the equation, spelled out.
"""
import math

import torch
import torch.nn.functional as F


def bn_eval(x, bn):
    """BatchNorm in eval mode: (x - running_mean) / sqrt(running_var + eps) * gamma + beta, on dim 1."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def linear(x, layer):
    y = x @ layer.weight.T
    return y + layer.bias if layer.bias is not None else y


def self_attention(m, x):
    """MultiHead(X) = Concat(head_1..head_h) W^O, head_i = softmax(Q_i K_i^T / sqrt(d_k)) V_i."""
    D, h = m.dim, m.num_heads
    dk = D // h
    Wq, Wk, Wv = m.qkv.weight.split(D)
    bq, bk, bv = m.qkv.bias.split(D) if m.qkv.bias is not None else (0, 0, 0)
    heads = []
    for i in range(h):
        s = slice(i * dk, (i + 1) * dk)
        Q = x @ Wq[s].T + (bq[s] if torch.is_tensor(bq) else 0)
        K = x @ Wk[s].T + (bk[s] if torch.is_tensor(bk) else 0)
        V = x @ Wv[s].T + (bv[s] if torch.is_tensor(bv) else 0)
        A = torch.exp(Q @ K.transpose(-1, -2) / math.sqrt(dk))
        A = A / A.sum(-1, keepdim=True)
        heads.append(A @ V)
    return linear(torch.cat(heads, -1), m.proj), heads


def double_norm(logits, eps=1e-9):
    """alpha_hat = exp / sum over tokens (dim -2); alpha = alpha_hat / (eps + sum over slots)."""
    e = torch.exp(logits - logits.amax(dim=-2, keepdim=True))
    a = e / e.sum(dim=-2, keepdim=True)
    return a / (eps + a.sum(dim=-1, keepdim=True))


def external_attention(m, x):
    A = double_norm(x @ m.M_k.weight.T)           # (B, N, S)
    return A @ m.M_v.weight.T, A


def multi_head_external_attention(m, x):
    B, N, D = x.shape
    t = linear(x, m.trans_dims)                   # (B, N, coef D)
    H, d = m.num_heads, m.head_dim
    outs = []
    for i in range(H):
        f = t[..., i * d:(i + 1) * d]             # (B, N, d)
        A = double_norm(linear(f, m.M_k))         # (B, N, S)
        outs.append(linear(A, m.M_v))
    return linear(torch.cat(outs, -1), m.proj)


def squeeze_excitation(m, x):
    z = x.sum((2, 3)) / (x.shape[2] * x.shape[3])
    s = torch.sigmoid(linear(torch.relu(linear(z, m.fc1)), m.fc2))
    return x * s[:, :, None, None], s


def eca(m, x):
    """omega_c = sigma(sum_j w_j y_{c + j - (k-1)/2}), zero outside the channel range."""
    y = x.mean((2, 3))                              # (B, C)
    k = m.kernel_size
    w = m.conv.weight.view(k)
    B, C = y.shape
    padded = torch.cat([y.new_zeros(B, (k - 1) // 2), y, y.new_zeros(B, (k - 1) // 2)], 1)
    out = torch.stack([(padded[:, c:c + k] * w).sum(1) for c in range(C)], 1)
    s = torch.sigmoid(out)
    return x * s[:, :, None, None], s


def cbam(m, x, spatial_norm=True):
    mlp = m.channel_gate.mlp
    def MLP(v):
        return linear(torch.relu(linear(v, mlp[0])), mlp[2])
    Mc = torch.sigmoid(MLP(x.mean((2, 3))) + MLP(x.amax((2, 3))))[:, :, None, None]
    F1 = Mc * x
    pooled = torch.cat([F1.mean(1, keepdim=True), F1.amax(1, keepdim=True)], 1)   # [AvgPool; MaxPool]
    conv = m.spatial_gate.conv
    s = F.conv2d(pooled, conv.weight, conv.bias, padding=conv.kernel_size[0] // 2)
    if spatial_norm:
        s = bn_eval(s, m.spatial_gate.norm)
    Ms = torch.sigmoid(s)
    return Ms * F1, Mc, Ms


def bam(m, x, fusion="sum"):
    mlp = m.channel_mlp
    Mc = linear(torch.relu(bn_eval(linear(x.mean((2, 3)), mlp[0]), mlp[1])), mlp[3])[:, :, None, None]
    sp = m.spatial
    h = x
    for i in (0, 3, 6):                     # conv, BN, ReLU triples
        conv = sp[i]
        h = torch.relu(bn_eval(F.conv2d(h, conv.weight, conv.bias, padding=conv.padding,
                                        dilation=conv.dilation), sp[i + 1]))
    Ms = F.conv2d(h, sp[9].weight, sp[9].bias)
    M = torch.sigmoid(Mc + Ms if fusion == "sum" else Mc * Ms)
    return x + x * M, M


def selective_kernel(m, x):
    """Split, fuse (U = sum U_k, s = GAP(U), z = relu(BN(W s))), select (softmax over K), V = sum a_k U_k."""
    U = []
    for branch in m.branches:
        conv, bn = branch[0], branch[1]
        U.append(torch.relu(bn_eval(F.conv2d(x, conv.weight, None, padding=conv.padding, dilation=conv.dilation,
                                             groups=conv.groups), bn)))
    U_all = torch.stack(U, 1)                           # (B, K, C, H, W)
    s = U_all.sum(1).mean((2, 3))                       # (B, C)
    z = torch.relu(bn_eval(s @ m.fuse[0].weight.T, m.fuse[1]))
    logits = (z @ m.select.weight.T).view(x.shape[0], len(U), -1)   # (B, K, C)
    a = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    return (U_all * a[..., None, None]).sum(1), a


# ---------------------------------------------------------------- how each map is applied, and its shape

def _apply_self_attention(m, a, x):
    _, _, v = m._qkv(x)
    B, h, N, dk = v.shape
    return m.proj((a @ v).transpose(1, 2).reshape(B, N, h * dk))


def _apply_multi_head_external(m, a, x):
    y = a @ m.M_v.weight.T + m.M_v.bias                      # (B, H, N, d)
    B, H, N, d = y.shape
    return m.proj(y.transpose(1, 2).reshape(B, N, H * d))


def _apply_selective_kernel(m, a, x):
    U = torch.stack([b(x) for b in m.branches], 1)           # (B, K, C, H, W)
    return (U * a).sum(1)


#: ``APPLY[name](module, attention_map(x), x)``: the paper's equation applied to the map; equals forward(x).
APPLY = {
    "self_attention": _apply_self_attention,
    "external_attention": lambda m, a, x: a @ m.M_v.weight.T,
    "multi_head_external_attention": _apply_multi_head_external,
    "squeeze_excitation": lambda m, a, x: x * a,
    "eca": lambda m, a, x: x * a,
    "cbam": lambda m, a, x: x * a.channel * a.spatial,
    "bam": lambda m, a, x: (1 + a) * x,
    "selective_kernel": _apply_selective_kernel,
}


def _gate(a, shape):
    assert a.shape == shape and ((a > 0) & (a < 1)).all()


def _distribution(a, shape, dim):
    assert a.shape == shape
    torch.testing.assert_close(a.sum(dim), torch.ones(shape[:dim] + shape[dim + 1:] if dim >= 0 else shape[:dim]))


def _cbam_maps(a, B):
    assert a._fields == ("channel", "spatial")
    _gate(a.channel, (B, 64, 1, 1))
    _gate(a.spatial, (B, 1, 8, 8))


#: ``MAP_CHECKS[name](map, B)``: the map's shape at the registry's example size, and its normalisation
#: (gates in (0, 1); distributions sum to 1 over the attended axis).
MAP_CHECKS = {
    "self_attention": lambda a, B: _distribution(a, (B, 8, 16, 16), -1),
    "external_attention": lambda a, B: _distribution(a, (B, 16, 64), -1),
    "multi_head_external_attention": lambda a, B: _distribution(a, (B, 32, 16, 64), -1),
    "squeeze_excitation": lambda a, B: _gate(a, (B, 64, 1, 1)),
    "eca": lambda a, B: _gate(a, (B, 64, 1, 1)),
    "cbam": _cbam_maps,
    "bam": lambda a, B: _gate(a, (B, 64, 8, 8)),
    "selective_kernel": lambda a, B: _distribution(a, (B, 2, 64, 1, 1), 1),
}
