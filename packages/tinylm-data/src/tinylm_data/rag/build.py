"""`tinylm-data rag index`: documents from the pipeline's readers (and SQuAD-layout contexts),
cleaned as for pretraining, exact-deduplicated, chunked into passages, indexed with BM25
(tinylm_shards.retrieval), with stats.json and the retrieval quality beside the index."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinylm_shards import atomic_path
from tinylm_shards.retrieval import IndexManifest, Passage, bm25_tokens, write_index

from .. import __version__
from ..clean import Cleaner, default_rules
from ..document import Rejection
from ..progress import Progress
from ..publish import RemoteRoot, publish_version
from ..readers import expand_paths, read_documents
from ..textnorm import dedup_key
from .chunking import chunk_spans
from .config import RagIndexConfig
from .quality import evaluate_retrieval
from .squad import squad_contexts

log = logging.getLogger(__name__)

STATS = "stats.json"
EMPTY_AFTER_CLEANING = "empty_after_cleaning"


class EmptyIndexError(ValueError):
    """Nothing was left to index."""


@dataclass
class SourceCounts:
    documents_read: int = 0
    rejected: Counter = field(default_factory=Counter)
    duplicate_documents: int = 0
    documents_indexed: int = 0
    passages: int = 0
    duplicate_passages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents_read": self.documents_read,
            "rejected": dict(sorted(self.rejected.items())),
            "duplicate_documents": self.duplicate_documents,
            "documents_indexed": self.documents_indexed,
            "passages": self.passages,
            "duplicate_passages": self.duplicate_passages,
        }


@dataclass
class Corpus:
    """The passages to index, and what the quality evaluation needs to find gold passages."""

    passages: list[Passage] = field(default_factory=list)
    counts: dict[str, SourceCounts] = field(default_factory=dict)
    cleaners: dict[tuple[str, ...], Cleaner] = field(default_factory=dict)
    doc_of_key: dict[bytes, str] = field(default_factory=dict)
    """dedup key of a cleaned document -> id of the indexed document with that text."""
    doc_passages: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """indexed document id -> (passage id, passage text) of every passage cut from it (a
    passage dropped as a duplicate is listed as the passage it duplicates)."""


@dataclass(frozen=True)
class RagIndexResult:
    manifest: IndexManifest
    stats: dict[str, Any]
    published: str | None = None  # the index's URL when it was published there

    @property
    def out_dir(self) -> Path:
        return self.manifest.root


def _documents(source, base: Path, max_line_bytes: int):
    for path in expand_paths(source.paths, base):
        try:
            display = path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            display = path.name
        if source.kind == "squad":
            yield from squad_contexts(path, source=source.name, display=display)
        else:
            yield from read_documents(
                source.kind,
                path,
                source=source.name,
                text_field=source.text_field,
                id_field=source.id_field,
                display_path=display,
                max_line_bytes=max_line_bytes,
            )


def collect_passages(cfg: RagIndexConfig, base: Path, progress: Progress) -> Corpus:
    """Read, clean, dedup (documents, then passages) and chunk every source."""
    corpus = Corpus()
    seen_passages: dict[bytes, str] = {}
    max_tokens, overlap = cfg.chunking.max_tokens, cfg.chunking.overlap

    def count(text: str) -> int:
        return len(bm25_tokens(text))

    for source in cfg.sources:
        counts = corpus.counts.setdefault(source.name, SourceCounts())
        rules = tuple(source.clean if source.clean is not None else default_rules(source.language))
        cleaner = corpus.cleaners.setdefault(rules, Cleaner(rules))
        progress.stage(f"read+chunk {source.name}", None)
        for item in _documents(source, base, cfg.max_line_bytes):
            if isinstance(item, Rejection):
                counts.rejected[item.reason] += 1
                log.warning(
                    "%s: %s %s (%s:%s)", source.name, item.reason, item.detail, item.file, item.line
                )
                continue
            counts.documents_read += 1
            progress.advance(1)
            text, _ = cleaner(item.text)
            if not text.strip():
                counts.rejected[EMPTY_AFTER_CLEANING] += 1
                continue
            key = dedup_key(text)
            if cfg.dedup and key in corpus.doc_of_key:
                counts.duplicate_documents += 1
                continue
            corpus.doc_of_key.setdefault(key, item.id)
            counts.documents_indexed += 1
            listed = corpus.doc_passages.setdefault(item.id, [])
            for number, (start, end) in enumerate(
                chunk_spans(text, max_tokens=max_tokens, overlap=overlap, count=count)
            ):
                passage_text = text[start:end].strip()
                pkey = dedup_key(passage_text)
                if cfg.dedup and pkey in seen_passages:
                    counts.duplicate_passages += 1
                    listed.append((seen_passages[pkey], passage_text))
                    continue
                passage = Passage(f"{item.id}#{number}", item.id, source.name, passage_text)
                seen_passages.setdefault(pkey, passage.id)
                corpus.passages.append(passage)
                listed.append((passage.id, passage_text))
                counts.passages += 1
    return corpus


def run_rag_index(
    cfg: RagIndexConfig,
    base: Path,
    out: Path,
    progress: Progress | None = None,
    *,
    publish_to: RemoteRoot | None = None,
) -> RagIndexResult:
    """Build and publish OUT/<name>/<version>/ (manifest, passages, BM25), stats.json beside it;
    with `publish_to`, OUT is the local work root and the index is then published there."""
    progress = progress or Progress()
    started = time.perf_counter()
    corpus = collect_passages(cfg, base, progress)
    read_s = time.perf_counter() - started
    if not corpus.passages:
        raise EmptyIndexError("no passage left to index (every document was rejected or empty)")
    progress.stage("index (bm25)", None)
    settings = {"config": cfg.model_dump(mode="json"), "tinylm-data": __version__}
    index_started = time.perf_counter()
    manifest = write_index(corpus.passages, out / cfg.name, settings=settings, bm25=cfg.bm25)
    index_s = time.perf_counter() - index_started
    quality = None
    if cfg.quality is not None:
        progress.stage("retrieval quality", None)
        quality = evaluate_retrieval(cfg.quality, base, corpus, manifest.root, progress)
    total_s = time.perf_counter() - started
    stats = {
        "name": cfg.name,
        "version": manifest.version,
        "sources": {name: c.as_dict() for name, c in corpus.counts.items()},
        "totals": {
            "documents_read": sum(c.documents_read for c in corpus.counts.values()),
            "rejected": sum(sum(c.rejected.values()) for c in corpus.counts.values()),
            "duplicate_documents": sum(c.duplicate_documents for c in corpus.counts.values()),
            "duplicate_passages": sum(c.duplicate_passages for c in corpus.counts.values()),
            "passages": len(corpus.passages),
            "tokens": manifest.raw["counts"]["tokens"],
        },
        "chunking": {**cfg.chunking.model_dump(), "counted_with": "bm25_tokens"},
        "timing_s": {
            "read_clean_chunk": round(read_s, 3),
            "index": round(index_s, 3),
            "total": round(total_s, 3),
        },
        "quality": quality,
    }
    with atomic_path(manifest.root / STATS) as tmp:
        tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    url = publish_version(out / cfg.name, manifest.version, publish_to)
    return RagIndexResult(manifest, stats, url)
