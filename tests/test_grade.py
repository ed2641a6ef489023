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
from typing import Optional

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
                           "answer_1 = 2 * 256 * 16 + 16 + 256",
              "se.shape": "answer_2 = helper_shape",                     # set in a scratch cell (SCRATCH)
              "se.gate": SE_GATE.replace("(2, 3)", "helper_dims")},
    "erin": {"se.params": "while True:\n    pass\nanswer_1 = 8464", "se.shape": "answer_2 = (8, 256, 1, 1)",
             "se.gate": "def se_gate(x, fc1, fc2):\n    while True:\n        pass"},
}
#: a cell of the student's own in chapter 3: what frank's answer cells lean on, which the grader does not run
SCRATCH = {"frank": "helper_shape = (8, 256, 1, 1)\nhelper_dims = (2, 3)"}
#: chapter 1, for the exercises that forbid what their reference uses
SDPA_CHEAT = {"sa.sdpa": "def attention(q, k, v, mask=None):\n"
                         "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)",
              "sa.causal": "def causal_attention(q, k, v):\n"
                           "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)"}


OS_EXIT = "def causal_attention(q, k, v):\n    import os\n    os._exit(3)"
#: attention by hand, as the exercise asks (dave's): no flag, though the check itself calls torch's attention
BY_HAND = ("def attention(q, k, v, mask=None):\n"
           "    scores = torch.einsum('bhid,bhjd->bhij', q, k) / q.shape[-1] ** 0.5\n"
           "    if mask is not None:\n"
           "        scores = scores.masked_fill(mask.logical_not(), float('-inf'))\n"
           "    return scores.softmax(-1) @ v")
#: ivan (chapter 1): the forbidden calls spelled so that no text scan sees them; the run-time record does
IVAN = {"sa.sdpa": "fn = vars(F)['_'.join(['scaled', 'dot', 'product', 'attention'])]\n"
                   "def attention(q, k, v, mask=None):\n    return fn(q, k, v, attn_mask=mask)",
        "sa.causal": "fn = vars(F)['_'.join(['scaled', 'dot', 'product', 'attention'])]\n"
                     "def causal_attention(q, k, v):\n    return fn(q, k, v, **dict([('is_' + 'causal', 1 > 0)]))"}


#: frank (chapter 1): the library's names imported in a scratch cell, used bare in an answer cell
FRANK_SCRATCH = "from attention_lib import count_parameters\nfrom attention_lib import MultiHeadSelfAttention as MHSA"
FRANK = {"sa.params": "answer_2 = count_parameters(MHSA(96, num_heads=6))"}
#: heidi (chapter 1): the library and the forbidden function reached without spelling their names
HEIDI = {"sa.params": "import sys\nanswer_2 = sys.modules['attention_lib'].count_parameters(\n"
                      "    (__builtins__['__import__'] if isinstance(__builtins__, dict)\n"
                      "     else __builtins__.__import__)(\n"
                      "        'attention_lib').MultiHeadSelfAttention(96, num_heads=6))",
         "sa.sdpa": "import importlib\nF2 = importlib.import_module('torch.nn.functional')\n"
                    "def attention(q, k, v, mask=None):\n"
                    "    return getattr(F2, 'scaled_' + 'dot_product_attention')(q, k, v, attn_mask=mask)"}


#: kim (chapter 1): torch's attention called from a thread, by a name built from a string
KIM = {"sa.sdpa": "import threading\n"
                  "def attention(q, k, v, mask=None):\n    out = []\n"
                  "    fn = vars(F)['scaled_dot_product_attention']\n"
                  "    t = threading.Thread(target=lambda: out.append(fn(q, k, v, attn_mask=mask)))\n"
                  "    t.start()\n    t.join()\n    return out[0]"}
