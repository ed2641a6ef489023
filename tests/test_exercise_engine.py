"""The exercise engine: every registered check answers every odd answer with a verdict, never a traceback.

Every chapter's checks are discovered from the engine's registry after importing every chapter module,
so a new chapter is covered without touching this file. Each check gets a battery of answers a student
might really hand in (None-returning functions, strings, arrays, tensors of other dtypes and devices,
functions that raise or edit their inputs...) and must give a verdict in both languages: never an
exception, never the engine's last-resort "the check could not judge" message, and never "Correct!"
for an answer that cannot be right.
"""
from __future__ import annotations

import decimal
import fractions
import pathlib
import re

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

import attention_lib
from attention_lib import exercises, i18n


attention_lib.chapters.load_all()          # every chapter registers its checks when imported
KEYS = sorted(exercises.EXERCISES)


@pytest.fixture(params=["en", "zh"])
def lang(request):
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


# ---------------------------------------------------------------- the battery


def _returns(value):
    return lambda *args, **kwargs: value


def _raises(*args, **kwargs):
    return 1 / 0


def _no_return(*args, **kwargs):
    args[0] * 2 if args else None


def _first_tensor(args):
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _mutates(*args, **kwargs):
    """Edits every tensor and every layer it is handed in place, then returns the first tensor."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            a.mul_(2)
        elif isinstance(a, nn.Module):
            for p in a.parameters():
                p.data.add_(1)
    return _first_tensor(args)


def _as(dtype):
    def f(*args, **kwargs):
        x = _first_tensor(args)
        return None if x is None else x.to(dtype)
    return f


def _numpy(*args, **kwargs):
    x = _first_tensor(args)
    return np.zeros(3) if x is None else x.detach().cpu().numpy()


def _tuple(*args, **kwargs):
    x = _first_tensor(args)
    return (x, x)


def _meta(*args, **kwargs):
    x = _first_tensor(args)
    return torch.empty(x.shape if x is not None else (2,), device="meta")


class _Weird:
    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __float__(self):
        raise ValueError("no float either")


#: answers that cannot be right for any exercise: the verdict must not be "Correct!"
NEVER_RIGHT = {
    "empty string": "", "text": "abc", "digits as text": "8464", "Chinese text": "二",
    "bytes": b"x", "True": True, "False": False, "nan": float("nan"), "inf": float("inf"),
    "-inf": -float("inf"), "complex": complex(1, 1), "empty list": [], "empty tuple": (),
    "empty dict": {}, "set": {1, 2}, "float in a shape": (8, 256, 1, 1.5),
    "strings in a shape": ("8", "256", "1", "1"), "ellipsis in a shape": (8, ..., 1),
    "nested tuple": ((8, 256), (1, 1)), "object": object(), "weird object": _Weird(),
    "the int class": int, "a layer": nn.Linear(2, 2), "a layer class": nn.Linear, "a generator": (i for i in range(3)),
    "returns None": _returns(None), "forgot return": _no_return, "raises": _raises,
    "no arguments": lambda: 0, "returns text": _returns("abc"), "mutates its inputs": _mutates,
    "returns float64": _as(torch.float64), "returns float16": _as(torch.float16), "returns bool": _as(torch.bool),
    "returns numpy": _numpy, "returns a tuple": _tuple, "returns a meta tensor": _meta,
    "empty tensor": torch.zeros(0), "empty array": np.zeros(0), "bool tensor": torch.ones(3, dtype=torch.bool),
    "meta tensor": torch.empty(3, device="meta"), "meta scalar": torch.empty((), device="meta"),
    "object array": np.array([object(), object()]),
}

#: answers that might be right for some exercise: any verdict will do, as long as it is a verdict
ANY_VERDICT = {
    "zero": 0, "minus one": -1, "1.5": 1.5, "huge int": 10 ** 100, "huge float": 1e308,
    "numpy int": np.int64(7), "numpy float": np.float64(2.5), "fraction": fractions.Fraction(1, 3),
    "decimal": decimal.Decimal("2.5"), "list": [1, 2], "shape-like list": [8, 256, 1, 1],
    "torch.Size": torch.Size([2, 3]), "empty torch.Size": torch.Size([]),
    "0-d tensor": torch.tensor(3), "0-d float16": torch.tensor(2.0, dtype=torch.float16),
    "tensor": torch.randn(4), "float64 tensor": torch.randn(2, 3, dtype=torch.float64),
    "int tensor": torch.arange(4), "array": np.arange(4), "0-d array": np.array(3.0),
    "name": "eca", "returns its input": lambda *a, **k: _first_tensor(a), "returns zero": _returns(0),
    "returns a tensor": _returns(torch.zeros(2, 3)),
}
if torch.cuda.is_available():
    NEVER_RIGHT["returns a cuda tensor"] = lambda *a, **k: torch.zeros(2, device="cuda")
    ANY_VERDICT["cuda tensor"] = torch.randn(3, device="cuda")
    ANY_VERDICT["cuda scalar"] = torch.tensor(3, device="cuda")

FAILED = i18n.t("ex.check_failed", error="\0").split("\0")[0]
HELPERS = ("The judge met an answer it did not foresee. Read the answer with the engine's helpers "
           "(attention_lib/toolkit/exercises.py: as_count, as_number, as_shape, as_name, as_function) and run "
           "a student's function with call() and expect_tensor(): each names the slip instead of crashing.")
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_!r]*\}")


def _assert_a_verdict(key, answer, capsys):
    result, message = exercises.verdict(key, answer)
    assert result in (True, False, None), f"{key}: verdict {result!r}"
    assert isinstance(message, str) and message.strip(), f"{key}: empty message"
    assert FAILED[:20] not in message, (
        f"{key}: the check could not judge {answer!r}: {message}\n{HELPERS}")
    assert not PLACEHOLDER.search(message), f"{key}: unformatted field in {message!r}"
    assert exercises.check(key, answer) is None
    assert capsys.readouterr().out == message + "\n"
    return result, message


def test_every_chapter_registers_its_checks():
    assert KEYS, "no exercise registered"


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("name", sorted(NEVER_RIGHT))
def test_odd_answers_get_a_verdict_and_never_pass(key, name, lang, capsys):
    result, message = _assert_a_verdict(key, NEVER_RIGHT[name], capsys)
    assert result is False, f"{key}: {name} was judged {result!r}: {message}\n{HELPERS}"


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("name", sorted(ANY_VERDICT))
def test_other_answers_get_a_verdict(key, name, lang, capsys):
    _assert_a_verdict(key, ANY_VERDICT[name], capsys)


# ---------------------------------------------------------------- every solution of the notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _solutions():
    """``(notebook, key, answer)`` for every solution cell of the English notebooks, run after the import cell."""
    found = []
    for path in sorted((ROOT / "notebooks" / "en").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        solutions = [c for c in code if "solution" in c.metadata.get("tags", [])]
        if not solutions:
            continue
        recorded = []
        real_check = exercises.check
        exercises.check = lambda key, answer: recorded.append((key, answer))
        try:
            for cell in solutions:
                namespace = {}
                try:
                    exec(code[1].source, namespace)      # the chapter's imports, after the set-up cell
                    exec(cell.source, namespace)
                except Exception as error:             # a solution that needs the notebook's earlier cells
                    found.append(pytest.param(path.stem, None, None, marks=pytest.mark.skip(
                        reason=f"{path.stem}: a solution cell needs earlier cells ({error!r})")))
        finally:
            exercises.check = real_check
        found += [pytest.param(path.stem, key, answer, id=f"{path.stem}-{key}") for key, answer in recorded]
    return found


SOLUTIONS = _solutions()


def _spoil(solution, how):
    """The solution, made wrong in one way a student might: returns another type, or edits its inputs.
    ``spoiled.mutable`` records whether it was ever handed an input it could edit (a tensor or a layer)."""
    def spoiled(*args, **kwargs):
        spoiled.mutable |= any(isinstance(a, (torch.Tensor, nn.Module)) for a in (*args, *kwargs.values()))
        if how == "edits its inputs first":
            _mutates(*args, **kwargs)
        out = solution(*args, **kwargs)
        if how == "edits its inputs after":
            _mutates(*args, **kwargs)
        if how == "raises after":                # whatever the solution returns (a tensor, a count, a truth value)
            raise ValueError("a message the student should see")
        if not isinstance(out, torch.Tensor):
            return None
        if how == "changes the dtype":
            return out.to(torch.float32 if out.dtype == torch.float64 else torch.float64)
        if how == "returns numpy":
            return out.detach().cpu().numpy()
        if how == "returns None":
            return None
        return out
    spoiled.mutable = False
    return spoiled


def _stem(key):
    """The text of ``key`` up to its first format field, in the current language."""
    return i18n.t(key, **{f: "@" for f in re.findall(r"{(\w+)", i18n._strings[key]["en"])}).split("@")[0]


SPOILS = ["edits its inputs first", "edits its inputs after", "changes the dtype", "returns numpy", "returns None",
          "raises after"]


def test_every_check_has_a_solution_in_the_notebooks():
    covered = {p.values[1] for p in SOLUTIONS if p.values[1] is not None}
    assert set(KEYS) <= covered, f"checks without a solution cell: {sorted(set(KEYS) - covered)}"


@pytest.mark.parametrize("notebook,key,answer", SOLUTIONS)
def test_the_notebooks_solutions_are_accepted(notebook, key, answer, lang):
    result, message = exercises.verdict(key, answer)
    assert result is True, f"{notebook}: the solution of {key!r} is rejected: {message}"


@pytest.mark.parametrize("how", SPOILS)
@pytest.mark.parametrize("notebook,key,answer", [p for p in SOLUTIONS if callable(p.values[2])])
def test_a_spoiled_solution_never_passes(notebook, key, answer, how, capsys):
    spoiled = _spoil(answer, how)
    result, message = _assert_a_verdict(key, spoiled, capsys)
    assert result is False, (f"{notebook}: {key!r} accepted a solution that {how}: {message}\n"
                             "Compute the reference first and run the student's function with call(): it works on "
                             "copies of the inputs and names an input changed in place.")
    if how.startswith("edits") and spoiled.mutable:      # plain numbers (map_bytes(B, h, N)) cannot be edited
        assert _stem("ex.fn.mutated") in message, f"{key}: the edited input is not named: {message}"
    if how == "raises after":
        assert "a message the student should see" in message


# ---------------------------------------------------------------- Chinese verdicts

CJK = "\u3400-\u4dbf\u4e00-\u9fff"
ASCII_PUNCTUATION_NEXT_TO_CHINESE = re.compile(rf"[{CJK}][.,;:!?()]|[()][{CJK}]")
AVOID = ("批大小", "打分矩阵", "token")


def _exercise_strings():
    return {k: v for k, v in ((k, i18n._strings[k]) for k in i18n.keys()) if k.startswith("ex.")}


@pytest.mark.parametrize("key", sorted(_exercise_strings()))
def test_chinese_verdicts_use_chinese_punctuation_and_the_glossarys_terms(key):
    zh = _exercise_strings()[key].get("zh")
    assert zh, f"{key}: no Chinese text"
    assert not ASCII_PUNCTUATION_NEXT_TO_CHINESE.search(zh), f"{key}: ASCII punctuation next to Chinese: {zh}"
    assert not [w for w in AVOID if w in zh], f"{key}: use the glossary's terms: {zh}"
    if key not in ("ex.wrong", "ex.reference") and not key.startswith("ex.fn.inputs."):   # parts of a sentence
        assert zh.rstrip().endswith(("。", "？", "！")), f"{key}: a Chinese sentence ends with 。？ or ！: {zh}"


# ---------------------------------------------------------------- the engine's promises

FUNCTION_KEYS = sorted({p.values[1] for p in SOLUTIONS if callable(p.values[2])})


def _exits(*args, **kwargs):
    import sys
    sys.exit("done")


def _loops(*args, **kwargs):
    while True:
        pass


def _loops_and_swallows(*args, **kwargs):
    while True:
        try:
            while True:
                pass
        except Exception:          # a student's catch-all does not swallow the time limit
            pass


@pytest.mark.parametrize("key", FUNCTION_KEYS)
def test_a_function_that_calls_sys_exit_gets_a_verdict_that_says_so(key, lang):
    result, message = exercises.verdict(key, _exits)
    assert result is False and "SystemExit" in message


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(exercises, "TIME_LIMIT", 0.5)


@pytest.mark.parametrize("answer", [_loops, _loops_and_swallows])
def test_an_endless_loop_gets_a_time_out_verdict_in_the_main_thread(answer, short_limit, lang):
    import time
    start = time.monotonic()
    result, message = exercises.verdict("se.gate", answer)
    assert time.monotonic() - start < 5
    assert result is False and message == i18n.t("ex.wrong", hint=i18n.t("ex.fn.timeout", seconds=0.5))


def test_an_endless_loop_gets_a_time_out_verdict_in_another_thread_and_the_worker_stops(short_limit):
    """Where signals cannot be used (Windows; a check called from a thread), a worker thread runs the check."""
    import threading
    import time
    found = {}
    thread = threading.Thread(target=lambda: found.update(v=exercises.verdict("sa.causal", _loops)))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and found["v"][0] is False and "0.5 s" in found["v"][1]
    deadline = time.monotonic() + 5
    while any(t.name == "attention-lib-check" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "attention-lib-check" for t in threading.enumerate()), "the looping worker still runs"


def test_limits_nest_and_an_outer_timer_survives_a_verdict():
    import signal
    import time
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers on this platform")
    start = time.monotonic()
    with pytest.raises(exercises.TimeUp):
        exercises.run_limited(lambda: (exercises.verdict("se.params", 8464), _loops()), 1.0)
    assert 0.9 < time.monotonic() - start < 4
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("notebook,key,answer", SOLUTIONS)
def test_checking_an_answer_leaves_the_global_random_state_alone(notebook, key, answer):
    import random
    torch.manual_seed(7), random.seed(7), np.random.seed(7)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(7), random.seed(7), np.random.seed(7)
    exercises.verdict(key, answer)
    exercises.verdict(key, lambda *a, **k: (torch.rand(2), random.random(), np.random.rand(), torch.manual_seed(0)))
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:], f"{key} consumed the global random state"


def test_inputs_changed_in_place_inside_lists_tuples_and_dicts_are_named():
    x = torch.randn(2, 3)

    def edit(where):
        def f(items):
            target = items[where]
            target.mul_(2) if isinstance(target, torch.Tensor) else target.append(1)
            return x
        return f

    for container, where, name in [([x, x.clone()], 1, "feats[1]"), ((x, x.clone()), 0, "feats[0]"),
                                   ({"a": x, "b": x.clone()}, "b", "feats['b']"), ([[x], [x.clone()]], 0, "feats[0]")]:
        with pytest.raises(exercises.Slip) as slip:
            exercises.call(edit(where), container, names=("feats",))
        assert slip.value.key == "ex.fn.mutated" and slip.value.fmt["name"] == name, slip.value.fmt
    assert torch.equal(exercises.call(lambda items: items[0] * 2, [x, x], names=("feats",)), x * 2)


def test_a_case_names_what_it_changed_only_when_the_slip_leaves_room_for_it():
    with pytest.raises(exercises.Slip) as slip:
        with exercises.case("ex.fn.returned_none"):
            raise exercises.Slip("ex.fn.shape", got=(1,), expected=(2,))
    assert [k for k, _ in slip.value.more] == ["ex.fn.returned_none"]
    with pytest.raises(exercises.Slip) as slip:
        with exercises.case("ex.fn.returned_none"):
            raise exercises.Slip("ex.fn.mutated", name="x")
    assert slip.value.more == []                   # an input changed in place: the case adds nothing


def test_a_size_fixed_in_the_code_is_named_from_the_broadcasting_error(lang):
    def fixed_mask(q, k, v):                       # a 6 x 6 mask kept from the notebook
        mask = torch.ones(6, 6, dtype=torch.bool).tril()
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    result, message = exercises.verdict("sa.causal", fixed_mask)
    assert result is False and i18n.t("ex.fn.fixed_size", n=6)[:12] in message

    def two_fixed(x, fc1, fc2):                     # the notebook's B and C kept in a reshape
        z = x.mean((2, 3))
        return torch.sigmoid(fc2(torch.relu(fc1(z)))).reshape(8, 256, 1, 1)

    result, message = exercises.verdict("se.gate", two_fixed)
    named = i18n.t("ex.fn.fixed_sizes", n=i18n.t("ex.fn.inputs.sizes", first=8, last=256))
    assert result is False and named in message, message


def test_the_verdict_block_says_its_outcome_in_words_and_keeps_contrast_in_any_theme(lang):
    def luminance(colour):
        rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        rgb = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]

    for result, (symbol, text, background, border) in exercises.VERDICT_COLOURS.items():
        lighter, darker = sorted((luminance(text), luminance(background)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 7, f"text contrast of the {result} block"
    for answer, outcome in ((8464, "right"), (..., "unanswered"), (8192, "wrong")):
        result, message = exercises.verdict("se.params", answer)
        block = exercises.Verdict(result, message)._repr_html_()
        assert f"attention-verdict-{outcome}" in block and "word-break:normal" in block
        lead = {"right": i18n.t("ex.correct"), "wrong": i18n.t("ex.wrong", hint="").strip()}.get(outcome)
        if lead:
            assert f"<strong>{lead}</strong>" in block, block
        assert repr(exercises.Verdict(result, message)) == message


def test_in_jupyter_the_hidden_solution_says_its_verdict_is_the_reference_solutions(lang):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("import attention_lib as al")
        with capture_output() as solution:
            shell.run_cell('# @title Solution · 参考答案\nanswer_1 = 8464\nal.exercises.check("se.params", answer_1)')
        with capture_output() as student:
            shell.run_cell('answer_1 = 8464\nal.exercises.check("se.params", answer_1)')
    finally:
        InteractiveShell.clear_instance()
    shown = [o.data for o in solution.outputs] + [o.data for o in student.outputs]
    assert len(shown) == 2 and not solution.stdout and not student.stdout
    assert shown[0]["text/plain"] == i18n.t("ex.reference", verdict=i18n.t("ex.correct"))
    assert shown[1]["text/plain"] == i18n.t("ex.correct")
    assert "attention-verdict-right" in shown[1]["text/html"]


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)):
        return tuple(_shapes(v) for v in value)
    return value if isinstance(value, (int, float, str)) else None


#: checks whose inputs carry a batch axis first: a batch of one (where .squeeze() slips) is among their cases
BATCHED = {"sa.sdpa", "sa.causal", "ea.double_norm", "se.gate", "sk.select", "cbam.spatial", "bam.combine", "eca.gate"}


@pytest.mark.parametrize("notebook,key,answer", [p for p in SOLUTIONS if callable(p.values[2])])
def test_every_function_check_tries_several_sizes_a_batch_of_one_among_them(notebook, key, answer):
    """A hard-coded size that happens to fit one test case (the notebook's own variable, a number) cannot pass."""
    seen = []

    def recorded(*args, **kwargs):
        seen.append(tuple(_shapes(a) for a in args))
        return answer(*args, **kwargs)

    assert exercises.verdict(key, recorded)[0] is True
    assert len(set(seen)) >= 3, f"{key} tries only {sorted(set(seen), key=repr)}"
    if key in BATCHED:
        first = [shapes[0] for shapes in seen]                   # the first input's shape in every call
        flat = [s[0] if s and isinstance(s[0], tuple) else s for s in first]
        assert 1 in {s[0] for s in flat if s}, f"{key} never tries a batch of one: {sorted(set(seen))}"


def test_in_a_jupyter_kernel_an_endless_loop_gets_its_verdict_and_the_cell_ends():
    """The time limit where students meet it: a real kernel (ipykernel runs cells in its main thread)."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import attention_lib as al\nal.exercises.TIME_LIMIT = 1.0"),
        nbformat.v4.new_code_cell("def se_gate(x, fc1, fc2):\n    while True:\n        pass\n\n"
                                  "al.exercises.check('se.gate', se_gate)"),
        nbformat.v4.new_code_cell("print('the next cell runs')")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    shown = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert shown and shown[0]["data"]["text/plain"] == i18n.t("ex.wrong", hint=i18n.t("ex.fn.timeout", seconds=1.0))
    assert "attention-verdict-wrong" in shown[0]["data"]["text/html"]
    assert nb.cells[2].outputs[0]["text"] == "the next cell runs\n"


# ---------------------------------------------------------------- forbidden calls, recorded at run time

def _by_hand(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5          # (B, h, N, N)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def _sdpa_routes():
    """torch's attention reached in ways a text scan does not see: a name bound before the check, one built from
    text at call time, the aten operator, torch's function modes switched off."""
    import importlib
    F = torch.nn.functional
    bound = getattr(importlib.import_module("torch.nn.functional"), "scaled_" + "dot_product_attention")
    return {
        "plain": lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        "bound before": lambda q, k, v, mask=None: bound(q, k, v, attn_mask=mask),
        "from text": lambda q, k, v, mask=None: vars(importlib.import_module("torch.nn." + "functional"))[
            "_".join(["scaled", "dot", "product", "attention"])](q, k, v, attn_mask=mask),
        "aten": lambda q, k, v, mask=None: torch.ops.aten.scaled_dot_product_attention.default(q, k, v, mask),
        "torch._C._nn": lambda q, k, v, mask=None: torch._C._nn.scaled_dot_product_attention(q, k, v, mask),
    }


def _modes_off(q, k, v, mask=None):
    with torch._C.DisableTorchFunction():
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("route", [*_sdpa_routes(), "modes off"])
def test_torchs_attention_in_the_by_hand_exercise_is_recorded_by_any_route(route, lang):
    answer = _modes_off if route == "modes off" else _sdpa_routes()[route]
    calls = set()
    result, message = exercises.verdict("sa.sdpa", answer, calls)
    assert result is False and calls == {"scaled_dot_product_attention"}, (route, message)
    assert message == i18n.t("ex.wrong", hint=i18n.t("ex.forbidden.scaled_dot_product_attention"))


def test_an_honest_answer_is_not_recorded_though_the_check_itself_calls_torchs_attention():
    calls = set()
    assert exercises.verdict("sa.sdpa", _by_hand, calls) == (True, i18n.t("ex.correct")) and calls == set()
    def causal(q, k, v):                                    # attn_mask is allowed, is_causal is not
        n = q.shape[-2]
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=torch.ones(n, n, dtype=torch.bool).tril())
    assert exercises.verdict("sa.causal", causal, calls)[0] is True and calls == set()


