"""Grade a class's submitted notebooks: ``python -m attention_lib.grade <folder>``.

A printed "Correct!" in a submitted notebook is not evidence: the solutions are public, and one ``print`` fakes a
verdict. This command re-checks every answer instead. For each notebook under ``<folder>`` (one folder per
student, or files named ``<student>-03_squeeze_excitation.ipynb``), in a fresh Python process of its own:

1. it runs the imports of the notebook's cells (``torch``, ``al``, ``ch``...), then each *answer cell* (a code cell
   that calls ``al.exercises.check("<key>", <name>)`` and is not a hidden solution) without its check call, in
   order and under a time limit, with the student's printing captured;
2. it calls the real check on what the cell left in ``<name>``, after putting back anything the cell changed in
   ``attention_lib``, ``torch`` or ``math`` (a check replaced by ``lambda *a: None`` does not survive);
3. it records at run time the calls an exercise forbids (``Exercise.forbid``, watched by
   ``attention_lib.toolkit.exercises.watching``: a torch function mode and a profile hook, removed afterwards
   even on an error or a time limit), however the code reached them (``F.``, ``torch._C._nn.``,
   ``torch.ops.aten.``, a name bound earlier or built from text): torch's ``scaled_dot_product_attention``
   (or ``flex_attention``, ``multi_head_attention_forward``, or a wait on another thread's work, which may run
   them unseen) inside the student's function in the check of chapter 1's exercise 3 (attention by hand), the same with
   ``is_causal=True`` in exercise 4 (the causal mask), both of which the check itself answers "Not quite: this
   exercise asks you to compute it yourself" (so the row is ``wrong``), and the library's ``count_parameters``
   while the answer cell of a parameter-count exercise runs (a flag only: a number does not say how it was
   computed). Each such call is flagged "called ... (recorded at run time)"; so is code that switches the
   record off (``sys.setprofile``, popping torch's mode stack);
4. it flags, by a text scan, an answer cell that imports or calls the library (``al.``, ``attention_lib``,
   ``ch.``) other than through its check, names what the exercise forbids, changes the library or torch,
   prints a verdict, runs code from text (``exec``, ``eval``), checks another exercise than its chapter's,
   reaches the library around its name (a bare ``count_parameters``, ``sys.modules``, ``importlib``,
   ``__builtins__``, ``getattr`` with a name built from text) or names a switch of the run-time record
   (``setprofile``, ``DisableTorchFunction``); for the whole notebook, an import from ``attention_lib`` in any
   cell beyond the setup's (and the answer cells that use a name it binds), and a notebook that still holds the
   reference solutions; in an exercise that forbids something, a string holding the forbidden name and the use of
   ``threading``, ``concurrent`` or ``multiprocessing`` (the run-time record follows the threads an answer starts,
   not another process); the library's names that an exercise's own solution uses (``Exercise.allow``) are not
   flagged. These flags are only a text scan: a determined student can evade them (a count by
   ``sum(p.numel() ...)``, the library's source copied), so a teacher reads the code of a surprising answer.

A right answer of an exercise that forbids something, whose cell runs code in another thread or process (the text
flag), is graded ``review`` rather than right: a thread that polls a list escapes every run-time record.

A zip of the class folder unzips to one wrapper folder (``submissions/submissions/alice/...``): the students are
the folders inside it (:func:`class_root`); ``__MACOSX/``, dot-folders and ``._*`` files are skipped. Two notebooks
of one student answering one exercise (an English and a Chinese copy) are both graded, each row flagged with the
one the grid shows (the last by name; a browser's `name (1).ipynb` counts as later than `name.ipynb`).

An exercise answered in several cells is graded by its last one (flagged). A file that is not a readable notebook
gets an ``error`` row per exercise of the chapter its name gives (``?`` when it gives none: listed, never a column
nor counted). A process that dies (a segfault, ``os._exit``) costs only the exercise it was checking: a new one goes
on from the next answer cell. A student who handed in no notebook of a chapter others handed in gets ``missing``
rows for its exercises.

It writes ``grades.csv`` (one row per student, notebook and exercise: the verdict, its message and the flags) and
``grades.html`` (students × exercises, each cell a word and a symbol as well as a colour) into ``--out``.

Answers run as the student wrote them, with the student's rights: run the command in an account or container
that holds nothing else of value. Each notebook gets ``--timeout`` seconds in all (default 300) and each answer
cell ``--time-limit`` (default 30); each check stops a student's function after ``--check-limit`` seconds (10).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

#: What each outcome is called in the table, and its symbol (the table never says it by colour alone).
STATUS = {"right": "✓", "review": "⚠", "wrong": "✗", "unanswered": "…", "error": "!", "timeout": "⏱",
          "missing": "–"}
#: The text flag of an answer cell that runs code in another thread or process: a right answer that carries it in
#: an exercise that forbids something is sent to review, not graded right (the run-time record follows the threads
#: the answer starts and records a wait on another thread, but not every way of handing work to a thread)
_ELSEWHERE_FLAG = "runs code in another thread or process"
_LIBRARY = ("al", "attention_lib", "ch")
_RUNS_TEXT = ("exec", "eval", "compile", "__import__")
_VERDICT_WORDS = ("Correct", "正确", "Not quite", "还不对")
#: Names that reach the library or a forbidden function around the ``al.`` spelling (a text scan: see the guide)
_BACK_DOORS = ("count_parameters", "importlib", "__builtins__")
#: What switches off the run-time record of forbidden calls (``exercises.watching``), flagged by name as well
_SWITCHES = ("setprofile", "settrace", "DisableTorchFunction", "DisableTorchFunctionSubclass",
             "_pop_torch_function_stack", "_pop_mode", "_set_torch_function_state")


@dataclass
class Row:
    exercise: str
    status: str                        # one of STATUS
    message: str = ""
    flags: list = field(default_factory=list)


# ---------------------------------------------------------------- reading a notebook (no kernel, no nbformat)


def _cells(path: Path) -> list[dict]:
    """The notebook's cells; raises ``ValueError`` ("not a readable notebook ...") on a file that is not JSON."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:          # a half-uploaded file, an output cut off mid-save
        raise ValueError(f"not a readable notebook (JSON error at line {error.lineno}, column {error.colno}: "
                         f"{error.msg})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not a readable notebook (not UTF-8 text at byte {error.start})") from None
    if not isinstance(nb, dict):
        raise ValueError("not a readable notebook (the JSON is not a notebook)")
    cells = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        cells.append({"type": cell.get("cell_type"), "source": "".join(source) if isinstance(source, list) else source,
                      "tags": list(cell.get("metadata", {}).get("tags", []))})
    return cells