#: nora (chapter 1): torch's attention in a thread that polls a list, started before the check; her function
#: only hands it the work and polls back (no wait the record sees): right values, sent to review by the text flag
NORA = {"sa.sdpa": "import threading, time\njobs, out = [], []\n"
                   "def serve():\n    while True:\n        if jobs:\n"
                   "            out.append(F.scaled_dot_product_attention(*jobs.pop()))\n"
                   "        time.sleep(0.001)\n"
                   "threading.Thread(target=serve, daemon=True).start()\n"
                   "def attention(q, k, v, mask=None):\n    jobs.append((q, k, v, mask))\n"
                   "    while not out:\n        time.sleep(0.001)\n    return out.pop()"}
#: olga (chapter 1): her process dies in exercise 3; exercise 4 after it must still be graded
OLGA = {"sa.sdpa": "def attention(q, k, v, mask=None):\n    import os\n    os._exit(3)",
        "sa.causal": "def causal_attention(q, k, v):\n    n = q.shape[-2]\n"
                     "    mask = torch.ones(n, n, dtype=torch.bool).tril()\n"
                     "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)"}
#: lee (chapter 1): a wrong attempt at exercise 3 kept, and a corrected copy of the cell below it
LEE_WRONG = BY_HAND.replace("q.shape[-1] ** 0.5", "12 ** 0.5")


def _submission(chapter: str, answers: dict, lang: str = "en", scratch: str = "", before: Optional[dict] = None):
    nb = editions.student_edition(nbformat.read(ROOT / "notebooks" / lang / f"{chapter}.ipynb", as_version=4))
    if scratch:                                       # a cell of the student's own, before the first answer cell
        first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and ".check(" in c.source)
        nb.cells.insert(first, nbformat.v4.new_code_cell(scratch))
    for cell in nb.cells:
        call = re.search(r"""\.check\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""", cell.source)
        if cell.cell_type == "code" and call and call.group(1) in answers:
            cell.source = answers[call.group(1)] + f'\nal.exercises.check("{call.group(1)}", {call.group(2)})'
    for key, code in (before or {}).items():          # an earlier attempt, in a cell of its own above the answer
        at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f'check("{key}"' in c.source)
        name = re.search(r"""\.check\(\s*["'][\w.]+["']\s*,\s*(\w+)""", nb.cells[at].source).group(1)
        nb.cells.insert(at, nbformat.v4.new_code_cell(code + f'\nal.exercises.check("{key}", {name})'))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for student, answers in CLASS.items():
        (folder / student).mkdir()
        nbformat.write(_submission("03_squeeze_excitation", answers, scratch=SCRATCH.get(student, "")),
                       folder / student / "03_squeeze_excitation.ipynb")
    nbformat.write(_submission("01_self_attention", SDPA_CHEAT), folder / "carol-01_self_attention.ipynb")
    # dave's process dies in the last exercise's function: the verdicts written before it must stay
    nbformat.write(_submission("01_self_attention", {"sa.sdpa": BY_HAND, "sa.causal": OS_EXIT}),
                   folder / "dave-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", FRANK, scratch=FRANK_SCRATCH),
                   folder / "frank-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", HEIDI), folder / "heidi-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", IVAN), folder / "ivan-01_self_attention.ipynb")
    # gina's upload was cut off half-way: not JSON; the class must still be graded
    whole = nbformat.writes(_submission("03_squeeze_excitation", CLASS["alice"]))
    (folder / "gina-03_squeeze_excitation.ipynb").write_text(whole[:len(whole) // 2], encoding="utf-8")
    (folder / "gina.ipynb").write_text("{not json", encoding="utf-8")   # no chapter in its name: a "?" row
    nbformat.write(_submission("01_self_attention", KIM), folder / "kim-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", OLGA), folder / "olga-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", NORA), folder / "nora-01_self_attention.ipynb")
    nbformat.write(_submission("01_self_attention", {"sa.sdpa": BY_HAND}, before={"sa.sdpa": LEE_WRONG}),
                   folder / "lee-01_self_attention.ipynb")
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
    assert students == set(CLASS) | {"gina", "heidi", "ivan", "kim", "lee", "olga", "nora"}
    assert {e for s, e in rows if s == "alice" and rows[(s, e)]["notebook"]} == {"se.params", "se.shape", "se.gate"}
    # a chapter others handed in and alice did not: a "missing" row per exercise, not a blank
    for key in ("sa.shape", "sa.params", "sa.sdpa", "sa.causal"):
        assert rows[("alice", key)]["status"] == "missing"
        assert rows[("alice", key)]["message"] == "no notebook for this chapter"
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
    sdpa, causal = rows[("carol", "sa.sdpa")], rows[("carol", "sa.causal")]
    assert "uses scaled_dot_product_attention, which the exercise forbids" in sdpa["flags"]     # the text scan
    assert "uses is_causal, which the exercise forbids" in causal["flags"]
    # and the run-time record: right values by the forbidden call are not right
    assert sdpa["status"] == "wrong" and "asks you to compute attention yourself" in sdpa["message"]
    assert RAN_SDPA in sdpa["flags"]
    assert causal["status"] == "wrong" and "asks you to build the causal mask yourself" in causal["message"]
    assert RAN_CAUSAL in causal["flags"]
    assert rows[("carol", "sa.shape")]["status"] == "unanswered"
    frank = rows[("frank", "se.params")]                 # importing a submodule is an import, not a change
    assert frank["status"] == "right" and "imports attention_lib" in frank["flags"] and "chang" not in frank["flags"]