@pytest.mark.parametrize("how", ["keyword", "positional", "spread from text"])
def test_is_causal_in_the_mask_exercise_is_recorded_however_it_is_passed(how, lang):
    F = torch.nn.functional
    answer = {"keyword": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
              "positional": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, None, 0.0, True),
              "spread from text": lambda q, k, v: F.scaled_dot_product_attention(
                  q, k, v, **dict([("is_" + "causal", 1 > 0)]))}[how]
    calls = set()
    result, message = exercises.verdict("sa.causal", answer, calls)
    assert result is False and calls == {"is_causal"}
    assert message == i18n.t("ex.wrong", hint=i18n.t("ex.forbidden.is_causal"))


def test_the_recorders_are_removed_after_an_error_a_time_limit_and_a_switch_off(short_limit):
    import sys
    before, depth = sys.getprofile(), torch._C._len_torch_function_stack()

    def loops_after_the_call(q, k, v, mask=None):
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
        while True:
            pass

    def raises(q, k, v, mask=None):
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
        raise ValueError("boom")

    def switches_off(q, k, v, mask=None):
        sys.setprofile(None)
        torch._C._pop_torch_function_stack()
        return _by_hand(q, k, v, mask)

    for answer, recorded in ((loops_after_the_call, {"scaled_dot_product_attention"}),
                             (raises, {"scaled_dot_product_attention"}), (switches_off, {"unwatched"})):
        calls = set()
        result, _ = exercises.verdict("sa.sdpa", answer, calls)
        assert result is False and calls == recorded, answer.__name__
        assert sys.getprofile() is before and torch._C._len_torch_function_stack() == depth
    with exercises.watching(["count_parameters"]) as seen:     # the params exercises: the grader watches the cell
        al_count = __import__("attention_lib").count_parameters
        assert al_count(nn.Linear(2, 3)) == 9
    assert seen == {"count_parameters"} and sys.getprofile() is before
    with exercises.watching(["count_parameters"]) as seen:
        sum(p.numel() for p in nn.Linear(2, 3).parameters())
    assert seen == set()


