"""Every exercise check accepts its solution, names typical mistakes, and never raises on a blank answer."""
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import attention_lib as al
from attention_lib import exercises, i18n

al.chapters.load_all()          # every chapter registers its checks


@pytest.fixture(params=["en", "zh"])
def lang(request):
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


def run(key, answer, capsys):
    result, message = exercises.verdict(key, answer)
    assert exercises.check(key, answer) is None
    out = capsys.readouterr().out
    assert out == message + "\n"
    return result, out


def test_blank_answers_say_not_answered_and_do_not_raise(lang, capsys):
    for key in exercises.EXERCISES:
        result, out = run(key, ..., capsys)
        assert result is None and out.strip() == i18n.t("ex.unanswered")


def test_an_answer_that_is_none_says_print_gives_back_none(lang, capsys):
    answer_2 = print(36960)                             # what a student wrote: the cell prints 36960
    capsys.readouterr()
    for key in exercises.EXERCISES:
        result, out = run(key, answer_2, capsys)
        assert result is None and out.strip() == i18n.t("ex.answer.none") and "print" in out


def se_gate_solution(x, fc1, fc2):
    z = x.mean((2, 3))                                     # (B, C)
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def se_gate_squeeze(x, fc1, fc2):                          # the seed's .squeeze(): breaks at batch size 1
    z = x.mean((2, 3), keepdim=True).squeeze()
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


SOLUTIONS = {"se.params": 8464, "se.shape": (8, 256, 1, 1), "se.gate": se_gate_solution,
             "cmp.slope": 2, "cmp.memory": 8 * 8 * 3136 * 3136 * 4 / 2 ** 30, "cmp.cheapest": "eca"}


def sa_sdpa_solution(q, k, v, mask=None):                  # chapter 01, exercise 3
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


SOLUTIONS.update({"sa.shape": (4, 6, 50, 50), "sa.params": 4 * 96 * 96 + 96, "sa.sdpa": sa_sdpa_solution,
                  "sa.causal": lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
                      q, k, v, attn_mask=torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).tril())})

WRONG = [
    ("se.params", 8192, "ex.se.params.no_bias"),
    ("se.params", 4096, "ex.se.params.one_fc"),
    ("se.params", 580, "ex.se.params.other"),
    ("se.shape", (8, 256), "ex.se.shape.flat"),
    ("se.shape", torch.Size([8, 256, 14, 14]), "ex.se.shape.full"),
    ("se.shape", "B, C", "ex.answer.shape.not_shape"),
    ("se.gate", 42, "ex.answer.function.not_callable"),
    ("se.gate", lambda x, a, b: torch.softmax(b(torch.relu(a(x.mean((2, 3))))), 1)[:, :, None, None],
     "ex.se.gate.softmax"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(a(x.mean((2, 3)))))[:, :, None, None], "ex.se.gate.no_relu"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.amax((2, 3))))))[:, :, None, None],
     "ex.se.gate.max_pool"),
    ("se.gate", lambda x, a, b: b(torch.relu(a(x.mean((2, 3)))))[:, :, None, None], "ex.se.gate.no_sigmoid"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.mean((2, 3)))))), "ex.fn.shape"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.mean((2, 3)))))).mul(2)[:, :, None, None],
     "ex.se.gate.other"),
    ("cmp.slope", 1.0, "ex.cmp.slope.linear"),
    ("cmp.slope", 3, "ex.cmp.slope.other"),
    ("cmp.slope", "two", "ex.answer.string"),
    ("cmp.memory", 8 * 3136 * 3136 * 4 / 2 ** 30, "ex.cmp.memory.one_factor"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4 / 1e9, "ex.cmp.memory.decimal"),
    ("cmp.memory", 0.6, "ex.cmp.memory.other"),
    ("cmp.cheapest", "squeeze_excitation", "ex.cmp.cheapest.other"),
    ("cmp.cheapest", "external_attention", "ex.cmp.cheapest.tokens"),
    ("cmp.cheapest", "resnet", "ex.cmp.cheapest.unknown"),
]


# Chapters that test their checks in their own file (tests/test_chNN_*.py) define SOLUTIONS there too.
for _path in sorted(Path(__file__).parent.glob("test_ch*.py")):
    SOLUTIONS.update(getattr(importlib.import_module(f"tests.{_path.stem}"), "SOLUTIONS", {}))



