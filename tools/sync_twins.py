"""Copy the code cells of an English chapter into its Chinese twin (or the reverse).

    python tools/sync_twins.py 03_squeeze_excitation            # en -> zh
    python tools/sync_twins.py 03_squeeze_excitation --from zh  # zh -> en

The twins must have the same cells in the same order (same types); only markdown may differ. Lines
ending in ``# i18n`` keep the target's version. The comment of an answer stub
(``answer_1 = ...   # your answer: an integer  # i18n``) is written in the target's language, from the table
``answer_stubs`` of ``book/skeleton.yml`` (``# 你的答案：一个整数  # i18n``), so that a Chinese student reads in
Chinese what to type; the line ends in the ``# i18n`` mark (added if the source lacks it), since it is the twin's
own. Outputs and execution counts are cleared, and the solution cells are collapsed as ``tools/editions.py``
does it.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from editions import collapse  # noqa: E402  (tools/ is not a package)
from zh_typography import STUB, stub_line  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def _own(line: str) -> bool:
    """A line each twin keeps its own version of: a line ending in ``# i18n``."""
    return line.rstrip().endswith("# i18n")


def merge_code(source: str, target: str, target_lang: str | None = None) -> str:
    """``source``'s lines, except that each other ``# i18n`` line is taken from ``target`` (in order) and, given
    ``target_lang``, each answer stub is written in that language, ending in ``# i18n``."""
    kept = iter([line for line in target.splitlines() if _own(line) and not STUB.match(line)])
    out = []
    for line in source.splitlines():
        m = STUB.match(line)
        if target_lang and m:
            try:
                line = stub_line(line, target_lang)
            except KeyError:
                raise SystemExit(f"no translation for the answer stub comment {m.group('comment')!r}: add it to "
                                 "answer_stubs in book/skeleton.yml") from None
        elif _own(line):
            line = next(kept, line)
        out.append(line)
    return "\n".join(out)


def sync(name: str, source_lang: str = "en") -> int:
    target_lang = "zh" if source_lang == "en" else "en"
    src_path, dst_path = ROOT / source_lang / f"{name}.ipynb", ROOT / target_lang / f"{name}.ipynb"
    src, dst = nbformat.read(src_path, as_version=4), nbformat.read(dst_path, as_version=4)
    kinds = [c.cell_type for c in src.cells], [c.cell_type for c in dst.cells]
    if kinds[0] != kinds[1]:
        raise SystemExit(f"{src_path} and {dst_path} differ in their cell structure:\n{kinds[0]}\n{kinds[1]}")
    changed = 0
    for a, b in zip(src.cells, dst.cells):
        if a.cell_type == "code":
            merged = merge_code(a.source, b.source, target_lang)
            changed += merged != b.source or a.metadata.get("tags") != b.metadata.get("tags")
            b.source = merged
            b.metadata = dict(a.metadata)
            b.outputs, b.execution_count = [], None
    nbformat.write(collapse(dst, target_lang), dst_path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", help="file name without .ipynb, e.g. 03_squeeze_excitation")
    parser.add_argument("--from", dest="source", choices=("en", "zh"), default="en")
    args = parser.parse_args(argv)
    print(f"{sync(args.chapter, args.source)} code cell(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
