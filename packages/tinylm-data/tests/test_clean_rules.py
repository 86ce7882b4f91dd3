"""Each cleaning rule on its own: what it must change, and what it must leave alone."""

from __future__ import annotations

import multiprocessing
import pickle

import pytest

from tinylm_data.clean import RULES
from tinylm_data.clean.chinese import t2s
from tinylm_data.clean.markup import brackets, html
from tinylm_data.clean.pii import email, ip, phone, qq, url
from tinylm_data.clean.text import emoji, punctuation_runs, unicode, whitespace


def test_every_rule_is_registered_with_a_description():
    assert set(RULES) == {
        "html", "emoji", "unicode", "t2s", "brackets", "url", "email", "ip", "qq", "phone",
        "punctuation_runs", "whitespace",
    }  # fmt: skip
    for name, rule in RULES.items():
        assert rule.name == name
        assert rule.description and "\n" not in rule.description
        assert pickle.loads(pickle.dumps(rule)).apply is rule.apply


# --- t2s ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("這是繁體中文", "这是繁体中文"),
        ("頭髮很長。", "头发很长。"),
        ("English 與中文", "English 与中文"),
        ("這是我の家，繁體字的句子很長很長", "这是我の家，繁体字的句子很长很长"),  # a stray の
        ("邁克爾・傑克遜", "迈克尔・杰克逊"),
    ],
)
def test_t2s_converts_traditional(before, after):
    assert t2s(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "这是简体中文，没有变化。",
        "plain English text",
        "",
        "《红楼梦》",
        "ウィキペディア専門家の項目を執筆しています",  # Japanese kanji are not converted
    ],
)
def test_t2s_leaves_simplified_and_other_text(text):
    assert t2s(text) == text


def _t2s_in_child(text: str) -> str:
    return t2s(text)


@pytest.mark.slow
def test_t2s_works_in_forked_workers_after_use_in_the_parent():
    assert t2s("體") == "体"  # the parent builds its converter first
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(_t2s_in_child, ["繁體", "學習"]) == ["繁体", "学习"]


# --- emoji -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("好的😀", "好的"),
        ("family 👨‍👩‍👧 here", "family  here"),  # a ZWJ sequence goes whole
        ("flag 🇨🇳!", "flag !"),
        ("keycap 1️⃣ one", "keycap  one"),
        ("thumbs 👍🏽", "thumbs "),  # with its skin tone
        ("heart ❤️ sun ☀", "heart  sun "),
    ],
)
def test_emoji_removed(before, after):
    assert emoji(before) == after


@pytest.mark.parametrize(
    "text", ["© 2020 ACME®, Widget™", "中文，标点。“引号”《书名》", "1 2 3 # * 10", "ℵ ∑ ★ ☆ →", ""]
)
def test_emoji_keeps_text_symbols(text):
    assert emoji(text) == text


# --- brackets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("「你好」", "你好"),
        ("【新华社】北京电", "新华社北京电"),
        ("『外』「内」", "外内"),
        ("see <https://x.org> now", "see https://x.org now"),
        ("<<nested>>", "nested"),
        ("empty <> pair", "empty  pair"),
    ],
)
def test_brackets_unwrapped(before, after):
    assert brackets(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "《三国演义》是一部小说",  # book-title marks carry meaning
        "if a < b and c > d then",
        "x << 2 >> 1",
        "3 < 4",
        "〈论语〉",
    ],
)
def test_brackets_leave_meaningful_marks(text):
    assert brackets(text) == text


# --- punctuation_runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("太好了！！！！", "太好了！"),
        ("what??", "what?"),
        ("wow!!!", "wow!"),
        ("嗯，，，好", "嗯，好"),
        ("结束。。。", "结束。"),
        ("wait.....", "wait..."),
        ("然后………………", "然后……"),
    ],
)
def test_punctuation_runs_collapsed(before, after):
    assert punctuation_runs(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "and so...",
        "然后……",
        "一个…",
        "std::vector<int>",
        "for (;;) {}",
        "a,,b,,c",
        "-----",
        "====",
        "?!?!",
        "../path",
    ],
)
def test_punctuation_runs_keep_ellipses_and_structure(text):
    assert punctuation_runs(text) == text


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("mail john.doe+tag@example.co.uk today", "mail  today"),
        ("邮箱abc_123@qq.com联系", "邮箱联系"),
        ("(a@b.io).", "()."),
    ],
)
def test_email_removed(before, after):
    assert email(before) == after


@pytest.mark.parametrize("text", ["user @ example", "@handle on twitter", "a@b", "x@y.1"])
def test_email_leaves_non_addresses(text):
    assert email(text) == text


def test_email_placeholder():
    assert email("to a@b.cn now", placeholder="[EMAIL]") == "to [EMAIL] now"


def test_email_is_linear_on_a_long_run_without_at():
    # A quadratic pattern would take minutes here; ours scans the run once.
    blob = "a" * 200_000 + "@"
    assert email(blob) == blob


