"""The teacher's guide's table of common mistakes is true: every row, handed to the checks it names as a
concrete wrong answer, gets the verdict that names that mistake, in both editions of the guide."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import attention_lib as al
from attention_lib import exercises, i18n
from attention_lib.toolkit.exercises import Slip

al.chapters.load_all()
ROOT = Path(__file__).resolve().parents[1]
HEADING = {"en": "## Common mistakes", "zh": "## 常见错误"}


def _sdpa(q, k, v, mask=None, *, dim=-1, invert=False):
    """Scaled dot-product attention written out, with a slip switch for the softmax axis and the mask's sense."""
    scores = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5              # (B, h, N, N)
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
    return scores.softmax(dim=dim) @ v                                 # (B, h, N, d)


def _sdpa_notebook_dk(q, k, v, mask=None):           # chapter 1's d_k = 8, not the input's width
    scores = q @ k.transpose(-2, -1) / 8 ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def _causal_inverted(q, k, v):
    allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=~allowed)


def _ea_norm_in_float16(logits):                     # no upcast: 1e-9 is 0 in float16
    a = logits.softmax(dim=-2)
    return a / (1e-9 + a.sum(dim=-1, keepdim=True))


def _se(x, fc1, fc2, act=torch.relu):
    return torch.sigmoid(fc2(act(fc1(x.mean((2, 3))))))[:, :, None, None]


def _se_squeeze(x, fc1, fc2):                        # .squeeze() drops the batch axis at B = 1
    z = F.adaptive_avg_pool2d(x, 1).squeeze()
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def _se_square_pool(x, fc1, fc2):                    # an H x H window on a 5 x 7 map
    z = F.avg_pool2d(x, x.size(2)).flatten(1)
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def _se_no_bias(x, fc1, fc2):
    z = x.mean((2, 3)) @ fc1.weight.T
    return torch.sigmoid(torch.relu(z) @ fc2.weight.T)[:, :, None, None]


def _sk_softmax_over_channels(feats, logits):
    B, M = logits.size(0), len(feats)
    a = logits.view(B, M, -1).softmax(dim=2)                           # (B, M, C): over C, not M
    return (torch.stack(feats, 1) * a[..., None, None]).sum(1)


def _cbam_max_first(x, conv):                        # the official code's [max; mean]
    return torch.sigmoid(conv(torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)))


def _cbam_channels_last_axis(x, conv):               # axis=3 of a channels-last port
    return torch.sigmoid(conv(torch.cat([x.mean(3, keepdim=True), x.amax(3, keepdim=True)], 1)))


def _eca_squeeze(x, weight):
    y = x.mean((2, 3)).squeeze()[:, None, :]                            # (1, C) -> (C, 1, ...) at B = 1
    return torch.sigmoid(F.conv1d(y, weight, padding=weight.size(-1) // 2)).transpose(1, 2)[..., None]


def _eca_padding_one(x, weight):                    # a padding fixed for the notebook's k = 3
    y = x.mean((2, 3))[:, None, :]
    return torch.sigmoid(F.conv1d(y, weight, padding=1)).transpose(1, 2)[..., None]


def _eca_no_padding(x, weight):
    y = x.mean((2, 3))[:, None, :]                                      # (B, 1, C)
    return torch.sigmoid(F.conv1d(y, weight)).transpose(1, 2)[..., None]


_SE_C, _SE_H = 256, 16                               # SqueezeExcitation(256): the exercise's module
_SE = 2 * _SE_C * _SE_H + _SE_H + _SE_C              # 8464
_EA_D, _EA_h, _EA_S, _EA_e = 256, 8, 64, 4           # chapter 2's exercise module
_EA_d = _EA_D // _EA_h
_RESNET50 = ((256, 3), (512, 4), (1024, 6), (2048, 3))

#: the guide's rows, in order: (chapter, the checks the row names, [(check, a wrong answer, the key it must get)])
ROWS = [
    (1, ("sa.sdpa",), [("sa.sdpa", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, dim=-2), "ex.sa.sdpa.dim")]),
    (1, ("sa.sdpa",), [("sa.sdpa", _sdpa_notebook_dk, "ex.sa.fixed_scale")]),
    (1, ("sa.sdpa", "sa.causal"),
     [("sa.sdpa", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, invert=True), "ex.sa.sdpa.mask_inverted"),
      ("sa.causal", _causal_inverted, "ex.sa.causal.inverted")]),
    (1, ("sa.params",), [("sa.params", 4 * 96 * 96 + 4 * 96, "ex.sa.params.qkv_bias")]),
    (2, ("ea.double_norm",), [("ea.double_norm", lambda l: l.softmax(dim=-1), "ex.ea.norm.slots_softmax")]),
    (2, ("ea.double_norm",), [("ea.double_norm", _ea_norm_in_float16, "ex.ea.norm.nan")]),
    (2, ("ea.params",), [
        ("ea.params", 2 * _EA_e * _EA_D ** 2 + _EA_e * _EA_D + _EA_D
         + _EA_e * _EA_h * (2 * _EA_d * _EA_S + _EA_S + _EA_d), "ex.ea.params.per_head"),
        ("ea.params", 2 * _EA_e * _EA_D ** 2 + _EA_e * _EA_D + _EA_D
         + 2 * _EA_e * _EA_d * _EA_S + _EA_S + _EA_e * _EA_d, "ex.ea.params.wide_head")]),
    (3, ("se.params", "se.gate"), [
        ("se.params", _SE + 1, "ex.se.params.prelu"),
        ("se.gate", lambda x, a, b: _se(x, a, b, act=lambda z: F.prelu(z, torch.tensor([0.25]))),
         "ex.se.gate.prelu")]),
    (3, ("se.params", "se.gate"), [
        ("se.params", 2 * _SE_C * _SE_H, "ex.se.params.no_bias"),
        ("se.params", _SE - _SE_H, "ex.se.params.one_bias"),
        ("se.gate", _se_no_bias, "ex.se.gate.no_bias")]),
    (3, ("se.gate",), [("se.gate", _se_squeeze, "ex.se.gate.batch1")]),
    (3, ("se.gate",), [("se.gate", _se_square_pool, "ex.se.gate.square_pool")]),
    (4, ("sk.params",), [("sk.params", 145728, "ex.sk.params.dense")]),
    (4, ("sk.params",), [("sk.params", 79936, "ex.sk.params.no_bn"),
                         ("sk.params", 80192 - 64, "ex.sk.params.no_fuse_bn")]),
    (4, ("sk.select",), [("sk.select", _sk_softmax_over_channels, "ex.sk.select.channel_axis")]),
    (5, ("cbam.spatial",), [("cbam.spatial", _cbam_max_first, "ex.cbam.spatial.order")]),
    (5, ("cbam.spatial",), [("cbam.spatial", _cbam_channels_last_axis, "ex.cbam.spatial.axis")]),
    (5, ("cbam.params",), [("cbam.params", 8192 + 98 + 2, "ex.cbam.params.no_bias"),
                           ("cbam.params", 2 * _SE + 100, "ex.cbam.params.unshared")]),
    (5, ("cbam.params",), [("cbam.params", _SE + 98 + 1, "ex.cbam.params.norm")]),
    (6, ("bam.combine",), [("bam.combine", lambda f, m_c, m_s: f * (1 + torch.sigmoid(m_c * m_s)),
                            "ex.bam.combine.product")]),
    (6, ("bam.params",), [("bam.params", 17361 - 8 * 16, "ex.bam.params.no_bn"),
                          ("bam.params", 17361 + 16 * 16 + 16 + 32, "ex.bam.params.three_fc")]),
    (7, ("eca.k", "eca.params"), [("eca.k", 3, "ex.eca.k.fixed"),
                                  ("eca.params", 3 * sum(n for _, n in _RESNET50), "ex.eca.params.fixed")]),
    (7, ("eca.k",), [("eca.k", 6, "ex.eca.k.unrounded"), ("eca.k", 8, "ex.eca.k.even")]),
    (7, ("eca.params",), [("eca.params", sum(n * k for (_, n), k in zip(_RESNET50, (3, 5, 5, 7))),
                           "ex.eca.params.released")]),
    (7, ("eca.gate",), [("eca.gate", _eca_squeeze, "ex.eca.gate.batch1"),
                        ("eca.gate", _eca_no_padding, "ex.eca.gate.no_padding")]),
    (7, ("eca.gate",), [("eca.gate", _eca_padding_one, "ex.eca.gate.fixed_padding")]),
]


