"""Solution cells collapsed in the full notebooks, and the student editions without them.

    python tools/editions.py                 # collapse every solution cell of notebooks/*/ in place
    python tools/editions.py --check         # exit 1 and list the notebooks whose solutions are not collapsed
    python tools/editions.py --archive en notebooks-en.zip   # the student edition of one language
    python tools/editions.py --clean notebooks/en/03_x.ipynb < in > out   # git's clean filter (outputs stripped)

A *solution cell* is a code cell tagged ``solution`` (with ``hide-input``, which hides it on the website).
It comes right after the exercise's answer cell (``answer_1 = ...   # your answer: ...  # i18n`` and the check call).

- **Collapsed** (the full notebooks, what the website's download button and Colab's rocket open): the
  cell keeps its code, and three things hide it until the student chooses to look: JupyterLab's
  ``metadata.jupyter.source_hidden``, Colab's form view (``metadata.cellView = "form"`` with a first line
  ``# @title Solution · 参考答案``, the title Colab shows over the hidden code: one line for both languages,
  so that the twins' code cells stay identical), and the website's ``hide-input`` tag.
- **Student edition**: the same notebook without its solution cells and without outputs; the answer cells
  stay, so each check prints "not answered yet" until the student answers, and the sentence that points at the
  hidden solutions says where the solutions are instead. The build zips every chapter of a language into
  ``notebooks-<lang>.zip`` (inside: ``notebooks/<lang>/NN_name.ipynb``, and the book's pages the notebooks link
  to, as notebooks ``book/<lang>/<page>.ipynb``, so that the two archives unpacked side by side keep every link
  working, between the twins too). Its files carry the date of the repository's last commit
  (``SOURCE_DATE_EPOCH`` when set): the same commit gives the same bytes.
- **Stored notebooks**: :func:`clean` is what git stores (``.gitattributes`` names it as the clean filter of
  ``notebooks/*/*.ipynb``; ``make venv`` configures it): no outputs, no execution counts, no widget state, the
  solutions collapsed again and the kernel named as Jupyter names it, so that a reader who ran a notebook (and a
  teacher who opened a solution) commits it clean, and the tests read it as git stores it (:func:`committed`).
"""
from __future__ import annotations

import argparse
import copy
import functools
import io
import json
import os
import re
import subprocess
import sys
import time
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
#: The kernel every notebook names, as Jupyter's own kernel names itself: a notebook whose stored name differs
#: is marked modified as soon as JupyterLab opens it.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: The notebook metadata that is stored; everything else (widget state, a run's language_info) is not.
STORED_METADATA = ("kernelspec", "language_info", "mystnb")
#: git's name for the clean filter (.gitattributes)
FILTER = "attention-notebook"
#: the book's pages the notebooks link to (``../../book/<lang>/<page>.md``), shipped in the archives as notebooks
PAGES = ("notation", "references", "running")
BOOK = ROOT / "book"

#: In the student edition, the exercises' sentence about the hidden solutions (any wording) gives way to this one.
_HIDDEN_WORDS = {"en": ("hidden", "reveal"), "zh": ("隐藏", "藏在", "点开", "展开")}
_STOP = {"en": ".", "zh": "\u3002"}                   # a sentence ends at a full stop


def _sentence_with(words, stop: str):
    """A sentence (which may run over several source lines) that holds one of ``words``."""
    s, w = re.escape(stop), "|".join(words)
    return re.compile(rf"[^{s}\n]*(?:\n[^{s}\n]*)*?(?:{w})[^{s}]*{s}")


HIDDEN_SENTENCE = {lang: _sentence_with(_HIDDEN_WORDS[lang], _STOP[lang]) for lang in ("en", "zh")}
STUDENT_SENTENCE = {"en": "This is the student edition: the solutions are not included (the full notebooks on the "
                          "book's website have them).",
                    "zh": "这是学生版，不含参考答案（本书网站上的完整版 Jupyter 笔记本里有）。"}

