"""Solution cells collapsed in the full notebooks, and the student editions without them.

    python tools/editions.py                 # collapse every solution cell of notebooks/*/ in place
    python tools/editions.py --check         # exit 1 and list the notebooks whose solutions are not collapsed
    python tools/editions.py --archive en notebooks-en.zip   # the student edition of one language

A *solution cell* is a code cell tagged ``solution`` (with ``hide-input``, which hides it on the website).
It comes right after the exercise's answer cell (``answer_1 = ...  # your answer`` and the check call).

- **Collapsed** (the full notebooks, what the website's download button and Colab's rocket open): the
  cell keeps its code, and three things hide it until the student chooses to look: JupyterLab's
  ``metadata.jupyter.source_hidden``, Colab's form view (``metadata.cellView = "form"`` with a first line
  ``# @title Solution · 参考答案``, the title Colab shows over the hidden code: one line for both languages,
  so that the twins' code cells stay identical), and the website's ``hide-input`` tag.
- **Student edition**: the same notebook without its solution cells and without outputs; the answer cells
  stay, so each check prints "not answered yet" until the student answers. The build zips every chapter
  of a language into ``notebooks-<lang>.zip`` (inside: ``notebooks/<lang>/NN_name.ipynb``, so that the
  two archives unpacked side by side keep the links between the twins working).
"""
from __future__ import annotations

import argparse
import copy
import io
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTION = "solution"
HIDE = "hide-input"
#: The solution cell's title, the same in both twins (their code cells are identical but for ``# i18n`` lines).
TITLE = "Solution · 参考答案"
#: The website's button over a hidden cell, in the page's language (MyST-NB reads it from the notebook's
#: metadata; its default, "Show code cell source", is English).
PROMPTS = {"zh": {"code_prompt_show": "显示代码", "code_prompt_hide": "隐藏代码"}}
TITLE_PREFIX = "# @title "
#: a fixed time stamp for the archive's entries: the same notebooks give the same bytes
_EPOCH = (1980, 1, 1, 0, 0, 0)

README = {
    "en": """# Attention Mechanisms: student notebooks ({lang})

Every chapter of the book as a Jupyter notebook, without the exercise solutions: each exercise has
an answer cell (`answer_1 = ...`) followed by its check, which says "not answered yet" until you replace
the `...` with your answer, then whether it is right and, if not, what is wrong.

Run them on Colab (upload a notebook; its first cell installs the book's package) or locally. Locally,
install the book's package once, in a copy of the book's repository:

    pip install -r requirements.txt && pip install -e .

then open these notebooks from the folder where you unpacked this archive (unpack it outside the
repository, whose own `notebooks/{lang}/` holds the full notebooks):

    jupyter lab notebooks/{lang}/

The full notebooks, with the solutions (collapsed), are on the book's website and in its repository.
""",
    "zh": """# 注意力机制：学生版 Jupyter 笔记本（{lang}）

本书每一章的 Jupyter 笔记本，去掉了练习的参考答案：每道练习都有一个作答的代码单元（`answer_1 = ...`），后面是它的检查；在你把 `...` 换成自己的答案之前，检查会显示“尚未作答”，之后会告诉你答案是否正确，不正确时指出错在哪里。

可以在 Colab 上运行（上传一个 Jupyter 笔记本，它的第一个代码单元会安装本书的软件包），也可以在本地运行。在本地运行时，先在本书代码仓库的副本中安装一次本书的软件包：

    pip install -r requirements.txt && pip install -e .

然后在解压这个压缩包的文件夹中打开这些 Jupyter 笔记本。请解压到代码仓库之外，因为仓库自己的 `notebooks/{lang}/` 中是完整版：

    jupyter lab notebooks/{lang}/

含参考答案（已折叠）的完整版在本书网站和代码仓库中。
""",
}


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution(cell) -> bool:
    return cell.get("cell_type") == "code" and SOLUTION in tags(cell)


def language_of(path: Path) -> str:
    return path.parent.name


