"""The glossary is enforced: Chinese text uses its terms, English text uses British spelling.

``book/glossary.yml`` lists, for every glossary term, the English term, the preferred Chinese term and
the Chinese variants to avoid, plus the American spellings to avoid in English. These tests scan

* the markdown cells of every ``notebooks/zh/*.ipynb``, ``book/zh/*.md``, ``book/index.md`` and the
  Chinese string of every key of the library's i18n table for the Chinese variants;
* the markdown cells of every ``notebooks/en/*.ipynb``, ``book/en/*.md``, ``book/index.md`` and the
  English strings of the i18n table for the American spellings;
* the bilingual strings of the registry (mechanism names, what they reweight, formula symbols) for both,
  and every string literal with Chinese characters anywhere in ``attention_lib`` (explorer titles and
  any other bilingual text that is not in the i18n table) for the Chinese variants;

and check that the glossary pages and the yml list the same pairs. Every failure says where (file and
cell, or i18n key), what was found, and what to write instead.

Across a whole notebook or page, a first-use gloss marked ``once`` (批量归一化（BatchNorm）) appears at most once,
a term kept in English and marked ``explain`` (logit) is explained at its first use, and the English glosses
in Chinese text are spelled the British way too. A source that does not meet the rules yet is listed in
``tests/zh_pending.yml`` (rule ``glossary``) until its chapter is rewritten.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
import yaml

from .pending import verdict

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = yaml.safe_load((ROOT / "book" / "glossary.yml").read_text(encoding="utf-8"))
TERMS: list[dict] = GLOSSARY["terms"]
SPELLING: list[dict] = GLOSSARY["spelling"]

ZH_NOTEBOOKS = sorted((ROOT / "notebooks" / "zh").glob("*.ipynb"))
EN_NOTEBOOKS = sorted((ROOT / "notebooks" / "en").glob("*.ipynb"))
ZH_PAGES = sorted((ROOT / "book" / "zh").glob("*.md")) + [ROOT / "book" / "index.md"]
EN_PAGES = sorted((ROOT / "book" / "en").glob("*.md")) + [ROOT / "book" / "index.md"]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------- what counts as prose

_NOT_PROSE = [
    re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M),   # fenced code blocks
    re.compile(r"<!--.*?-->", re.S),                        # HTML comments
    re.compile(r"`[^`\n]*`"),                               # inline code
    re.compile(r"\$\$.*?\$\$", re.S),                       # display maths
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),               # inline maths
    re.compile(r"\]\([^)\s]*\)"),                           # link targets ](...)
    re.compile(r"<https?://[^>\s]*>"),                      # autolinks
    re.compile(r"https?://\S+"),                            # bare URLs
]
_PLACEHOLDER = re.compile(r"\{[^{}\s]*\}")                  # str.format fields of i18n strings: {name:>30}


def markdown_prose(text: str) -> str:
    """The text a reader reads: code, maths and link targets blanked, emphasis markers removed."""
    for pattern in _NOT_PROSE:
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return text.replace("*", "")    # emphasis markers: **词元**（token） reads as 词元（token）


def string_prose(text: str) -> str:
    """An i18n string without its format fields and inline maths."""
    text = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), text)
    return markdown_prose(text)


# ---------------------------------------------------------------- the two scanners

def _boundary(variant: str) -> re.Pattern:
    """Plain substring; a variant that starts or ends with a Latin letter must not touch another one."""
    left = r"(?<![A-Za-z])" if variant[:1].isascii() and variant[:1].isalpha() else ""
    right = r"(?![A-Za-z])" if variant[-1:].isascii() and variant[-1:].isalpha() else ""
    return re.compile(left + re.escape(variant) + right)


@lru_cache(maxsize=None)
def _zh_rules() -> tuple:
    protected = {t["zh"] for t in TERMS}
    rules = []
    for term in TERMS:
        allow = tuple(protected | set(term.get("allow", [])))
        for variant in term.get("avoid_zh", []):
            rules.append((variant, _boundary(variant), term, allow))
    return tuple(rules)


def _context(text: str, start: int, end: int, width: int = 18) -> str:
    return text[max(0, start - width):end + width].replace("\n", " ").strip()


def chinese_variants(text: str) -> list[str]:
    """Each glossary variant found in ``text``, as a message saying what to write instead."""
    found = []
    for variant, pattern, term, allow in _zh_rules():
        for m in pattern.finditer(text):
            start, end = m.span()
            if text[start - 1:start] == "“" and text[end:end + 1] == "”":
                continue                    # mentioned, not used: 不写“得分”
            inside = False
            for phrase in allow:
                if variant not in phrase:
                    continue
                for p in re.finditer(re.escape(phrase), text):
                    if p.start() <= start and end <= p.end():
                        inside = True
                        break
                if inside:
                    break
            if not inside:
                hint = f" ({term['note']})" if term.get("note") else ""
                found.append(f"'{variant}' -> write '{term['zh']}' ({term['en']}){hint}: "
                             f"...{_context(text, start, end)}...")
    return found


@lru_cache(maxsize=None)
def _en_rules() -> tuple:
    return tuple((stem, re.compile(r"(?<![A-Za-z])" + re.escape(stem) + r"[A-Za-z]*", re.I), rule["british"])
                 for rule in SPELLING for stem in rule["avoid"])


def american_spellings(text: str) -> list[str]:
    """Each American spelling found in ``text``, as a message giving the British form."""
    found = []
    for stem, pattern, british in _en_rules():
        for m in pattern.finditer(text):
            found.append(f"'{m.group(0)}' -> British spelling ({stem}... -> {british}): "
                         f"...{_context(text, *m.span())}...")
    return found


def document_findings(texts: list[str]) -> list[str]:
    """The rules that read a whole notebook or page (its prose, in reading order): a gloss marked ``once``
    appears at most once; a term marked ``explain`` is explained, in parentheses, at its first occurrence."""
    joined = "\n\n".join(texts)
    found = []
    for term in TERMS:
        if term.get("once"):
            for phrase in term.get("allow", []):
                count = joined.count(phrase)
                if count > 1:
                    found.append(f"'{phrase}' {count} times: gloss the term once, at its first use, then write "
                                 f"'{term['zh']}' ({term.get('note', term['en'])})")
        if term.get("explain"):
            first = re.search(r"(?<![A-Za-z])" + re.escape(term["zh"]) + r"s?(?![A-Za-z])", joined)
            if first and joined[first.start() - 1:first.start()] != "（":
                found.append(f"'{first.group(0)}' is not explained at its first use: write it in parentheses "
                             f"after a Chinese explanation ({term.get('note', term['en'])}): "
                             f"...{_context(joined, *first.span())}...")
    return found


def chinese_document_findings(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(rule, message)`` for one Chinese notebook or page given as ``(where, prose)``: glossary variants,
    American spellings of the English glosses, and the document rules."""
    found = [("glossary", f"{where}: {m}") for where, text in texts for m in chinese_variants(text)]
    found += [("glossary", f"{where}: {m}") for where, text in texts for m in american_spellings(text)]
    if not any(where.endswith("glossary.md") for where, _ in texts):     # the glossary lists the terms bare
        found += [("glossary", m) for m in document_findings([text for _, text in texts])]
    return found


