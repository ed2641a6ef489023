"""One table of English and Chinese strings for everything the toolkit draws or shows.

Each module registers its own strings at import time::

    from .i18n import register, t
    register({"viz.heads.title": {"en": "Attention weights per head", "zh": "各注意力头的权重"}})
    t("viz.heads.title")                        # text in the current language
    t("viz.head", i=3)                          # str.format fields: {"en": "head {i}", ...}

``attention_lib.setup(lang=...)`` chooses the language; :func:`set_language` does only that.
"""
from __future__ import annotations

from typing import Mapping

LANGUAGES = ("en", "zh")
_DEFAULT = "en"

_strings: dict[str, dict[str, str]] = {}
_language = _DEFAULT


def register(strings: Mapping[str, Mapping[str, str]]) -> None:
    """Add ``{key: {"en": text, "zh": text}}`` entries. English is required; a key may be re-registered."""
    for key, texts in strings.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"i18n.register: keys must be non-empty strings, got {key!r}")
        if not isinstance(texts, Mapping) or "en" not in texts:
            raise ValueError(f"i18n.register: {key!r} needs a mapping with at least an 'en' text, got {texts!r}")
        unknown = set(texts) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"i18n.register: {key!r} has texts for unknown languages {sorted(unknown)}; "
                             f"expected only {list(LANGUAGES)}")
        _strings[key] = {lang: str(text) for lang, text in texts.items()}


def t(key: str, **fmt) -> str:
    """The text for ``key`` in the current language (English where no translation exists), formatted with ``fmt``."""
    try:
        texts = _strings[key]
    except KeyError:
        raise KeyError(f"i18n: no string registered under {key!r}") from None
    text = texts.get(_language, texts["en"])
    return text.format(**fmt) if fmt else text


def set_language(lang: str) -> None:
    """Choose the language of every later :func:`t` call: ``"en"`` or ``"zh"``."""
    global _language
    if lang not in LANGUAGES:
        raise ValueError(f"i18n.set_language: expected one of {list(LANGUAGES)}, got {lang!r}")
    _language = lang


def get_language() -> str:
    """The current language code (``"en"`` or ``"zh"``)."""
    return _language


def keys() -> list[str]:
    """All registered keys (sorted): for tests that check every string has both languages."""
    return sorted(_strings)


def missing_translations(lang: str = "zh") -> list[str]:
    """Keys that have no text in ``lang`` (they fall back to English)."""
    return sorted(k for k, v in _strings.items() if lang not in v)