def test_torchs_attention_called_from_a_thread_the_answer_starts_is_recorded_and_the_hooks_are_restored():
    """The profile hook is per thread: ``watching`` sets it for the threads started inside it too."""
    import sys
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def in_a_thread(q, k, v, mask=None):
        out = []
        thread = threading.Thread(target=lambda: out.append(
            vars(torch.nn.functional)["scaled_dot_product_attention"](q, k, v, attn_mask=mask)))
        thread.start()
        thread.join()
        return out[0]

    def in_a_pool(q, k, v, mask=None):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(getattr(torch.nn.functional, "scaled_dot_product_attention"), q, k, v,
                               attn_mask=mask).result()

    before, threads_before = sys.getprofile(), threading.getprofile()
    for answer in (in_a_thread, in_a_pool):
        calls = set()
        result, message = exercises.verdict("sa.sdpa", answer, calls)
        assert result is False and calls == {"scaled_dot_product_attention", "threaded"}, answer.__name__
        assert "scaled_dot_product_attention" in message     # the forbidden call's verdict comes first
        assert sys.getprofile() is before and threading.getprofile() is threads_before
    calls = set()
    assert exercises.verdict("sa.sdpa", _by_hand, calls)[0] is True and calls == set()


def _flex(q, k, v, mask=None):
    """torch's other attention API, the next thing a student finds once SDPA is refused."""
    from torch.nn.attention.flex_attention import flex_attention

    def score_mod(score, b, h, i, j):
        return score if mask is None else torch.where(mask[i, j], score, -float("inf"))
    return flex_attention(q, k, v, score_mod=score_mod)


