"""Passages from a document: spans of at most `max_tokens` BM25 tokens that end at sentence ends,
consecutive spans sharing up to `overlap` tokens of whole sentences.

Tokens are counted with `tinylm_shards.retrieval.bm25_tokens` (what the index scores), so a
passage's length is its length to BM25; the model tokenizer is not involved.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A sentence ends after 。！？!?…；; (with closing quotes or brackets right after), after a "."
# followed by whitespace, or at a line break; the whitespace after the end belongs to it.
_SENTENCE_END = re.compile(r"(?:[。！？!?…；;]+[」』”’\"')）]*|\.(?=\s)|\n)\s*")
# An over-long sentence is cut at clause marks, and a clause still too long into atoms: one
# Latin word (with the spaces after it) or one other character, each at most one token.
_CLAUSE_END = re.compile(r"[，,、：:]\s*")
_ATOM = re.compile(r"[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+\s*|.", re.DOTALL)

Count = Callable[[str], int]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, covering `text` from 0 to len(text) without gaps."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _split(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    cuts = [start + m.end() for m in pattern.finditer(text[start:end])]
    bounds = sorted({start, *cuts, end})
    return list(zip(bounds, bounds[1:], strict=False))


def _units(
    text: str, start: int, end: int, count: Count, max_tokens: int
) -> list[tuple[int, int, int, bool]]:
    """(start, end, tokens, is_atom): the sentence as one unit if it fits, else its clauses
    (recursively), else its atoms."""
    tokens = count(text[start:end])
    if tokens <= max_tokens:
        return [(start, end, tokens, False)]
    clauses = _split(text, start, end, _CLAUSE_END)
    if len(clauses) > 1:
        return [u for s, e in clauses for u in _units(text, s, e, count, max_tokens)]
    return [(s, e, count(text[s:e]), True) for s, e in _split(text, start, end, _ATOM)]


def chunk_spans(text: str, *, max_tokens: int, overlap: int, count: Count) -> list[tuple[int, int]]:
    """(start, end) of each passage of `text`, in order; `count(s)` is the token count of `s`.

    Units are sentences; a sentence over `max_tokens` tokens is cut at clause marks (，,、：:)
    and, if still too long, between characters or words. A passage is the longest run of units
    from its first unit whose tokens fit `max_tokens`. The next passage starts on the earliest
    unit such that the units it shares with the previous passage hold at most `overlap` tokens
    (it always starts at least one unit later). Spans holding no text but spaces are dropped.
    """
    if max_tokens < 1 or not 0 <= overlap < max_tokens:
        raise ValueError(
            f"need max_tokens >= 1 and 0 <= overlap < max_tokens, got {max_tokens} and {overlap}"
        )
    pieces = [u for s, e in sentence_spans(text) for u in _units(text, s, e, count, max_tokens)]
    units = [(s, e) for s, e, _, _ in pieces]
    sizes = [n for _, _, n, _ in pieces]
    atoms = [a for _, _, _, a in pieces]
    chunks: list[tuple[int, int]] = []
    first, previous_last = 0, -1
    while first < len(units):
        last, total = first, sizes[first]
        while last + 1 < len(units) and total + sizes[last + 1] <= max_tokens:
            last += 1
            total += sizes[last]
        # why: jieba may find more words in joined atoms than in the atoms one by one
        while (
            last > first
            and any(atoms[first : last + 1])
            and count(text[units[first][0] : units[last][1]]) > max_tokens
        ):
            last -= 1
        if last <= previous_last:  # the overlap left no room to advance: start after it
            first = previous_last + 1
            continue
        previous_last = last
        if text[units[first][0] : units[last][1]].strip():
            chunks.append((units[first][0], units[last][1]))
        if last + 1 >= len(units):
            break
        nxt, shared = last + 1, 0
        while nxt - 1 > first and shared + sizes[nxt - 1] <= overlap:
            nxt -= 1
            shared += sizes[nxt]
        first = nxt
    return chunks
