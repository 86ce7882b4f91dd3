"""The retrieval index contract: BM25 tokens, passages, the on-disk index, the prompt block format.

Written by `tinylm-data rag index`, read by `tinylm-eval rag` and the RAFT SFT builder; neither
imports the other, so both use this module (docs/retrieval-format.md describes it in words).
bm25s, jieba and opencc (the `tinylm-shards[retrieval]` extra) are imported on first use, so
importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import ShardError
from .files import TMP_SUFFIX, atomic_path, sha256_file
from .formats import RETRIEVAL_INDEX
from .manifest import LATEST, MANIFEST, resolve_version_dir

PASSAGES_FILE = "passages.arrow"
BM25_DIR = "bm25"

# --- tokens ------------------------------------------------------------------------------------

TOKENIZER = {
    "name": "tinylm-bm25-tokens",
    "version": 1,
    "normalise": "NFKC, casefold, OpenCC t2s",
    "chinese": "jieba cut_for_search, HMM on",
    "latin": "letter/digit runs minus bm25s STOPWORDS_EN",
}
"""What `bm25_tokens` does; recorded in every manifest. An index whose tokenizer `version`
differs from this one is refused: its tokens would not match the queries'."""

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# why: \w also matches Han characters, so the Latin class excludes them explicitly
_TOKEN_RUNS = re.compile(f"(?P<han>[{_HAN}]+)|(?P<word>[^\\W_{_HAN}]+)")
_backend: dict[str, Any] = {}


def _libraries() -> dict[str, Any]:
    """jieba (initialised quietly), an OpenCC t2s converter and the stop-words, once per process."""
    if _backend.get("pid") != os.getpid():
        with warnings.catch_warnings():
            # jieba 0.42 has invalid escape sequences that warn when its modules are compiled
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            import jieba
        import opencc
        from bm25s.stopwords import STOPWORDS_EN

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _backend.update(
            pid=os.getpid(),
            jieba=jieba,
            t2s=opencc.OpenCC("t2s"),
            stopwords=frozenset(STOPWORDS_EN),
        )
    return _backend


def bm25_tokens(text: str) -> list[str]:
    """The BM25 tokens of `text`, the same function for passages and queries.

    NFKC (full-width to ASCII), casefold and Traditional to Simplified Chinese first, so a
    traditional query matches a simplified passage. Runs of Han characters are segmented with
    jieba's search mode (whole words and the shorter words inside them: 中华人民共和国 also
    gives 中华, 人民, 共和国). Other text gives its letter/digit runs, minus English stop-words.
    """
    libs = _libraries()
    text = unicodedata.normalize("NFKC", text).casefold()
    text = libs["t2s"].convert(text)
    stopwords, cut = libs["stopwords"], libs["jieba"].cut_for_search
    tokens: list[str] = []
    for match in _TOKEN_RUNS.finditer(text):
        if match.lastgroup == "han":
            tokens.extend(t for t in cut(match.group()) if t.strip())
        elif (word := match.group()) not in stopwords:
            tokens.append(word)
    return tokens


# --- records -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Passage:
    id: str
    """Unique in its index (tinylm-data writes `<doc_id>#<chunk number>`)."""
    doc_id: str
    """The document the passage was cut from."""
    source: str
    text: str


