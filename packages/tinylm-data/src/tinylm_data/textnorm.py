"""Text normalisation for exact dedup keys, and the word tokens that dedup and filters share.

`normalise` folds the differences that do not make a different document: Unicode
compatibility forms (NFKC: full-width -> ASCII), case (casefold), and every punctuation mark,
symbol and space, which are removed. It does not convert traditional to simplified Chinese:
sources that want that enable the `t2s` cleaning rule, and the key stays cheap and free of a
dictionary whose version would change the keys.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
import warnings
from collections.abc import Iterator

import xxhash

_NOT_WORD_CHAR = re.compile(r"[\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_EN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def normalise(text: str) -> str:
    """NFKC, casefold, then only letters, digits and Han characters remain."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_WORD_CHAR.sub("", text)


def dedup_key(text: str) -> bytes:
    """The 16-byte xxh3_128 digest of `normalise(text)`: equal keys mean exact duplicates."""
    return xxhash.xxh3_128_digest(normalise(text).encode("utf-8", "surrogatepass"))


# --- words -------------------------------------------------------------------------------------

_jieba_pid: int | None = None


def _jieba():
    # Imported and initialised on first use, quietly, once per process (jieba logs its
    # dictionary loading to stderr at DEBUG level otherwise).
    global _jieba_pid
    with warnings.catch_warnings():
        # jieba 0.42 has invalid escape sequences that warn when its modules are compiled.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        import jieba

    if _jieba_pid != os.getpid():
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_pid = os.getpid()
    return jieba


def _zh_tokens(text: str) -> Iterator[str]:
    """jieba words with at least one letter, digit or Han character (no spaces, no marks)."""
    for token in _jieba().cut(text):
        if _WORD_CHAR.search(token):
            yield token


def words(text: str, language: str) -> list[str]:
    """Lower-case word tokens: jieba words for "zh", letter/digit runs otherwise.

    "auto" detects the language first. Punctuation and whitespace are never tokens; English
    contractions stay one word ("don't").
    """
    if language == "auto":
        from .filters.language import detect_language

        language = detect_language(text)
    if language == "zh":
        return [token.lower() for token in _zh_tokens(text)]
    return _EN_WORD.findall(text.lower())


# jieba cuts a text into blocks of these characters and segments each block on its own; any
# other character is a token by itself. So a prefix cut just before such a character is
# segmented exactly as the same stretch of the whole text.
_JIEBA_BLOCK_PREFIX_REVERSED = re.compile("[\u4e00-\u9fd5a-zA-Z0-9+#&._%\\-]*")


def count_zh_words(text: str, at_least: int) -> int:
    """jieba words in `text` (as `words(text, "zh")`), counting only as far as needed.

    Returns the exact count when it is below `at_least`, otherwise some number >= `at_least`:
    only a growing prefix is segmented, cut at a block boundary so the count is exact.
    """
    # Ten jieba words rarely span more than ~30 characters: start small and grow, since jieba
    # (a few hundred kB/s) dominates the filter stage otherwise.
    size = max(32, at_least * 3)
    while size < len(text):
        prefix = text[:size]
        trailing_block = _JIEBA_BLOCK_PREFIX_REVERSED.match(prefix[::-1]).end()
        cut = size - trailing_block
        if cut > 0:
            count = sum(1 for _ in _zh_tokens(prefix[:cut]))
            if count >= at_least:
                return count
        size *= 4
    return sum(1 for _ in _zh_tokens(text))
