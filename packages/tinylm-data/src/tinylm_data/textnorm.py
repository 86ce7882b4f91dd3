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
from itertools import islice

import xxhash

_NOT_WORD_CHAR = re.compile(r"[\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_NOT_IN_WORDS_OR_BLOCKS = re.compile(r"[^\w+#&.%\-]{2,}")
_EN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def normalise(text: str) -> str:
    """NFKC, casefold, then only letters, digits and Han characters remain."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_WORD_CHAR.sub("", text)


def dedup_key(text: str) -> bytes:
    """The 16-byte xxh3_128 digest of `normalise(text)`: equal keys mean exact duplicates."""
    return key_of_normalised(normalise(text))


def key_of_normalised(normalised: str) -> bytes:
    """`dedup_key` of a text whose `normalise` the caller already has (near dedup shares it)."""
    return xxhash.xxh3_128_digest(normalised.encode("utf-8", "surrogatepass"))


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
    cut = _jieba().cut
    # Marks and spaces outside jieba's blocks are one-character tokens that are never words:
    # folding their runs into one space changes no word, and spares jieba a Python loop.
    text = _NOT_IN_WORDS_OR_BLOCKS.sub(" ", text)
    for piece in _pieces(text):
        for token in cut(piece):
            if _WORD_CHAR.search(token):
                yield token


def resolve_language(text: str, language: str) -> str:
    """`language`, or the detected language of `text` when it is "auto"."""
    if language == "auto":
        from .filters.language import detect_language

        return detect_language(text)
    return language


def words(text: str, language: str) -> list[str]:
    """Lower-case word tokens: jieba words for "zh", letter/digit runs otherwise.

    "auto" detects the language first. Punctuation and whitespace are never tokens; English
    contractions stay one word ("don't").
    """
    if resolve_language(text, language) == "zh":
        return [token.lower() for token in _zh_tokens(text)]
    return _EN_WORD.findall(text.lower())


# jieba cuts a text into blocks of these characters and segments each block on its own; any
# other character is a token by itself. So a piece cut just after such a character is
# segmented exactly as the same stretch of the whole text.
_JIEBA_BLOCK_REVERSED = re.compile("[\u4e00-\u9fd5a-zA-Z0-9+#&._%\\-]*")
_FIRST_PIECE_CHARS = 256
_MAX_PIECE_CHARS = 4096


def _pieces(text: str) -> Iterator[str]:
    """`text` in pieces for jieba: small first (a short check stops early), at most 4,096 chars.

    Pieces end at block boundaries, so the words are exactly those of the whole text. Only a
    stretch of more than 4,096 characters without one (no space, no punctuation) is cut
    anyway, which may split one word: jieba takes quadratic time on such stretches
    (20,000 repeated characters: 3 s; 200,000: minutes).
    """
    start, size = 0, _FIRST_PIECE_CHARS
    while len(text) - start > size:
        window = text[start : start + size]
        end = size - _JIEBA_BLOCK_REVERSED.match(window[::-1]).end()
        if end == 0:
            if size < _MAX_PIECE_CHARS:
                size *= 2
                continue
            end = size
        yield window[:end]
        start += end
        size = min(size * 2, _MAX_PIECE_CHARS)
    if start < len(text):
        yield text[start:]


def count_zh_words(text: str, at_least: int) -> int:
    """jieba words in `text` (as `words(text, "zh")`), counting only as far as needed.

    Returns the exact count when it is below `at_least`, otherwise `at_least`: jieba only
    segments the leading pieces it needs.
    """
    return sum(1 for _ in islice(_zh_tokens(text), at_least))