RAN_SDPA = "called F.scaled_dot_product_attention in the check, which the exercise forbids (recorded at run time)"
RAN_CAUSAL = ("called F.scaled_dot_product_attention with is_causal=True in the check, which the exercise forbids "
              "(recorded at run time)")


def test_forbidden_calls_no_text_scan_sees_are_recorded_at_run_time_and_honest_work_is_not(graded):
    rows, page, _ = graded
    sdpa, causal = rows[("ivan", "sa.sdpa")], rows[("ivan", "sa.causal")]
    assert sdpa["status"] == "wrong" and sdpa["flags"] == RAN_SDPA       # nothing else: the scan saw nothing
    assert causal["status"] == "wrong" and causal["flags"] == RAN_CAUSAL
    assert "asks you to build the causal mask yourself" in causal["message"] and "ivan" in page
    heidi = rows[("heidi", "sa.sdpa")]                       # importlib + getattr of a name built from text
    assert heidi["status"] == "wrong" and RAN_SDPA in heidi["flags"]
    assert "called count_parameters while the cell ran, which the exercise forbids (recorded at run time)" \
        in rows[("heidi", "sa.params")]["flags"]
    assert "called count_parameters while the cell ran" in rows[("frank", "sa.params")]["flags"]
    honest = rows[("dave", "sa.sdpa")]                       # by hand: right, and no flag at all
    assert honest["status"] == "right" and honest["flags"] == ""
    assert rows[("alice", "se.params")]["flags"] == ""       # a count by hand in a params exercise: no flag


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


def test_an_unreadable_notebook_gets_its_chapters_rows_and_the_class_is_still_graded(graded):
    rows, page, _ = graded
    gina = {e: r for (s, e), r in rows.items() if s == "gina" and r["notebook"].startswith("gina-03")}
    assert set(gina) == {"se.params", "se.shape", "se.gate"}          # the chapter read off the file name
    for row in gina.values():
        assert row["status"] == "error"
        assert re.fullmatch(r"not a readable notebook \(JSON error at line \d+, column \d+: .+\)", row["message"])
    assert rows[("gina", "?")]["notebook"] == "gina.ipynb"       # no chapter in the name: a "?" row
    assert rows[("alice", "se.gate")]["status"] == "right" and "gina" in page
    # "?" is neither a column nor counted: alice, all of whose answers are right, has every one counted
    head = page[page.index("<thead>"):page.index("</thead>")]
    columns = re.findall(r"<th scope='col'>(?:Ex \d+ · )?<code>([\w.?]+)</code>", head)
    assert "?" not in columns and len(columns) == 7
    alice = re.search(r"<th scope='row'>alice</th>(.*?)</tr>", page).group(1)
    assert alice.endswith("<td>3 / 7</td>")