# ---------------------------------------------------------------- the texts

def _markdown_cells(path: Path) -> list[tuple[str, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(f"{_rel(path)}, markdown cell {i}", markdown_prose(c.source))
            for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def _page(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    if path.name == "glossary.md":
        # The table's other-language column is not prose of this page's language: keep only the term and the note.
        keep = (0, 2) if path.parent.name == "zh" else (0, 1, 2)
        text = "\n".join(" | ".join(c for i, c in enumerate(line.strip().strip("|").split("|")) if i in keep)
                         if line.startswith("|") else line for line in text.splitlines())
    return [(_rel(path), markdown_prose(text))]


def _i18n_module():
    """The i18n module of the imported package: ``attention_lib/toolkit/i18n.py`` or ``attention_lib/i18n.py``."""
    import attention_lib

    package = Path(attention_lib.__path__[0])
    for name in ("toolkit.i18n", "i18n"):
        if (package / (name.replace(".", "/") + ".py")).exists():
            return importlib.import_module(f"attention_lib.{name}")
    raise AssertionError(f"no i18n module in {package}: expected toolkit/i18n.py or i18n.py")


@lru_cache(maxsize=None)
def i18n_table() -> dict[str, dict[str, str]]:
    """Every registered string, ``{key: {"en": ..., "zh": ...}}``, after importing every submodule
    of ``attention_lib`` (modules register their strings at import time)."""
    import attention_lib

    for info in pkgutil.walk_packages(attention_lib.__path__, "attention_lib."):
        importlib.import_module(info.name)
    i18n = _i18n_module()
    table = getattr(i18n, "_strings", None)
    if table is not None:
        return {key: dict(texts) for key, texts in table.items()}
    # Only the public API: read each key in each language (a missing translation falls back to English).
    before, table = i18n.get_language(), {}
    missing = set(i18n.missing_translations("zh"))
    try:
        for lang in ("en", "zh"):
            i18n.set_language(lang)
            for key in i18n.keys():
                if not (lang == "zh" and key in missing):
                    table.setdefault(key, {})[lang] = i18n.t(key)
    finally:
        i18n.set_language(before)
    return table


@lru_cache(maxsize=None)
def _library_sources() -> tuple[tuple[str, str], ...]:
    import attention_lib

    package = Path(attention_lib.__path__[0])
    return tuple((p.relative_to(package.parent).as_posix(), p.read_text(encoding="utf-8"))
                 for p in sorted(package.rglob("*.py")))


def _registered_in(key: str) -> str:
    """The library file(s) whose source names the i18n key, for the failure message."""
    files = [name for name, text in _library_sources() if f'"{key}"' in text or f"'{key}'" in text]
    return ", ".join(files) or "attention_lib"


def registry_strings() -> list[tuple[str, dict[str, str]]]:
    """The bilingual texts the registry holds (display names, short names, what a mechanism reweights, the
    symbols of the cost formulas): every ``{"en": ..., "zh": ...}`` mapping on an entry or in the module."""
    from collections.abc import Mapping

    registry = importlib.import_module("attention_lib.registry")

    def bilingual(value) -> bool:
        return isinstance(value, Mapping) and isinstance(value.get("en"), str) and isinstance(value.get("zh"), str)

    found = []
    for name, entry in getattr(registry, "MECHANISMS", {}).items():
        for field, value in sorted(vars(entry).items()):
            if bilingual(value):
                found.append((f"registry {name}.{field}", dict(value)))
    for attr, value in sorted(vars(registry).items()):
        if isinstance(value, Mapping) and attr != "MECHANISMS":
            found += [(f"registry {attr}[{key!r}]", dict(texts)) for key, texts in value.items() if bilingual(texts)]
    return found


def _report(what: str, findings: list[tuple[str, list[str]]]) -> str:
    lines = [f"{what}; replace as follows (book/glossary.yml is the list):"]
    for where, messages in findings:
        lines += [f"  {where}: {m}" for m in messages]
    return "\n".join(lines)


def _scan(texts: list[tuple[str, str]], scanner) -> list[tuple[str, list[str]]]:
    return [(where, found) for where, text in texts if (found := scanner(text))]


# ---------------------------------------------------------------- the glossary itself

def _page_pairs(path: Path, english_first: bool) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or set(cells[0]) <= {"-"} or cells[0] in ("English", "中文"):
            continue
        pairs.append((cells[0], cells[1]) if english_first else (cells[1], cells[0]))
    return pairs


def test_glossary_yml_entries_are_well_formed():
    problems = []
    for term in TERMS:
        if not (isinstance(term.get("en"), str) and isinstance(term.get("zh"), str)):
            problems.append(f"{term}: needs 'en' and 'zh' strings")
            continue
        unknown = set(term) - {"en", "zh", "avoid_zh", "allow", "note", "once", "explain"}
        if unknown:
            problems.append(f"{term['en']}: unknown fields {sorted(unknown)}")
        for variant in term.get("avoid_zh", []):
            if not isinstance(variant, str) or not variant:
                problems.append(f"{term['en']}: variant {variant!r} must be a non-empty string")
            elif variant == term["zh"]:
                problems.append(f"{term['en']}: {variant!r} is both the preferred term and a variant")
        for phrase in term.get("allow", []):
            if not any(v in phrase for v in term.get("avoid_zh", [])):
                problems.append(f"{term['en']}: allow phrase {phrase!r} contains none of its variants")
        if term.get("once") and not term.get("allow"):
            problems.append(f"{term['en']}: 'once' needs the gloss phrases in 'allow'")
        if term.get("explain") and not re.fullmatch(r"[A-Za-z][A-Za-z -]*", term["zh"]):
            problems.append(f"{term['en']}: 'explain' is for a term kept in English, not {term['zh']!r}")
    for rule in SPELLING:
        if not (isinstance(rule.get("british"), str) and rule.get("avoid")):
            problems.append(f"{rule}: needs 'british' and a non-empty 'avoid' list")
        for stem in rule.get("avoid", []):
            if rule["british"].lower().startswith(stem.lower()):
                problems.append(f"{rule['british']}: the British form itself starts with the stem {stem!r}")
    assert not problems, "book/glossary.yml:\n  " + "\n  ".join(problems)


def test_no_preferred_term_is_flagged_by_the_glossary_itself():
    """A preferred Chinese term never contains another entry's variant (outside an allowed phrase)."""
    flagged = [(t["zh"], found) for t in TERMS if (found := chinese_variants(t["zh"]))]
    assert not flagged, f"book/glossary.yml: preferred terms that the scanner would reject: {flagged}"


@pytest.mark.parametrize("page,english_first", [("book/en/glossary.md", True), ("book/zh/glossary.md", False)])
def test_glossary_page_lists_the_same_pairs_as_the_yml(page, english_first):
    pairs = _page_pairs(ROOT / page, english_first)
    yml = [(t["en"], t["zh"]) for t in TERMS]
    only_page = [p for p in pairs if p not in yml]
    only_yml = [p for p in yml if p not in pairs]
    assert not only_page and not only_yml, (
        f"{page} and book/glossary.yml must list the same (English, 中文) pairs.\n"
        f"  in the page, not in the yml (add an entry: - {{en: ..., zh: ...}}): {only_page}\n"
        f"  in the yml, not in the page (add a table row): {only_yml}")


# ---------------------------------------------------------------- the scanners can fail

def test_chinese_scanner_flags_variants_and_spares_preferred_terms():
    assert chinese_variants("每个头的打分矩阵有 N × N 个元素")
    assert chinese_variants("批大小为 1 时")
    assert chinese_variants("记忆单元数 S")
    assert chinese_variants("在笔记本中实时重新计算")
    assert chinese_variants("按算子统计的 FLOPs：")
    assert chinese_variants("它作用于 token；题目问的是")
    clean = ("每个头的分数矩阵有 N × N 个元素；批量大小为 1；外部记忆有 S 个槽位；在 Jupyter 笔记本中运行，"
             "或在笔记本电脑上运行；浮点运算次数（FLOPs）；速率 12.0 GFLOP/s；词元（token）；`FLOPs` 在代码中；"
             "图像块嵌入；缩减率 $r$")
    assert chinese_variants(markdown_prose(clean)) == []
    assert chinese_variants("分数（不写“得分”）") == [] and chinese_variants("这个得分") != []


def test_english_scanner_flags_american_spellings_outside_code():
    assert american_spellings("the gate is normalized per channel")
    assert american_spellings("a randomly initialized module")
    assert american_spellings("Behavior of the colors")
    assert american_spellings(markdown_prose("the colour bar, `plt.colorbar()`, $\\text{normalize}$, "
                                             "[a link](https://example.org/normalize), normalised")) == []


def test_every_variant_of_the_yml_is_caught_in_a_sentence():
    """Plant each variant in a sentence of its own: the scanner must report it."""
    missed = [v for t in TERMS for v in t.get("avoid_zh", []) if not chinese_variants(f"这里写成了 {v} 。")]
    assert not missed, f"variants that the scanner cannot catch: {missed}"
    missed = [s for r in SPELLING for s in r["avoid"] if not american_spellings(f"here we wrote {s}e.")]
    assert not missed, f"American stems that the scanner cannot catch: {missed}"


# ---------------------------------------------------------------- the book's Chinese text

_GUIDE = "replace as book/glossary.yml says (its note says why)"


@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=_rel)
def test_chinese_notebook_markdown_uses_glossary_terms(path):
    failure = verdict(_rel(path), chinese_document_findings(_markdown_cells(path)), {"glossary"})
    assert not failure, f"{_GUIDE}:\n{failure}"


@pytest.mark.parametrize("path", ZH_PAGES, ids=_rel)
def test_chinese_pages_use_glossary_terms(path):
    failure = verdict(_rel(path), chinese_document_findings(_page(path)), {"glossary"})
    assert not failure, f"{_GUIDE}:\n{failure}"


def test_chinese_i18n_strings_use_glossary_terms():
    """Every registered string; a module listed as pending in tests/zh_pending.yml is reported by
    test_every_chinese_literal_in_the_library_uses_glossary_terms instead."""
    from .pending import pending

    waiting = {source for source, rules in pending().items() if "glossary" in rules}
    texts = [(f"i18n key {key!r} (zh, in {_registered_in(key)})", string_prose(texts["zh"]))
             for key, texts in sorted(i18n_table().items())
             if "zh" in texts and not set(_registered_in(key).split(", ")) & waiting]
    findings = _scan(texts, chinese_variants)
    assert not findings, _report("Chinese strings of the i18n table use terms that the glossary replaces "
                                 "(change the 'zh' value in the module's register({...}) table)", findings)


# ---------------------------------------------------------------- the book's English text

@pytest.mark.parametrize("path", EN_NOTEBOOKS, ids=_rel)
def test_english_notebook_markdown_uses_british_spelling(path):
    findings = _scan(_markdown_cells(path), american_spellings)
    assert not findings, _report(f"{_rel(path)} uses American spelling", findings)


@pytest.mark.parametrize("path", EN_PAGES, ids=_rel)
def test_english_pages_use_british_spelling(path):
    findings = _scan(_page(path), american_spellings)
    assert not findings, _report(f"{_rel(path)} uses American spelling", findings)


def test_english_i18n_strings_use_british_spelling():
    texts = [(f"i18n key {key!r} (en, in {_registered_in(key)})", string_prose(texts["en"]))
             for key, texts in sorted(i18n_table().items())]
    findings = _scan(texts, american_spellings)
    assert not findings, _report("English strings of the i18n table use American spelling "
                                 "(change the 'en' value in the module's register({...}) table)", findings)


def test_registry_strings_use_glossary_terms_and_british_spelling():
    strings = registry_strings()
    assert strings, "found no bilingual strings in attention_lib.registry"
    findings = _scan([(f"{where} (zh)", string_prose(texts["zh"])) for where, texts in strings], chinese_variants)
    findings += _scan([(f"{where} (en)", string_prose(texts["en"])) for where, texts in strings], american_spellings)
    assert not findings, _report("strings of attention_lib/registry.py break the glossary", findings)


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def chinese_literals(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string literal with Chinese characters in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CJK.search(node.value)
            and id(node) not in docstrings]


#: Python files that hold Chinese text: the library (i18n tables, registry names, explorer titles) and the
#: book's extensions and tools (the classroom kit's labels, the student archive's README).
PY_WITH_CHINESE = sorted(p for p in [*(ROOT / "attention_lib").rglob("*.py"), *(ROOT / "book" / "_ext").glob("*.py"),
                                     *(ROOT / "tools").glob("*.py")]
                         if _CJK.search(p.read_text(encoding="utf-8")) and p.name != "zh_typography.py")


def test_there_are_chinese_literals_in_the_library():
    assert any(_rel(p).startswith("attention_lib/") for p in PY_WITH_CHINESE), "no Chinese text in attention_lib"


@pytest.mark.parametrize("path", PY_WITH_CHINESE, ids=_rel)
def test_every_chinese_literal_in_the_library_uses_glossary_terms(path):
    """Chinese text outside the i18n table too (explorer titles, registry names, the classroom kit): any
    string literal that contains Chinese characters."""
    findings = [("glossary", f"line {line}: {m}") for line, text in chinese_literals(path)
                for m in chinese_variants(string_prose(text)) + american_spellings(string_prose(text))]
    failure = verdict(_rel(path), findings, {"glossary"})
    assert not failure, f"{_GUIDE}:\n{failure}"