def _mha_forward(q, k, v, mask=None):
    """F.multi_head_attention_forward with identity projections: torch's attention inside a layer's function."""
    B, h, N, d = q.shape
    eye = torch.eye(d)
    out = [torch.nn.functional.multi_head_attention_forward(
        q[b].transpose(0, 1), k[b].transpose(0, 1), v[b].transpose(0, 1), d, 1, None, None, None, None, False,
        0.0, eye, None, training=False, need_weights=False, attn_mask=None if mask is None else ~mask,
        use_separate_proj_weight=True, q_proj_weight=eye, k_proj_weight=eye, v_proj_weight=eye)[0]
        for b in range(B)]                                    # each (N, h, d) with h as its batch
    return torch.stack(out).transpose(1, 2)                   # (B, h, N, d)


@pytest.mark.filterwarnings("ignore:.*flex_attention.*:UserWarning")    # torch: flex in eager mode is slow
@pytest.mark.parametrize("answer, recorded", [(_flex, "flex_attention"),
                                              (_mha_forward, "multi_head_attention_forward")])
def test_torchs_other_attention_functions_are_recorded_in_the_by_hand_exercise(answer, recorded, lang):
    calls = set()
    result, message = exercises.verdict("sa.sdpa", answer, calls)
    assert result is False and recorded in calls, (calls, message)
    assert message == i18n.t("ex.wrong", hint=i18n.t(f"ex.forbidden.{recorded}"))
    from attention_lib import grade                            # and the text scan names it
    import ast
    flags = grade.flags_of(ast.parse("from torch.nn.attention.flex_attention import flex_attention\n"
                                     "out = F.multi_head_attention_forward(q, k, v)"),
                           forbid=exercises.EXERCISES["sa.sdpa"].forbid)
    assert "uses flex_attention, which the exercise forbids" in flags
    assert "uses multi_head_attention_forward, which the exercise forbids" in flags


