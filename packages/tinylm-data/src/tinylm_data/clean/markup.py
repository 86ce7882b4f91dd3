"""Markup rules: HTML to text, and unwrapping of decorative brackets."""

from __future__ import annotations

import html as _html
import re

# Real HTML element names only, so prose such as "if a<b and c>d" or a placeholder like
# "<EMAIL>" is not mistaken for a tag.
_HTML_ELEMENTS = [
    "a",
    "abbr",
    "acronym",
    "address",
    "applet",
    "area",
    "article",
    "aside",
    "audio",
    "b",
    "base",
    "basefont",
    "bdi",
    "bdo",
    "big",
    "blink",
    "blockquote",
    "body",
    "br",
    "button",
    "canvas",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "datalist",
    "dd",
    "del",
    "details",
    "dfn",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "legend",
    "li",
    "link",
    "main",
    "map",
    "mark",
    "marquee",
    "menu",
    "meta",
    "meter",
    "nav",
    "nobr",
    "noframes",
    "noscript",
    "object",
    "ol",
    "optgroup",
    "option",
    "output",
    "p",
    "param",
    "picture",
    "pre",
    "progress",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "script",
    "search",
    "section",
    "select",
    "small",
    "source",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "svg",
    "table",
    "tbody",
    "td",
    "template",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "time",
    "title",
    "tr",
    "track",
    "tt",
    "u",
    "ul",
    "var",
    "video",
    "wbr",
    "math",
]

# Tags that separate blocks of text become a line break; inline tags vanish.
_BLOCK_ELEMENTS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    ]
)

# Contents dropped with their tags. An unclosed one runs to the end of the text: the lazy
# scan fails once and the `.*\Z` branch consumes the rest, so the cost stays linear.
_DROPPED_BLOCK = re.compile(
    r"<(script|style|noscript|template)\b[^>]*>(?:.*?</\1\s*>|.*\Z)"
    r"|<!--(?:.*?-->|.*\Z)"
    r"|<!\[CDATA\[(?:.*?\]\]>|.*\Z)",
    re.IGNORECASE | re.DOTALL,
)
_DECLARATION = re.compile(r"<![A-Za-z][^<>]*>|<\?[^<>]*\?>")
_TAG = re.compile(
    r"</?(" + "|".join(sorted(_HTML_ELEMENTS, key=len, reverse=True)) + r")"
    r"(?=[\s/>])(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_TAG_HINT = re.compile(r"<[/!?A-Za-z]")


def _tag_replacement(match: re.Match[str]) -> str:
    return "\n" if match.group(1).lower() in _BLOCK_ELEMENTS else ""


def html(text: str) -> str:
    """Remove HTML tags (and script/style/comment contents), decode entities."""
    if _TAG_HINT.search(text):
        text = _DROPPED_BLOCK.sub("", text)
        text = _DECLARATION.sub("", text)
        text = _TAG.sub(_tag_replacement, text)
    if "&" in text:
        decoded = _html.unescape(text)
        # Escaped markup ("&lt;br&gt;", common in wiki dumps) decodes into tags: drop them too.
        if decoded.count("<") > text.count("<"):
            decoded = _TAG.sub(_tag_replacement, decoded)
        text = decoded
    return text


# Decorative CJK brackets: the characters go, the text inside stays. 《》 (book titles) and
# 〈〉 carry meaning and are kept.
_CJK_BRACKET_CHARS = "【】「」『』"
_CJK_BRACKETS = re.compile(f"[{_CJK_BRACKET_CHARS}]+")
# An ASCII <...> pair whose inside does not start or end with a space, so comparisons such as
# "a < b and c > d" and shifts such as "x << 2" survive. Bounded, single-line; doubled
# brackets ("<<x>>") unwrap in one go.
# Runs of "<" are entered only at their start and taken whole (possessive), so a long run
# costs one scan and not one per position.
_ANGLE_PAIR = re.compile(r"(?<!<)<++(?:(?![\s>])([^<>\n]{0,200}?)(?<![\s<>]))?>++")
# Interleaved nesting ("<a<b>c>") unwraps from the inside, one level per pass; the cap keeps
# an adversarial text linear. Nesting deeper than this is left partly wrapped.
_MAX_ANGLE_PASSES = 16


def brackets(text: str) -> str:
    """Unwrap 【】「」『』 and <...>, keeping the inner text."""
    if any(bracket in text for bracket in _CJK_BRACKET_CHARS):  # faster than the regex scan
        text = _CJK_BRACKETS.sub("", text)
    if "<" in text:
        for _ in range(_MAX_ANGLE_PASSES):
            text, count = _ANGLE_PAIR.subn(r"\1", text)
            if not count:
                break
    return text
