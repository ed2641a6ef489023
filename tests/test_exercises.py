"""Every exercise check accepts its solution, names typical mistakes, and never raises on a blank answer."""
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
        for blank in (..., None):
            result, out = run(key, blank, capsys)
            assert result is None and out.strip() == i18n.t("ex.unanswered")


def se_gate_solution(x, fc1, fc2):
    z = x.mean((2, 3))                                     # (B, C)
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


def se_gate_squeeze(x, fc1, fc2):                          # the seed's .squeeze(): breaks at batch size 1
    z = x.mean((2, 3), keepdim=True).squeeze()
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]


SOLUTIONS = {"se.params": 8464, "se.shape": (8, 256, 1, 1), "se.gate": se_gate_solution,
             "cmp.slope": 2, "cmp.memory": 8 * 8 * 3136 * 3136 * 4 / 2 ** 30, "cmp.cheapest": "eca"}

WRONG = [
    ("se.params", 8192, "ex.se.params.no_bias"),
    ("se.params", 4096, "ex.se.params.one_fc"),
    ("se.params", 580, "ex.se.params.other"),
    ("se.shape", (8, 256), "ex.se.shape.flat"),
    ("se.shape", torch.Size([8, 256, 14, 14]), "ex.se.shape.full"),
    ("se.shape", "B, C", "ex.se.shape.not_shape"),
    ("se.gate", 42, "ex.se.gate.not_callable"),
    ("se.gate", lambda x, a, b: torch.softmax(b(torch.relu(a(x.mean((2, 3))))), 1)[:, :, None, None],
     "ex.se.gate.softmax"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(a(x.mean((2, 3)))))[:, :, None, None], "ex.se.gate.no_relu"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.amax((2, 3))))))[:, :, None, None],
     "ex.se.gate.max_pool"),
    ("se.gate", lambda x, a, b: b(torch.relu(a(x.mean((2, 3)))))[:, :, None, None], "ex.se.gate.no_sigmoid"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.mean((2, 3)))))), "ex.se.gate.shape"),
    ("se.gate", lambda x, a, b: torch.sigmoid(b(torch.relu(a(x.mean((2, 3)))))).mul(2)[:, :, None, None],
     "ex.se.gate.other"),
    ("cmp.slope", 1.0, "ex.cmp.slope.linear"),
    ("cmp.slope", 3, "ex.cmp.slope.other"),
    ("cmp.slope", "two", "ex.cmp.slope.not_number"),
    ("cmp.memory", 8 * 3136 * 3136 * 4 / 2 ** 30, "ex.cmp.memory.one_head"),
    ("cmp.memory", 8 * 8 * 3136 * 3136 * 4 / 1e9, "ex.cmp.memory.decimal"),
    ("cmp.memory", 0.6, "ex.cmp.memory.other"),
    ("cmp.cheapest", "squeeze_excitation", "ex.cmp.cheapest.other"),
    ("cmp.cheapest", "external_attention", "ex.cmp.cheapest.tokens"),
    ("cmp.cheapest", "resnet", "ex.cmp.cheapest.unknown"),
]



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


@pytest.mark.parametrize("key,answer,hint", WRONG)
def test_typical_wrong_answers_are_named(key, answer, hint, lang, capsys):
    result, out = run(key, answer, capsys)
    assert result is False
    assert out.startswith(i18n.t("ex.wrong", hint="")[:4])
    assert i18n.t(hint, got=(3, 32), expected=(3, 32, 1, 1))[:12] in out


def test_squeeze_at_batch_size_one_is_caught_with_its_cause(lang, capsys):
    result, out = run("se.gate", se_gate_squeeze, capsys)
    assert result is False and "(1, 32, 5, 7)" in out and i18n.t("ex.se.gate.batch1").strip()[:10] in out


def test_unknown_exercise_lists_the_known_ones(capsys):
    result, out = run("nope", 1, capsys)
    assert result is False and "se.params" in out


def test_every_string_has_a_chinese_text():
    assert not [k for k in i18n.missing_translations("zh") if k.startswith("ex.")]
