"""The registry of named cleaning rules and the one order they run in.

Canonical order, and why:

1. ``html``             first: tags, script bodies and entities are markup, and the later rules
                        would otherwise see "<p>" as brackets or "&#64;" as text.
2. ``emoji``            before ``unicode``, which would remove the zero-width joiners inside
                        emoji sequences and fold some emoji (ℹ -> i) into letters.
3. ``unicode``          NFKC and invisible characters next, so full-width digits, letters and
                        "＠" and zero-width characters cannot hide PII from the rules below.
4. ``t2s``              traditional -> simplified on normalised text.
5. ``brackets``         before the PII rules so "<a@b.cn>" or "【13812345678】" are unwrapped
                        and then removed whole; after ``html`` so real tags are already gone.
6. ``url``              before ``email`` and ``ip``: a URL may contain "user@host" or an IP.
7. ``email``, 8. ``ip``
9. ``qq``               before ``phone``, so "QQ：13812345678" loses its cue with the number.
10. ``phone``
11. ``punctuation_runs`` after the removals, which can leave marks next to each other.
12. ``whitespace``      last: it tidies the gaps every other rule leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import chinese, markup, pii, text


@dataclass(frozen=True, slots=True)
class Rule:
    """A named cleaning rule: a pure `str -> str` function and what it does.

    `replaces_pii` rules accept a keyword `placeholder` (default ""), the text put where a
    match was removed.
    """

    name: str
    apply: Callable[..., str]
    description: str
    replaces_pii: bool = False

    def __call__(self, value: str) -> str:
        return self.apply(value)


def _rule(apply: Callable[..., str], description: str, *, replaces_pii: bool = False) -> Rule:
    return Rule(apply.__name__, apply, description, replaces_pii)


_ORDERED_RULES = (
    _rule(markup.html, "remove HTML tags, script/style/comment bodies; decode entities"),
    _rule(text.emoji, "remove emoji (the emoji package's list), keeping © ® ™"),
    _rule(
        text.unicode,
        "NFKC except Chinese full-width punctuation ，！？：；（）～…; drop control/zero-width chars",
    ),
    _rule(chinese.t2s, "traditional to simplified Chinese (OpenCC t2s)"),
    _rule(markup.brackets, "unwrap 【】「」『』 and <...>, keeping the inner text"),
    _rule(pii.url, "remove http(s)/ftp:// and www. URLs", replaces_pii=True),
    _rule(pii.email, "remove e-mail addresses", replaces_pii=True),
    _rule(pii.ip, "remove IPv4 and IPv6 addresses", replaces_pii=True),
    _rule(pii.qq, "remove QQ numbers with their cue (QQ：12345678)", replaces_pii=True),
    _rule(
        pii.phone,
        "remove phone numbers: CN mobile/landline, +international, North American",
        replaces_pii=True,
    ),
    _rule(
        text.punctuation_runs, "collapse runs of one repeated mark (！！！ -> ！); keep ... and ……"
    ),
    _rule(
        text.whitespace,
        "collapse spaces/tabs, strip lines, at most one blank line, strip the text",
    ),
)

RULES: dict[str, Rule] = {rule.name: rule for rule in _ORDERED_RULES}
"""Every rule by name."""

CANONICAL_ORDER: tuple[str, ...] = tuple(RULES)
"""The order rules run in, whatever order they are configured in (see the module docstring)."""

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "zh": CANONICAL_ORDER,
    # English sources: no t2s (nothing to convert), no QQ cue, and no bracket unwrapping,
    # whose <...> pairs are more often meaningful in English technical text.
    "en": (
        "html",
        "emoji",
        "unicode",
        "url",
        "email",
        "ip",
        "phone",
        "punctuation_runs",
        "whitespace",
    ),
    "auto": CANONICAL_ORDER,
}
"""The rules a source gets when its config names none, by the source's language."""


def default_rules(language: str) -> tuple[str, ...]:
    """The default rule names for a source language ("zh", "en" or "auto")."""
    try:
        return DEFAULT_RULES[language]
    except KeyError:
        raise ValueError(
            f"no default cleaning rules for language {language!r}; "
            f"known: {', '.join(DEFAULT_RULES)}"
        ) from None


def ordered(names: Sequence[str]) -> tuple[str, ...]:
    """`names` in canonical order, without repeats; unknown names raise ValueError."""
    unknown = sorted({name for name in names if name not in RULES})
    if unknown:
        raise ValueError(
            f"unknown cleaning rule(s) {', '.join(map(repr, unknown))}; "
            f"known rules: {', '.join(CANONICAL_ORDER)}"
        )
    wanted = set(names)
    return tuple(name for name in CANONICAL_ORDER if name in wanted)
