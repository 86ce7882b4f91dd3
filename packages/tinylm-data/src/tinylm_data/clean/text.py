"""Character-level rules: emoji, Unicode normalisation, punctuation runs, whitespace."""

from __future__ import annotations

import re
import unicodedata

import emoji as _emoji

from ..textnorm import CHINESE_FULL_WIDTH_PUNCTUATION, fold_chinese_punctuation

# --- emoji -------------------------------------------------------------------------------------

# `emoji.replace_emoji` walks the string in Python (about 2 MB/s), so it only sees the runs of
# characters that can belong to an emoji sequence; everything else is skipped by one C-level scan.
_EMOJI_CHARS = {c for sequence in _emoji.EMOJI_DATA for c in sequence}
_EMOJI_CHARS |= {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}
_EMOJI_CHARS |= {chr(c) for c in range(0x1F3FB, 0x1F400)}  # skin tones
_EMOJI_CHARS |= {chr(c) for c in range(0xE0020, 0xE0080)}  # tag sequences (subdivision flags)
_KEYCAP_BASES = "#*0123456789"
_EMOJI_CHARS -= set(_KEYCAP_BASES)


def _char_class(chars: set[str]) -> str:
    # Contiguous code points as ranges: `re` tests a class item by item outside the BMP, and
    # 1,400 single characters made the scan 50x slower than 150 ranges.
    points = sorted(map(ord, chars))
    spans: list[list[int]] = [[points[0], points[0]]]
    for point in points[1:]:
        if point == spans[-1][1] + 1:
            spans[-1][1] = point
        else:
            spans.append([point, point])
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in spans
    )


_EMOJI_RUN = re.compile(f"[{re.escape(_KEYCAP_BASES)}]?[{_char_class(_EMOJI_CHARS)}]+")
# A fast first look (about 1 GB/s): any BMP emoji character, or any character outside the BMP.
_MAYBE_EMOJI = re.compile(
    f"[{_char_class({c for c in _EMOJI_CHARS if ord(c) <= 0xFFFF})}\U00010000-\U0010ffff]"
)
# Sequence parts that mean nothing once the emoji around them is gone.
_EMOJI_LEFTOVERS = str.maketrans(
    dict.fromkeys(
        [0x200D, 0xFE0E, 0xFE0F, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)]
    )
)
# Signs that the emoji list includes but that are ordinary text in a document.
_KEEP_AS_TEXT = frozenset("©®™")


def _replace_one_emoji(chars: str, _data: dict) -> str:
    base = chars.rstrip("\ufe0e\ufe0f")
    return base if base in _KEEP_AS_TEXT else ""


def _strip_emoji_run(match: re.Match[str]) -> str:
    run = match.group()
    if run in _KEEP_AS_TEXT:
        return run
    return _emoji.replace_emoji(run, replace=_replace_one_emoji).translate(_EMOJI_LEFTOVERS)


def emoji(text: str) -> str:
    """Remove emoji (the `emoji` package's list), keeping ©, ® and ™."""
    if text.isascii() or not _MAYBE_EMOJI.search(text):
        return text
    return _EMOJI_RUN.sub(_strip_emoji_run, text)


# --- unicode -----------------------------------------------------------------------------------

# Every kind of line break becomes "\n".
_LINE_BREAK_CHARS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS = re.compile(f"\r\n|[{_LINE_BREAK_CHARS}]")
# C0/C1 controls except \t and \n, zero-width and bidi format characters, soft hyphen, BOM,
# interlinear annotation marks, and lone surrogates (they cannot be written as UTF-8).
_INVISIBLE_CHARS = (
    "\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
)
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]+")
# One scan tells whether either substitution has anything to do.
_BREAK_OR_INVISIBLE = re.compile(f"[{_LINE_BREAK_CHARS}{_INVISIBLE_CHARS}]")
# NFKC folds full-width forms to ASCII. That is wanted for letters, digits and symbols
# (Ａ１＠ -> A1@, so the PII rules see them) but not for the punctuation of Chinese prose:
# ，！？：；（）～ would become ASCII and "……" would become "......". These stay as they are.
_KEEP_FULL_WIDTH = CHINESE_FULL_WIDTH_PUNCTUATION
_KEPT_SPLIT = re.compile("([" + _KEEP_FULL_WIDTH + "]+)")


def _nfkc(text: str) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    folded = fold_chinese_punctuation(text)
    if folded is text:
        return unicodedata.normalize("NFKC", text)
    if unicodedata.is_normalized("NFKC", folded):
        return text  # every piece between the kept marks is NFKC already
    parts = _KEPT_SPLIT.split(text)
    # Odd positions are the kept punctuation runs.
    return "".join(
        part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts)
    )


def unicode(text: str) -> str:
    """NFKC (keeping Chinese full-width punctuation), drop control and zero-width characters."""
    if _BREAK_OR_INVISIBLE.search(text):
        text = _LINE_BREAKS.sub("\n", text)
        # Removal comes before NFKC: a zero-width character between "e" and a combining accent
        # would otherwise stop NFKC from composing them, and a second pass would change the text.
        text = _INVISIBLE.sub("", text)
    return text if text.isascii() else _nfkc(text)


# --- punctuation runs --------------------------------------------------------------------------

# Runs of the same sentence mark collapse to one: "！！！" -> "！", "??" -> "?", "，，" -> "，".
# ASCII , ; : ~ - = * are left alone: "::" (C++), ";;" (for loops), ",," (CSV), "--" and "=="
# (rules, markdown) are structure, not emphasis.
_REPEATED_MARKS = "!?！？，。、；：～"
_REPEATED_MARK = re.compile(f"([{_REPEATED_MARKS}])\\1+")
# A run exists only where a mark follows itself: substring tests find that faster than the scan.
_DOUBLED_MARKS = tuple(mark * 2 for mark in _REPEATED_MARKS)
# Ellipses are kept but not stretched: four or more dots become "...", three or more "…"
# become the Chinese ellipsis "……".
_LONG_DOTS = re.compile(r"\.{4,}")
_LONG_ELLIPSIS = re.compile(r"…{3,}")


def punctuation_runs(text: str) -> str:
    """Collapse runs of one repeated punctuation mark; keep "..." and "……"."""
    if any(doubled in text for doubled in _DOUBLED_MARKS):
        text = _REPEATED_MARK.sub(r"\1", text)
    if "...." in text:
        text = _LONG_DOTS.sub("...", text)
    if "………" in text:
        text = _LONG_ELLIPSIS.sub("……", text)
    return text


# --- whitespace --------------------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n{3,}")


def whitespace(text: str) -> str:
    """Collapse spaces and tabs, strip every line, keep at most one blank line, strip the text."""
    # str.split() is C code and 3-6x faster than the equivalent regex substitutions; it splits
    # on exactly the characters `\s` matches, "\n" being handled by the outer split.
    text = "\n".join([" ".join(line.split()) for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip("\n")
