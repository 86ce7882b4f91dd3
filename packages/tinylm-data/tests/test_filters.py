"""Document filters: each check alone, its switch, and the order they run in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tinylm_data.filters import FILTERS, FilterConfig, apply_filters, explain_filters

ZH = "今天天气很好，我们一起去公园散步，然后在湖边吃了午饭，下午回家休息。"
EN = "The quick brown fox jumps over the lazy dog while the farmer watches from the porch."
ALL_OFF = FilterConfig(
    min_zh_words=0,
    min_en_words=0,
    max_chars=None,
    min_alnum_ratio=None,
    max_duplicate_line_fraction=None,
    max_word_chars=None,
    min_mean_word_length=None,
    max_mean_word_length=None,
    languages=None,
)


def test_good_documents_pass_the_defaults():
    assert apply_filters(ZH, "zh", FilterConfig()) is None
    assert apply_filters(EN, "en", FilterConfig()) is None
    assert apply_filters(ZH, "auto", FilterConfig()) is None


def test_filters_run_in_the_documented_order():
    assert list(FILTERS) == [
        "empty", "too_long", "language", "too_short_zh", "too_short_en", "mostly_symbols",
        "repeated_lines", "long_word", "mean_word_length",
    ]  # fmt: skip
    # Too long and too short at once: too_long is checked first.
    assert apply_filters("x" * 50, "en", FilterConfig(max_chars=10)) == "too_long"


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_cannot_be_switched_off(text):
    assert apply_filters(text, "en", ALL_OFF) == "empty"


def test_too_long():
    config = FilterConfig(max_chars=100)
    assert apply_filters(EN[:100], "en", config) is None
    assert explain_filters(EN + EN, "en", config) == (
        "too_long",
        f"{2 * len(EN)} chars > max_chars 100",
    )
    assert apply_filters("好" * 5_000_000, "zh", FilterConfig()) == "too_long"


def test_too_short_zh_counts_jieba_words_not_characters_or_marks():
    config = FilterConfig(min_zh_words=5)
    assert apply_filters("我们一起去公园。", "zh", config) == "too_short_zh"  # 我们/一起/去/公园
    assert apply_filters("我们一起去公园散步。", "zh", config) is None
    assert apply_filters("我们，，，！！！。。。", "zh", config) == "too_short_zh"
    assert (
        apply_filters("我们一起去公园。", "zh", config.model_copy(update={"min_zh_words": 0}))
        is None
    )


def test_too_short_zh_on_a_long_document_is_kept():
    assert apply_filters(ZH * 2000, "zh", FilterConfig()) is None


def test_too_short_en():
    config = FilterConfig(min_en_words=10)
    assert apply_filters("only five words are here", "en", config) == "too_short_en"
    assert apply_filters(EN, "en", config) is None
    # The English minimum does not apply to Chinese text and vice versa.
    assert apply_filters("only five words are here", "zh", FilterConfig(min_zh_words=0)) is None


def test_mostly_symbols():
    config = ALL_OFF.model_copy(update={"min_alnum_ratio": 0.5})
    assert apply_filters("| --- | --- | === | *** |  a", "en", config) == "mostly_symbols"
    assert apply_filters(EN, "en", config) is None
    assert apply_filters(ZH, "zh", config) is None  # full-width marks are not most of Chinese


def test_repeated_lines():
    config = ALL_OFF.model_copy(update={"max_duplicate_line_fraction": 0.3})
    spam = "\n".join(["Home", "Login", "Home", "Login", "Home", "real line"])
    reason, detail = explain_filters(spam, "en", config)
    assert reason == "repeated_lines" and "0.500" in detail
    assert apply_filters("a\nb\nc\nd\na", "en", config) is None  # 1 of 5 repeats
    assert apply_filters("one\n\n\n\ntwo", "en", config) is None  # blank lines do not count


def test_long_word_only_for_english():
    config = ALL_OFF.model_copy(update={"max_word_chars": 50})
    text = "see " + "x" * 51 + " here"
    assert apply_filters(text, "en", config) == "long_word"
    assert apply_filters(text, "zh", config) is None
    assert apply_filters("see " + "x" * 50, "en", config) is None


def test_mean_word_length_bounds():
    config = ALL_OFF.model_copy(update={"min_mean_word_length": 3, "max_mean_word_length": 10})
    assert apply_filters("a b c d e f g h i j", "en", config) == "mean_word_length"
    assert apply_filters("internationalisation " * 10, "en", config) == "mean_word_length"
    assert apply_filters(EN, "en", config) is None
    assert apply_filters("我 你 他", "zh", config) is None


def test_language_filter_keeps_configured_languages():
    config = ALL_OFF.model_copy(update={"languages": ("zh",)})
    assert apply_filters(EN, "en", config) == "language"
    assert apply_filters(EN, "auto", config) == "language"
    assert apply_filters(ZH, "zh", config) is None
    assert apply_filters("12345 67890", "auto", FilterConfig()) == "language"  # "other"
    assert apply_filters("12345 67890", "auto", ALL_OFF) is None


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="language must be"):
        apply_filters(EN, "fr", FilterConfig())


@pytest.mark.parametrize(
    "fields",
    [
        {"min_zh_words": -1},
        {"max_chars": 0},
        {"min_alnum_ratio": 1.5},
        {"max_duplicate_line_fraction": -0.1},
        {"min_mean_word_length": 10, "max_mean_word_length": 3},
        {"languages": ("fr",)},
        {"languages": ()},
        {"unknown_field": 1},
    ],
)
def test_config_rejects_bad_values(fields):
    with pytest.raises(ValidationError):
        FilterConfig(**fields)


def test_config_is_frozen_and_documented():
    config = FilterConfig()
    with pytest.raises(ValidationError):
        config.max_chars = 5
    for name, field in FilterConfig.model_fields.items():
        assert field.description, name
