"""Threshold rules: the band of scores a rule keeps, computed from the scores being judged."""

from __future__ import annotations

import math

import numpy as np

from .config import AbsoluteRule, PercentileRule, RelativeRule

AnyRule = AbsoluteRule | PercentileRule | RelativeRule


def band(rule: AnyRule, scores: np.ndarray) -> tuple[float, float]:
    """(low, high): a score is kept when low <= score <= high; open bounds are infinite.

    `scores` are one group's finite scores (every document the rule judges in that group);
    percentiles use numpy's linear interpolation, so the band is a function of the scores alone.
    """
    if isinstance(rule, AbsoluteRule):
        low = rule.min if rule.min is not None else -math.inf
        high = rule.max if rule.max is not None else math.inf
        return float(low), float(high)
    if len(scores) == 0:
        return -math.inf, math.inf
    if isinstance(rule, PercentileRule):
        low = float(np.percentile(scores, rule.low)) if rule.low > 0 else -math.inf
        high = float(np.percentile(scores, rule.high)) if rule.high < 100 else math.inf
        return low, high
    median = float(np.median(scores))
    low = rule.low * median if rule.low > 0 else -math.inf
    high = rule.high * median if rule.high is not None else math.inf
    return low, high


def group_of(rule: AnyRule) -> str:
    """What the rule's bands are computed over: "source", "language" or "all"."""
    return "all" if isinstance(rule, AbsoluteRule) else rule.per


def describe(rule: AnyRule) -> str:
    if isinstance(rule, AbsoluteRule):
        return f"absolute [{_num(rule.min, '-inf')}, {_num(rule.max, 'inf')}]"
    if isinstance(rule, PercentileRule):
        return f"percentile {rule.low:g}-{rule.high:g} per {rule.per}"
    return f"relative {rule.low:g}-{_num(rule.high, 'inf')} x median per {rule.per}"


def _num(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


def keep_mask(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """True where a score lies in [low, high]; a NaN score (not scorable) is never kept."""
    return (scores >= low) & (scores <= high)
