"""The grading command on a class of planted submissions: right, wrong, cheating, crashing and looping students.

Each submission is a chapter's student edition (as the archive hands it out) with the student's code in the answer
cells; ``python -m attention_lib.grade <folder>`` must re-run and re-check every answer in a fresh process per
notebook, flag the cheats, survive crashes and endless loops, and write one table as CSV and HTML.
"""
from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("editions", ROOT / "tools" / "editions.py")
editions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(editions)

SE_GATE = '''def se_gate(x, fc1, fc2):
    z = x.mean((2, 3))                                      # (B, C)
    return torch.sigmoid(fc2(torch.relu(fc1(z))))[:, :, None, None]'''

#: student -> {exercise: the code of the answer cell, before its check call}
CLASS = {
    "alice": {"se.params": "answer_1 = 2 * 256 * 16 + 16 + 256", "se.shape": "answer_2 = (8, 256, 1, 1)",
              "se.gate": SE_GATE},
    "bob": {"se.params": "answer_1 = 2 * 256 * 16", "se.shape": "answer_2 = (8, 256)",
            "se.gate": SE_GATE.replace("x.mean((2, 3))", "x.amax((2, 3))")},
    "carol": {"se.params": "answer_1 = al.count_parameters(al.SqueezeExcitation(256))",
              "se.shape": 'print("Correct!")\nanswer_2 = (8, 256)\nal.exercises.check = lambda *a: None',
              "se.gate": "ch.close = lambda *a, **k: True\ndef se_gate(x, fc1, fc2):\n"
                         "    return torch.zeros(x.shape[0], x.shape[1], 1, 1)"},
    "dave": {"se.params": "answer_1 = 1 / 0", "se.shape": "import sys\nsys.exit('bye')\nanswer_2 = (8, 256, 1, 1)",
             "se.gate": "def se_gate(x, fc1, fc2):\n    raise ValueError('not yet')"},
    "frank": {"se.params": "from attention_lib.toolkit import memory   # a submodule imported, nothing changed\n"
                           "answer_1 = 2 * 256 * 16 + 16 + 256"},
    "erin": {"se.params": "while True:\n    pass\nanswer_1 = 8464", "se.shape": "answer_2 = (8, 256, 1, 1)",
             "se.gate": "def se_gate(x, fc1, fc2):\n    while True:\n        pass"},
}
#: chapter 1, for the exercises that forbid what their reference uses
SDPA_CHEAT = {"sa.sdpa": "def attention(q, k, v, mask=None):\n"
                         "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)",
              "sa.causal": "def causal_attention(q, k, v):\n"
                           "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)"}


def _submission(chapter: str, answers: dict, lang: str = "en"):
    nb = editions.student_edition(nbformat.read(ROOT / "notebooks" / lang / f"{chapter}.ipynb", as_version=4))
    for cell in nb.cells:
        call = re.search(r"""\.check\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""", cell.source)
        if cell.cell_type == "code" and call and call.group(1) in answers:
            cell.source = answers[call.group(1)] + f'\nal.exercises.check("{call.group(1)}", {call.group(2)})'
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for student, answers in CLASS.items():
        (folder / student).mkdir()
        nbformat.write(_submission("03_squeeze_excitation", answers), folder / student / "03_squeeze_excitation.ipynb")
    nbformat.write(_submission("01_self_attention", SDPA_CHEAT), folder / "carol-01_self_attention.ipynb")
    out = folder / "report"
    done = subprocess.run([sys.executable, "-m", "attention_lib.grade", str(folder), "--out", str(out),
                           "--time-limit", "3", "--check-limit", "2", "--timeout", "120"],
                          capture_output=True, text=True, timeout=600, cwd=folder)
    assert done.returncode == 0, done.stderr
    with open(out / "grades.csv", encoding="utf-8") as f:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    return rows, (out / "grades.html").read_text(encoding="utf-8"), done.stdout


def test_one_row_per_student_and_exercise(graded):
    rows, _, stdout = graded
    students = {s for s, _ in rows}
    assert students == set(CLASS)
    assert {e for s, e in rows if s == "alice"} == {"se.params", "se.shape", "se.gate"}
    assert {e for s, e in rows if s == "carol"} >= {"sa.shape", "sa.params", "sa.sdpa", "sa.causal", "se.gate"}
    assert "students" in stdout and "grades.csv" in stdout


def test_right_and_wrong_answers_get_the_checks_verdicts(graded):
    rows, _, _ = graded
    assert all(rows[("alice", e)]["status"] == "right" and not rows[("alice", e)]["flags"]
               for e in ("se.params", "se.shape", "se.gate"))
    assert [rows[("bob", e)]["status"] for e in ("se.params", "se.shape", "se.gate")] == ["wrong"] * 3
    assert "AVERAGE" in rows[("bob", "se.gate")]["message"]


def test_cheats_are_flagged_and_a_patched_check_does_not_survive(graded):
    rows, _, _ = graded
    assert "uses the library: al.count_parameters" in rows[("carol", "se.params")]["flags"]
    shape = rows[("carol", "se.shape")]
    assert shape["status"] == "wrong" and "writes a verdict" in shape["flags"] and "changes al.exercises.check" \
        in shape["flags"]
    gate = rows[("carol", "se.gate")]
    assert gate["status"] == "wrong", "a judge's helper replaced by the student must be put back before checking"
    assert "changes ch.close" in gate["flags"]
    assert rows[("carol", "sa.sdpa")]["status"] == "right"          # right, but by the forbidden route:
    assert "scaled_dot_product_attention, which the exercise forbids" in rows[("carol", "sa.sdpa")]["flags"]
    assert "is_causal, which the exercise forbids" in rows[("carol", "sa.causal")]["flags"]
    assert rows[("carol", "sa.shape")]["status"] == "unanswered"
    frank = rows[("frank", "se.params")]                 # importing a submodule is an import, not a change
    assert frank["status"] == "right" and "imports attention_lib" in frank["flags"] and "chang" not in frank["flags"]


def test_crashing_and_looping_answers_get_a_verdict_and_the_rest_is_still_graded(graded):
    rows, _, _ = graded
    assert rows[("dave", "se.params")]["status"] == "error" and "ZeroDivisionError" in rows[("dave", "se.params")][
        "message"]
    assert rows[("dave", "se.shape")]["status"] == "error" and "SystemExit" in rows[("dave", "se.shape")]["message"]
    assert rows[("dave", "se.gate")]["status"] == "wrong" and "not yet" in rows[("dave", "se.gate")]["message"]
    assert rows[("erin", "se.params")]["status"] == "timeout"
    assert rows[("erin", "se.shape")]["status"] == "right"
    assert rows[("erin", "se.gate")]["status"] == "wrong" and "2 s" in rows[("erin", "se.gate")]["message"]


def test_the_html_table_says_each_outcome_in_words(graded):
    _, page, _ = graded
    assert page.count("<tr>") >= len(CLASS) and "✓ right" in page and "✗ wrong" in page and "⏱ timeout" in page
    assert "⚑" in page and "not evidence" in page
