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
import sys
import unicodedata
import warnings
from collections.abc import Iterator
from itertools import islice

import xxhash

_NOT_WORD_CHAR = re.compile(r"[\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_NOT_IN_WORDS_OR_BLOCKS = re.compile(r"[^\w+#&.%\-]{2,}")
_EN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


# Every ASCII character but letters and digits: bytes.translate deletes them at memory speed.
_ASCII_NOT_ALNUM = bytes(b for b in range(128) if not chr(b).isalnum())

CHINESE_FULL_WIDTH_PUNCTUATION = "，！？：；（）～…"
"""The punctuation of Chinese prose that the `unicode` cleaning rule keeps full-width."""

# Each of them as its NFKC form (ASCII: "，" -> ",", "…" -> "..."). Replacing a character by
# its full compatibility decomposition leaves the NFKC of the text unchanged, and it lets
# `unicodedata` answer at once on cleaned Chinese text, which is otherwise NFKC already.
_FULL_WIDTH_FOLDS = tuple(
    (mark, unicodedata.normalize("NFKC", mark)) for mark in CHINESE_FULL_WIDTH_PUNCTUATION
)


def fold_chinese_punctuation(text: str) -> str:
    """`text` with the Chinese full-width punctuation as its NFKC form; `text` itself if none.

    NFKC of the result equals NFKC of `text`, and the folded marks are ASCII that never
    combines with a neighbour, so the text is NFKC exactly where its pieces between them are.
    """
    for mark, folded in _FULL_WIDTH_FOLDS:
        if mark in text:
            text = text.replace(mark, folded)
    return text


def normalise(text: str) -> str:
    """NFKC, casefold, then only letters, digits and Han characters remain."""
    if text.isascii():  # NFKC leaves ASCII alone and casefold is lower()
        return text.encode("ascii").translate(None, _ASCII_NOT_ALNUM).decode("ascii").lower()
    text = unicodedata.normalize("NFKC", fold_chinese_punctuation(text)).casefold()
    return _NOT_WORD_CHAR.sub("", text)


def alnum_count(text: str) -> int:
    """How many letters, digits and Han characters (`[^\\W_]`) `text` holds."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NOT_ALNUM))
    return len(_NOT_WORD_CHAR.sub("", text))


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
    if _jieba_pid == os.getpid():
        return sys.modules["jieba"]
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
_JIEBA_BLOCK_CHARS = "\u4e00-\u9fd5a-zA-Z0-9+#&._%\\-"
_JIEBA_BLOCK_REVERSED = re.compile(f"[{_JIEBA_BLOCK_CHARS}]*")
_JIEBA_BLOCK = re.compile(f"[{_JIEBA_BLOCK_CHARS}]+")
_WORD_CHAR_OUTSIDE_BLOCKS = re.compile(f"[^\\W_{_JIEBA_BLOCK_CHARS}]")
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


def zh_words_lower_bound(text: str) -> int:
    """At most the number of jieba words in `text` (`words(text, "zh")`), without jieba.

    jieba segments each run of its block characters alone and yields every other character as
    a token of its own, so each run holding a letter or digit gives at least one word, and
    so does each letter, digit or Han character outside the runs.
    """
    runs = sum(1 for run in _JIEBA_BLOCK.findall(text) if _WORD_CHAR.search(run))
    return runs + len(_WORD_CHAR_OUTSIDE_BLOCKS.findall(text))


def count_zh_words(text: str, at_least: int) -> int:
    """jieba words in `text` (as `words(text, "zh")`), counting only as far as needed.

    Returns the exact count when it is below `at_least`, otherwise `at_least`: jieba only
    segments the leading pieces it needs.
    """
    return sum(1 for _ in islice(_zh_tokens(text), at_least))
