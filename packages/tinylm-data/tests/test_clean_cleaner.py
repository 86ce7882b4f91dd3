"""The Cleaner: validation, canonical order, change reporting, placeholders, pickling."""

from __future__ import annotations

import pickle

import pytest

from tinylm_data.clean import CANONICAL_ORDER, DEFAULT_RULES, RULES, Cleaner, default_rules


def test_unknown_rule_names_are_listed_with_the_known_ones():
    with pytest.raises(ValueError, match=r"'nope'.*known rules: html, emoji"):
        Cleaner(["html", "nope"])


def test_a_bare_string_is_refused():
    with pytest.raises(TypeError):
        Cleaner("html")


def test_rules_run_in_canonical_order_whatever_the_given_order():
    cleaner = Cleaner(["whitespace", "email", "html", "t2s"])
    assert cleaner.rule_names == ("html", "t2s", "email", "whitespace")
    assert CANONICAL_ORDER.index("html") < CANONICAL_ORDER.index("brackets")
    assert CANONICAL_ORDER[-1] == "whitespace"


def test_order_matters_and_the_canonical_one_is_right():
    # html before brackets: the tag goes, "<...>" is not unwrapped into "b".
    text = "<b>粗體</b> 【注】 mail: <x@y.com>  "
    assert Cleaner(["brackets", "html", "email", "t2s", "whitespace"])(text) == (
        "粗体 注 mail:",
        ("html", "t2s", "brackets", "email", "whitespace"),
    )


def test_reports_only_the_rules_that_changed_the_text():
    cleaner = Cleaner(list(RULES))
    assert cleaner("A clean sentence, nothing to do.") == ("A clean sentence, nothing to do.", ())
    assert cleaner("hi  there！！") == ("hi there！", ("punctuation_runs", "whitespace"))


def test_pii_placeholder_applies_to_pii_rules_only():
    cleaner = Cleaner(["email", "phone", "qq", "url", "ip", "whitespace"], pii_placeholder="<PII>")
    text, changed = cleaner("mail a@b.cn, call 13812345678, QQ：12345678, http://x.cn 1.2.3.4")
    assert text == "mail <PII>, call <PII>, <PII>, <PII> <PII>"
    assert changed == ("url", "email", "ip", "qq", "phone")


def test_cleaner_pickles_and_behaves_the_same():
    cleaner = Cleaner(["html", "t2s", "email"], pii_placeholder="[X]")
    copy = pickle.loads(pickle.dumps(cleaner))
    text = "<i>繁體</i> a@b.com"
    assert copy(text) == cleaner(text) == ("繁体 [X]", ("html", "t2s", "email"))


def test_default_rules_per_language():
    assert set(default_rules("zh")) == set(RULES)
    assert "t2s" not in default_rules("en") and "html" in default_rules("en")
    assert default_rules("auto") == DEFAULT_RULES["auto"]
    for names in DEFAULT_RULES.values():
        Cleaner(names)
    with pytest.raises(ValueError, match="no default cleaning rules"):
        default_rules("fr")