def _is_solution(cell) -> bool:
    return cell["type"] == "code" and ("solution" in cell["tags"]
                                       or cell["source"].lstrip().startswith("# @title Solution"))


def _check_calls(tree: ast.AST) -> list[tuple[str, str]]:
    """``[(key, name)]`` of the ``<...>.check("<key>", <name>)`` calls of a cell."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check" \
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and isinstance(node.args[1], ast.Name):
            found.append((node.args[0].value, node.args[1].id))
    return found


def _without_checks(tree: ast.Module) -> ast.Module:
    """The cell without its top-level check calls (the grader calls the check itself)."""
    body = [s for s in tree.body if not (isinstance(s, ast.Expr) and _check_calls(s))]
    return ast.Module(body=body, type_ignores=[])


def _chapter_of(path: Path, cells) -> Optional[str]:
    """The chapter module a notebook imports (``ch03_squeeze_excitation``), else the one its file name names."""
    for cell in cells:
        found = re.search(r"from attention_lib\.chapters import (ch\d\d_\w+)", cell["source"])
        if found:
            return found.group(1)
    from . import chapters
    number = re.match(r".*?(\d\d)_", path.name)
    names = [n for n in chapters.names() if number and n.startswith(f"ch{number.group(1)}_")]
    return names[0] if names else None


def _language_of(path: Path, cells) -> str:
    for cell in cells:
        found = re.search(r"setup\(\s*lang\s*=\s*[\"'](en|zh)[\"']", cell["source"])
        if found:
            return found.group(1)
    return "zh" if "zh" in path.parts else "en"


# ---------------------------------------------------------------- what an answer cell must not do


#: Modules that run code in another thread or process, which the run-time record may not follow: flagged in the
#: answer cell of an exercise that forbids something
_ELSEWHERE = ("threading", "concurrent", "multiprocessing", "_thread")


def flags_of(tree: ast.AST, forbid=(), allow=()) -> list[str]:
    """What a teacher should look at in an answer cell (see the module's docstring); ``allow``: the library's names
    the exercise's own solution uses (``Exercise.allow``), not flagged."""
    flags = []
    nodes = list(ast.walk(tree))
    in_check = {id(n) for c in nodes if isinstance(c, ast.Call) and _check_calls(c) for n in ast.walk(c.func)}
    inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}     # a.b of a.b.c: flag a.b.c once
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(n.split(".")[0] == "attention_lib" for n in names):
                flags.append("imports attention_lib")
            if any(n.split(".")[0] == "importlib" for n in names):
                flags.append("reaches around the library's name: importlib")
            if forbid and any(n.split(".")[0] in _ELSEWHERE for n in names):
                flags.append(f"{_ELSEWHERE_FLAG}: {ast.unparse(node)[:60]}")
        elif isinstance(node, ast.Attribute) and id(node) not in in_check and id(node) not in inner:
            root, first = node, node.attr
            while isinstance(root, ast.Attribute):
                root, first = root.value, root.attr                  # first: the name right after the root
            name = root.id if isinstance(root, ast.Name) else ""
            if isinstance(node.ctx, (ast.Store, ast.Del)) and name in (*_LIBRARY, "torch", "F", "nn", "math"):
                flags.append(f"changes {ast.unparse(node)}")
            elif name in _LIBRARY and not node.attr.isupper() and first not in allow:   # ch.RESNET50: data
                flags.append(f"uses the library: {ast.unparse(node)}")
            elif name == "sys" and node.attr == "modules":
                flags.append("reaches around the library's name: sys.modules")
            elif node.attr in _RUNS_TEXT:                            # __builtins__.__import__, builtins.eval
                flags.append(f"runs code from text: {node.attr}")
            elif node.attr in _SWITCHES:                             # sys.setprofile, torch._C.DisableTorchFunction
                flags.append(f"switches off the run-time record: {node.attr}")
        elif isinstance(node, ast.Name) and node.id in _LIBRARY and isinstance(node.ctx, ast.Load) \
                and id(node) not in inner and id(node) not in in_check:   # vars(al)[...], f(al): not al.name
            flags.append(f"reaches around the library's name: {node.id} used as a value")
        elif isinstance(node, ast.Name) and node.id in _RUNS_TEXT:
            flags.append(f"runs code from text: {node.id}")
        elif isinstance(node, ast.Name) and node.id in _BACK_DOORS and node.id not in allow:
            flags.append(f"reaches around the library's name: {node.id}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) > 1 and _holds_text(node.args[1]):
            flags.append(f"looks a name up from text: {ast.unparse(node)[:60]}")
        elif isinstance(node, ast.Name) and node.id == "EXERCISES":
            flags.append("touches the checks: EXERCISES")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and any(w in node.value for w in _VERDICT_WORDS):
            flags.append(f"writes a verdict: {node.value[:30]!r}")
        if forbid and isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = [w for w in forbid if w in node.value]         # vars(F)["scaled_dot_product_attention"]
            if named:
                flags.append(f"names {named[0]} in a string, which the exercise forbids")
        if forbid and isinstance(node, ast.Name) and node.id in _ELSEWHERE:
            flags.append(f"{_ELSEWHERE_FLAG}: {node.id}")
        if forbid:
            word = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else \
                node.arg if isinstance(node, ast.keyword) else node.name.split(".")[-1] \
                if isinstance(node, ast.alias) else None      # from torch.nn.attention.flex_attention import ...
            if word in forbid:
                flags.append(f"uses {word}, which the exercise forbids")
    return list(dict.fromkeys(flags))


#: What a run-time record means, for a flag (see ``exercises.watching``)
_RAN = {"scaled_dot_product_attention": "F.scaled_dot_product_attention",
        "is_causal": "F.scaled_dot_product_attention with is_causal=True", "count_parameters": "count_parameters",
        "flex_attention": "torch's flex_attention", "multi_head_attention_forward": "F.multi_head_attention_forward"}


def _ran_flag(name: str, where: str) -> str:
    """The flag of a forbidden call recorded at run time (``where``: "in the check", "while the cell ran")."""
    if name == "unwatched":
        return f"switched off the run-time record of forbidden calls {where}"
    if name == "threaded":
        return f"waited on another thread {where}, whose calls the record may not see (recorded at run time)"
    return f"called {_RAN.get(name, name)} {where}, which the exercise forbids (recorded at run time)"


def _holds_text(node: ast.AST) -> bool:
    """Whether an expression is built from string literals (``"scaled_" + "dot_product_attention"``, an f-string)."""
    return any(isinstance(n, ast.JoinedStr) or isinstance(n, ast.Constant) and isinstance(n.value, str)
               for n in ast.walk(node))


def _setup_import(node: ast.AST, chapter: Optional[str]) -> bool:
    """Whether an import of ``attention_lib`` is one the book's notebooks make themselves: ``import attention_lib``,
    ``import attention_lib as al``, ``import attention_lib.bam`` (binds only ``attention_lib``) and the chapter's
    ``from attention_lib.chapters import chNN_name as ch``."""
    if isinstance(node, ast.Import):
        return all(a.asname in (None, "al") if a.name == "attention_lib" else a.asname is None for a in node.names)
    return node.module == "attention_lib.chapters" and all(a.name == chapter and a.asname == "ch"
                                                           for a in node.names)


def library_imports(cells, chapter: Optional[str]) -> tuple[list[str], set[str]]:
    """The imports from ``attention_lib`` anywhere in a notebook beyond the setup's (a note for every row of the
    notebook), and the names they bind (an answer cell that uses one is flagged)."""
    notes, names = [], set()
    for cell in cells:
        if cell["type"] != "code" or _is_solution(cell):
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if not any(m.split(".")[0] == "attention_lib" for m in modules) or _setup_import(node, chapter):
                continue
            notes.append(f"imports from attention_lib outside the setup: {ast.unparse(node)}")
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
    return list(dict.fromkeys(notes)), names


def _defined(source: str) -> set[str]:
    """The names a cell binds (assignments, ``def``, ``class``, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
    return names


def name_elsewhere(message: str, elsewhere: set[str]) -> str:
    """``message`` with the rule added when it reports a NameError for a name another cell defines (the answer
    cell ran alone: "`helper_shape` is defined in another cell, and an answer cell must stand on its own...")."""
    from .toolkit import exercises  # noqa: F401  (registers the sentence)
    from .toolkit.i18n import get_language, t

    found = re.search(r"NameError: name '(\w+)' is not defined", message)
    if not found or found.group(1) not in elsewhere:
        return message
    stop = "。" if get_language() == "zh" else ". "
    return f"{message.rstrip().rstrip('.。')}{stop}{t('ex.name_elsewhere', name=found.group(1))}"


def _uses(tree: ast.AST, names: set[str]) -> list[str]:
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names]
    return [f"uses {name}, imported from attention_lib in another cell" for name in dict.fromkeys(found)]


# ---------------------------------------------------------------- grading one notebook (in its own process)

_GUARDED = ("torch", "torch.nn", "torch.nn.functional", "math", "builtins")


def _snapshot() -> dict:
    """Every attribute of the library's modules, of torch's main modules and of ``torch.Tensor``, by identity."""
    modules = [m for name, m in list(sys.modules.items())
               if m is not None and (name == "attention_lib" or name.startswith("attention_lib.") or name in _GUARDED)]
    import torch
    from .toolkit import exercises
    state = {id(m): (m, dict(vars(m))) for m in modules}
    state[id(torch.Tensor)] = (torch.Tensor, dict(vars(torch.Tensor)))
    state[id(exercises.EXERCISES)] = (exercises.EXERCISES, dict(exercises.EXERCISES))
    return state


def _restore(state: dict) -> list[str]:
    """Put back what changed since :func:`_snapshot`; returns what had changed (``"torch.allclose"``)."""
    import attention_lib

    lazy = {*attention_lib._MODULES, *attention_lib._LAZY, "chapters"}   # the package caches what it loads on use
    changed = []
    for owner, before in state.values():
        now = owner if isinstance(owner, dict) else vars(owner)
        label = getattr(owner, "__name__", "EXERCISES")
        for key in set(now) - set(before):
            if owner is attention_lib and key in lazy:      # loaded again on the next use: no flag
                delattr(owner, key)
                continue
            value = now[key]
            if isinstance(value, types.ModuleType) and value.__name__ == f"{label}.{key}":
                continue                                    # a submodule imported (flagged as an import, if at all)
            changed.append(f"{label}.{key}")
            if isinstance(owner, dict):
                del owner[key]
            else:
                delattr(owner, key)
        for key, value in before.items():
            if key not in now or now[key] is not value:
                changed.append(f"{label}.{key}")
                if isinstance(owner, dict):
                    owner[key] = value
                else:
                    setattr(owner, key, value)
    return sorted(changed)


def _imports(cells) -> str:
    """The import statements of the notebook's other cells (what the answers may lean on)."""
    lines = []
    for cell in cells:
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        lines += [ast.unparse(s) for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    return "\n".join(dict.fromkeys(lines))


def grade_notebook(path: Path, lang: Optional[str] = None, time_limit: float = 30.0,
                   check_limit: Optional[float] = None, emit=None, skip: int = 0) -> dict:
    """Run the answer cells of one notebook and check them (call it in a fresh process: the answers run here).

    ``emit(message)``, if given, receives each step as it happens (``{"start": ...}`` with the exercises expected,
    ``{"checking": [keys]}`` before an answer cell runs, ``{"row": ...}`` as soon as a verdict is known), so that
    the verdicts already reached survive a process that dies later (``os._exit``, a segfault, a kill).
    ``skip``: the number of answer cells not to run (a new process goes on after the cell that killed the last one).
    """
    emit = emit or (lambda message: None)
    import torch

    import attention_lib
    from .toolkit import exercises, i18n

    if check_limit:
        exercises.TIME_LIMIT = check_limit

    cells = _cells(path)
    chapter = _chapter_of(path, cells)
    lang = lang or _language_of(path, cells)
    i18n.set_language(lang)
    attention_lib.chapters.load_all()
    expected = [e.key for e in exercises.EXERCISES.values() if e.chapter == chapter]
    notes = ["the notebook still holds the reference solutions"] if any(_is_solution(c) for c in cells) else []
    answers = [c for c in cells if c["type"] == "code" and not _is_solution(c) and "check(" in c["source"]]
    imported_notes, imported_names = library_imports(cells, chapter)
    notes += imported_notes
    others = [c for c in cells if c["type"] == "code" and c not in answers and not _is_solution(c)]
    namespace = {"__name__": "__main__", "device": torch.device("cpu")}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(_imports(others), "<imports>", "exec"), namespace)
        except BaseException as error:                     # an import the grader lacks: the answers say what
            notes.append(f"the notebook's imports failed: {exercises.describe_error(error)}")
    emit({"start": {"notebook": str(path), "chapter": chapter, "lang": lang, "notes": notes, "expected": expected}})
    rows: dict[str, Row] = {}
    cells_of: dict[str, int] = {}                          # how many answer cells each exercise has
    for cell in answers:
        for key in dict.fromkeys(re.findall(r"""check\(\s*["']([\w.]+)["']""", cell["source"])):
            cells_of[key] = cells_of.get(key, 0) + 1

    def twice(key) -> list[str]:
        n = cells_of.get(key, 1)
        return [f"answered in {n} cells; the last was graded"] if n > 1 else []

    for number, cell in enumerate(answers):
        if number < skip:                                  # graded by a process that died after them (N6)
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError as error:
            keys = re.findall(r"""check\(\s*["']([\w.]+)["']""", cell["source"])
            for key in keys:                               # a later answer cell of the same exercise counts
                rows[key] = Row(key, "error", f"SyntaxError: {error.msg} (line {error.lineno})", twice(key))
                emit({"row": asdict(rows[key])})
            continue
        calls = _check_calls(tree)
        if not calls:
            continue
        emit({"checking": [key for key, _ in calls], "cell": number})
        state = _snapshot()
        status, message = None, ""
        watched = {n for key, _ in calls if key in exercises.EXERCISES for n in exercises.EXERCISES[key].forbid}
        ran: set = set()                                   # the forbidden calls the cell itself makes, however spelled
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = compile(_without_checks(tree), f"<answer cell {number + 1}>", "exec")
                with exercises.watching(watched, ran):
                    exercises.run_limited(lambda: exec(code, namespace), time_limit)
            except exercises.TimeUp:
                status, message = "timeout", f"the cell did not finish within {time_limit:g} s"
            except KeyboardInterrupt:
                raise
            except BaseException as error:                 # SystemExit included: the grader goes on
                status, message = "error", f"the cell raised {exercises.describe_error(error)}"
        changed = _restore(state)
        elsewhere = set().union(*(_defined(c["source"]) for c in cells if c is not cell and c["type"] == "code"
                                  and not _is_solution(c)))
        for key, name in calls:
            ex = exercises.EXERCISES.get(key)
            flags = flags_of(tree, ex.forbid if ex else (), ex.allow if ex else ()) + twice(key) \
                + _uses(tree, imported_names) + [f"changed {c}" for c in changed[:5]]
            if key not in expected:
                flags.append(f"checks {key!r}, not an exercise of {chapter}")
            flags += [_ran_flag(n, "while the cell ran") for n in sorted(ran)]
            if status is None:
                in_check: set = set()                      # the forbidden calls of the student's function in the check
                result, text = exercises.verdict(key, namespace.get(name, ...), in_check)
                flags += [_ran_flag(n, "in the check") for n in sorted(in_check)]
                status_of = {True: "right", False: "wrong", None: "unanswered"}[result]
                if status_of == "right" and ex is not None and ex.forbid \
                        and any(f.startswith(_ELSEWHERE_FLAG) for f in flags):
                    status_of, text = "review", (f"{text} (right values, but the answer runs code in another "
                                                 f"thread or process, where a forbidden call may go unrecorded: "
                                                 f"read the code)")
                row = Row(key, status_of, name_elsewhere(text, elsewhere), list(dict.fromkeys(flags)))
            else:
                row = Row(key, status, name_elsewhere(message, elsewhere), flags)
            rows[key] = row                                # the last answer cell of an exercise counts
            emit({"row": asdict(row)})
        _restore(state)
    for key in expected:
        rows.setdefault(key, Row(key, "missing", "no answer cell for this exercise"))
    return {"notebook": str(path), "chapter": chapter, "lang": lang, "notes": notes,
            "rows": [asdict(r) for r in rows.values()], "skipped": skip}


# ---------------------------------------------------------------- a class


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks under ``folder``, less what an editor or an archiver leaves beside them: dot-folders
    (``.ipynb_checkpoints``), a Mac zip's ``__MACOSX/`` and its ``._*`` resource files."""
    def kept(path: Path) -> bool:
        parts = path.relative_to(folder).parts
        return not any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return sorted((p for p in folder.rglob("*.ipynb") if kept(p)), key=_copy_order)


def _copy_order(path: Path) -> tuple:
    """Sort key that puts a browser's re-download ``name (1).ipynb`` after ``name.ipynb`` (plain sorting puts it
    before, since " " < "."), so that "the last by name" is the later copy."""
    m = re.fullmatch(r"(.*?)(?: \((\d+)\))?\.ipynb", path.name)
    return path.parent.as_posix(), m.group(1), int(m.group(2) or 0)


def _named_student(path: Path, folder: Path) -> Optional[str]:
    """The student a path names below ``folder``: its first folder, else its file name less the chapter
    (``alice-03_squeeze_excitation.ipynb``: alice); None when the file name is only a chapter's."""
    parts = path.relative_to(folder).parts
    if len(parts) > 1:
        return parts[0]
    return re.sub(r"[-_ ]*(zh_)?\d\d_[a-z_]+( ?\(\d+\))?$", "", path.stem) or None


def class_root(folder: Path, paths) -> Path:
    """The folder whose entries are the students: ``folder``, or the single wrapper folder that unzipping a zip of
    the class folder adds (``submissions/submissions/alice/...``, ``class/alice/...``), descended while every
    notebook lies under one folder inside which they name two or more students."""
    paths = list(paths)
    while paths:
        tops = {p.relative_to(folder).parts[0] for p in paths}
        if len(tops) != 1 or any(len(p.relative_to(folder).parts) < 2 for p in paths):
            break
        inner = folder / tops.pop()
        names = [_named_student(p, inner) for p in paths]
        if None in names or len(set(names)) < 2:        # one student's own folder (alice/03_..., alice/hw/...)
            break
        folder = inner
    return folder


def student_of(path: Path, folder: Path) -> str:
    """A folder per student (``alice/03_...ipynb``: alice), else the file name without the chapter's
    (``alice-03_squeeze_excitation.ipynb``: alice); ``folder``: the class's root (:func:`class_root`)."""
    return _named_student(path, folder) or path.stem


#: The worker's stdout lines start with this mark and a token only the parent and the worker know (a student's
#: ``os.write(1, ...)`` cannot forge a verdict line without reading the token first).
_MARK = "@grade"


def _keys_of(chapter: Optional[str]) -> list[str]:
    """The exercises of a chapter module, in the book's order."""
    from .toolkit.exercises import EXERCISES

    return [e.key for e in EXERCISES.values() if chapter and e.chapter == chapter]


def _worker(path: Path, lang, time_limit, timeout, check_limit, skip: int) -> dict:
    """One process grading ``path`` from its answer cell ``skip`` on: what it wrote before it ended, and how."""
    token = os.urandom(8).hex()
    argv = [sys.executable, "-m", "attention_lib.grade", "--one", str(path), "--time-limit", str(time_limit)]
    if lang:
        argv += ["--lang", lang]
    if check_limit:
        argv += ["--check-limit", str(check_limit)]
    if skip:
        argv += ["--skip", str(skip)]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8", "ATTENTION_LIB_GRADE_TOKEN": token}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=path.parent, env=env,
                              encoding="utf-8", errors="replace")
        stdout, ended = done.stdout, None if done.returncode == 0 else (
            f"the process ended (exit code {done.returncode})" if done.returncode > 0
            else f"the process was killed (signal {-done.returncode})")
        stderr = done.stderr
    except subprocess.TimeoutExpired as error:
        stdout = error.stdout.decode("utf-8", "replace") if isinstance(error.stdout, bytes) else error.stdout or ""
        stderr, ended = "", f"the notebook took more than {timeout:g} s"
    run = {"start": None, "rows": {}, "checking": None, "cell": None, "current": set(), "result": None,
           "ended": ended, "stderr": stderr}
    for line in stdout.splitlines():
        if not line.startswith(f"{_MARK}{token} "):
            continue
        message = json.loads(line.split(" ", 1)[1])
        if "start" in message:
            run["start"] = message["start"]
        elif "checking" in message:
            run["checking"], run["cell"], run["current"] = message["checking"], message.get("cell"), set()
        elif "row" in message:
            run["rows"][message["row"]["exercise"]] = message["row"]     # the last answer cell counts
            run["current"].add(message["row"]["exercise"])
        elif "done" in message:
            run["result"] = message["done"]
    return run