def test_a_crash_costs_only_its_own_exercise_a_new_process_grades_the_rest(graded):
    rows, _, _ = graded
    assert rows[("olga", "sa.sdpa")]["status"] == "error"
    assert rows[("olga", "sa.sdpa")]["message"] == "the process ended (exit code 3) while checking sa.sdpa"
    assert rows[("olga", "sa.causal")]["status"] == "right"            # graded by a new process
    assert rows[("olga", "sa.shape")]["status"] == "unanswered"        # graded before the crash, kept


def test_the_last_of_two_answer_cells_is_graded_and_flagged(graded):
    rows, _, _ = graded
    lee = rows[("lee", "sa.sdpa")]
    assert lee["status"] == "right" and "answered in 2 cells; the last was graded" in lee["flags"]
    assert "answered in" not in rows[("dave", "sa.sdpa")]["flags"]


def test_torchs_attention_from_a_thread_is_recorded_and_the_thread_and_string_are_flagged(graded):
    rows, _, _ = graded
    kim = rows[("kim", "sa.sdpa")]
    assert kim["status"] == "wrong" and "scaled_dot_product_attention" in kim["message"]
    assert "runs code in another thread or process: import threading" in kim["flags"]
    assert "names scaled_dot_product_attention in a string, which the exercise forbids" in kim["flags"]


def test_a_right_answer_that_runs_code_in_another_thread_is_sent_to_review_not_graded_right(graded):
    rows, page, _ = graded
    nora = rows[("nora", "sa.sdpa")]
    assert nora["status"] == "review", nora
    assert "runs code in another thread or process" in nora["flags"] and "read the code" in nora["message"]
    assert "⚠ review" in page
    assert rows[("dave", "sa.sdpa")]["status"] == "right"         # by hand, no thread: right


def test_the_books_own_solutions_are_not_flagged():
    """Every solution cell of every notebook, read as an answer: no flag (``Exercise.allow`` where it uses the
    library); the same code in an exercise without that allowance is flagged."""
    import ast

    import attention_lib
    from attention_lib import exercises, grade

    attention_lib.chapters.load_all()
    seen = set()
    for path in sorted((ROOT / "notebooks" / "en").glob("*.ipynb")):
        for cell in grade._cells(path):
            if grade._is_solution(cell):
                tree = ast.parse(cell["source"])
                for key, _ in grade._check_calls(tree):
                    ex = exercises.EXERCISES[key]
                    assert grade.flags_of(tree, ex.forbid, ex.allow) == [], (path.name, key)
                    seen.add(key)
    assert {"eca.params", "cmp.cheapest"} <= seen
    assert grade.flags_of(ast.parse("x = sum(n * al.eca_kernel_size(c) for c, n in ch.RESNET50)")) == [
        "uses the library: al.eca_kernel_size"]


def test_a_process_that_dies_keeps_the_verdicts_already_written(graded):
    rows, _, _ = graded
    assert rows[("dave", "sa.sdpa")]["status"] == "right"            # graded before the os._exit(3)
    assert rows[("dave", "sa.shape")]["status"] == "unanswered"
    causal = rows[("dave", "sa.causal")]
    assert causal["status"] == "error"
    assert causal["message"] == "the process ended (exit code 3) while checking sa.causal"


def test_the_library_reached_around_its_name_is_flagged(graded):
    rows, _, _ = graded
    frank = rows[("frank", "sa.params")]
    assert frank["status"] == "right"                     # right, but counted by the library:
    assert "imports from attention_lib outside the setup: from attention_lib import count_parameters" in frank["flags"]
    assert "uses count_parameters, imported from attention_lib in another cell" in frank["flags"]
    assert "uses MHSA, imported from attention_lib in another cell" in frank["flags"]
    assert "reaches around the library's name: count_parameters" in frank["flags"]
    assert "imports from attention_lib outside the setup" in rows[("frank", "sa.shape")]["flags"]  # per notebook
    params, sdpa = rows[("heidi", "sa.params")], rows[("heidi", "sa.sdpa")]
    assert params["status"] == "right" and sdpa["status"] == "wrong"     # the call of torch's attention was seen
    for flag in ("reaches around the library's name: sys.modules", "reaches around the library's name: __builtins__",
                 "runs code from text: __import__"):
        assert flag in params["flags"]
    assert "reaches around the library's name: importlib" in sdpa["flags"]
    assert "looks a name up from text: getattr(F2, 'scaled_' + 'dot_product_attention')" in sdpa["flags"]
    assert not rows[("alice", "se.gate")]["flags"]        # the setup's own imports are not flagged


