"""A cheap language guess from character classes: enough to pick the zh or en filters."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["zh", "en", "other"]

SAMPLE_CHARS = 20_000
"""Only this many leading characters are looked at: the guess costs the same for any length."""

ZH_MIN_HAN_SHARE = 0.3
"""Han characters among all letters needed for "zh". One Han character carries about a word,
an English word takes about five letters, so 0.3 already means Chinese carries most words."""

EN_MIN_LATIN_SHARE = 0.5
"""Latin letters among all letters needed for "en" (any Latin-script language counts)."""

MAX_KANA_HANGUL_SHARE = 0.05
"""More kana or hangul than this among the letters means Japanese or Korean: "other"."""

_LETTER = re.compile(r"[^\W\d_]+")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_KANA_HANGUL = re.compile(
    "[\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+"
)
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]+")
_ASCII_LETTER = re.compile("[A-Za-z]")


# Every byte but A-Z and a-z: what is left of the UTF-8 bytes are the ASCII letters.
_NOT_ASCII_LETTER_BYTES = bytes(b for b in range(256) if not (b < 128 and chr(b).isalpha()))


def _count(pattern: re.Pattern[str], text: str) -> int:
    return sum(map(len, pattern.findall(text)))


def detect_language(text: str) -> Language:
    """ "zh", "en" or "other", from the shares of Han, kana/hangul and Latin letters.

    Digits, punctuation and spaces are ignored; text without letters is "other". Latin-script
    languages other than English also come out as "en": this picks filters, it is not langid.
    """
    sample = text[:SAMPLE_CHARS]
    if sample.isascii():
        # Every ASCII letter is Latin, and there is no Han, kana or hangul.
        return "en" if _ASCII_LETTER.search(sample) else "other"
    # Counting letters (a Unicode category test per character) is the slow part. Without kana
    # or hangul, two cheap bounds on the letters usually decide: at least the ASCII letters
    # (all Latin), at most the non-space characters.
    if not _KANA_HANGUL.search(sample) and _LETTER.search(sample):
        han = _count(_HAN, sample)
        non_space = len("".join(sample.split()))
        if han >= ZH_MIN_HAN_SHARE * non_space:
            return "zh"
        ascii_letters = len(
            sample.encode("utf-8", "surrogatepass").translate(None, _NOT_ASCII_LETTER_BYTES)
        )
        if han < ZH_MIN_HAN_SHARE * ascii_letters and (
            ascii_letters >= EN_MIN_LATIN_SHARE * non_space
        ):
            return "en"
    return _guess_from_counts(sample)


def _guess_from_counts(sample: str) -> Language:
    """The definition: every share against the exact letter count."""
    letters = _count(_LETTER, sample)
    if letters == 0:
        return "other"
    if _count(_KANA_HANGUL, sample) > MAX_KANA_HANGUL_SHARE * letters:
        return "other"
    if _count(_HAN, sample) >= ZH_MIN_HAN_SHARE * letters:
        return "zh"
    if _count(_LATIN, sample) >= EN_MIN_LATIN_SHARE * letters:
        return "en"
    return "other"
