"""Each fast path of the stage-1 steps equals its simple definition, kept here as the oracle."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinylm_data.clean import RULES
from tinylm_data.clean.pii import _QQ, _remove
from tinylm_data.filters import FilterConfig, checks, detect_language
from tinylm_data.filters.language import SAMPLE_CHARS
from tinylm_data.textnorm import (
    CHINESE_FULL_WIDTH_PUNCTUATION,
    alnum_count,
    count_zh_words,
    normalise,
    zh_words_lower_bound,
)

# Pieces that reach each branch: pure ASCII, the kept full-width marks next to combining
# accents (which NFKC would compose), kana and hangul, Han including unassigned code points
# of the Han ranges, Latin-1 signs that are not letters, digits of other scripts, spaces.
_PIECES = [
    "The quick fox.", "a_b", "x--y", "  ", "\t", "\n", "\u3000", "\u00a0", "\u2028", "\x85",
    "\r\n", "\x00", "\u200b", "\ufeff", "e\u0301", "\u0301", "，\u0301", "…", "……", "～",
    "（注）", "今天天气很好", "繁體", "カタカナ", "ひらがな", "한국어", "\u9fff", "\ufa6e",
    "\U0002a6df", "\U0002a6e0", "×", "÷", "é", "ß", "ﬁ", "Ａ１＠", "①", "½", "٣", "𝟘",
    "QQ：12345", "qq 123456", "扣扣 123456", "企鹅号：888888", "Qq", "1.2.3.4", "😀",
    *CHINESE_FULL_WIDTH_PUNCTUATION,
]  # fmt: skip
_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
        st.text(st.characters(max_codepoint=0x7F), max_size=12),
        st.sampled_from(_PIECES),
    ),
    max_size=30,
).map("".join)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_NOT_WORD_CHAR = re.compile(r"[\W_]+")
_ALNUM_RUN = re.compile(r"[^\W_]+")


def _count(pattern: str, text: str) -> int:
    return sum(map(len, re.findall(pattern, text)))


@_SETTINGS
@given(_TEXT)
@example("e，\u0301")  # the mark keeps the accent from composing with the e
@example("Ａ…\u0301！")
def test_normalise_is_nfkc_casefold_without_marks(text):
    expected = _NOT_WORD_CHAR.sub("", unicodedata.normalize("NFKC", text).casefold())
    assert normalise(text) == expected


@_SETTINGS
@given(_TEXT)
def test_alnum_count_counts_letters_digits_and_han(text):
    assert alnum_count(text) == _count(r"[^\W_]+", text)


def _language_by_definition(text: str) -> str:
    sample = text[:SAMPLE_CHARS]
    letters = _count(r"[^\W\d_]+", sample)
    if letters == 0:
        return "other"
    kana_hangul = (
        "[\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+"
    )
    if _count(kana_hangul, sample) > 0.05 * letters:
        return "other"
    if _count("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+", sample) >= (
        0.3 * letters
    ):
        return "zh"
    if _count("[A-Za-z\u00c0-\u024f]+", sample) >= 0.5 * letters:
        return "en"
    return "other"


@_SETTINGS
@given(_TEXT)
def test_detect_language_equals_the_share_definition(text):
    assert detect_language(text) == _language_by_definition(text)


def test_detect_language_bounds_on_texts_near_the_thresholds():
    # Digits and symbols between the bounds force the exact count.
    for text in (
        "中文" + "1" * 7,
        "abc" + "%" * 4,
        "abcd" + "中" * 2,
        "ab×÷cd",
        "中中中" + "\ufa6e" * 10,
    ):
        assert detect_language(text) == _language_by_definition(text), text


def _doc(text: str, config: FilterConfig) -> checks._Doc:
    return checks._Doc(text, "en", config)


@_SETTINGS
@given(_TEXT, st.floats(0.05, 1.0))
def test_mostly_symbols_equals_the_ratio_definition(text, minimum):
    config = FilterConfig(min_alnum_ratio=minimum)
    non_space = len(text) - _count(r"\s+", text)
    expected = None
    if non_space:
        ratio = _count(r"[^\W_]+", text) / non_space
        if ratio < minimum:
            expected = f"alnum ratio {ratio:.3f} < min_alnum_ratio {minimum}"
    assert checks.mostly_symbols(_doc(text, config)) == expected


@_SETTINGS
@given(_TEXT)
def test_english_words_and_longest_word_equal_their_definitions(text):
    doc = _doc(text, FilterConfig(max_word_chars=3))
    assert doc.en_words == [w for w in text.split() if _ALNUM_RUN.search(w)]
    longest = max(map(len, text.split()), default=0)
    assert checks.long_word(doc) == (
        f"a {longest}-char word > max_word_chars 3" if longest > 3 else None
    )


@_SETTINGS
@given(_TEXT, st.integers(1, 4))
def test_enough_word_chars_counts_to_sixteen_per_word(text, minimum):
    needed = 16 * minimum
    assert checks._enough_word_chars(text * 8, minimum) == (_count(r"[^\W_]", text * 8) >= needed)


def _unicode_by_definition(text: str) -> str:
    text = re.sub("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]", "\n", text)
    text = re.sub(
        "[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
        "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]+",
        "",
        text,
    )
    parts = re.split(f"([{CHINESE_FULL_WIDTH_PUNCTUATION}]+)", text)
    return "".join(
        part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts)
    )


@_SETTINGS
@given(_TEXT)
def test_unicode_rule_equals_split_nfkc(text):
    assert RULES["unicode"](text) == _unicode_by_definition(text)


@_SETTINGS
@given(_TEXT)
def test_qq_rule_equals_the_regex_alone(text):
    assert RULES["qq"](text) == _remove(_QQ, "", text)


@_SETTINGS
@given(_TEXT)
def test_bracket_and_punctuation_rules_equal_their_regexes(text):
    text += "".join(["【x】", "「", "!!", "？？", "、、", "……", "....", "<b>"][: len(text) % 9])
    unwrapped = re.sub("[【】「」『』]+", "", text)
    for _ in range(16):
        unwrapped, count = re.subn(
            r"(?<!<)<++(?:(?![\s>])([^<>\n]{0,200}?)(?<![\s<>]))?>++", r"\1", unwrapped
        )
        if not count:
            break
    assert RULES["brackets"](text) == unwrapped
    collapsed = re.sub(r"([!?！？，。、；：～])\1+", r"\1", text)
    collapsed = re.sub(r"…{3,}", "……", re.sub(r"\.{4,}", "...", collapsed))
    assert RULES["punctuation_runs"](text) == collapsed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_zh_words_lower_bound_never_exceeds_the_jieba_count(text):
    assert zh_words_lower_bound(text) <= count_zh_words(text, at_least=10**6)
