"""Stage 1: every input file (or unit of a large one) is a task whose documents are read and put
through the stage-1 steps.

A task writes its kept documents (ids, keys, token ids, signatures) and its rejects to Parquet,
and a summary JSON last; the summary is the completion marker, so a rerun skips finished tasks and
redoes a task that was cut off. A file larger than `split_bytes` is several tasks, one per unit
(`readers.units`: line-aligned byte ranges, Parquet row groups), in file order; the tasks of a file
read whole keep the key they had before files were split, so earlier work directories resume. The files are named by the task's key, a hash of everything its
result depends on (the file, its source's reader, cleaning and filter settings, the tokenizer, the
dedup hashing settings, the code) and of nothing else: a build that changes only what the assembly
does (mixture weights, the validation share, dedup thresholds, packing) reuses them. Batches go to
a process pool with a bounded number in flight (memory stays bounded however large a file is)
and come back in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import pyarrow as pa

from tinylm_shards import list_array

from .arrow_writers import (
    REJECT_SCHEMA,
    WORK_PARQUET_OPTIONS,
    RowGroupWriter,
    rejects_table,
)
from .atomic import atomic_path, write_json
from .config import BuildConfig, SourceConfig
from .document import Document, Rejection
from .faults import crash_point
from .readers import ReadCounts, Unit
from .stage_one_worker import (
    ONE_THREAD,
    BatchResult,
    TokenizerThreads,
    WorkerSetup,
    init_worker,
    process_batch,
)
from .stages import Stage
from .steps import declared_token_columns

logger = logging.getLogger(__name__)


class StrictModeError(RuntimeError):
    """Raised in --strict mode at the first piece of bad input."""


@dataclass(frozen=True, slots=True)
class Task:
    index: int
    source_index: int
    source: str
    kind: str
    path: Path | str  # str: an fsspec URL (`readers.storage`)
    display_path: str  # relative to the config's directory: what rejects and manifests show
    fingerprint: str
    size: int  # bytes of the file, or of the unit
    key: str  # names its stage-1 files: see `task_key`
    unit: Unit | None = None  # None: the whole file

    @property
    def first_of_file(self) -> bool:
        return self.unit is None or self.unit.index == 0


def stage_one_identity(
    config: BuildConfig, *, tokenizer_sha256: str, code_version: str
) -> dict[str, Any]:
    """What every task's stage-1 result depends on, beside its own file and source settings."""
    near = config.dedup.near
    return {
        "code": code_version,
        "tokenizer": tokenizer_sha256,
        "max_line_bytes": config.max_line_bytes,
        "filters": config.filters.model_dump(mode="json"),
        "exact": config.dedup.exact,
        # threshold, verify and slack are applied in the assembly; these make the signatures
        "minhash": near.model_dump(
            mode="json", include={"num_perm", "shingle", "ngram_chars", "ngram", "ngram_zh", "seed"}
        )
        if near.enabled
        else None,
    } | ({"quality_text": config.quality.text_chars()} if config.quality.enabled else {})


def task_key(
    identity: dict[str, Any],
    source: SourceConfig,
    *,
    fingerprint: str,
    display_path: str,
    unit: Unit | None = None,
) -> str:
    """The stage-1 key of one input file or unit: equal exactly when its stage-1 result would be."""
    import json

    import xxhash

    payload = {
        **identity,
        "source": source.model_dump(mode="json", exclude={"weight", "paths"}),
        "file": display_path,
        "content": fingerprint,
    } | ({"unit": unit.label(), "lines_before": unit.lines_before} if unit else {})
    return xxhash.xxh3_128_hexdigest(json.dumps(payload, sort_keys=True).encode())


def kept_schema(
    signature_type: pa.DataType | None,
    token_columns: Mapping[str, str] | None = None,
    *,
    text: bool = False,
) -> pa.Schema:
    fields = [
        ("ordinal", pa.int64()),  # position among the task's kept documents
        ("doc_id", pa.string()),
        ("line", pa.int64()),
        ("key", pa.binary(16)),
        ("language", pa.string()),
        ("num_chars", pa.int64()),
        ("num_tokens", pa.int32()),
        ("tokens", pa.list_(pa.int32())),
    ]
    if signature_type is not None:
        fields.append(("signature", pa.list_(signature_type)))
    if text:  # the first characters, for the quality scorers
        fields.append(("text", pa.string()))
    for name, dtype in (token_columns or {}).items():
        fields.append((name, pa.list_(pa.from_numpy_dtype(np.dtype(dtype)))))
    return pa.schema(fields)


def task_files(stage_dir: Path, task: Task) -> dict[str, Path]:
    return {
        "kept": stage_dir / f"{task.key}.kept.parquet",
        "rejects": stage_dir / f"{task.key}.rejects.parquet",
        "summary": stage_dir / f"{task.key}.json",
    }