def _run_one(path: Path, lang, time_limit, timeout, check_limit=None) -> dict:
    """Grade one notebook in fresh processes: one, or after a process dies (a segfault, ``os._exit``, memory), a
    new one from the answer cell after the one that killed it, so that the later exercises are still graded."""
    try:
        _cells(path)
    except (ValueError, OSError) as error:                 # no process for a file that is not a notebook: one
        keys = _keys_of(_chapter_of(path, [])) or ["?"]     # error row per exercise of the chapter its name gives
        return {"notebook": str(path), "failed": "error", "message": str(error), "keys": keys}
    deadline = time.monotonic() + timeout
    start, merged, skip = None, {}, 0
    while True:
        run = _worker(path, lang, time_limit, max(1.0, deadline - time.monotonic()), check_limit, skip)
        start = start or run["start"]
        found = list(run["rows"].values()) + (run["result"]["rows"] if run["result"] else [])
        for row in found:                                  # a later process's "missing" does not undo a verdict
            if row["status"] != "missing" or row["exercise"] not in merged:
                merged[row["exercise"]] = row
        if run["ended"] is None and run["result"] is not None:
            if not skip:
                return run["result"]
            break
        ended = run["ended"] or "the process ended"
        status = "timeout" if ended.startswith("the notebook took") else "error"
        if start is None:                                  # died before its first verdict: one reason for all
            tail = (run["stderr"].strip().splitlines() or ["no output"])[-1]
            return {"notebook": str(path), "failed": status,
                    "message": ended if status == "timeout" else f"the grader's process failed: {tail}"}
        lost = [k for k in (run["checking"] or []) if k not in run["current"]]
        for key in lost:                                   # the cell that killed the process
            merged[key] = asdict(Row(key, status, f"{ended} while checking {', '.join(lost)}"))
        if status == "timeout" or run["cell"] is None or run["start"] is None:
            for key in start["expected"]:                  # no time left: the rest say why they have no verdict
                if key not in merged:
                    merged[key] = asdict(Row(key, status, f"{ended} before this exercise was checked"))
            break
        skip = run["cell"] + 1                             # a new process, from the next answer cell
    order = {key: i for i, (key, _) in enumerate(exercise_order(merged))}
    return {**{k: v for k, v in start.items() if k != "expected"},
            "rows": sorted(merged.values(), key=lambda r: order[r["exercise"]])}


