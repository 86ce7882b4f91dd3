"""Rules that remove personal or contact data: URLs, e-mail and IP addresses, phone and QQ numbers.

Every rule replaces a match with `placeholder` ("" by default, so the match disappears and the
`whitespace` rule tidies the gap). All patterns are ASCII-bounded and anchored at the start of a
run (a look-behind rejects starts inside one), so scanning is linear even on long digit or
letter runs such as base64 blobs.
"""

from __future__ import annotations

import ipaddress
import re

# http(s) or www. URLs. Only ASCII URL characters, so a URL glued to Chinese text ends where
# the Chinese starts; the last character may not be sentence punctuation ("see x.com/a.").
_URL = re.compile(
    r"(?=[HhFfWw])(?:(?<![A-Za-z0-9])(?:https?|ftp)://|(?<![A-Za-z0-9@._-])www\.)"
    r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9\-_~/#=&%+]"
    r"|(?<![A-Za-z0-9])(?:https?|ftp)://",
    re.IGNORECASE,
)

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# A trailing "." is allowed (end of sentence) but not ".5" (a longer dotted number).
_IPV4 = re.compile(rf"(?=[0-9])(?<![A-Za-z0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])")
# Candidates only: colon-separated hex groups, optionally ending in an IPv4 address. Each is
# checked with `ipaddress`, so times ("12:30:45"), MACs and C++ "std::x" are left alone.
_IPV6_CANDIDATE = re.compile(
    r"(?=[0-9A-Fa-f:])(?<![A-Za-z0-9:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}|[0-9A-Fa-f]{{1,4}})?(?![A-Za-z0-9:]|\.[0-9])"
)

# Every IPv6 address has "::" or a hex group between two colons; this finds either fast.
_HEX_BETWEEN_COLONS = re.compile(r":[0-9A-Fa-f]{1,4}:")

# The leading look-ahead lets `re` skip positions that cannot start a number (5x faster).
_PHONE = re.compile(
    r"(?=[(+0-9])(?<![0-9A-Za-z+])(?:"
    # Chinese mobile, optionally +86 / 0086 / (+86): 13812345678, 138-1234-5678, 138 1234 5678
    r"(?:(?:\(\+?86\)|(?:\+|00)86)[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}"
    # Chinese landline with area code: 010-12345678, (010)12345678, 0755-1234567, +86 10 12345678
    r"|(?:(?:\+|00)86[-\s]?(?:\(0?\d{2,3}\)|0?\d{2,3})|\(0\d{2,3}\)|0\d{2,3}-)[-\s]?\d{7,8}(?:-\d{1,5})?"
    # International: + country code, then groups: +1 (555) 123-4567, +44 20 7946 0958
    r"|\+[1-9]\d{0,2}[-.\s]?(?:\(\d{1,4}\)[-.\s]?)?\d{1,4}(?:[-.\s]?\d{2,4}){1,4}"
    # North American without country code, separators required: (555) 123-4567, 555-123-4567
    r"|(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}"
    r")(?![0-9])"
)
_MIN_INTERNATIONAL_DIGITS = 7
_MAX_INTERNATIONAL_DIGITS = 15

# A QQ number needs its cue: QQ / qq / 扣扣 / 企鹅号, optionally 号/号码/群, then 5-11 digits.
_QQ = re.compile(
    r"(?=[Qq扣企])(?<![A-Za-z])(?:[Qq]{2}|扣扣|企鹅号)(?:号码|号|群号?)?\s*(?:[:：=]|是|为)?\s*[1-9]\d{4,10}(?![0-9])"
)
# Every match holds one of these (substring tests are far faster than the regex scan).
_QQ_CUES = ("QQ", "qq", "Qq", "qQ", "扣扣", "企鹅号")


_MAX_PASSES = 4


def _remove(pattern: re.Pattern[str], replacement, text: str) -> str:
    """Substitute until nothing more matches (a few passes at most).

    Removing one match can expose another: in "13800000000+1234567" the "+1234567" follows a
    digit and is no phone, until the mobile number before it is gone. Passes after the first
    run only when the previous one removed something.
    """
    for _ in range(_MAX_PASSES):
        new, count = pattern.subn(replacement, text)
        # A replacement function may keep a match as it is (a rejected candidate).
        if not count or new == text:
            return new
        text = new
    return text


def url(text: str, placeholder: str = "") -> str:
    """Remove http(s):// and www. URLs."""
    if "://" not in text and "www." not in text and "WWW." not in text:
        return text
    return _remove(_URL, placeholder, text)


def email(text: str, placeholder: str = "") -> str:
    """Remove e-mail addresses."""
    if "@" not in text:
        return text
    return _remove(_EMAIL, placeholder, text)


def _ipv6_replacement(placeholder: str):
    def replace(match: re.Match[str]) -> str:
        candidate = match.group()
        if candidate.count(":") < 2 or len(candidate.strip(":")) < 3:
            return candidate
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return candidate
        return placeholder

    return replace


def ip(text: str, placeholder: str = "") -> str:
    """Remove IPv4 and IPv6 addresses (version-like dotted quads such as 1.2.3.4 go too)."""
    replace_ipv6 = _ipv6_replacement(placeholder)
    for _ in range(_MAX_PASSES):
        before = text
        if "::" in text or _HEX_BETWEEN_COLONS.search(text):
            text = _IPV6_CANDIDATE.sub(replace_ipv6, text)
        # After IPv6, which may end in a dotted quad (::ffff:192.0.2.1).
        if "." in text:
            text = _IPV4.sub(placeholder, text)
        # Removing one address can expose another next to it; repeat until nothing changes.
        if text == before:
            break
    return text


def phone(text: str, placeholder: str = "") -> str:
    """Remove phone numbers: Chinese mobiles and landlines, +international, North American."""

    def replace(match: re.Match[str]) -> str:
        number = match.group()
        if number.startswith("+") and not number.startswith(("+86", "(+86")):
            digits = sum(c.isdigit() for c in number)
            if not _MIN_INTERNATIONAL_DIGITS <= digits <= _MAX_INTERNATIONAL_DIGITS:
                return number
        return placeholder

    return _remove(_PHONE, replace, text)


def qq(text: str, placeholder: str = "") -> str:
    """Remove QQ numbers together with their cue ("QQ：12345678", "qq 12345", "扣扣 123456")."""
    if not any(cue in text for cue in _QQ_CUES):
        return text
    return _remove(_QQ, placeholder, text)