def load_finished(stage_dir: Path, task: Task) -> dict[str, Any] | None:
    """The summary of `task` when an earlier build finished it (the same key), else None."""
    import json

    summary = task_files(stage_dir, task)["summary"]
    if not summary.is_file():
        return None
    data = json.loads(summary.read_text())
    if data.get("fingerprint") != task.fingerprint:
        return None
    return data | {"task": task.index}  # its place in this build's task list


def bounded_ordered_map(
    pool, items: Iterable[tuple], max_pending: int, fn: Callable[..., Any] = process_batch
) -> Iterator[tuple[Any, Any]]:
    """Like `pool.imap(fn, ...)`, but never more than `max_pending` batches in flight (bounded
    memory); without a pool, `fn` runs in this process.

    Yields `(item_tag, result)`; `item_tag` is the first element of each item, kept in the main
    process so that bookkeeping travels with its batch.
    """
    pending: deque = deque()
    for tag, *args in items:
        if pool is None:
            yield tag, fn(*args)
            continue
        pending.append((tag, pool.apply_async(fn, args)))
        if len(pending) >= max_pending:
            head_tag, handle = pending.popleft()
            yield head_tag, handle.get()
    while pending:
        head_tag, handle = pending.popleft()
        yield head_tag, handle.get()


class TaskReader:
    """Reads the documents of one task with its source's reader settings (picklable)."""

    def __init__(self, config: BuildConfig) -> None:
        self.config = config

    def __call__(
        self, task: Task, counts: ReadCounts | None = None
    ) -> Iterator[Document | Rejection]:
        from .readers import read_documents

        source = self.config.sources[task.source_index]
        return read_documents(
            source.kind,
            task.path,
            source=source.name,
            text_field=source.text_field,
            id_field=source.id_field,
            display_path=task.display_path,
            max_line_bytes=self.config.max_line_bytes,
            counts=counts,
            unit=task.unit,
        )


@dataclass(frozen=True)
class StageOneJob:
    """Everything an engine needs to run stage-1 tasks, in any process."""

    config: BuildConfig
    setup: WorkerSetup
    stage_dir: Path  # where the per-task files go (see `task_key`)
    batch_size: int
    strict: bool

    def runner(
        self,
        *,
        workers: int,
        threads: TokenizerThreads = ONE_THREAD,
        in_worker: bool = False,
    ) -> TaskRunner:
        """`threads`: each worker's tokenizer threads; `in_worker`: this process is itself a
        worker forked (or started by an engine) for the build, not the one that started it."""
        return TaskRunner(
            self.config,
            self.setup,
            self.stage_dir,
            workers=workers,
            tokenizer_threads=threads,
            in_worker=in_worker,
            batch_size=self.batch_size,
            strict=self.strict,
            reader=TaskReader(self.config),
        )


