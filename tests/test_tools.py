"""tools/sync_twins.py keeps the twins' code identical and each twin's own `# i18n` line."""
import importlib.util
import pathlib

import nbformat

spec = importlib.util.spec_from_file_location(
    "sync_twins", pathlib.Path(__file__).resolve().parents[1] / "tools" / "sync_twins.py")
sync_twins = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_twins)


def test_merge_keeps_the_targets_i18n_line_and_takes_everything_else():
    en = 'import x\ndevice = setup(lang="en")  # i18n\nprint(1)'
    zh = 'import y\ndevice = setup(lang="zh")  # i18n\nprint(2)'
    assert sync_twins.merge_code(en, zh) == 'import x\ndevice = setup(lang="zh")  # i18n\nprint(1)'


def test_sync_copies_code_cells_and_refuses_different_structures(tmp_path, monkeypatch):
    for lang in ("en", "zh"):
        (tmp_path / lang).mkdir()
    def write(lang, cells):
        nb = nbformat.v4.new_notebook(cells=cells)
        nbformat.write(nb, tmp_path / lang / "01_x.ipynb")
    write("en", [nbformat.v4.new_markdown_cell("Hello"), nbformat.v4.new_code_cell('a = 1\nt("en")  # i18n')])
    write("zh", [nbformat.v4.new_markdown_cell("你好"), nbformat.v4.new_code_cell('a = 0\nt("zh")  # i18n')])
    monkeypatch.setattr(sync_twins, "ROOT", tmp_path)
    assert sync_twins.sync("01_x") == 1
    zh = nbformat.read(tmp_path / "zh" / "01_x.ipynb", as_version=4)
    assert zh.cells[0].source == "你好" and zh.cells[1].source == 'a = 1\nt("zh")  # i18n'
    write("zh", [nbformat.v4.new_code_cell("a = 1")])
    try:
        sync_twins.sync("01_x")
    except SystemExit as error:
        assert "cell structure" in str(error)
    else:
        raise AssertionError("a different structure must be refused")


def test_sync_collapses_the_solutions_with_one_title_for_both_twins(tmp_path, monkeypatch):
    for lang in ("en", "zh"):
        (tmp_path / lang).mkdir()
    answer = 'answer_1 = ...\nal.exercises.check("x.y", answer_1)'
    solution = nbformat.v4.new_code_cell('# @title Solution\nanswer_1 = 2\nal.exercises.check("x.y", answer_1)',
                                         metadata={"tags": ["hide-input", "solution"]})
    for lang in ("en", "zh"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(answer), solution])
        nbformat.write(nb, tmp_path / lang / "01_x.ipynb")
    monkeypatch.setattr(sync_twins, "ROOT", tmp_path)
    sync_twins.sync("01_x")
    zh = nbformat.read(tmp_path / "zh" / "01_x.ipynb", as_version=4)
    assert zh.cells[1].source.splitlines()[0] == "# @title Solution · 参考答案"   # an old title is replaced
    assert zh.cells[1].metadata["cellView"] == "form" and zh.cells[1].metadata["jupyter"]["source_hidden"]


def test_merge_writes_the_answer_stub_comment_in_the_targets_language():
    en = "answer_1 = ...   # your answer: an integer  # i18n\nal.exercises.check('se.params', answer_1)"
    zh = sync_twins.merge_code(en, en, "zh")
    assert zh.splitlines()[0] == "answer_1 = ...   # 你的答案：一个整数  # i18n"   # the twin's own line: marked
    assert zh.splitlines()[1] == en.splitlines()[1]
    assert sync_twins.merge_code(zh, en, "en") == en                  # and back
    assert sync_twins.merge_code(en, en) == en                        # no language: unchanged
    unmarked = en.replace("  # i18n", "")                             # a stub written without the mark gets it
    assert sync_twins.merge_code(unmarked, zh, "zh") == zh
    setup = 'device = attention_lib.setup(lang="zh")  # i18n'           # other i18n lines: the target's own
    assert sync_twins.merge_code(f'device = attention_lib.setup(lang="en")  # i18n\n{en}', f"{setup}\n{zh}",
                                 "zh") == f"{setup}\n{zh}"
    try:
        sync_twins.merge_code("f = ...   # your answer: a poem", "", "zh")
    except SystemExit as error:
        assert "answer_stubs" in str(error)
    else:
        raise AssertionError("an untranslated stub comment must be refused")
