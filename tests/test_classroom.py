"""The classroom kit without a build: solutions collapsed in every notebook, student editions, the guide's pages.

Reads the notebooks as JSON (no kernel); the archives built by the book and their execution are checked
by ``tests/test_classroom_site.py`` once the site exists.
"""
from __future__ import annotations

import copy
import importlib.util
import io
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
CHECK = re.compile(r"""\.check\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


editions = _load("editions", ROOT / "tools" / "editions.py")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _read(path):
    return editions.committed(path)          # as git stores it (a teacher who opened a solution commits it closed)


def _exercises(nb):
    """``[(answer cell index, solution cell index or None, key)]`` for every answer cell of ``nb``."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or editions.is_solution(cell):
            continue
        call = CHECK.search(cell.source)
        if call and re.search(rf"^{call.group(2)}\s*=\s*\.\.\.", cell.source, re.M):
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            found.append((i, i + 1 if after is not None and editions.is_solution(after) else None, call.group(1)))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_solution_cells_are_collapsed_in_jupyterlab_and_colab(path):
    problems = editions.problems(_read(path), path.parent.name)
    assert not problems, (f"{_rel(path)}: " + "; ".join(problems) +
                          " (run `python tools/editions.py`: it collapses every solution cell)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_every_answer_cell_is_followed_by_its_solution(path):
    nb = _read(path)
    for answer, solution, key in _exercises(nb):
        assert solution is not None, f"{_rel(path)}: the answer cell {answer} ({key!r}) has no solution cell after it"
        calls = CHECK.findall(nb.cells[solution].source)
        assert calls and calls[-1][0] == key, \
            f"{_rel(path)}: the solution cell {solution} must end with the check of {key!r}, found {calls}"
    for i, cell in enumerate(nb.cells):
        if editions.is_solution(cell):
            assert any(s == i for _, s, _ in _exercises(nb)), \
                f"{_rel(path)}: solution cell {i} does not follow an answer cell (`answer = ...` and its check)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_the_student_edition_drops_the_solutions_and_nothing_else(path):
    nb = _read(path)
    student = editions.student_edition(nb, path.parent.name)
    kept = [c for c in nb.cells if not editions.is_solution(c)]
    assert [c.source for c in student.cells if c.cell_type == "code"] == [c.source for c in kept
                                                                           if c.cell_type == "code"]
    assert len(student.cells) == len(kept)
    assert not any(editions.is_solution(c) for c in student.cells)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in student.cells if c.cell_type == "code")
    assert len(_exercises(student)) == len(_exercises(nb)), "every answer cell stays"
    assert nb.cells != student.cells or not any(editions.is_solution(c) for c in nb.cells)


def test_collapse_is_idempotent_and_gives_both_twins_the_same_title():
    cell = nbformat.v4.new_code_cell('answer_1 = 3\nal.exercises.check("x.y", answer_1)',
                                     metadata={"tags": ["hide-input"]})
    answer = nbformat.v4.new_code_cell('answer_1 = ...\nal.exercises.check("x.y", answer_1)')
    nb = nbformat.v4.new_notebook(cells=[answer, cell])
    assert editions.problems(nb, "zh")
    once = editions.collapse(nb, "zh")
    assert not editions.problems(once, "zh")
    assert once.cells[1].source.splitlines()[0] == "# @title Solution · 参考答案"
    assert once.cells[1].metadata["tags"] == ["hide-input", "solution"]
    assert once.cells[1].metadata["cellView"] == "form" and once.cells[1].metadata["jupyter"]["source_hidden"]
    twice = editions.collapse(editions.collapse(nb, "en"), "zh")
    assert twice.cells[1].source.count("# @title") == 1
    assert twice.cells[1].source.startswith("# @title Solution · 参考答案\n")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_student_edition_says_the_solutions_are_not_included_instead_of_click_to_reveal(lang):
    hidden = ("click to reveal", "hidden below", "点击展开", "点开查看", "答案藏在", "参考答案隐藏")
    with zipfile.ZipFile(io.BytesIO(editions.archive_bytes(lang))) as zf:
        for name in (n for n in zf.namelist() if n.startswith("notebooks/") and n.endswith(".ipynb")):
            nb = nbformat.reads(zf.read(name).decode("utf-8"), as_version=4)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            assert not [h for h in hidden if h in text], f"{name} still points at hidden solutions"
            if _exercises(nb):
                assert text.count(editions.STUDENT_SENTENCE[lang]) == 1, f"{name}: no word on where the solutions are"


def _links(text: str) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and not t.startswith(("#", "mailto:"))]


