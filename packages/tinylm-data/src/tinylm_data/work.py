"""What a worker process does to a batch of documents: clean, filter, key, tokenize, sign.

Workers are forked once per build and keep their state (cleaners, filters, tokenizer) in a
module global, so a batch carries only `(doc_id, text, line)` triples across the process boundary.
Everything here is deterministic: a batch gives the same result in any worker.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .config import BuildConfig, SourceConfig
from .tokenizer import encode_documents


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What every worker needs, sent once when the pool starts."""

    config: BuildConfig
    tokenizer_json: str
    eos_id: int


@dataclass(slots=True)
class KeptDocument:
    doc_id: str
    line: int | None
    key: bytes  # 16-byte hash of the normalised text (exact dedup)
    language: str
    num_chars: int
    tokens: np.ndarray  # (n,) int32, ends with EOS
    signature: np.ndarray | None  # (num_perm,) MinHash, only when near dedup is on


@dataclass(slots=True)
class BatchResult:
    kept: list[KeptDocument] = field(default_factory=list)
    filtered: list[tuple[str, int | None, str]] = field(default_factory=list)  # id, line, reason
    clean_changes: Counter = field(default_factory=Counter)
    chars_in: int = 0


class _Worker:
    def __init__(self, setup: WorkerSetup) -> None:
        from tokenizers import Tokenizer

        from .clean import Cleaner, default_rules
        from .filters import FilterConfig

        self.config = setup.config
        self.filter_config = FilterConfig(**setup.config.filters)
        self.cleaners = [
            Cleaner(src.clean if src.clean is not None else default_rules(src.language))
            for src in setup.config.sources
        ]
        self.tokenizer = Tokenizer.from_str(setup.tokenizer_json)
        self.eos_id = setup.eos_id
        self.near = setup.config.dedup.near if setup.config.dedup.near.enabled else None

    def language_of(self, source: SourceConfig, text: str) -> str:
        from .filters import detect_language

        return detect_language(text) if source.language == "auto" else source.language

    def process(self, source_index: int, docs: list[tuple[str, str, int | None]]) -> BatchResult:
        from .filters import apply_filters
        from .textnorm import dedup_key

        source = self.config.sources[source_index]
        cleaner = self.cleaners[source_index]
        result = BatchResult()
        survivors: list[tuple[str, int | None, str, str]] = []
        max_chars = self.filter_config.max_chars
        for doc_id, text, line in docs:
            result.chars_in += len(text)
            if max_chars is not None and len(text) > 2 * max_chars:
                # Far over the limit: cleaning cannot bring it under, so spare the regexes 50 MB.
                result.filtered.append((doc_id, line, "too_long"))
                continue
            cleaned, changed = cleaner(text)
            result.clean_changes.update(changed)
            language = self.language_of(source, cleaned)
            reason = apply_filters(cleaned, language, self.filter_config)
            if reason is not None:
                result.filtered.append((doc_id, line, reason))
                continue
            survivors.append((doc_id, line, cleaned, language))
        if not survivors:
            return result
        token_lists = encode_documents(self.tokenizer, [s[2] for s in survivors], self.eos_id)
        signatures = self._signatures(survivors)
        needs_key = self.config.dedup.exact
        for i, ((doc_id, line, cleaned, language), tokens) in enumerate(
            zip(survivors, token_lists, strict=True)
        ):
            result.kept.append(
                KeptDocument(
                    doc_id=doc_id,
                    line=line,
                    key=dedup_key(cleaned) if needs_key else _NO_KEY,
                    language=language,
                    num_chars=len(cleaned),
                    tokens=tokens,
                    signature=None if signatures is None else signatures[i],
                )
            )
        return result

    def _signatures(self, survivors) -> np.ndarray | None:
        if self.near is None:
            return None
        from .dedup import minhash_signatures, shingles

        sets = [
            shingles(text, language, n=self.near.ngram, n_zh=self.near.ngram_zh)
            for _, _, text, language in survivors
        ]
        return minhash_signatures(sets, num_perm=self.near.num_perm, seed=self.near.seed)


_NO_KEY = bytes(16)  # exact dedup off: the key is never read
_WORKER: _Worker | None = None


def init_worker(setup: WorkerSetup) -> None:
    global _WORKER
    # The pool is the parallelism; nested tokenizer threads would oversubscribe the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER = _Worker(setup)


def process_batch(source_index: int, docs: list[tuple[str, str, int | None]]) -> BatchResult:
    if _WORKER is None:
        raise RuntimeError("init_worker was not called in this process")
    return _WORKER.process(source_index, docs)