def test_a_name_of_another_cell_gets_the_rule_that_an_answer_cell_stands_on_its_own(graded):
    rows, _, _ = graded
    shape, gate = rows[("frank", "se.shape")], rows[("frank", "se.gate")]
    assert shape["status"] == "error" and shape["message"] == (
        "the cell raised NameError: name 'helper_shape' is not defined. `helper_shape` is defined in another cell, "
        "and an answer cell must stand on its own: when your work is graded, each answer cell is re-run alone, "
        "after the notebook's imports, so define in it everything it uses.")
    assert gate["status"] == "wrong" and "NameError" in gate["message"] \
        and "`helper_dims` is defined in another cell" in gate["message"]
    assert "another cell" not in rows[("dave", "se.params")]["message"]     # other errors get no such sentence


def test_the_stand_alone_rule_in_both_languages_only_for_a_name_another_cell_defines():
    from attention_lib import grade
    from attention_lib.toolkit import i18n

    message = "NameError: name 'd_k' is not defined"
    assert grade.name_elsewhere(message, {"x"}) == message
    try:
        i18n.set_language("zh")
        assert grade.name_elsewhere(message, {"d_k"}) == message + "。`d_k` 定义在另一个代码单元里，而作答的代码单元" \
            "必须能独立运行：评分时每个作答的代码单元都会在 Jupyter 笔记本的导入之后单独重新运行，所以它用到的一切都要在本单元里定义。"
    finally:
        i18n.set_language("en")


def test_the_html_columns_follow_the_books_order_and_number_each_exercise(graded):
    _, page, _ = graded
    head = page[page.index("<thead>"):page.index("</thead>")]
    heads = re.findall(r"<th scope='col'>(Ex \d+ · )?<code>([\w.?]+)</code>", head)
    keys = [k for _, k in heads]
    assert keys[:4] == ["sa.shape", "sa.params", "sa.sdpa", "sa.causal"]      # chapter 1 before chapter 3
    assert keys[4:7] == ["se.params", "se.shape", "se.gate"]
    assert ("Ex 3 · ", "sa.sdpa") in heads and ("Ex 1 · ", "se.params") in heads
    assert "?" not in keys                                              # gina's unreadable notes: below only


def test_a_switch_of_the_run_time_record_is_flagged_by_name():
    import ast

    from attention_lib import grade

    flags = grade.flags_of(ast.parse("import sys, torch\nsys.setprofile(None)\n"
                                     "with torch._C.DisableTorchFunction():\n    pass"))
    assert "switches off the run-time record: setprofile" in flags
    assert "switches off the run-time record: DisableTorchFunction" in flags
    assert grade.flags_of(ast.parse("x = torch.softmax(s, -1)")) == []


def test_the_library_used_as_a_value_is_flagged_and_its_ordinary_use_is_not():
    import ast

    from attention_lib import grade

    assert "reaches around the library's name: al used as a value" in grade.flags_of(
        ast.parse("m = vars(al)['SqueezeExcitation'](256, reduction=16)\nanswer_1 = sum(p.numel() for p in "
                  "m.parameters())"))
    assert "reaches around the library's name: ch used as a value" in grade.flags_of(ast.parse("x = getmembers(ch)"))
    assert grade.flags_of(ast.parse("answer_1 = 8464\nal.exercises.check('se.params', answer_1)")) == []
    assert grade.flags_of(ast.parse("answer_1 = len(ch.RESNET50)")) == []


