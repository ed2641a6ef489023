"""What a student hands in, and what the checks say: no false pass of a realistic slip, no false fail of a right
answer written another way, a cause named only when it fits, and hints that do not give the answer away.

The first slips are those of the student review (`reviews/2026-12-07/student.md`): each passed, or got a verdict that
blamed the wrong cause, before the checks tried several sizes. The others are slips of the same kinds, thought up
as a student would write them. Every verdict is checked in English and Chinese.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attention_lib as al
from attention_lib import exercises, i18n
from attention_lib.toolkit.exercises import Slip

al.chapters.load_all()


@pytest.fixture(params=["en", "zh"])
def lang(request):
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


def keys_of(check, answer):
    """The i18n keys of the verdict's sentences: the slip, then any sentence added (a case, a likely cause)."""
    try:
        problem = exercises.EXERCISES[check].judge(answer)
    except Slip as slip:
        return [slip.key] + [key for key, _ in slip.more]
    if problem is None:
        return []
    return [problem[0] if isinstance(problem, tuple) else problem]


# ---------------------------------------------------------------- the notebooks' variables a student leans on

d_k, k_global, causal6 = 8, 3, torch.ones(6, 6, dtype=torch.bool).tril()     # chapter 1 §3, chapter 7 §3


def sdpa_global_dk(q, k, v, mask=None):                  # 01.sa.sdpa.04: the notebook's d_k = 8
    scores = q @ k.transpose(-2, -1) / d_k ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def sdpa_sqrt12(q, k, v, mask=None):                     # √12 hard-coded: right in the first case (d_k = 12)
    scores = q @ k.transpose(-2, -1) / 12 ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def causal_n_from_dk(q, k, v):                           # N read off the last axis, which is d_k
    n = q.shape[-1]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(n, n, dtype=torch.bool).tril())


def sdpa_heads_as_dk(q, k, v, mask=None):                # q.size(1) is h, not d_k
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def causal_fixed_mask(q, k, v):                           # 01.sa.causal.09: section 3's 6 x 6 mask
    return F.scaled_dot_product_attention(q, k, v, attn_mask=causal6)


def causal_global_dk(q, k, v):                            # the mask right, the scale from the notebook
    n = q.shape[-2]
    return sdpa_global_dk(q, k, v, torch.ones(n, n, dtype=torch.bool).tril())


def eca_padding_one(x, weight):                           # 07.eca.gate.03
    y = x.mean((2, 3))[:, None, :]
    return torch.sigmoid(F.conv1d(y, weight, padding=1)).transpose(1, 2)[..., None]