@dataclasses.dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    rank: int
    """1 is the best hit."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexManifest:
    """A checked manifest.json of a retrieval index; the whole file is `raw`."""

    root: Path
    name: str
    version: str
    num_passages: int
    tokenizer: dict
    bm25: dict
    settings: dict
    raw: dict


# --- writing -----------------------------------------------------------------------------------

BM25_DEFAULTS = {"method": "lucene", "k1": 1.5, "b": 0.75}


def write_index(
    passages: Iterable[Passage],
    out_dir: str | Path,
    *,
    settings: Mapping[str, Any],
    bm25: Mapping[str, Any] | None = None,
) -> IndexManifest:
    """Index `passages` under `out_dir` (`OUT/<name>`) as `OUT/<name>/<version>/`, then LATEST.

    `settings` (JSON-serialisable: how the passages were made, e.g. chunking) goes into the
    manifest and into the version, which is `v-` + 16 hex digits of the SHA-256 of the format,
    tokenizer, BM25 parameters, settings and every passage: the same passages and settings give
    the same version. The version directory is built under a temporary name and renamed into
    place, then LATEST is replaced atomically, so a reader never sees half an index.
    """

    out_dir = Path(out_dir)
    params = {**BM25_DEFAULTS, **(bm25 or {})}
    unknown = set(params) - set(BM25_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown BM25 parameters {sorted(unknown)}; known: {sorted(BM25_DEFAULTS)}"
        )
    settings = json.loads(json.dumps(dict(settings)))  # why: fails now if not JSON, not half-way

    digest = hashlib.sha256()
    header = {
        "format": [RETRIEVAL_INDEX.name, RETRIEVAL_INDEX.schema_version],
        "tokenizer": TOKENIZER,
        "bm25": params,
        "settings": settings,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    columns: dict[str, list[str]] = {"id": [], "doc_id": [], "source": [], "text": []}
    corpus_tokens: list[list[str]] = []
    seen: set[str] = set()
    for passage in passages:
        if passage.id in seen:
            raise ShardError(f"passage id {passage.id!r} occurs twice; ids must be unique")
        seen.add(passage.id)
        for name in columns:
            value = getattr(passage, name)
            columns[name].append(value)
            digest.update(value.encode("utf-8", "surrogatepass") + b"\0")
        corpus_tokens.append(bm25_tokens(passage.text))
    if not corpus_tokens:
        raise ShardError("no passages to index")
    version = "v-" + digest.hexdigest()[:16]

    target = out_dir / version
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (target / MANIFEST).is_file():
        tmp = out_dir / f".{version}.{os.getpid()}{TMP_SUFFIX}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _write_version(tmp, out_dir.name, version, columns, corpus_tokens, params, settings)
            shutil.rmtree(target, ignore_errors=True)  # a directory without manifest: unfinished
            try:
                os.replace(tmp, target)
            except OSError:
                # another writer published the same content-addressed version first
                if not (target / MANIFEST).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    with atomic_path(out_dir / LATEST) as tmp_latest:
        tmp_latest.write_text(version + "\n", encoding="utf-8")
    return load_index_manifest(target)


def _write_version(
    root: Path,
    name: str,
    version: str,
    columns: dict[str, list[str]],
    corpus_tokens: list[list[str]],
    params: dict,
    settings: dict,
) -> None:
    import bm25s

    root.mkdir(parents=True)
    table = pa.table(columns, schema=RETRIEVAL_INDEX.schema)
    # why: an uncompressed Arrow IPC file is memory-mapped on load without a copy
    with (
        pa.OSFile(str(root / PASSAGES_FILE), "wb") as sink,
        pa.ipc.new_file(sink, table.schema) as w,
    ):
        w.write_table(table)
    retriever = bm25s.BM25(backend="numpy", **params)
    retriever.index(corpus_tokens, show_progress=False)
    retriever.save(str(root / BM25_DIR), show_progress=False)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    sources: dict[str, int] = {}
    for source in columns["source"]:
        sources[source] = sources.get(source, 0) + 1
    raw = {
        "schema_version": RETRIEVAL_INDEX.schema_version,
        "format": RETRIEVAL_INDEX.name,
        "name": name,
        "version": version,
        "created_by": {
            "tinylm-shards": _dist_version("tinylm-shards"),
            "bm25s": _dist_version("bm25s"),
            "jieba": _dist_version("jieba"),
        },
        "tokenizer": TOKENIZER,
        "bm25": params,
        "counts": {
            "passages": len(corpus_tokens),
            "documents": len(set(columns["doc_id"])),
            "tokens": sum(map(len, corpus_tokens)),
            "vocab": len(retriever.vocab_dict),
            "sources": dict(sorted(sources.items())),
        },
        "settings": settings,
        "files": [
            {
                "path": p.relative_to(root).as_posix(),
                "bytes": p.stat().st_size,
                "sha256": sha256_file(p),
            }
            for p in files
        ],
    }
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- reading -----------------------------------------------------------------------------------


def load_index_manifest(path: str | Path) -> IndexManifest:
    """Read and check an index's manifest.json (a version directory, or `OUT/<name>` via LATEST)."""
    if not (Path(path) / MANIFEST).is_file() and not (Path(path) / LATEST).is_file():
        raise ShardError(
            f"{path} is not a retrieval index: it holds neither a {MANIFEST} nor a {LATEST} pointer"
        )
    root = resolve_version_dir(path)
    where = root / MANIFEST
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ShardError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ShardError(f"{where}: expected a JSON object")
    if raw.get("format") != RETRIEVAL_INDEX.name:
        raise ShardError(
            f"{where} has format {raw.get('format')!r}, not a retrieval index "
            f"({RETRIEVAL_INDEX.name!r})"
        )
    if raw.get("schema_version") != RETRIEVAL_INDEX.schema_version:
        raise ShardError(
            f"{where} has schema_version {raw.get('schema_version')!r}; this reader reads "
            f"{RETRIEVAL_INDEX.name} schema_version {RETRIEVAL_INDEX.schema_version} only"
        )
    tokenizer = raw.get("tokenizer")
    if (
        not isinstance(tokenizer, dict)
        or tokenizer.get("name") != TOKENIZER["name"]
        or (tokenizer.get("version") != TOKENIZER["version"])
    ):
        raise ShardError(
            f"{where} was tokenized by {tokenizer!r}; this reader tokenizes queries with "
            f"{TOKENIZER['name']} version {TOKENIZER['version']} (rebuild the index)"
        )
    try:
        counts, files = raw["counts"], raw["files"]
        manifest = IndexManifest(
            root=root,
            name=str(raw["name"]),
            version=str(raw["version"]),
            num_passages=int(counts["passages"]),
            tokenizer=tokenizer,
            bm25=dict(raw["bm25"]),
            settings=dict(raw["settings"]),
            raw=raw,
        )
        for entry in files:
            file = root / entry["path"]
            if not file.is_file() or file.stat().st_size != entry["bytes"]:
                raise ShardError(f"{file} is missing or not {entry['bytes']} bytes: a broken index")
    except (KeyError, TypeError) as exc:
        raise ShardError(f"{where} lacks or mistypes the field {exc}") from None
    return manifest