class TaskRunner:
    """Runs stage 1 for a list of tasks with one shared process pool."""

    def __init__(
        self,
        config: BuildConfig,
        setup: WorkerSetup,
        stage_dir: Path,
        *,
        workers: int,
        tokenizer_threads: TokenizerThreads = ONE_THREAD,
        in_worker: bool = False,
        batch_size: int,
        strict: bool,
        reader: Callable[..., Iterator[Document | Rejection]],
    ) -> None:
        self.config = config
        self.setup = setup
        self.stage_dir = stage_dir
        self.workers = workers
        self.tokenizer_threads = tokenizer_threads
        self.in_worker = in_worker
        self.batch_size = batch_size
        self.strict = strict
        self.reader = reader
        self._pool = None
        self._settings: contextlib.ExitStack | None = None  # encoder settings put back on exit

    def __enter__(self) -> TaskRunner:
        from .tokenizer import encoder_settings_restored, forking_encoders

        self._settings = contextlib.ExitStack()
        if self.workers > 1:
            import multiprocessing as mp

            self._settings.enter_context(forking_encoders())
            self._pool = mp.get_context("fork").Pool(
                self.workers, initializer=init_worker, initargs=(self.setup, self.tokenizer_threads)
            )
        else:
            if not self.in_worker:
                self._settings.enter_context(encoder_settings_restored())
            init_worker(self.setup, self.tokenizer_threads, forked=self.in_worker)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            if exc[0] is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
        if self._settings is not None:
            self._settings.close()

    def run(self, task: Task) -> dict[str, Any]:
        files = task_files(self.stage_dir, task)
        counts: dict[str, Any] = {
            "in": 0,
            "rejected": {},  # stage -> Counter of reasons
            "changes": Counter(),
            "read_repairs": Counter(),  # what reading repaired instead of rejecting
            "kept": 0,
            "chars_in": 0,
            "tokens": 0,
            "seconds": Counter(),  # stage -> seconds (summed over workers)
        }
        near = self.config.dedup.near
        # MinHash values fit in 32 bits; int64 keeps them readable by Spark (no unsigned types).
        signature_type = pa.int64() if near.enabled else None
        token_columns = declared_token_columns(self.setup.extra_steps)
        with atomic_path(files["kept"]) as kept_tmp, atomic_path(files["rejects"]) as rej_tmp:
            kept_writer = RowGroupWriter(
                kept_tmp,
                kept_schema(signature_type, token_columns, text=self.config.quality.enabled),
                options=WORK_PARQUET_OPTIONS,
            )
            rejects_writer = RowGroupWriter(rej_tmp, REJECT_SCHEMA)
            try:
                for read_rejects, result in bounded_ordered_map(
                    self._pool, self._batches(task, counts), max_pending=2 * max(self.workers, 1)
                ):
                    self._record(task, counts, read_rejects, result, kept_writer, rejects_writer)
                    crash_point("batch")
            finally:
                kept_writer.close()
                rejects_writer.close()
        summary = {
            "task": task.index,
            "source": task.source,
            "file": task.display_path,
            "fingerprint": task.fingerprint,
            **({"unit": task.unit.label()} if task.unit else {}),
            "bytes": task.size,
            **{
                k: dict(sorted(v.items())) if isinstance(v, Counter) else v
                for k, v in counts.items()
            },
            "rejected": {
                stage: dict(sorted(reasons.items()))
                for stage, reasons in counts["rejected"].items()
            },
        }
        write_json(files["summary"], summary)
        return summary

    def _batches(self, task: Task, counts: dict[str, Any]) -> Iterator[tuple]:
        """Yields `(read_rejections, *process_batch arguments)`; read rejections ride with their batch."""
        docs: list[tuple[str, str, int | None]] = []
        rejections: list[Rejection] = []
        repairs = ReadCounts()
        for item in _timed(self.reader(task, repairs), counts["seconds"], Stage.READ):
            counts["in"] += 1
            if isinstance(item, Rejection):
                if self.strict:
                    where = (
                        f"{item.file or task.display_path}:{item.line}"
                        if item.line
                        else (item.file or task.display_path)
                    )
                    raise StrictModeError(
                        f"bad input in {where}: {item.reason}"
                        + (f" ({item.detail})" if item.detail else "")
                    )
                rejections.append(item)
                continue
            docs.append((item.id, item.text, item.meta.get("line")))
            if len(docs) >= self.batch_size:
                yield rejections, task.source_index, task.source, task.display_path, docs
                docs, rejections = [], []
        if docs or rejections:
            yield rejections, task.source_index, task.source, task.display_path, docs
        counts["read_repairs"].update(dataclasses.asdict(repairs))

    def _record(
        self,
        task: Task,
        counts: dict[str, Any],
        read_rejects: list[Rejection],
        result: BatchResult,
        kept_writer: RowGroupWriter,
        rejects_writer: RowGroupWriter,
    ) -> None:
        rejections = read_rejects + result.rejections
        for rejection in rejections:
            by_reason = counts["rejected"].setdefault(rejection.stage, Counter())
            by_reason[rejection.reason] += 1
        rejects_writer.write(rejects_table(rejections))
        counts["changes"].update(result.changes)
        counts["seconds"].update(result.seconds)
        counts["chars_in"] += result.chars_in
        if not result.kept:
            return
        kept = result.kept
        start = counts["kept"]
        counts["kept"] += len(kept)
        num_tokens = np.fromiter((len(k.tokens) for k in kept), dtype=np.int32, count=len(kept))
        counts["tokens"] += int(num_tokens.sum())
        columns = {
            "ordinal": pa.array(np.arange(start, start + len(kept), dtype=np.int64)),
            "doc_id": pa.array([k.doc_id for k in kept], pa.string()),
            "line": pa.array([k.line for k in kept], pa.int64()),
            "key": pa.array([k.key for k in kept], pa.binary(16)),
            "language": pa.array([k.language for k in kept], pa.string()),
            "num_chars": pa.array([k.num_chars for k in kept], pa.int64()),
            "num_tokens": pa.array(num_tokens),
            "tokens": list_array([k.tokens for k in kept], pa.int32()),
        }
        schema = kept_writer.schema
        if schema.get_field_index("signature") >= 0:
            columns["signature"] = list_array(
                [np.asarray(k.signature, dtype=np.int64) for k in kept], pa.int64()
            )
        if schema.get_field_index("text") >= 0:
            columns["text"] = pa.array([k.text for k in kept], pa.string())
        for name in schema.names[len(columns) :]:
            columns[name] = list_array(
                [_token_column(k, name) for k in kept], schema.field(name).type.value_type
            )
        kept_writer.write(pa.Table.from_pydict(columns, schema=schema))


def _token_column(row, name: str) -> np.ndarray:
    values = row.token_columns.get(name)
    if values is None or len(values) != len(row.tokens):
        raise ValueError(
            f"document {row.doc_id}: token column {name!r} must have one value per token "
            f"({len(row.tokens)}), got {'none' if values is None else len(values)}"
        )
    return values


def _timed(items: Iterator, seconds: Counter, stage: str) -> Iterator:
    """`items`, adding the time spent producing each one to `seconds[stage]`."""
    items = iter(items)
    while True:
        start = perf_counter()
        try:
            item = next(items)
        except StopIteration:
            seconds[stage] += perf_counter() - start
            return
        seconds[stage] += perf_counter() - start
        yield item