README = {
    "en": """# Attention Mechanisms: student notebooks ({lang})

Every chapter of the book as a Jupyter notebook, without the exercise solutions: each exercise has
an answer cell (`answer_1 = ...`) followed by its check, which says "not answered yet" until you replace
the `...` with your answer, then whether it is right and, if not, what is wrong.

Run them on Colab (upload a notebook; its first cell installs the book's package) or locally. Locally,
install the book's package once, in a copy of the book's repository:

    pip install -r requirements.txt && pip install -e .

then open these notebooks from the folder where you unpacked this archive (unpack it outside the
repository, whose own `notebooks/{lang}/` holds the full notebooks). Start JupyterLab in that folder, the one
that holds `notebooks/` and `book/`, so that the links between the chapters, to their twins in the other
language (unpack both archives into the same folder) and to the book's pages all work:

    jupyter lab --notebook-dir=. notebooks/{lang}/00_introduction.ipynb

The first run of a chapter trains its small demo models: about a minute of computing, up to two or three
minutes of waiting on a busy or shared machine; later runs load them from a cache and take seconds.

The full notebooks, with the solutions (collapsed), are on the book's website and in its repository.
""",
    "zh": """# 注意力机制：学生版 Jupyter 笔记本（{lang}）

本书每一章的 Jupyter 笔记本，去掉了练习的参考答案：每道练习都有一个作答的代码单元（`answer_1 = ...`），后面是它的检查；在你把 `...` 换成自己的答案之前，检查会显示“尚未作答”，之后会告诉你答案是否正确，不正确时指出错在哪里。

可以在 Colab 上运行（上传一个 Jupyter 笔记本，它的第一个代码单元会安装本书的软件包），也可以在本地运行。在本地运行时，先在本书代码仓库的副本中安装一次本书的软件包：

    pip install -r requirements.txt && pip install -e .

然后在解压这个压缩包的文件夹中打开这些 Jupyter 笔记本。请解压到代码仓库之外，因为仓库自己的 `notebooks/{lang}/` 中是完整版。请在包含 `notebooks/` 和 `book/` 的那个文件夹里启动 JupyterLab，这样章节之间的链接、指向另一种语言版本的链接（把两个压缩包解压到同一个文件夹）以及指向本书页面的链接才都能打开：

    jupyter lab --notebook-dir=. notebooks/{lang}/00_introduction.ipynb

每一章第一次运行时要训练几个小的演示模型：计算量大约一分钟，在繁忙或多人共用的机器上可能要等两三分钟；之后再运行会从缓存中加载，只需几秒钟。

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
    """Mark every solution cell collapsed for JupyterLab and Colab and name the kernel as Jupyter does (in place,
    idempotent); returns ``nb``."""
    for cell in nb.cells:
        if not (is_solution(cell) or looks_like_a_solution(cell)):
            continue
        cell.metadata["tags"] = [*[t for t in tags(cell) if t not in (HIDE, SOLUTION)], HIDE, SOLUTION]
        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        cell.metadata["cellView"] = "form"
        cell.source = _titled(cell.source)
    if lang in PROMPTS:
        nb.metadata.setdefault("mystnb", {}).update(PROMPTS[lang])
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
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
    if nb.metadata.get("kernelspec") != KERNELSPEC:
        found.append(f"notebook metadata: kernelspec must be {KERNELSPEC} (JupyterLab marks it modified otherwise)")
    return found


# ---------------------------------------------------------------- what git stores


def clean(nb, lang: str):
    """The notebook as it is stored (in place; returns ``nb``): no outputs, execution counts or run metadata, only
    the stored notebook metadata, the solutions collapsed again (a teacher may have opened one), the kernel named."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        solution = is_solution(cell) or looks_like_a_solution(cell)
        for key in list(cell.metadata):
            if key != "tags" and not (solution and key in ("jupyter", "cellView")):
                del cell.metadata[key]
    for key in list(nb.metadata):
        if key not in STORED_METADATA:
            del nb.metadata[key]
    return collapse(nb, lang)


def clean_text(text: str, lang: str) -> str:
    """:func:`clean` on a notebook's text, written as the repository stores notebooks."""
    nb = nbformat.reads(text, as_version=4)
    return nbformat.writes(clean(nb, lang)) + "\n"


@functools.lru_cache(maxsize=None)
def _filter_configured(root: Path) -> bool:
    """Whether git in ``root`` runs :func:`clean` on the notebooks it stores (the filter is defined and named)."""
    try:
        defined = subprocess.run(["git", "config", "--get", f"filter.{FILTER}.clean"], cwd=root,
                                 capture_output=True, text=True).stdout.strip()
    except OSError:
        return False
    return bool(defined) and FILTER in (root / ".gitattributes").read_text(encoding="utf-8") \
        if (root / ".gitattributes").exists() else False


def committed(path: Path):
    """The notebook at ``path`` as git would store it: cleaned when this clone's clean filter is configured (a
    reader who ran it leaves outputs in the file, never in the repository), else as it is on disk."""
    nb = nbformat.read(path, as_version=4)
    return clean(nb, language_of(path)) if _filter_configured(ROOT) else nb


# ---------------------------------------------------------------- the student edition


_EXERCISES_HEADING = re.compile(r"^#{2,3} \d+\. (Exercises|练习)[ \t]*$", re.M)
_PAGE_LINK = re.compile(r"\]\((\.\./\.\./book/(?:en|zh)/(?:" + "|".join(PAGES) + r"))\.md(#[^)]*)?\)")


def _student_markdown(source: str, lang: str) -> str:
    """A markdown cell of the student edition: the sentence about hidden solutions says where they are instead,
    and links to the book's pages point at the archive's copies."""
    source = _PAGE_LINK.sub(lambda m: f"]({m.group(1)}.ipynb{m.group(2) or ''})", source)
    heading = _EXERCISES_HEADING.search(source)
    if heading is None:
        return source
    head, rest = source[:heading.end()], source[heading.end():]
    parts = rest.split("\n\n")
    intro = next((i for i, p in enumerate(parts) if p.strip()), None)
    found = None
    if intro is not None and not parts[intro].lstrip().startswith("**"):      # the paragraph before exercise 1
        found = HIDDEN_SENTENCE[lang].search(parts[intro])
        if found:
            lead = re.match(r"\s*", found.group(0)).group(0)
            parts[intro] = parts[intro][:found.start()] + lead + STUDENT_SENTENCE[lang] + parts[intro][found.end():]
    if found is None:                                                         # no such sentence: say it first
        parts.insert(1 if parts and not parts[0].strip() else 0, STUDENT_SENTENCE[lang])
    return head + "\n\n".join(parts)


def student_edition(nb, lang: str = "en"):
    """A copy of ``nb`` without its solution cells and without outputs; the exercises' introduction says that the
    solutions are not included, and links to the book's pages lead to the archive's copies."""
    student = copy.deepcopy(nb)
    student.cells = [c for c in student.cells if not is_solution(c)]
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = _student_markdown(cell.source, lang)
    student.metadata.pop("widgets", None)
    student.metadata["kernelspec"] = dict(KERNELSPEC)
    return student


def _bibliography(lang: str = "en") -> str:
    """``book/references.bib`` as a Markdown list, in author-year order (for the archive's references page)."""
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec)
    from pybtex.database import parse_file

    def text(value: str) -> str:
        return re.sub(r"[{}]", "", codecs.decode(value, "ulatex")).strip()

    items = []
    for key, entry in parse_file(str(BOOK / "references.bib")).entries.items():
        people = entry.persons.get("author", [])
        names = [text(" ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names)) for p in people]
        last = " and " if lang == "en" and len(names) > 1 else ", " if len(names) > 1 else ""
        authors = ", ".join(names[:-1]) + last + names[-1] if names else ""
        fields = entry.fields
        venue = text(fields.get("booktitle") or fields.get("journal") or fields.get("publisher") or "")
        url = fields.get("url", "")
        line = f"- {authors} ({fields.get('year', '')}). *{text(fields.get('title', key))}*."
        line += f" {venue}." if venue else ""
        line += f" [{url}]({url})" if url else ""
        items.append((text(people[0].last_names[0]) if people else key, fields.get("year", ""), line))
    return "\n".join(line for *_, line in sorted(items))


def page_notebook(lang: str, page: str):
    """One of the book's pages (``book/<lang>/<page>.md``) as a notebook of Markdown cells, for the archive: MyST's
    bibliography becomes a list, HTML comments go, and links to pages the archive lacks become plain text."""
    text = (BOOK / lang / f"{page}.md").read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    text = re.sub(r"```\{bibliography\}.*?```", lambda m: _bibliography(lang), text, flags=re.S)
    shipped = {f"{p}.md" for p in PAGES}
    text = re.sub(r"\[([^\]]+)\]\(([\w-]+\.md)(#[^)]*)?\)",
                  lambda m: f"[{m.group(1)}]({m.group(2)[:-3]}.ipynb{m.group(3) or ''})" if m.group(2) in shipped
                  else m.group(1), text)
    sections = re.split(r"\n(?=## )", text.strip())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s.strip(), id=f"{page}-{i}")
                                         for i, s in enumerate(sections)])
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def chapters(lang: str, notebooks: Path = NOTEBOOKS) -> list[Path]:
    return sorted((notebooks / lang).glob("*.ipynb"))


