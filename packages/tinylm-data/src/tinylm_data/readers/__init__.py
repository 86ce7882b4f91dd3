"""Readers: files of each source format in, `Document`s (or `Rejection`s) out, never an exception.

Every reader streams (bounded memory), treats `.gz` transparently, and reports bad input as a
`Rejection(stage="read")` with the file and the 1-based line (or Parquet row) where it happened:
malformed JSON, invalid UTF-8, missing/empty/non-string text, over-long lines, truncated gzip,
unreadable or corrupt files. A line that starts with a UTF-8 byte order mark (files saved on
Windows, and files concatenated from them) is read without it, and counted in `ReadCounts`.

Document ids are stable across runs and machines: `<source>/<native id>` when the record has an
id, else `<source>/<file>:<line>:<8 hex of the text's xxh64>` (the file as shown relative to the
config's directory).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from ..document import Document, Rejection
from .formats import EMPTY_TEXT, MISSING_TEXT, NON_STRING_TEXT, RECORD_PARSERS, RecordError
from .lines import (
    DEFAULT_MAX_LINE_BYTES,
    LINE_TOO_LONG,
    TRUNCATED_GZIP,
    UNREADABLE_FILE,
    LineError,
    iter_lines,
)
from .storage import InputPath, as_input, expand_url, input_is_file, input_name, is_url, open_input
from .units import Unit

MALFORMED_JSON = "malformed_json"
INVALID_UTF8 = "invalid_utf8"
CORRUPT_PARQUET = "corrupt_parquet"

REASONS = (
    MALFORMED_JSON,
    INVALID_UTF8,
    CORRUPT_PARQUET,
    MISSING_TEXT,
    NON_STRING_TEXT,
    EMPTY_TEXT,
    LINE_TOO_LONG,
    TRUNCATED_GZIP,
    UNREADABLE_FILE,
)

BOM = "\ufeff"

__all__ = [
    "READERS",
    "REASONS",
    "ReadCounts",
    "Unit",
    "expand_paths",
    "file_layout",
    "read_documents",
]


@dataclass(slots=True)
class ReadCounts:
    """What reading repaired rather than rejected, for the build's stats (add up per file)."""

    bom_stripped: int = 0  # lines that started with a UTF-8 byte order mark

    def add(self, other: ReadCounts) -> None:
        self.bom_stripped += other.bom_stripped


def expand_paths(patterns: Sequence[str], base: Path) -> list[InputPath]:
    """Files matching the globs (relative to `base`, or fsspec URLs), sorted, without repeats.

    A pattern that matches nothing is an error: a typo must not quietly build an empty dataset.
    """
    found: dict[str, InputPath] = {}
    for raw in patterns:
        target = as_input(raw)
        if is_url(target):
            urls = expand_url(target)
            if not urls:
                raise FileNotFoundError(f"input pattern {raw!r} matches no file")
            for url in urls:
                found.setdefault(url, url)
            continue
        pattern = str(target)
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(glob.glob(full, recursive=True))
        if not matches and Path(full).exists():
            matches = [full]
        files = [m for m in matches if not Path(m).is_dir()]
        if not files:
            raise FileNotFoundError(f"input pattern {pattern!r} matches no file (looked in {base})")
        for match in files:
            found.setdefault(str(Path(match).resolve()), Path(match))
    return sorted(found.values(), key=lambda p: str(p))  # URLs sort by their scheme


class _Context:
    """What every record of one file shares."""

    def __init__(
        self,
        kind: str,
        path: InputPath,
        source: str,
        display: str,
        text_field,
        id_field,
        counts,
        unit: Unit | None = None,
    ) -> None:
        self.kind, self.path, self.source, self.display = kind, path, source, display
        self.text_field, self.id_field = text_field, id_field
        self.parse = RECORD_PARSERS.get(kind)
        self.counts: ReadCounts = counts
        self.unit = unit  # None: the whole file

    def line_unit(self) -> dict[str, tuple[int, int, int]]:
        """`iter_lines` arguments that read only this context's unit."""
        if self.unit is None:
            return {}
        argument = {"bytes": "byte_range", "gzip_members": "members"}.get(self.unit.kind)
        if argument is None:
            raise ValueError(f"{self.display}: a {self.unit.kind} unit of a line file")
        return {argument: (self.unit.start, self.unit.end, self.unit.lines_before)}

    def reject(self, reason: str, line: int | None, detail: str = "") -> Rejection:
        return Rejection(self.source, "read", reason, detail, file=self.display, line=line)

    def document(
        self, native_id: str | None, text: str, line: int, meta: dict[str, Any]
    ) -> Document:
        if native_id is not None:
            doc_id = f"{self.source}/{native_id}"
        else:
            digest = xxhash.xxh64_hexdigest(text.encode("utf-8", "surrogatepass"))[:8]
            doc_id = f"{self.source}/{self.display}:{line}:{digest}"
        return Document(doc_id, text, self.source, {"file": self.display, "line": line, **meta})

    def from_record(self, record: Any, line: int) -> Document | Rejection:
        if not isinstance(record, dict):
            return self.reject(
                MALFORMED_JSON, line, f"a JSON {type(record).__name__}, not an object"
            )
        try:
            native_id, text, meta = self.parse(record, self.text_field, self.id_field)
        except RecordError as exc:
            return self.reject(exc.reason, line, exc.detail)
        return self.document(native_id, text, line, meta)


