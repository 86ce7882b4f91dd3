"""Preference data: readers of preference pairs into the SFT conversation schema, the same
template, cleaning, dedup and held-out split, and `tinylm-preference-pairs` shards for DPO."""

from .build import EmptyPrefBuild, PairEncoder, PrefResult, run_pref_build
from .config import PREF_KINDS, PrefConfig, PrefSourceConfig
from .readers import PrefRecord, read_pairs

__all__ = [
    "PREF_KINDS",
    "EmptyPrefBuild",
    "PairEncoder",
    "PrefConfig",
    "PrefRecord",
    "PrefResult",
    "PrefSourceConfig",
    "read_pairs",
    "run_pref_build",
]
