"""Document filters: each returns a drop reason or None; `apply_filters` runs them in order."""

from .checks import FILTERS, apply_filters, explain_filters
from .config import FilterConfig
from .language import detect_language

__all__ = ["FILTERS", "FilterConfig", "apply_filters", "detect_language", "explain_filters"]