def grade_folder(folder: Path, out: Path, lang=None, time_limit=30.0, timeout=300.0, jobs=1,
                 check_limit=None) -> list[dict]:
    """Grade every notebook under ``folder``; writes ``grades.csv`` and ``grades.html`` into ``out``; returns the rows."""
    import attention_lib

    attention_lib.chapters.load_all()
    paths = notebooks_in(folder)
    root = class_root(folder, paths)                       # below a wrapper folder a zip of the class folder adds
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda p: _run_one(p, lang, time_limit, timeout, check_limit), paths))
    table = []
    students = set()
    for path, result in zip(paths, results):
        student = student_of(path, root)
        base = dict(student=student, notebook=path.relative_to(root).as_posix())
        students.add(student)
        if "failed" in result:
            keys = result.get("keys") or _keys_of(_chapter_of(path, _cells(path))) or ["?"]
            table += [dict(base, exercise=k, status=result["failed"], message=result["message"], flags="")
                      for k in keys]
            continue
        for row in result["rows"]:
            flags = row["flags"] + result["notes"]
            table.append(dict(base, exercise=row["exercise"], status=row["status"], message=row["message"],
                              flags="; ".join(flags)))
    from .toolkit.exercises import EXERCISES

    _flag_duplicates(table)
    handed_in = {r["exercise"] for r in table if r["exercise"] in EXERCISES}
    for student in sorted(students):                       # a chapter someone handed in and this student did not
        own = {r["exercise"] for r in table if r["student"] == student}
        if own == {"?"}:                                   # only unreadable files: not "handed in nothing"
            continue
        message = "no notebook for this chapter" if "?" not in own else \
            "no readable notebook for this chapter (this student handed in an unreadable file: see its ? row)"
        table += [dict(student=student, notebook="", exercise=key, status="missing", message=message, flags="")
                  for key, _ in exercise_order(handed_in - own)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "notebook", "exercise", "status", "message", "flags"])
        writer.writeheader()
        writer.writerows(table)
    (out / "grades.html").write_text(_html(table), encoding="utf-8")
    return table


