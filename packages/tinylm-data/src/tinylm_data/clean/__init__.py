"""Cleaning: named `str -> str` rules and the `Cleaner` that applies them in canonical order."""

from .cleaner import Cleaner
from .rules import CANONICAL_ORDER, DEFAULT_RULES, RULES, Rule, default_rules

__all__ = ["CANONICAL_ORDER", "DEFAULT_RULES", "RULES", "Cleaner", "Rule", "default_rules"]