def test_every_link_of_both_archives_unpacked_side_by_side_resolves(tmp_path):
    """The layout the README of the archives describes: both unpacked into one folder."""
    for lang in ("en", "zh"):
        with zipfile.ZipFile(io.BytesIO(editions.archive_bytes(lang))) as zf:
            zf.extractall(tmp_path)
    checked = 0
    for path in sorted(tmp_path.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for target in _links("\n".join(c.source for c in nb.cells if c.cell_type == "markdown")):
            resolved = (path.parent / target.split("#")[0]).resolve()
            assert resolved.is_file() and tmp_path in resolved.parents, \
                f"{path.relative_to(tmp_path)}: the link {target} leads nowhere in the unpacked archives"
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_archives_pages_are_plain_notebooks_without_myst(lang):
    for page in editions.PAGES:
        nb = editions.page_notebook(lang, page)
        text = "\n".join(c.source for c in nb.cells)
        assert nb.cells and "```{" not in text and ":::" not in text and "<!--" not in text and "{cite" not in text
    references = "\n".join(c.source for c in editions.page_notebook(lang, "references").cells)
    assert "Squeeze-and-Excitation Networks" in references and "(2018)" in references and "\\" not in references


def test_the_archives_carry_the_date_of_the_last_commit_not_1980(monkeypatch):
    import time
    import subprocess
    stamp = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True).stdout
    if stamp.strip():
        assert editions.archive_time() == time.gmtime(int(stamp))[:6]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1765000000")
    with zipfile.ZipFile(io.BytesIO(editions.archive_bytes("en"))) as zf:
        assert {i.date_time for i in zf.infolist()} == {time.gmtime(1765000000)[:6]}


# ---------------------------------------------------------------- what git stores


def _run(nb, lang):
    """What JupyterLab saves after a run: outputs, counts, a fuller kernel name, widget state, a solution opened."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
            cell.execution_count = i
            cell.metadata["execution"] = {"iopub.status.idle": "2026-12-07T10:00:00Z"}
            if editions.is_solution(cell):
                cell.metadata["jupyter"] = {}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2", "mimetype": "text/x-python"}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_the_clean_filter_stores_a_run_notebook_exactly_as_committed(path):
    stored = path.read_text(encoding="utf-8")
    lang = path.parent.name
    assert editions.clean_text(stored, lang) == stored, "the filter changes a clean notebook"
    ran = nbformat.writes(_run(nbformat.reads(stored, as_version=4), lang))
    assert editions.clean_text(ran, lang) == stored


def test_git_stores_a_run_notebook_clean_through_the_filter(tmp_path):
    """``.gitattributes`` and ``make venv``'s filter, in a scratch repository: outputs stay on disk, not in git."""
    import shutil
    import subprocess
    import sys

    attributes = (ROOT / ".gitattributes").read_text(encoding="utf-8")
    assert f"notebooks/*/*.ipynb filter={editions.FILTER}" in attributes
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"filter.{editions.FILTER}.clean" in makefile and "tools/editions.py --clean %f" in makefile
    repo = tmp_path / "repo"
    (repo / "notebooks" / "en").mkdir(parents=True)
    (repo / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "editions.py", repo / "tools" / "editions.py")
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    source = ROOT / "notebooks" / "en" / "03_squeeze_excitation.ipynb"
    ran = nbformat.writes(_run(nbformat.read(source, as_version=4), "en"))
    (repo / "notebooks" / "en" / source.name).write_text(ran, encoding="utf-8")

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                              capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", f"filter.{editions.FILTER}.clean", f'"{sys.executable}" tools/editions.py --clean %f')
    git("add", ".")
    assert git("show", f":notebooks/en/{source.name}") == source.read_text(encoding="utf-8")
    assert "outputs" in (repo / "notebooks" / "en" / source.name).read_text(encoding="utf-8")


def test_the_archive_holds_every_chapter_without_solutions_and_is_reproducible():
    for lang in ("en", "zh"):
        data = editions.archive_bytes(lang)
        assert data == editions.archive_bytes(lang), "the same notebooks give the same archive"
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            expected = {f"notebooks/{lang}/{p.name}" for p in (ROOT / "notebooks" / lang).glob("*.ipynb")}
            assert expected <= names and f"notebooks/{lang}/README.md" in names
            for name in expected:
                nb = nbformat.reads(zf.read(name).decode("utf-8"), as_version=4)
                assert not any(editions.is_solution(c) or editions.looks_like_a_solution(c) for c in nb.cells), name