def test_a_time_out_inside_torchs_mode_machinery_is_reported_as_the_time_out(short_limit, lang):
    """torch pushes function modes of its own (flex_attention does): a time limit that lands while one is pushed
    leaves a changed mode stack, which is the time-out's doing, not a switch-off by the student."""
    import sys

    class Busy(torch.overrides.TorchFunctionMode):
        pass

    def slow_inside_a_mode(q, k, v, mask=None):
        torch._C._push_on_torch_function_stack(Busy())     # as torch's machinery pushes it, popped after its work
        while True:
            pass

    before, depth = sys.getprofile(), torch._C._len_torch_function_stack()
    calls = set()
    result, message = exercises.verdict("sa.sdpa", slow_inside_a_mode, calls)
    assert result is False and calls == set(), calls
    assert message == i18n.t("ex.wrong", hint=i18n.t("ex.fn.timeout", seconds=0.5))
    assert sys.getprofile() is before and torch._C._len_torch_function_stack() == depth


def test_waiting_on_a_thread_that_ran_before_the_check_is_recorded(lang):
    """A pool warmed up before the check runs torch's attention in a thread without the profile hook: the wait on
    it is recorded instead (``Future.result``, ``Thread.join``, a queue), and the verdict says so."""
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    pool.submit(int).result()                                  # its worker thread starts here, before the check
    fn = torch.nn.functional.scaled_dot_product_attention
    jobs, results = queue.Queue(), queue.Queue()
    worker = threading.Thread(target=lambda: [results.put(fn(*jobs.get())) for _ in iter(int, 1)], daemon=True)
    worker.start()

    def in_the_pool(q, k, v, mask=None):
        return pool.submit(fn, q, k, v, attn_mask=mask).result()

    def through_queues(q, k, v, mask=None):
        jobs.put((q, k, v, mask))
        return results.get()

    try:
        for answer in (in_the_pool, through_queues):
            calls = set()
            result, message = exercises.verdict("sa.sdpa", answer, calls)
            assert result is False and calls == {"threaded"}, (answer.__name__, calls, message)
            assert message == i18n.t("ex.wrong", hint=i18n.t("ex.forbidden.threaded"))
    finally:
        pool.shutdown()


def test_a_double_norm_without_its_epsilon_is_told_what_the_epsilon_keeps(lang):
    def no_eps(logits):                                        # float32 inside, but the row of zeros rescaled to 1
        a = logits.float().softmax(-2)
        return (a / a.sum(-1, keepdim=True)).to(logits.dtype)

    result, message = exercises.verdict("ea.double_norm", no_eps)
    assert result is False and i18n.t("ex.ea.case.half") in message
    assert {"en": "should stay near 0", "zh": "应当接近 0"}[lang] in message


def test_torchs_warning_about_the_students_code_is_shown_at_the_students_function():
    """``k.T`` on a 4-D tensor: torch's deprecation warning points at the student's function, not at the engine."""
    import warnings

    def k_dot_T(q, k, v, mask=None):
        return (q @ k.T).softmax(-1) @ v

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert exercises.verdict("sa.sdpa", k_dot_T)[0] is False
    about_T = [w for w in caught if "x.T" in str(w.message)]
    assert about_T and all(w.filename == __file__ for w in about_T), [(w.filename, w.lineno) for w in about_T]
    assert about_T[0].lineno == k_dot_T.__code__.co_firstlineno