def archive_time(root: Path = ROOT) -> tuple:
    """The archive's time stamp: ``SOURCE_DATE_EPOCH`` when set, else the time of the last commit (UTC), else the
    newest notebook's; the same commit gives the same bytes, and a student's file browser shows a real date."""
    stamp = os.environ.get("SOURCE_DATE_EPOCH")
    if not stamp:
        try:
            stamp = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True,
                                   text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            stamp = ""
    if not stamp:
        stamp = max((p.stat().st_mtime for p in (root / "notebooks").glob("*/*.ipynb")), default=315532800)
    return time.gmtime(max(int(float(stamp)), 315532800))[:6]          # zip cannot store times before 1980


def archive_bytes(lang: str, notebooks: Path = NOTEBOOKS) -> bytes:
    """The student edition of every chapter of ``lang`` and the pages they link to, zipped (deterministic bytes)."""
    stamp = archive_time(notebooks.parent)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name, text):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)
        add(f"notebooks/{lang}/README.md", README[lang].format(lang=lang))
        linked = set()
        for path in chapters(lang, notebooks):
            nb = nbformat.read(path, as_version=4)
            linked |= set(re.findall(rf"\.\./\.\./book/{lang}/(\w+)\.md", json.dumps([c.source for c in nb.cells])))
            add(f"notebooks/{lang}/{path.name}", nbformat.writes(student_edition(nb, lang)) + "\n")
        for page in sorted(linked & set(PAGES)):
            add(f"book/{lang}/{page}.ipynb", nbformat.writes(page_notebook(lang, page)) + "\n")
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
    parser.add_argument("--clean", metavar="PATH", help="git's clean filter: the notebook PATH, read from stdin, "
                                                        "written to stdout as it is stored")
    args = parser.parse_args(argv)
    if args.clean:
        text = sys.stdin.buffer.read().decode("utf-8")
        sys.stdout.buffer.write(clean_text(text, language_of(Path(args.clean))).encode("utf-8"))
        return 0
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