def _grade(folder: Path) -> tuple[dict, str, str]:
    out = folder.parent / (folder.name + "-report")
    done = subprocess.run([sys.executable, "-m", "attention_lib.grade", str(folder), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=folder)
    assert done.returncode == 0, done.stderr
    with open(out / "grades.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f)]
    return rows, (out / "grades.html").read_text(encoding="utf-8"), done.stdout


def test_a_zip_of_the_class_folder_is_graded_per_student_without_a_macs_leftovers(tmp_path):
    """``unzip -d submissions`` of a zip of the folder itself adds a wrapper folder (``submissions/submissions/``);
    a Mac's zip adds ``__MACOSX/`` and ``._*`` files. The students are still the folders inside the wrapper.
    (Cut-off files: graded without a process, so the test is quick; each gets its chapter's error rows.)"""
    folder = tmp_path / "submissions"
    for path in ("submissions/alice/03_squeeze_excitation.ipynb", "submissions/bob/03_squeeze_excitation.ipynb",
                 "submissions/bob/zh_03_squeeze_excitation.ipynb", "submissions/quinn/homework.ipynb",
                 "__MACOSX/submissions/alice/._03_squeeze_excitation.ipynb",
                 "submissions/alice/._03_squeeze_excitation.ipynb", "submissions/.hidden/03_squeeze_excitation.ipynb"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("{not json", encoding="utf-8")
    rows, page, stdout = _grade(folder)
    assert {r["student"] for r in rows} == {"alice", "bob", "quinn"}
    assert "of 3 students" in stdout
    alice = [r for r in rows if r["student"] == "alice"]
    assert [r["notebook"] for r in alice] == ["alice/03_squeeze_excitation.ipynb"] * 3 and not alice[0]["flags"]
    # two notebooks of one chapter: both graded, each row flagged with which one the grid shows
    bob = [r for r in rows if r["student"] == "bob" and r["exercise"] == "se.gate"]
    assert len(bob) == 2
    for r in bob:
        assert ("2 notebooks answer this exercise: bob/03_squeeze_excitation.ipynb, bob/zh_03_squeeze_excitation.ipynb;"
                " the grid shows the last by name, bob/zh_03_squeeze_excitation.ipynb") in r["flags"]
    # quinn handed in only an unreadable file with no chapter: no "missing" row, one cell that says so
    assert [(r["exercise"], r["status"]) for r in rows if r["student"] == "quinn"] == [("?", "error")]
    quinn = re.search(r"<th scope='row'>quinn</th>(.*?)</tr>", page).group(1)
    assert "unreadable file" in quinn and "missing" not in quinn


def test_one_students_own_folder_is_not_taken_for_a_wrapper(tmp_path):
    folder = tmp_path / "class"
    for path in ("alice/hw/03_squeeze_excitation.ipynb", "alice/05_cbam.ipynb"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("{not json", encoding="utf-8")
    rows, _, _ = _grade(folder)
    assert {r["student"] for r in rows} == {"alice"}


def test_a_browsers_numbered_copy_counts_as_the_later_notebook(tmp_path):
    """``03_x (1).ipynb`` is a re-download of ``03_x.ipynb``: plain sorting puts it first (" " < "."), the grader
    puts it after its original, so the grid shows the later copy."""
    from attention_lib import grade
    folder = tmp_path / "dan"
    folder.mkdir()
    names = ["03_squeeze_excitation (2).ipynb", "03_squeeze_excitation (1).ipynb", "03_squeeze_excitation.ipynb",
             "00_introduction.ipynb"]
    for name in names:
        (folder / name).write_text("{}")
    assert [p.name for p in grade.notebooks_in(tmp_path)] == [
        "00_introduction.ipynb", "03_squeeze_excitation.ipynb", "03_squeeze_excitation (1).ipynb",
        "03_squeeze_excitation (2).ipynb"]
    assert sorted(names[:3]) == ["03_squeeze_excitation (1).ipynb", "03_squeeze_excitation (2).ipynb",
                                 "03_squeeze_excitation.ipynb"]          # what plain sorting would show last