def _flag_duplicates(table: list[dict]) -> None:
    """Flags each row of a student's exercise answered in two or more notebooks (an English and a Chinese copy,
    a browser's ``03_... (1).ipynb``): all are graded into the CSV; the grid shows the last notebook by name."""
    notebooks: dict = {}
    for r in table:
        if r["exercise"] != "?":
            notebooks.setdefault((r["student"], r["exercise"]), []).append(r["notebook"])
    for r in table:
        names = notebooks.get((r["student"], r["exercise"]), [])
        if len(names) > 1:
            note = (f"{len(names)} notebooks answer this exercise: {', '.join(names)}; the grid shows the last by "
                    f"name, {names[-1]} (the CSV holds each)")
            r["flags"] = "; ".join(f for f in (r["flags"], note) if f)


def exercise_order(keys) -> list[tuple[str, str]]:
    """``[(key, heading)]`` in the book's order (chapter, then the exercise's number in it), headed
    ``"Ex 3 · sa.sdpa"``; keys the book does not know ("?" for an unreadable notebook) come last, by name."""
    from .toolkit.exercises import EXERCISES

    known = list(EXERCISES)
    number = {}
    for key, ex in EXERCISES.items():
        number[key] = sum(e.chapter == ex.chapter for e in list(EXERCISES.values())[:known.index(key) + 1])
    ordered = sorted(keys, key=lambda k: (0, known.index(k), "") if k in number else (1, 0, k))
    return [(k, f"Ex {number[k]} · {k}" if k in number else k) for k in ordered]