# --- ip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("host 192.168.1.1 up", "host  up"),
        ("服务器IP：10.0.0.255。", "服务器IP：。"),
        ("at 8.8.8.8.", "at ."),
        ("v6 2001:db8:85a3::8a2e:370:7334 ok", "v6  ok"),
        ("link fe80::1 end", "link  end"),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329", "full "),
        ("mapped ::ffff:192.0.2.128 x", "mapped  x"),
    ],
)
def test_ip_removed(before, after):
    assert ip(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "at 12:30:45 today",
        "version 1.2.3",
        "256.1.1.1",
        "1.2.3.4.5",
        "std::vector and Foo::Bar",
        "MAC 00:1A:2B:3C:4D:5E",
        "ratio 3:2:1",
        "3.14159",
    ],
)
def test_ip_leaves_other_numbers(text):
    assert ip(text) == text


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("电话13812345678。", "电话。"),
        ("call +86 138-1234-5678 now", "call  now"),
        ("手机：(+86)13912345678", "手机："),
        ("tel 138 1234 5678", "tel "),
        ("座机010-12345678转", "座机转"),
        ("(0755)1234567 office", " office"),
        ("+86 10 87654321", ""),
        ("US +1 (555) 123-4567.", "US ."),
        ("UK +44 20 7946 0958", "UK "),
        ("call (555) 123-4567", "call "),
        ("call 555-123-4567", "call "),
    ],
)
def test_phone_removed(before, after):
    assert phone(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "in 2019-07-17 at 10:00",
        "population 1234567890123",  # too long for a mobile, no separators
        "ID 110101199003071234",
        "+5 points, +10 more",
        "12345678",
        "page 138",
        "ISBN 978-3-16-148410-0",
        "23812345678",  # not 1[3-9]
    ],
)
def test_phone_leaves_other_numbers(text):
    assert phone(text) == text


# --- qq ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("加我QQ：12345678哦", "加我哦"),
        ("qq 12345 thanks", " thanks"),
        ("QQ号：987654321", ""),
        ("扣扣123456", ""),
        ("QQ群 12345678", ""),
        ("联系qq:10001", "联系"),
    ],
)
def test_qq_removed(before, after):
    assert qq(before) == after


@pytest.mark.parametrize(
    "text", ["QQ音乐很好听", "QQ 1234", "number 12345678", "QQQ", "qq 0123456", "FAQQ 12345"]
)
def test_qq_needs_cue_and_number(text):
    assert qq(text) == text


# --- html --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("<p>Hello <b>world</b></p>", "\nHello world\n"),
        ("a<br/>b", "a\nb"),
        ('<a href="x.html" class=y>link</a>', "link"),
        ("x<script type='t'>var a = 1 < 2;</script>y", "xy"),
        ("x<STYLE>p{color:red}</STYLE>y", "xy"),
        ("x<!-- note -->y", "xy"),
        ("x<script>never closed", "x"),
        ("<!DOCTYPE html><html>t</html>", "\nt\n"),
        ("Fish &amp; chips &lt;3 &#x4e2d;&#25991; &nbsp;", "Fish & chips <3 中文 \xa0"),
        ("注：&lt;BR&gt;首次参与&lt;/small&gt;", "注：\n首次参与"),  # escaped markup residue
    ],
)
def test_html_to_text(before, after):
    assert html(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "if x<y and z>w then",  # y is no HTML element ("a<b and c>d" would lose "b and c")
        "placeholder <EMAIL> stays",
        "x << 2",
        "AT&T and R&D",
        "纯文本，没有标签。",
        "<notatag>",
    ],
)
def test_html_leaves_text_that_is_not_markup(text):
    assert html(text) == text


# --- url ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("see https://example.com/a?b=1&c=2#x now", "see  now"),
        ("see http://example.com/page.", "see ."),
        ("访问http://x.cn/path了解", "访问了解"),
        ("go www.baidu.com，好", "go ，好"),
        ("(http://a.org/x)", "()"),
        ("FTP://files.example.org/f.zip", ""),
    ],
)
def test_url_removed(before, after):
    assert url(before) == after


@pytest.mark.parametrize(
    "text", ["example.com is a domain", "http is a protocol", "mail@www.example.com", "awww.cute"]
)
def test_url_leaves_text_without_urls(text):
    assert url(text) == text


# --- unicode -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("ＡＢＣ１２３＠ｑｑ．ｃｏｍ", "ABC123@qq.com"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("soft\u00adhyphen", "softhyphen"),
        ("bell\x07 null\x00", "bell null"),
        ("a\r\nb\rc\x0cd\u2028e", "a\nb\nc\nd\ne"),
        ("non\xa0breaking\u3000space", "non breaking space"),
        ("e\u0301", "é"),
        ("lone \ud800 surrogate", "lone  surrogate"),
    ],
)
def test_unicode_normalises(before, after):
    assert unicode(before) == after


@pytest.mark.parametrize(
    "text",
    [
        "你好，世界！真的？是：对；（括号）～然后……",  # Chinese full-width punctuation stays
        "tabs\tand\nnewlines stay",
        "“引号”、《书名》。",
        "plain ascii",
    ],
)
def test_unicode_keeps_chinese_punctuation_tabs_and_newlines(text):
    assert unicode(text) == text


# --- whitespace --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("  a   b\t\tc  ", "a b c"),
        ("line one  \n   line two", "line one\nline two"),
        ("p1\n\n\n\n\np2", "p1\n\np2"),
        ("p1\n \n\t\n  \np2", "p1\n\np2"),
        ("\n\n  text  \n\n", "text"),
        ("   ", ""),
    ],
)
def test_whitespace_tidied(before, after):
    assert whitespace(before) == after


@pytest.mark.parametrize("text", ["one line", "p1\n\np2", "中文 English 混排", "a\nb\nc"])
def test_whitespace_leaves_tidy_text(text):
    assert whitespace(text) == text