# ---------------------------------------------------------------- the cheat sheet, from the registry

classroom = _load("classroom_ext", ROOT / "book" / "_ext" / "classroom.py")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_cheat_sheet_has_a_row_per_mechanism_with_the_registrys_facts(lang):
    from attention_lib.registry import MECHANISMS

    text = classroom.cheatsheet_markdown(lang)
    for m in MECHANISMS.values():
        assert m.equation, f"{m.name}: the registry entry has no one-line equation for the cheat sheet"
        row = next(line for line in text.splitlines() if f"**{m.display_name(lang)}**" in line)
        assert f"${m.equation}$" in row and m.reweights[lang] in row
        cost = next(line for line in text.splitlines() if f"**{m.display_name(lang, short=True)}**" in line
                    and m.params.latex in line)
        assert f"${m.flops.latex}$" in cost and m.url in cost
    # one header and separator per table, one row per mechanism in each
    assert sum(line.startswith("| **") for line in text.splitlines()) == 2 * len(MECHANISMS)


def test_the_cheat_sheet_derives_shapes_and_growth_from_the_modules():
    from attention_lib.registry import MECHANISMS

    shapes = {m.name: classroom._shapes(m) for m in MECHANISMS.values()}
    assert shapes["self_attention"] == ("(B, N, D)", "(B, N, D)", "(B, h, N, N)")
    assert shapes["squeeze_excitation"][2] == "(B, C, 1, 1)"
    assert shapes["cbam"][2] == "(B, C, 1, 1), (B, 1, H, W)"
    assert shapes["selective_kernel"][2] == "(B, M, C, 1, 1)"
    assert shapes["multi_head_external_attention"][2] == "(B, eh, N, S)"
    sizes = {n: re.findall(r"\w+", s[2]) for n, s in shapes.items()}
    assert all(a == "1" or not a.isdigit() for axes in sizes.values() for a in axes), f"unnamed sizes: {shapes}"
    growth = {m.name: classroom._growth(m) for m in MECHANISMS.values()}
    assert growth["self_attention"] == "$O(N^{2})$" and growth["external_attention"] == "$O(N)$"
    assert {growth[n] for n, m in MECHANISMS.items() if m.layout == "feature_map"} == {"$O(HW)$"}


def test_the_guides_table_lists_every_check_with_the_slips_it_names():
    from attention_lib import exercises

    for lang in ("en", "zh"):
        text = classroom.exercise_slips_markdown(lang)
        for key in exercises.EXERCISES:
            row = next((line for line in text.splitlines() if f"| `{key}` |" in line), None)
            assert row is not None, f"{lang}: the guide's table has no row for {key!r}"
            assert "•" in row, f"{lang}: the guide's table names no slip for {key!r}"
    text = classroom.exercise_slips_markdown("en")
    assert "softmax" in text and "PReLU" in text and "2^30" in text
    # a check whose slips have keys of another prefix (chapter 2's ``ex.ea.norm.*``) lists them too
    row = next(line for line in text.splitlines() if "| `ea.double_norm` |" in line)
    assert "over the slots (dim=-1)" in row and "float16" in row


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_guide_names_only_checks_that_exist(lang):
    import attention_lib
    from attention_lib import exercises

    attention_lib.chapters.load_all()
    text = (ROOT / "book" / lang / "teaching.md").read_text(encoding="utf-8")
    prefixes = {key.split(".")[0] for key in exercises.EXERCISES}     # a check key, not Python (`sys.modules`)
    named = {n for n in re.findall(r"`([a-z]+\.[a-z_]+)`", text) if n.split(".")[0] in prefixes}
    assert named, "the guide's table of mistakes names no check"
    unknown = named - set(exercises.EXERCISES)
    assert not unknown, f"checks the guide names but no chapter registers: {sorted(unknown)}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] != "00"], ids=_rel)
def test_the_first_cell_says_what_a_first_run_costs_on_a_busy_machine(path):
    """Issue 23: "under a minute to run" was the compute of an idle machine; cold runs took 67-139 s on a shared one."""
    first = _read(path).cells[0].source
    if path.parent.name == "en":
        assert "first time" in first and "busy or shared machine" in first and "cache" in first, first[-300:]
        assert "under a minute to run" not in first
    else:
        assert "第一次运行" in first and "繁忙或多人共用的机器" in first and "缓存" in first, first[-300:]
        assert "运行不到" not in first
