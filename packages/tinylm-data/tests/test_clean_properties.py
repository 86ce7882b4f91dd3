"""Properties of the rules on arbitrary text (surrogate-free unicode, plus a bilingual mix)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinylm_data.clean import CANONICAL_ORDER, RULES, Cleaner
from tinylm_data.filters import FilterConfig, apply_filters, detect_language
from tinylm_data.textnorm import dedup_key, normalise, words

# Fragments that trigger the rules, mixed with random characters, so the properties are
# exercised on text the rules actually change and not only on noise.
_FRAGMENTS = [
    "<p>", "</p>", "<script>x</script>", "&amp;", "&lt;b&gt;", "😀", "👨‍👩‍👧", "1️⃣", "©",
    "ＡＢＣ", "\u200b", "\r\n", "\t", "  ", "\n\n\n", "繁體", "「", "」", "【", "】", "<", ">",
    "http://a.cn/x", "www.b.com", "a@b.cn", "1.2.3.4", "fe80::1", "13812345678", "010-12345678",
    "+1 555 123 4567", "QQ：12345", "！！", "...", "....", "……", "………", "。。", "，", "中文", "English",
]  # fmt: skip
_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
        st.sampled_from(_FRAGMENTS),
    ),
    max_size=25,
).map("".join)

# html is not idempotent on purpose: "&amp;lt;" decodes one level per pass, as a browser does.
_IDEMPOTENT = [name for name in CANONICAL_ORDER if name != "html"]
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_TEXT)
def test_every_rule_returns_a_string_and_never_crashes(text):
    for rule in RULES.values():
        assert isinstance(rule(text), str)


@_SETTINGS
@given(_TEXT)
def test_rules_are_idempotent(text):
    for name in _IDEMPOTENT:
        once = RULES[name](text)
        assert RULES[name](once) == once, name


@_SETTINGS
@given(_TEXT)
def test_whitespace_output_is_tidy(text):
    out = RULES["whitespace"](text)
    assert "  " not in out
    assert "\t" not in out
    assert "\n\n\n" not in out
    assert out == out.strip()
    assert all(line == line.strip() for line in out.split("\n"))


@_SETTINGS
@given(_TEXT)
def test_unicode_output_has_no_invisible_characters(text):
    out = RULES["unicode"](text)
    assert "\r" not in out
    assert not any(c in out for c in "\u200b\u200c\u200d\ufeff\x00\x7f")
    out.encode("utf-8")  # no lone surrogates left


@_SETTINGS
@given(_TEXT, st.permutations(CANONICAL_ORDER), st.integers(1, len(CANONICAL_ORDER)))
def test_cleaner_does_not_depend_on_the_order_names_are_given(text, names, size):
    chosen = list(names[:size])
    assert Cleaner(chosen)(text) == Cleaner(sorted(chosen))(text)


@_SETTINGS
@given(_TEXT)
def test_cleaner_reports_exactly_the_rules_that_changed_the_text(text):
    cleaner = Cleaner(CANONICAL_ORDER)
    result, changed = cleaner(text)
    expected = []
    for name in CANONICAL_ORDER:
        after = RULES[name](text)
        if after != text:
            expected.append(name)
        text = after
    assert (result, list(changed)) == (text, expected)


@_SETTINGS
@given(_TEXT)
def test_full_cleaning_then_filters_and_keys_never_crash(text):
    cleaned, _ = Cleaner(CANONICAL_ORDER)(text)
    cleaned.encode("utf-8")
    for language in ("zh", "en", "other", "auto"):
        reason = apply_filters(cleaned, language, FilterConfig())
        assert reason is None or isinstance(reason, str)
    assert detect_language(cleaned) in ("zh", "en", "other")
    assert len(dedup_key(cleaned)) == 16
    assert normalise(normalise(cleaned)) == normalise(cleaned)
    for token in itertools.chain(words(cleaned, "zh"), words(cleaned, "en")):
        assert token and not token.isspace()
