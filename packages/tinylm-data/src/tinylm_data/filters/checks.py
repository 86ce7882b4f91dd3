"""The document filters, run in a fixed order; the first that fails gives the drop reason.

Order: empty, too_long (both O(1); too_long bounds the cost of every later scan), language,
too_short_zh / too_short_en, mostly_symbols, repeated_lines, long_word, mean_word_length.
Each check returns None to keep the document, or a detail saying why it is dropped; the
check's name is the machine-readable reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property, lru_cache
from itertools import islice

from ..textnorm import alnum_count, count_zh_words, zh_words_lower_bound
from .config import FilterConfig
from .language import detect_language

_ALNUM_RUN = re.compile(r"[^\W_]+")
_NON_SPACE_RUN = re.compile(r"\S+")


class _Doc:
    """One document under test, with the statistics several checks share computed once."""

    def __init__(self, text: str, language: str, config: FilterConfig) -> None:
        self.text = text
        self.language = language
        self.config = config

    @cached_property
    def split(self) -> list[str]:
        """The whitespace-separated tokens (`str.split` splits on exactly what `\\s` matches)."""
        return self.text.split()

    @cached_property
    def en_words(self) -> list[str]:
        """Whitespace-separated words holding a letter or digit (lone symbols are not words)."""
        # isalnum() answers for most words without the regex.
        return [w for w in self.split if w.isalnum() or _ALNUM_RUN.search(w)]


Check = Callable[[_Doc], str | None]


def empty(doc: _Doc) -> str | None:
    return "no text left after cleaning" if not doc.text.strip() else None


def too_long(doc: _Doc) -> str | None:
    limit = doc.config.max_chars
    if limit is not None and len(doc.text) > limit:
        return f"{len(doc.text)} chars > max_chars {limit}"
    return None


def language(doc: _Doc) -> str | None:
    keep = doc.config.languages
    if keep is not None and doc.language not in keep:
        return f"language {doc.language} not in {list(keep)}"
    return None


def too_short_zh(doc: _Doc) -> str | None:
    minimum = doc.config.min_zh_words
    if doc.language != "zh" or minimum == 0:
        return None
    # Shortcut: fewer than `minimum` words in 16x as many characters would need words averaging
    # 16+ characters, which jieba does not produce on natural text; segmenting (a few hundred
    # kB/s) is kept for the texts where the answer is in doubt.
    if len(doc.text) >= _CHARS_PER_WORD_BOUND * minimum and _enough_word_chars(doc.text, minimum):
        return None
    # Exact either way: enough words for certain without jieba (a third of the short texts).
    if zh_words_lower_bound(doc.text) >= minimum:
        return None
    count = count_zh_words(doc.text, at_least=minimum)
    return f"{count} jieba words < min_zh_words {minimum}" if count < minimum else None


_CHARS_PER_WORD_BOUND = 16


def _enough_word_chars(text: str, minimum: int) -> bool:
    """At least 16 * minimum letters, digits or Han characters (counting stops once reached)."""
    return _word_chars_at_least(_CHARS_PER_WORD_BOUND * minimum).match(text) is not None


@lru_cache(maxsize=8)
def _word_chars_at_least(count: int) -> re.Pattern[str]:
    # Possessive: the two classes are disjoint, so giving characters back can never help.
    return re.compile(rf"(?:[\W_]*+[^\W_]){{{count}}}")


def too_short_en(doc: _Doc) -> str | None:
    minimum = doc.config.min_en_words
    if doc.language != "en" or minimum == 0:
        return None
    # Count only up to the minimum: a long document is not split in full here.
    count = sum(1 for _ in islice(_NON_SPACE_RUN.finditer(doc.text), minimum))
    return f"{count} words < min_en_words {minimum}" if count < minimum else None


def mostly_symbols(doc: _Doc) -> str | None:
    minimum = doc.config.min_alnum_ratio
    if minimum is None:
        return None
    non_space = "".join(doc.split)
    if not non_space:
        return None
    ratio = alnum_count(non_space) / len(non_space)
    return f"alnum ratio {ratio:.3f} < min_alnum_ratio {minimum}" if ratio < minimum else None


def repeated_lines(doc: _Doc) -> str | None:
    maximum = doc.config.max_duplicate_line_fraction
    if maximum is None or "\n" not in doc.text:
        return None
    lines = [line for line in (raw.strip() for raw in doc.text.split("\n")) if line]
    if not lines:
        return None
    fraction = 1 - len(set(lines)) / len(lines)
    if fraction > maximum:
        return f"duplicate line fraction {fraction:.3f} > max_duplicate_line_fraction {maximum}"
    return None


def long_word(doc: _Doc) -> str | None:
    maximum = doc.config.max_word_chars
    if doc.language != "en" or maximum is None:
        return None
    longest = max(map(len, doc.split), default=0)
    return f"a {longest}-char word > max_word_chars {maximum}" if longest > maximum else None


def mean_word_length(doc: _Doc) -> str | None:
    low, high = doc.config.min_mean_word_length, doc.config.max_mean_word_length
    if doc.language != "en" or (low is None and high is None) or not doc.en_words:
        return None
    mean = sum(map(len, doc.en_words)) / len(doc.en_words)
    if low is not None and mean < low:
        return f"mean word length {mean:.2f} < min_mean_word_length {low}"
    if high is not None and mean > high:
        return f"mean word length {mean:.2f} > max_mean_word_length {high}"
    return None


FILTERS: dict[str, Check] = {
    check.__name__: check
    for check in (
        empty,
        too_long,
        language,
        too_short_zh,
        too_short_en,
        mostly_symbols,
        repeated_lines,
        long_word,
        mean_word_length,
    )
}
"""Every filter by reason code, in the order they run."""


def explain_filters(text: str, language: str, config: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) of the first filter that drops `text`, or None to keep it.

    `language` is "zh", "en" or "other" (as declared by the source or detected), or "auto" to
    detect it here. It picks the checks: jieba word count for zh; whitespace word count and
    word-length checks for en; "other" gets neither, only the language filter and the
    script-independent checks.
    """
    if language == "auto":
        language = detect_language(text)
    elif language not in ("zh", "en", "other"):
        raise ValueError(f"language must be zh, en, other or auto, not {language!r}")
    doc = _Doc(text, language, config)
    for reason, check in FILTERS.items():
        detail = check(doc)
        if detail is not None:
            return reason, detail
    return None


def apply_filters(text: str, language: str, config: FilterConfig) -> str | None:
    """The reason code of the first filter that drops `text`, or None to keep it."""
    failure = explain_filters(text, language, config)
    return None if failure is None else failure[0]
