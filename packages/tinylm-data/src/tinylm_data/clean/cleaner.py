"""Apply a configured set of cleaning rules to a text, recording which rules changed it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from .rules import RULES, ordered


class Cleaner:
    """Runs the named rules in canonical order (`rules.CANONICAL_ORDER`), whatever order given.

    `pii_placeholder` is put where the PII rules (url, email, ip, qq, phone) remove a match;
    the default "" deletes the match. Instances hold only module-level functions, so they
    pickle and survive fork.
    """

    def __init__(self, rule_names: Sequence[str], *, pii_placeholder: str = "") -> None:
        if isinstance(rule_names, str):
            raise TypeError("rule_names must be a sequence of rule names, not one string")
        self.rule_names: tuple[str, ...] = ordered(rule_names)
        self.pii_placeholder = pii_placeholder
        self._steps: tuple[tuple[str, Callable[[str], str]], ...] = tuple(
            (
                name,
                partial(RULES[name].apply, placeholder=pii_placeholder)
                if RULES[name].replaces_pii and pii_placeholder
                else RULES[name].apply,
            )
            for name in self.rule_names
        )

    def __call__(self, text: str) -> tuple[str, tuple[str, ...]]:
        """The cleaned text and the names of the rules that changed it, in the order they ran."""
        changed: list[str] = []
        for name, apply in self._steps:
            cleaned = apply(text)
            if cleaned is not text and cleaned != text:
                changed.append(name)
            text = cleaned
        return text, tuple(changed)

    def __repr__(self) -> str:
        return f"Cleaner({list(self.rule_names)!r}, pii_placeholder={self.pii_placeholder!r})"