def _decoded_lines(ctx: _Context, max_line_bytes: int) -> Iterator[tuple[int, str] | Rejection]:
    """(line number, text) per line, or the rejection of a line too long or not UTF-8.

    A leading byte order mark is removed (and counted). An error that ends the file (truncated
    gzip, I/O error) is raised as `LineError`.
    """
    for number, raw in iter_lines(ctx.path, max_line_bytes, **ctx.line_unit()):
        if raw is None:
            yield ctx.reject(LINE_TOO_LONG, number, f"longer than {max_line_bytes} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield ctx.reject(INVALID_UTF8, number, str(exc))
            continue
        if text.startswith(BOM):
            text = text.lstrip(BOM)
            ctx.counts.bom_stripped += 1
        yield number, text


def _json_lines(ctx: _Context, max_line_bytes: int) -> Iterator[Document | Rejection]:
    try:
        for item in _decoded_lines(ctx, max_line_bytes):
            if isinstance(item, Rejection):
                yield item
                continue
            number, text = item
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield ctx.reject(MALFORMED_JSON, number, str(exc))
                continue
            yield ctx.from_record(record, number)
    except LineError as exc:
        yield ctx.reject(exc.reason, exc.line, exc.detail)


def _looks_like_paragraphs(path: InputPath, probe_lines: int = 2000) -> bool:
    """True when blank lines separate multi-line documents (CLUECorpusSmall's other layout)."""
    blank = non_blank = 0
    try:
        for _, raw in iter_lines(path):
            if raw is not None and not raw.removeprefix(BOM.encode()).strip():
                blank += 1
            else:
                non_blank += 1
            if blank + non_blank >= probe_lines:
                break
    except LineError:
        pass
    # One document per line has (almost) no blank lines; blank-separated text has many.
    return blank > 0 and blank >= 0.1 * non_blank and non_blank > blank


def _text_lines(ctx: _Context, max_line_bytes: int) -> Iterator[Document | Rejection]:
    """One document per line, or (detected per file) documents separated by blank lines."""
    paragraphs = _looks_like_paragraphs(ctx.path)
    pending: list[str] = []
    start = 0

    def flush() -> Iterator[Document]:
        if pending:
            yield ctx.document(None, "\n".join(pending), start, {})
            pending.clear()

    try:
        for item in _decoded_lines(ctx, max_line_bytes):
            if isinstance(item, Rejection):
                yield item
                continue
            number, text = item
            if not paragraphs:
                if text.strip():
                    yield ctx.document(None, text, number, {})
                continue
            if text.strip():
                if not pending:
                    start = number
                pending.append(text)
            else:
                yield from flush()
        yield from flush()
    except LineError as exc:
        yield from flush()
        yield ctx.reject(exc.reason, exc.line, exc.detail)


def _parquet(
    ctx: _Context, max_line_bytes: int, batch_rows: int = 4096
) -> Iterator[Document | Rejection]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(ctx.path if not is_url(ctx.path) else open_input(ctx.path))
    except OSError as exc:
        yield ctx.reject(UNREADABLE_FILE, None, f"{type(exc).__name__}: {exc}")
        return
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        yield ctx.reject(CORRUPT_PARQUET, None, str(exc))
        return
    row = 0
    groups = None
    if ctx.unit is not None:
        groups = list(range(ctx.unit.start, ctx.unit.end))
        row = ctx.unit.lines_before
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups):
            for record in batch.to_pylist():
                row += 1
                yield ctx.from_record(record, row)
    except (OSError, pa.ArrowException) as exc:
        yield ctx.reject(CORRUPT_PARQUET, row + 1, str(exc))


def _by_suffix(ctx: _Context, max_line_bytes: int) -> Iterator[Document | Rejection]:
    return READERS[_reader_by_suffix(ctx.kind, ctx.path)](ctx, max_line_bytes)


def _reader_by_suffix(kind: str, path: InputPath) -> str:
    name = input_name(path).lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "jsonl"
    if kind in ("clue", "txt"):
        return "txt"
    return "jsonl"


Reader = Callable[[_Context, int], Iterator[Document | Rejection]]

READERS: dict[str, Reader] = {
    "dolma": _json_lines,
    "baike_qa": _json_lines,
    "zhihu_kol": _by_suffix,  # Parquet or JSON lines
    "clue": _by_suffix,  # text (line or paragraph layout) or JSON lines with a text field
    "jsonl": _json_lines,
    "parquet": _parquet,
    "txt": _text_lines,
}


_BY_SUFFIX = ("zhihu_kol", "clue")


def file_layout(kind: str, path: InputPath) -> str:
    """How a file of source `kind` is laid out: "parquet", "paragraphs" or "lines" (see `units`)."""
    reader = _reader_by_suffix(kind, path) if kind in _BY_SUFFIX else kind
    if reader == "parquet":
        return "parquet"
    if reader == "txt" and _looks_like_paragraphs(path):
        return "paragraphs"
    return "lines"


def read_documents(
    kind: str,
    path: InputPath,
    *,
    source: str,
    text_field: str | None = None,
    id_field: str | None = None,
    display_path: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    counts: ReadCounts | None = None,
    unit: Unit | None = None,
) -> Iterator[Document | Rejection]:
    """Documents of one file (or of one `unit` of it), in file order; bad records come out as
    `Rejection`s.

    `counts`, when given, is increased by what reading repaired (see `ReadCounts`).
    """
    if kind not in READERS:
        raise ValueError(f"unknown reader {kind!r}; choose one of {', '.join(READERS)}")
    path = path if is_url(path) else Path(path)
    display = display_path or input_name(path)
    ctx = _Context(
        kind,
        path,
        source,
        display,
        text_field,
        id_field,
        counts if counts is not None else ReadCounts(),
        unit,
    )
    if ctx.parse is None:
        ctx.parse = RECORD_PARSERS["jsonl"]
    if not (ctx.path.is_file() if isinstance(ctx.path, Path) else input_is_file(ctx.path)):
        yield ctx.reject(UNREADABLE_FILE, None, "no such file")
        return
    yield from READERS[kind](ctx, max_line_bytes)