def _titled(source: str) -> str:
    lines = source.split("\n")
    body = lines[1:] if lines and lines[0].startswith(TITLE_PREFIX.strip()) else lines
    return "\n".join([TITLE_PREFIX + TITLE, *body])


def looks_like_a_solution(cell) -> bool:
    """A hidden code cell that calls a check: a solution cell written before the ``solution`` tag existed."""
    return cell.get("cell_type") == "code" and HIDE in tags(cell) and "exercises.check(" in cell.source


def collapse(nb, lang: str):
    """Mark every solution cell collapsed for JupyterLab and Colab (in place, idempotent); returns ``nb``."""
    for cell in nb.cells:
        if not (is_solution(cell) or looks_like_a_solution(cell)):
            continue
        cell.metadata["tags"] = [*[t for t in tags(cell) if t not in (HIDE, SOLUTION)], HIDE, SOLUTION]
        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        cell.metadata["cellView"] = "form"
        cell.source = _titled(cell.source)
    if lang in PROMPTS:
        nb.metadata.setdefault("mystnb", {}).update(PROMPTS[lang])
    return nb


def problems(nb, lang: str) -> list[str]:
    """What is not collapsed as :func:`collapse` would have it (empty when all is well)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if looks_like_a_solution(cell) and not is_solution(cell):
            found.append(f"cell {i}: a hidden cell calling a check is a solution: tag it {SOLUTION!r}")
        if not is_solution(cell):
            continue
        if HIDE not in tags(cell):
            found.append(f"cell {i}: tagged {SOLUTION!r} but not {HIDE!r}")
        if not cell.metadata.get("jupyter", {}).get("source_hidden"):
            found.append(f"cell {i}: not collapsed in JupyterLab (metadata.jupyter.source_hidden)")
        if cell.metadata.get("cellView") != "form":
            found.append(f"cell {i}: not collapsed on Colab (metadata.cellView = 'form')")
        if cell.source.split("\n", 1)[0] != TITLE_PREFIX + TITLE:
            found.append(f"cell {i}: first line must be {TITLE_PREFIX + TITLE!r}")
    for key, text in PROMPTS.get(lang, {}).items():
        if nb.metadata.get("mystnb", {}).get(key) != text:
            found.append(f"notebook metadata: mystnb.{key} must be {text!r} (the website's button text)")
    return found


def student_edition(nb):
    """A copy of ``nb`` without its solution cells and without outputs (nothing else changes)."""
    student = copy.deepcopy(nb)
    student.cells = [c for c in student.cells if not is_solution(c)]
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    student.metadata.pop("widgets", None)
    return student


def chapters(lang: str, notebooks: Path = NOTEBOOKS) -> list[Path]:
    return sorted((notebooks / lang).glob("*.ipynb"))


def archive_bytes(lang: str, notebooks: Path = NOTEBOOKS) -> bytes:
    """The student edition of every chapter of ``lang``, zipped (deterministic bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name, text):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)
        add(f"notebooks/{lang}/README.md", README[lang].format(lang=lang))
        for path in chapters(lang, notebooks):
            nb = student_edition(nbformat.read(path, as_version=4))
            add(f"notebooks/{lang}/{path.name}", nbformat.writes(nb) + "\n")
    return buffer.getvalue()


def write_archive(lang: str, dest: Path, notebooks: Path = NOTEBOOKS) -> Path:
    data = archive_bytes(lang, notebooks)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.read_bytes() != data:
        dest.write_bytes(data)
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are not collapsed")
    parser.add_argument("--archive", nargs=2, metavar=("LANG", "DEST"), help="write the student edition of LANG")
    args = parser.parse_args(argv)
    if args.archive:
        print(write_archive(args.archive[0], Path(args.archive[1])))
        return 0
    bad = 0
    for path in sorted(NOTEBOOKS.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        found = problems(nb, language_of(path))
        if args.check:
            for p in found:
                print(f"{path.relative_to(ROOT)}: {p}")
            bad += bool(found)
        elif found:
            nbformat.write(collapse(nb, language_of(path)), path)
            print(f"collapsed the solutions of {path.relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