def _found(check, answer):
    """The i18n keys of the verdict: what the check finds wrong, and any sentence it adds (the likely cause)."""
    try:
        problem = exercises.EXERCISES[check].judge(answer)
    except Slip as slip:
        return [slip.key] + [key for key, _ in slip.more]
    return [problem[0] if isinstance(problem, tuple) else problem]


def _table(lang):
    text = (ROOT / "book" / lang / "teaching.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING[lang]):]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]   # without the header


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_guides_table_of_mistakes_is_the_tested_one(lang):
    table = _table(lang)
    assert len(table) == len(ROWS), f"{lang}: {len(table)} rows in the guide, {len(ROWS)} tried here"
    for (mistake, chapter, caught_by), (number, checks, _) in zip(table, ROWS):
        assert int(chapter) == number, mistake
        assert tuple(re.findall(r"`([a-z]+\.[a-z_]+)`", caught_by)) == checks, mistake


@pytest.mark.parametrize("row", range(len(ROWS)), ids=[f"row{i + 1}" for i in range(len(ROWS))])
def test_each_mistake_of_the_guide_gets_the_verdict_that_names_it(row):
    _, checks, slips = ROWS[row]
    assert {check for check, _, _ in slips} == set(checks), "every check the row names is tried"
    for check, answer, key in slips:
        assert key in i18n.keys(), key
        assert key in _found(check, answer), f"{check}: {_found(check, answer)} instead of {key}"
        ok, message = exercises.verdict(check, answer)
        assert ok is False and message != i18n.t("ex.correct")


GRADING = {"en": ("## Grading submitted notebooks", "**The other flags are a text scan, not proof.**",
                   "**Forbidden calls are recorded as the code runs.**"),
           "zh": ("## 给学生交上来的 Jupyter 笔记本评分", "**其他标记只是对代码文本的扫描，不是证据**",
                  "**练习禁止的调用会在代码运行时被记录下来**")}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_guide_names_each_back_door_the_grader_flags_and_says_flags_can_be_evaded(lang):
    from attention_lib import grade

    text = (ROOT / "book" / lang / "teaching.md").read_text(encoding="utf-8")
    heading, warning, recorded = GRADING[lang]
    section = text[text.index(heading):]
    section = section[:section.index("\n## ", 1)]
    for name in (*grade._BACK_DOORS, "sys.modules", "getattr", "import attention_lib as al"):
        assert f"`{name}`" in section, f"{lang}: the grading section does not name {name}"
    assert warning in section
    # what is recorded at run time: each call an exercise may forbid, and the record's switches
    assert recorded in section and section.index(recorded) < section.index(warning)
    for name in (*(n for n in exercises.WATCHABLE if n != "is_causal"), "is_causal=True", "sys.setprofile",
                 "DisableTorchFunction"):
        assert f"`{name}`" in section, f"{lang}: the grading section does not name {name}"