class RetrievalIndex:
    """A BM25 index over passages, opened from disk (`RetrievalIndex.open`)."""

    def __init__(self, manifest: IndexManifest, retriever: Any, passages: pa.Table) -> None:
        self.manifest = manifest
        self._retriever = retriever
        self._passages = passages
        self._columns = {name: passages.column(name) for name in ("id", "doc_id", "source", "text")}

    @classmethod
    def open(cls, path: str | Path, *, mmap: bool = True) -> RetrievalIndex:
        """Open an index directory (version directory or `OUT/<name>`); clear error if it is not one.

        With `mmap` the BM25 matrix and the passages are memory-mapped, not read into memory.
        """
        import bm25s

        manifest = load_index_manifest(path)
        root = manifest.root
        if mmap:
            passages = pa.ipc.open_file(pa.memory_map(str(root / PASSAGES_FILE))).read_all()
        else:
            passages = pa.ipc.open_file(pa.OSFile(str(root / PASSAGES_FILE))).read_all()
        retriever = bm25s.BM25.load(str(root / BM25_DIR), mmap=mmap, show_progress=False)
        if passages.num_rows != manifest.num_passages or (
            retriever.scores["num_docs"] != manifest.num_passages
        ):
            raise ShardError(
                f"{root}: manifest counts {manifest.num_passages} passages, the passage table "
                f"holds {passages.num_rows} and the BM25 matrix {retriever.scores['num_docs']}"
            )
        return cls(manifest, retriever, passages)

    def __len__(self) -> int:
        return self._passages.num_rows

    def passage(self, row: int) -> Passage:
        """The passage at `row` (0 .. len-1), in the order it was indexed."""
        if not 0 <= row < len(self):
            raise IndexError(f"passage row {row} outside 0..{len(self) - 1}")
        return Passage(**{name: col[row].as_py() for name, col in self._columns.items()})

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for `query` (float32, one per row)."""
        ids = self._retriever.get_tokens_ids(bm25_tokens(query))
        if not ids:
            return np.zeros(len(self), dtype=np.float32)
        return self._retriever.get_scores(ids)

    def search(self, query: str, k: int) -> list[Hit]:
        """The best `k` passages for `query` with a positive score, best first.

        Fewer than `k` when fewer passages share a token with the query (none for a query
        without known tokens). Ties are broken by row, so results are reproducible.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        scores = self.scores(query)
        positive = np.flatnonzero(scores > 0)
        if len(positive) > k:
            # the k-th best score; every row scoring at least that is a candidate (ties kept)
            kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
            positive = positive[scores[positive] >= kth]
        order = positive[np.lexsort((positive, -scores[positive]))][:k]
        return [
            Hit(passage=self.passage(int(row)), score=float(scores[row]), rank=rank)
            for rank, row in enumerate(order, start=1)
        ]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return [self.search(query, k) for query in queries]


# --- prompts -----------------------------------------------------------------------------------

PASSAGES_HEADING = "Passages:"
QUESTION_LABEL = "Question:"
_SPACE_RUN = re.compile(r"\s+")


def format_passages(passages: Sequence[str]) -> str:
    """THE block of passages inside a prompt: `[1] text` lines, numbered from 1, in order.

    Each passage's whitespace runs (newlines included) become one space, so every passage is
    exactly one line and the numbering cannot be mistaken. No passages give "".
    """
    return "\n".join(
        f"[{number}] {_SPACE_RUN.sub(' ', text).strip()}"
        for number, text in enumerate(passages, start=1)
    )


def rag_prompt(question: str, passages: Sequence[str] | None) -> str:
    """The user turn: `Passages:`, the block, a blank line, `Question: ...`; closed book
    (None or no passages) is the question alone."""
    question = question.strip()
    if not passages:
        return question
    return f"{PASSAGES_HEADING}\n{format_passages(passages)}\n\n{QUESTION_LABEL} {question}"
