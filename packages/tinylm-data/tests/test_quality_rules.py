"""Threshold rules and the quality section of the config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.config import ConfigError, parse_config
from tinylm_data.quality.config import AbsoluteRule, PercentileRule, RelativeRule
from tinylm_data.quality.rules import band, describe, group_of, keep_mask

SCORES = st.lists(
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1, max_size=300
)


def absolute(**kw):
    return AbsoluteRule(type="absolute", **kw)


def percentile(**kw):
    return PercentileRule(type="percentile", **kw)


def relative(**kw):
    return RelativeRule(type="relative", **kw)


def test_absolute_band_ignores_the_data_and_opens_missing_bounds():
    scores = np.array([1.0, 5.0, 10.0])
    assert band(absolute(max=5), scores) == (-math.inf, 5.0)
    assert band(absolute(min=2, max=8), np.array([])) == (2.0, 8.0)
    assert keep_mask(scores, *band(absolute(max=5), scores)).tolist() == [True, True, False]
    assert group_of(absolute(min=1)) == "all"


def test_percentile_band_is_numpys_linear_percentile():
    scores = np.arange(1.0, 101.0)  # 1..100
    low, high = band(percentile(low=10, high=90), scores)
    assert (low, high) == (np.percentile(scores, 10), np.percentile(scores, 90))
    kept = keep_mask(scores, low, high)
    assert kept.sum() == 80 and not kept[:10].any() and not kept[-10:].any()
    assert band(percentile(high=50), scores)[0] == -math.inf  # low 0: no lower cut
    assert band(percentile(low=50), scores)[1] == math.inf


def test_relative_band_is_a_multiple_of_the_median():
    scores = np.array([1.0, 2.0, 4.0, 8.0, 100.0])
    assert band(relative(low=0.5, high=2), scores) == (2.0, 8.0)
    assert band(relative(high=3), scores) == (-math.inf, 12.0)


def test_nan_scores_are_never_kept_and_empty_groups_keep_everything():
    assert not keep_mask(np.array([math.nan]), -math.inf, math.inf).any()
    assert band(percentile(low=10), np.array([])) == (-math.inf, math.inf)


@given(
    st.lists(st.floats(0.01, 1e6, allow_nan=False), min_size=20, max_size=300, unique=True),
    st.floats(0, 49),
    st.floats(51, 100),
)
@settings(max_examples=60, deadline=None)
def test_percentile_band_keeps_its_share(values, low, high):
    scores = np.array(values)
    kept = keep_mask(scores, *band(percentile(low=low, high=high), scores))
    # interpolation keeps the band's share of distinct scores, give or take one at each end
    expected = len(scores) * (high - low) / 100
    assert expected - 2 <= kept.sum() <= expected + 2


@given(SCORES, st.floats(0.1, 1000))
@settings(max_examples=60, deadline=None)
def test_relative_band_does_not_depend_on_the_scale(values, factor):
    scores = np.array(values)
    rule = relative(low=0.5, high=2.0)
    kept = keep_mask(scores, *band(rule, scores))
    scaled = scores * factor
    kept_scaled = keep_mask(scaled, *band(rule, scaled))
    # equal except where float rounding moves a score onto the very bound
    assert (kept != kept_scaled).sum() <= 2


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "absolute"}, "needs min, max or both"),
        ({"type": "absolute", "min": 3, "max": 1}, "above max"),
        ({"type": "percentile", "low": 90, "high": 10}, "must be below"),
        ({"type": "percentile", "low": 120}, "less than or equal to 100"),
        ({"type": "relative"}, "needs low > 0, high"),
        ({"type": "band", "low": 1}, "does not match any of the expected tags"),
    ],
)
def test_bad_rules_name_their_key(rule, message):
    data = {
        "name": "x",
        "sources": [{"name": "a", "kind": "txt", "paths": ["a.txt"]}],
        "quality": {"scorers": [{"kind": "perplexity", "model": "m", "rule": rule}]},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "quality.scorers.0.rule" in str(info.value)
    assert message in str(info.value)


def test_scorer_options_are_checked():
    base = {"name": "x", "sources": [{"name": "a", "kind": "txt", "paths": ["a.txt"]}]}
    for scorers, message in [
        ([{"kind": "perplexity", "model": "m", "pair": True}], "pair applies to reward"),
        ([{"kind": "classifier", "model": "m"}] * 2, "scorer names must be unique"),
        ([{"kind": "bert", "model": "m"}], "quality.scorers.0.kind"),
        ([{"kind": "reward", "model": "m", "batch": 3}], "quality.scorers.0.batch"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(base | {"quality": {"scorers": scorers}})


def test_defaults_per_kind_and_descriptions():
    config = parse_config(
        {
            "name": "x",
            "sources": [{"name": "a", "kind": "txt", "paths": ["a.txt"]}],
            "quality": {"scorers": [{"kind": "perplexity", "model": "m"}]},
        }
    )
    scorer = config.quality.scorers[0]
    assert scorer.label_name == "perplexity"
    assert describe(scorer.effective_rule) == "relative 0.1-4 x median per source"
    assert describe(absolute(min=0.5)) == "absolute [0.5, inf]"
    assert describe(percentile(low=30, high=70, per="language")) == "percentile 30-70 per language"