def ea_double_norm_solution(logits):                       # chapter 02: softmax over N, then l1 over S
    a = logits.float().softmax(dim=-2)
    return (a / (1e-9 + a.sum(dim=-1, keepdim=True))).to(logits.dtype)


SOLUTIONS.update({"ea.shape": (3, 8, 49, 32), "ea.params": 529_760, "ea.double_norm": ea_double_norm_solution})
WRONG += [
    ("ea.shape", (3, 4, 49, 32), "ex.ea.shape.no_coef"),
    ("ea.params", 659_712, "ex.ea.params.per_head"),
    ("ea.double_norm", lambda logits: logits.softmax(dim=-1), "ex.ea.norm.slots_softmax"),
]

def test_every_exercise_has_a_tested_solution():
    assert set(SOLUTIONS) == set(exercises.EXERCISES)


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_solutions_are_accepted(key, lang, capsys):
    result, out = run(key, SOLUTIONS[key], capsys)
    assert result is True and out.strip() == i18n.t("ex.correct")


def stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    text = i18n.t(key, **{f: "\0" for f in re.findall(r"{(\w+)", i18n._strings[key]["en"])})
    return text.split("\0")[0][:40]


@pytest.mark.parametrize("key,answer,hint", WRONG)
def test_typical_wrong_answers_are_named(key, answer, hint, lang, capsys):
    result, out = run(key, answer, capsys)
    assert result is False
    assert out.startswith(i18n.t("ex.wrong", hint="")[:4])
    assert stem(hint) in out


def test_squeeze_at_batch_size_one_is_caught_with_its_cause(lang, capsys):
    result, out = run("se.gate", se_gate_squeeze, capsys)
    assert result is False and "(1, 32, 5, 7)" in out and i18n.t("ex.se.gate.batch1").strip()[:10] in out


def test_unknown_exercise_lists_the_known_ones(capsys):
    result, out = run("nope", 1, capsys)
    assert result is False and "se.params" in out


def test_every_string_has_a_chinese_text():
    assert not [k for k in i18n.missing_translations("zh") if k.startswith("ex.")]


# ---------------------------------------------------------------- what the student of issue 14 handed in

C, R = 256, 16
H = C // R


def gate(z, fc1, fc2):
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def linear(z, layer, bias=True):
    return torch.nn.functional.linear(z, layer.weight, layer.bias if bias else None)