def eca_global_k(x, weight):                              # padding = k // 2 with the notebook's k = 3
    y = x.mean((2, 3))[:, None, :]
    return torch.sigmoid(F.conv1d(y, weight, padding=k_global // 2)).transpose(1, 2)[..., None]


def bam_squeeze(F_, m_c, m_s):                            # 06.bam.combine.13: fails at B = 1
    c = m_c.squeeze()[:, :, None, None]
    return F_ * (1 + torch.sigmoid(c + m_s))


def sk_in_place(feats, logits):                           # 04.sk.select.09: the branches scaled in place
    B, C = feats[0].shape[:2]
    a = logits.view(B, len(feats), C).softmax(dim=1)
    for m, u in enumerate(feats):
        u.mul_(a[:, m, :, None, None])
    return sum(feats)


def sk_two_branches(feats, logits):                       # M fixed at 2
    B, C = feats[0].shape[:2]
    a = logits.view(B, 2, C).softmax(dim=1)
    return sum(a[:, m, :, None, None] * u for m, u in enumerate(feats))


def cbam_typo(x, conv):                                   # 05.cbam.spatial.08
    return torch.sigmiod(conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


def cbam_max_pair(x, conv):                               # torch.max(x, 1) is (values, indices)
    return torch.sigmoid(conv(torch.cat([x.mean(1, keepdim=True), torch.max(x, 1, keepdim=True)], 1)))


def ea_dim_one(logits):                                   # right for (B, N, S), wrong with a head axis
    a = logits.float().softmax(dim=1)
    return (a / (1e-9 + a.sum(dim=-1, keepdim=True))).to(logits.dtype)


def se_fixed_channels(x, fc1, fc2):                       # C = 32 written into a view
    z = x.mean((2, 3)).view(x.shape[0], 32)
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def dist_at_most_one(w, dim):                             # "w <= 1" written for "w >= 0"
    return bool((w <= 1).all() and torch.allclose(w.sum(dim), torch.ones(()), atol=1e-5))


def dist_positive(w, dim):                                # "> 0" rejects the exact zeros of a masked softmax
    return bool((w > 0).all() and torch.allclose(w.sum(dim), torch.ones(()), atol=1e-5))


def sk_no_softmax(feats, logits):                         # the raw scores used as weights
    B, C = feats[0].shape[:2]
    a = logits.view(B, len(feats), C)
    return sum(a[:, m, :, None, None] * u for m, u in enumerate(feats))


#: (check, answer, the key the verdict must hold, keys it must not hold)
SLIPS = [
    ("ch00.distribution", dist_at_most_one, "ex.ch00.dist.negative", ()),
    ("ch00.distribution", dist_positive, "ex.ch00.dist.zero", ()),
    ("sk.select", sk_no_softmax, "ex.sk.select.other", ()),
    ("sa.sdpa", sdpa_global_dk, "ex.sa.fixed_scale", ("ex.sa.case.width",)),
    ("sa.sdpa", sdpa_heads_as_dk, "ex.sa.fixed_scale", ("ex.sa.case.width",)),
    ("sa.sdpa", sdpa_sqrt12, "ex.sa.fixed_scale", ("ex.sa.case.width",)),     # one way to read d_k, said once
    ("sa.causal", causal_n_from_dk, "ex.sa.causal.n_axis", ()),
    ("sa.causal", causal_fixed_mask, "ex.fn.fixed_size", ("ex.sa.batch1",)),
    ("sa.causal", causal_global_dk, "ex.sa.fixed_scale", ("ex.sa.case.width",)),
    ("eca.gate", eca_padding_one, "ex.eca.gate.fixed_padding", ()),
    ("eca.gate", eca_global_k, "ex.eca.gate.fixed_padding", ()),
    ("bam.combine", bam_squeeze, "ex.bam.combine.batch1", ()),
    ("sk.select", sk_in_place, "ex.fn.mutated", ()),
    ("sk.select", sk_two_branches, "ex.sk.select.branches", ()),
    ("cbam.spatial", cbam_typo, "ex.fn.raised", ("ex.cbam.spatial.axis",)),
    ("cbam.spatial", cbam_max_pair, "ex.fn.return_types", ("ex.cbam.spatial.axis",)),
    ("ea.double_norm", ea_dim_one, "ex.ea.case.heads", ()),
    ("se.gate", se_fixed_channels, "ex.se.gate.channels", ()),
    ("cmp.slope", 4, "ex.cmp.slope.factor", ()),
    ("cmp.slope", 2.25, "ex.cmp.slope.measured", ()),
    ("se.shape", np.array([8, 256, 1, 1]), "ex.answer.shape.array", ()),
    ("se.shape", (8, 1, 1, 256), "ex.se.shape.channels_last", ()),
    ("bam.shape", (8, 32, 28, 28), "ex.bam.shape.reduced", ()),
    ("bam.params", 17361 - (9 * 16 * 16 + 3 * 16), "ex.bam.params.one_dilated", ()),
]


@pytest.mark.parametrize("check,answer,key,never", SLIPS, ids=[f"{c}-{k}" for c, _, k, _ in SLIPS])
def test_a_realistic_slip_fails_and_its_verdict_names_it(check, answer, key, never, lang):
    result, message = exercises.verdict(check, answer)
    assert result is False, f"{check} passed a slip: {message}"
    found = keys_of(check, answer)
    assert key in found and not set(never) & set(found), f"{check}: {found}: {message}"


def test_an_input_changed_inside_the_list_is_named_by_its_item(lang):
    result, message = exercises.verdict("sk.select", sk_in_place)
    assert result is False and "feats[0]" in message


def test_the_select_check_names_the_branch_case_not_the_logits(lang):
    result, message = exercises.verdict("sk.select", sk_two_branches)
    assert "M = 3" in message and "(1, 12)" not in message


def test_a_pair_of_maps_handed_in_is_described_without_their_values(lang):
    maps = al.CBAM(256).eval().attention_map(torch.randn(2, 256, 4, 4))
    result, message = exercises.verdict("cbam.shapes", maps)
    assert result is False and "tensor(2, 256, 1, 1)" in message and "[[" not in message


# ---------------------------------------------------------------- right answers written another way

def sdpa_einsum(q, k, v, mask=None):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(-1e9))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)


def causal_float_mask(q, k, v):
    n = q.size(-2)
    mask = torch.full((n, n), float("-inf")).triu(1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def se_pool_and_linear(x, fc1, fc2):
    B, C = x.shape[:2]
    z = F.adaptive_avg_pool2d(x, 1).flatten(1)
    s = torch.sigmoid(F.linear(torch.relu(F.linear(z, fc1.weight, fc1.bias)), fc2.weight, fc2.bias))
    return s.view(B, C, 1, 1)


def eca_unsqueeze(x, weight):
    y = x.mean(dim=(-2, -1)).unsqueeze(1)                    # (B, 1, C)
    w = F.conv1d(y, weight, padding=weight.size(-1) // 2)
    return w.sigmoid().view(x.size(0), x.size(1), 1, 1)


def sk_einsum(feats, logits):
    U = torch.stack(feats, dim=1)                            # (B, M, C, H, W)
    a = logits.reshape(U.shape[0], U.shape[1], U.shape[2]).softmax(dim=1)
    return torch.einsum("bmchw,bmc->bchw", U, a)


def cbam_max_values(x, conv):
    pooled = torch.cat([x.mean(dim=1, keepdim=True), torch.max(x, dim=1, keepdim=True).values], dim=1)
    return conv(pooled).sigmoid()


def bam_residual(F_, m_c, m_s):
    return F_ + F_ * torch.sigmoid(m_c + m_s)


def ea_type_as(logits):
    a = torch.softmax(logits.float(), dim=-2)
    return (a / (a.sum(dim=-1, keepdim=True) + 1e-9)).type_as(logits)


RIGHT = [("sa.sdpa", sdpa_einsum), ("sa.causal", causal_float_mask), ("se.gate", se_pool_and_linear),
         ("eca.gate", eca_unsqueeze), ("sk.select", sk_einsum), ("cbam.spatial", cbam_max_values),
         ("bam.combine", bam_residual), ("ea.double_norm", ea_type_as),
         ("cmp.cheapest", "Efficient Channel Attention"), ("cmp.cheapest", "高效通道注意力"),
         ("cmp.cheapest", "ECA-Net"), ("cmp.cheapest", "EfficientChannelAttention"), ("cmp.cheapest", " eca "),
         ("cmp.slope", 2.0), ("se.params", 8464.0), ("sa.shape", [4, 6, 50, 50])]


@pytest.mark.parametrize("check,answer", RIGHT, ids=[f"{c}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_in_another_style_passes(check, answer, lang):
    assert exercises.verdict(check, answer) == (True, i18n.t("ex.correct"))


@pytest.mark.parametrize("spelling", ["挤压-激励", "Squeeze-and-Excitation", "SENet", "SqueezeExcitation", "SK-Net",
                                      "卷积块注意力模块", "BAM module", "External Attention", "多头自注意力", "MHSA"])
def test_a_real_mechanism_is_never_called_unknown(spelling, lang):
    assert keys_of("cmp.cheapest", spelling) in (["ex.cmp.cheapest.other"], ["ex.cmp.cheapest.tokens"])


# ---------------------------------------------------------------- hints that teach without solving

#: per count/number exercise: its answer, and fragments of its working that no verdict on a wrong answer may show
SOLVED = {
    "sa.params": (36960, ("D → 3D", "4D²", "3 × 96")),
    "ea.params": (529_760, ("D → coef D", "d → S")),
    "se.params": (8464, ()),
    "sk.params": (80192, ("9C²", "d·2C", "2·(")),
    "cbam.params": (8564, ("W0, b0", "2 × 7 × 7")),
    "bam.params": (17361, ("three BN", "三个 BN")),
    "eca.k": (7, ("t + 1", "integer part", "整数部分")),
    "eca.params": (86, ("k = 5", "k = 7", "3 with C = 256")),
    "cmp.memory": (8 * 8 * 3136 ** 2 * 4 / 2 ** 30, ("2^30",)),
    "cmp.slope": (2, ("slope is 2", "斜率是 2", "slope of 2")),    # the digit 2 itself belongs to "doubling"
}


@pytest.mark.parametrize("check", sorted(SOLVED))
def test_no_verdict_on_a_wrong_number_states_the_answer_or_its_working(check, lang):
    answer, fragments = SOLVED[check]
    assert exercises.verdict(check, answer)[0] is True, f"{check}: the answer of this table is wrong"
    digits = [f"{answer:g}", f"{answer:,}"] if float(answer).is_integer() else [f"{answer:.2f}", f"{answer:.3f}"]
    digits = [] if check == "cmp.slope" else digits
    for wrong in (answer + 1, answer - 1, answer * 2, answer / 2, answer * 3 + 7, 1, 0.5, 123):
        ok, message = exercises.verdict(check, wrong)
        if ok:
            continue
        shown = re.findall(r"\d[\d,.]*", message)
        assert not [d for d in digits if d in shown], f"{check}: the verdict on {wrong} states {answer}: {message}"
        assert not [f for f in fragments if f in message], f"{check}: the verdict on {wrong} shows the working: {message}"


@pytest.mark.parametrize("wrong", ["se", "cbam", "bam", "sk", "squeeze_excitation"])
def test_the_cheapest_hint_does_not_point_at_the_answer(wrong, lang):
    ok, message = exercises.verdict("cmp.cheapest", wrong)
    assert ok is False and "ECA" not in message and "eca" not in message and "k " not in message.replace("kernel", "")


def test_a_fixed_padding_is_named_without_giving_the_formula(lang):
    result, message = exercises.verdict("eca.gate", eca_global_k)     # padding 1 for a kernel of 5 taps
    said = {"en": "the padding is 1, but this kernel has k = 5 taps: which padding keeps C outputs for any k?",
            "zh": "填充是 1，而这个卷积核有 k = 5 个采样点：对任意的 k，填充多少才能保持 C 个输出？"}[lang]
    assert result is False and said in message and "(k − 1) / 2" not in message, message