def _html(table: list[dict]) -> str:
    from .toolkit.exercises import VERDICT_COLOURS

    colours = {"right": VERDICT_COLOURS[True], "review": VERDICT_COLOURS[None],
               "wrong": VERDICT_COLOURS[False], "unanswered": VERDICT_COLOURS[None],
               "missing": VERDICT_COLOURS[None], "error": VERDICT_COLOURS[False], "timeout": VERDICT_COLOURS[False]}
    from .toolkit.exercises import EXERCISES

    students = sorted({r["student"] for r in table})
    # the book's order, not the alphabet's; a notebook whose chapter is unknown ("?") is listed below, not a column
    columns = exercise_order({r["exercise"] for r in table if r["exercise"] in EXERCISES})
    exercises = [key for key, _ in columns]
    cells = {(r["student"], r["exercise"]): r for r in table}
    head = "".join(f"<th scope='col'>{html.escape(h.rsplit(' ', 1)[0])} <code>{html.escape(k)}</code></th>"
                   if h != k else f"<th scope='col'><code>{html.escape(k)}</code></th>" for k, h in columns)
    body = []
    for student in students:
        row = [f"<th scope='row'>{html.escape(student)}</th>"]
        if not any((student, e) in cells for e in exercises):    # only unreadable files with no chapter
            _, text, background, border = colours["error"]
            row.append(f"<td colspan='{len(exercises)}' style='background:{background};color:{text};"
                       f"border-left:4px solid {border}'>{STATUS['error']} error: an unreadable file with no "
                       f"chapter in its name (see below)</td><td>–</td>")
            body.append("<tr>" + "".join(row) + "</tr>")
            continue
        for exercise in exercises:
            r = cells.get((student, exercise))
            if r is None:
                row.append("<td></td>")
                continue
            _, text, background, border = colours[r["status"]]
            flag = " ⚑" if r["flags"] else ""
            tip = html.escape(r["message"] + (f" [{r['flags']}]" if r["flags"] else ""), quote=True)
            row.append(f"<td title='{tip}' style='background:{background};color:{text};"
                       f"border-left:4px solid {border}'>{STATUS[r['status']]} {r['status']}{flag}</td>")
        right = sum(cells.get((student, e), {}).get("status") == "right" for e in exercises)
        row.append(f"<td>{right} / {len(exercises)}</td>")
        body.append("<tr>" + "".join(row) + "</tr>")
    details = "".join(
        f"<tr><td>{html.escape(r['student'])}</td><td><code>{html.escape(r['exercise'])}</code></td>"
        f"<td>{STATUS[r['status']]} {r['status']}</td><td>{html.escape(r['message'])}</td>"
        f"<td>{html.escape(r['flags'])}</td></tr>" for r in table if r["status"] != "right" or r["flags"])
    legend = ", ".join(f"{s} {name}" for name, s in STATUS.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grades</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#1a1a1a;background:#fff}}
table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #999;padding:.3em .6em;text-align:left}}
td{{white-space:nowrap}}</style></head><body>
<h1>Grades</h1>
<p>Each answer re-run in a fresh process and checked again (a printed verdict in a notebook is not evidence).
{legend}; ⚑ a flag to read below. Hover a cell for the verdict.</p>
<table><thead><tr><th scope="col">student</th>{head}<th scope="col">right</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<h2>Verdicts and flags to read</h2>
<table><thead><tr><th>student</th><th>exercise</th><th>status</th><th>verdict</th><th>flags</th></tr></thead>
<tbody>{details}</tbody></table></body></html>
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_lib.grade",
                                     description="Re-run and check the answers of a folder of submitted notebooks.")
    parser.add_argument("folder", nargs="?", help="the submissions: one folder per student, or one file each")
    parser.add_argument("--out", default=None, help="where grades.csv and grades.html go (default: the folder)")
    parser.add_argument("--lang", choices=("en", "zh"), help="the verdicts' language (default: each notebook's)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per answer cell (default 30)")
    parser.add_argument("--check-limit", type=float, default=None,
                        help="seconds per check, the student's function included (default 10)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per notebook (default 300)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    parser.add_argument("--one", help=argparse.SUPPRESS)          # the worker: one notebook, JSON on stdout
    parser.add_argument("--skip", type=int, default=0, help=argparse.SUPPRESS)   # from this answer cell on
    args = parser.parse_args(argv)
    if args.one:
        token = os.environ.pop("ATTENTION_LIB_GRADE_TOKEN", "")   # gone before any student code runs
        stdout = sys.stdout

        def emit(message):                                 # one line per step, flushed: it outlives a crash
            stdout.write(f"{_MARK}{token} " + json.dumps(message, ensure_ascii=False) + "\n")
            stdout.flush()

        emit({"done": grade_notebook(Path(args.one), args.lang, args.time_limit, args.check_limit, emit,
                                     args.skip)})
        return 0
    if not args.folder:
        parser.error("give the folder of submitted notebooks")
    folder = Path(args.folder).resolve()
    out = Path(args.out).resolve() if args.out else folder
    start = time.monotonic()
    table = grade_folder(folder, out, args.lang, args.time_limit, args.timeout, args.jobs, args.check_limit)
    counts = {s: sum(r["status"] == s for r in table) for s in STATUS}
    flagged = sum(bool(r["flags"]) for r in table)
    print(f"{len(table)} answers of {len({r['student'] for r in table})} students in "
          f"{time.monotonic() - start:.0f} s: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f"; {flagged} flagged")
    print(f"wrote {out / 'grades.csv'} and {out / 'grades.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