#: every slip of chapter 3's table (section 8) and of the chapter-8 exercises, named by its check
NAMED = [
    ("se.params", 2 * C * H, "ex.se.params.no_bias"),                     # bias-free layers
    ("se.params", 2 * C * H + H, "ex.se.params.one_bias"),                # one bias missing
    ("se.params", 2 * C * H + C, "ex.se.params.one_bias"),
    ("se.params", 2 * C * H + H + C + 1, "ex.se.params.prelu"),           # nn.PReLU()
    ("se.params", 2 * C * H + H + C + H, "ex.se.params.prelu"),           # nn.PReLU(C // r)
    ("se.params", 8192.0, "ex.se.params.no_bias"),                        # a float count is still a count
    ("se.params", "8464", "ex.answer.string"),
    ("se.params", 8464.5, "ex.answer.not_whole"),
    ("se.params", np.array([8464, 1]), "ex.answer.many"),
    ("se.params", torch.tensor([8464.0, 0.0]), "ex.answer.many"),
    ("se.shape", (8, 256, 1, 1.5), "ex.answer.shape.not_int"),
    ("se.shape", ("8", "256", "1", "1"), "ex.answer.shape.strings"),
    ("se.shape", torch.zeros(8, 256, 1, 1), "ex.answer.shape.tensor"),
    ("se.shape", (8, 256, 0, 1), "ex.answer.shape.not_positive"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.nn.functional.prelu(a(x.mean((2, 3))), torch.tensor([0.25]))))
     [:, :, None, None], "ex.se.gate.prelu"),
    ("se.gate", lambda x, a, b: torch.sigmoid(linear(torch.relu(linear(x.mean((2, 3)), a, False)), b, False))
     [:, :, None, None], "ex.se.gate.no_bias"),
    ("se.gate", lambda x, a, b: torch.sigmoid(linear(torch.relu(linear(x.mean((2, 3)), a, False)), b))
     [:, :, None, None], "ex.se.gate.one_bias"),
    ("se.gate", lambda x, a, b: gate(torch.nn.functional.avg_pool2d(x, x.size(2)).flatten(1), a, b),
     "ex.se.gate.square_pool"),
    ("se.gate", lambda x, a, b: x * gate(x.mean((2, 3)), a, b), "ex.se.gate.scaled"),
    ("se.gate", lambda x, a, b: gate(x.mean((2, 3)), a, b).double(), "ex.fn.dtype"),   # right values, float64
    ("se.gate", lambda x, a, b: gate(x.mean((2, 3)), a, b).half(), "ex.fn.dtype"),     # right values, float16
    ("se.gate", lambda x, a, b: gate(x.mean((2, 3)), a, b) > 0.5, "ex.fn.bool"),
    ("se.gate", lambda x, a, b: gate(x.mean((2, 3)), a, b).numpy(), "ex.fn.numpy"),
    ("se.gate", lambda x, a, b: (gate(x.mean((2, 3)), a, b), None), "ex.fn.tuple"),
    ("se.gate", lambda x, a, b: gate(x.mean((2, 3)), a, b).reshape(x.size(0), 1, C // 8, 1), "ex.fn.shape"),
    ("se.gate", lambda x, a, b: None, "ex.fn.returned_none"),
    ("se.gate", gate(torch.zeros(2, 32), torch.nn.Linear(32, 4), torch.nn.Linear(4, 32)), "ex.answer.function.called"),
    ("cmp.slope", "2", "ex.answer.string"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4 / 2 ** 30 / 64, "ex.cmp.memory.one_matrix"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4 / 2 ** 30 * 1024, "ex.cmp.memory.mib"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 8 / 2 ** 30, "ex.cmp.memory.float64"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4, "ex.cmp.memory.bytes"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4 * 8 / 2 ** 30, "ex.cmp.memory.bits"),
    ("cmp.cheapest", "ECA", None), ("cmp.cheapest", "Efficient Channel Attention (ECA)", None),
    ("cmp.cheapest", "'eca'", None), ("cmp.cheapest", "多头自注意力", "ex.cmp.cheapest.tokens"),
    ("cmp.cheapest", al.EfficientChannelAttention, None), ("cmp.cheapest", 64, "ex.answer.name.not_string"),
]


@pytest.mark.parametrize("key,answer,hint", NAMED, ids=[f"{k}-{h}-{i}" for i, (k, _, h) in enumerate(NAMED)])
def test_every_listed_slip_is_named_by_its_check(key, answer, hint, lang, capsys):
    result, out = run(key, answer, capsys)
    if hint is None:
        assert result is True, out
    else:
        assert result is False and stem(hint) in out, f"expected {hint}: {out}"


def test_a_function_that_edits_its_input_cannot_pass(capsys):
    def edits_x_first(x, fc1, fc2):
        x.mul_(0)                                   # the reference must not see this
        return se_gate_solution(x, fc1, fc2)

    def edits_a_layer_after(x, fc1, fc2):
        out = se_gate_solution(x, fc1, fc2)
        fc1.weight.data.zero_()
        return out

    for answer, name in ((edits_x_first, "x"), (edits_a_layer_after, "fc1")):
        result, out = run("se.gate", answer, capsys)
        assert result is False and stem("ex.fn.mutated") in out and f" {name}" in out


def test_an_exception_is_reported_with_its_message(lang, capsys):
    def wrong_signature(x, fc1):
        return x
    result, out = run("se.gate", wrong_signature, capsys)
    assert result is False and "TypeError" in out and "positional argument" in out and "(3, 32, 5, 7)" in out
    if lang == "zh":
        assert "TypeError." not in out and out.rstrip().endswith("。")


def test_the_memory_hint_does_not_give_the_formula_away(lang, capsys):
    _, out = run("cmp.memory", 0.6, capsys)
    assert "2^30" not in out and "B ×" not in out and "4 bytes" not in out and "4 字节" not in out


def test_verdicts_join_two_sentences_as_each_language_does(lang, capsys):
    result, out = run("se.gate", se_gate_squeeze, capsys)
    assert result is False
    if lang == "zh":
        assert "。第一组测试通过了" in out
    else:
        assert ". It passed the first test" in out
