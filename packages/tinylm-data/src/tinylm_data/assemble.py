"""Stage 2: exact and near dedup over all tasks, mixture sampling, packing, shards and rejects.

Runs in one process over the per-task files of stage 1, in task order, so the result does not
depend on the number of workers. It keeps per document only what dedup needs (a 16-byte key, and
MinHash signatures on disk when near dedup is on); token ids are streamed from disk while packing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .config import BuildConfig
from .document import Rejection
from .mixture import copies, rounds_needed
from .pack import make_packer
from .records import REJECT_SCHEMA, RowGroupWriter, rejects_table
from .shards import ShardWriter
from .tasks import Task, task_files

logger = logging.getLogger(__name__)

# Document-length histogram bins (tokens): powers of two up to 2**24.
LENGTH_BINS = np.concatenate([[0], 2 ** np.arange(0, 25)])


@dataclass
class Removal:
    stage: str  # exact_dedup | near_dedup
    kept_ordinal: int
    cluster: int | None = None


@dataclass
class AssembleResult:
    shards: list[dict]
    pack_stats: dict[str, Any]
    per_source: dict[str, Counter] = field(default_factory=dict)
    length_histograms: dict[str, list[int]] = field(default_factory=dict)
    reject_files: list[str] = field(default_factory=list)


def _keys(path: Path) -> np.ndarray:
    """(n, 2) uint64 view of the 16-byte keys of one task file."""
    column = pq.read_table(path, columns=["key"]).column("key").combine_chunks()
    if len(column) == 0:
        return np.empty((0, 2), dtype=np.uint64)
    data = np.frombuffer(column.buffers()[1], dtype=np.uint8)
    start = column.offset * 16
    return data[start : start + 16 * len(column)].view(np.uint64).reshape(-1, 2)


def exact_duplicates(key_arrays: list[np.ndarray], groups: list[int]) -> dict[int, int]:
    """Maps the global ordinal of every duplicate to the ordinal of its first occurrence.

    `groups[i]` is the dedup group of task i (all zero for global scope, the source index for
    per-source scope); documents only match inside their group.
    """
    if not key_arrays:
        return {}
    keys = np.concatenate(key_arrays) if key_arrays else np.empty((0, 2), np.uint64)
    group = np.concatenate(
        [np.full(len(k), g, dtype=np.int64) for k, g in zip(key_arrays, groups, strict=True)]
    )
    ordinal = np.arange(len(keys), dtype=np.int64)
    order = np.lexsort((ordinal, keys[:, 1], keys[:, 0], group))
    k0, k1, g = keys[order, 0], keys[order, 1], group[order]
    same_as_previous = np.zeros(len(order), dtype=bool)
    same_as_previous[1:] = (k0[1:] == k0[:-1]) & (k1[1:] == k1[:-1]) & (g[1:] == g[:-1])
    run_start = np.maximum.accumulate(np.where(~same_as_previous, np.arange(len(order)), 0))
    first = order[run_start]
    dup_positions = np.nonzero(same_as_previous)[0]
    return dict(zip(order[dup_positions].tolist(), first[dup_positions].tolist(), strict=True))


class Assembler:
    def __init__(
        self,
        config: BuildConfig,
        tasks: list[Task],
        work_dir: Path,
        out_dir: Path,
        *,
        pad_id: int,
        on_stage: Callable[[str, int | None], None] = lambda name, total: None,
        on_advance: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.config = config
        self.tasks = tasks
        self.work_dir = work_dir
        self.out_dir = out_dir
        self.pad_id = pad_id
        self.on_stage = on_stage
        self.on_advance = on_advance
        self.kept_files = [task_files(work_dir, t)["kept"] for t in tasks]
        self.rows = [pq.ParquetFile(p).metadata.num_rows for p in self.kept_files]
        self.task_offset = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)

    # --- dedup -------------------------------------------------------------------------------
    def find_removals(self) -> dict[int, Removal]:
        removals: dict[int, Removal] = {}
        groups = [t.source_index if self.config.dedup.scope == "source" else 0 for t in self.tasks]
        if self.config.dedup.exact:
            self.on_stage("exact dedup", len(self.tasks))
            keys = []
            for path in self.kept_files:
                keys.append(_keys(path))
                self.on_advance(1)
            for dup, first in exact_duplicates(keys, groups).items():
                removals[dup] = Removal("exact_dedup", first)
        if self.config.dedup.near.enabled:
            self.on_stage("near dedup", None)
            removals.update(self._near_duplicates(removals, groups))
        return removals

    def _near_duplicates(
        self, removed: dict[int, Removal], groups: list[int]
    ) -> dict[int, Removal]:
        from .dedup import near_dedup_local

        near = self.config.dedup.near

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            for task_index, path in enumerate(self.kept_files):
                parquet = pq.ParquetFile(path)
                for batch in parquet.iter_batches(
                    columns=["ordinal", "signature"], batch_size=8192
                ):
                    ordinals = batch.column("ordinal").to_numpy() + self.task_offset[task_index]
                    sig = batch.column("signature")
                    matrix = sig.values.to_numpy().astype(np.uint64).reshape(len(batch), -1)
                    alive = np.array([o not in removed for o in ordinals.tolist()], dtype=bool)
                    if alive.any():
                        group = np.full(int(alive.sum()), groups[task_index], dtype=np.int64)
                        yield ordinals[alive], group, matrix[alive]

        result = near_dedup_local(
            batches(),
            threshold=near.threshold,
            num_perm=near.num_perm,
            work_dir=self.work_dir / "near",
            verify=near.verify,
            slack=near.slack,
        )
        return {
            int(doc): Removal("near_dedup", int(kept), int(cluster))
            for doc, cluster, kept in result.removed()
        }

    # --- packing -----------------------------------------------------------------------------
    def run(self) -> AssembleResult:
        removals = self.find_removals()
        referenced = {r.kept_ordinal for r in removals.values()}
        kept_ids: dict[int, str] = {}
        weights = [s.weight for s in self.config.sources]
        per_source = {s.name: Counter() for s in self.config.sources}
        histograms = {
            s.name: np.zeros(len(LENGTH_BINS) - 1, dtype=np.int64) for s in self.config.sources
        }
        packer = make_packer(
            self.config.pack_mode,
            self.config.block_size,
            self.pad_id,
            window_docs=self.config.bestfit_window,
        )
        shards = ShardWriter(
            self.out_dir / "shards", rows_per_shard=self.config.rows_per_shard, root=self.out_dir
        )
        rejects = _RejectSink(self.out_dir / "rejects")
        rounds = rounds_needed(weights)
        self.on_stage("pack", sum(self.rows) * max(rounds, 1))
        for round_index in range(max(rounds, 1)):
            for task_index, task in enumerate(self.tasks):
                if round_index == 0:
                    rejects.add_table(pq.read_table(task_files(self.work_dir, task)["rejects"]))
                if round_index > 0 and weights[task.source_index] <= round_index:
                    self.on_advance(self.rows[task_index])
                    continue
                counts = per_source[task.source]
                parquet = pq.ParquetFile(self.kept_files[task_index])
                columns = ["ordinal", "doc_id", "line", "num_tokens", "tokens"]
                for batch in parquet.iter_batches(columns=columns, batch_size=4096):
                    ordinals = batch.column("ordinal").to_numpy() + self.task_offset[task_index]
                    doc_ids = batch.column("doc_id").to_pylist()
                    lines = batch.column("line").to_pylist()
                    num_tokens = batch.column("num_tokens").to_numpy()
                    tokens = batch.column("tokens")
                    flat = tokens.values.to_numpy()
                    offsets = tokens.offsets.to_numpy()
                    for row, ordinal in enumerate(ordinals.tolist()):
                        doc_id = doc_ids[row]
                        if ordinal in referenced:
                            kept_ids[ordinal] = doc_id
                        removal = removals.get(ordinal)
                        if removal is not None:
                            if round_index == 0:
                                counts[removal.stage] += 1
                                rejects.add(
                                    self._removal_rejection(
                                        task, doc_id, lines[row], removal, kept_ids
                                    )
                                )
                            continue
                        n_copies = copies(doc_id, weights[task.source_index], self.config.seed)
                        if round_index == 0:
                            if n_copies == 0:
                                counts["sampled_out"] += 1
                                rejects.add(
                                    Rejection(
                                        task.source,
                                        "mixture",
                                        "sampled_out",
                                        "",
                                        doc_id,
                                        task.display_path,
                                        lines[row],
                                    )
                                )
                                continue
                            counts["kept"] += 1
                            counts["tokens_kept"] += int(num_tokens[row])
                            histograms[task.source][
                                np.searchsorted(LENGTH_BINS, num_tokens[row], "right") - 1
                            ] += 1
                        if n_copies <= round_index:
                            continue
                        counts["tokens_packed"] += int(num_tokens[row])
                        counts["copies_packed"] += 1
                        for block in packer.add(doc_id, flat[offsets[row] : offsets[row + 1]]):
                            shards.add(block)
                    self.on_advance(len(batch))
        for block in packer.finish():
            shards.add(block)
        return AssembleResult(
            shards=shards.close(),
            pack_stats=packer.stats.as_dict(),
            per_source=per_source,
            length_histograms={k: v.tolist() for k, v in histograms.items()},
            reject_files=rejects.close(),
        )

    @staticmethod
    def _removal_rejection(
        task: Task, doc_id: str, line: int | None, removal: Removal, kept_ids: dict[int, str]
    ) -> Rejection:
        kept = kept_ids[removal.kept_ordinal]
        detail = f"duplicate of {kept}"
        if removal.cluster is not None:
            detail += f" (cluster {removal.cluster})"
        reason = "duplicate" if removal.stage == "exact_dedup" else "near_duplicate"
        return Rejection(
            task.source, removal.stage, reason, detail, doc_id, task.display_path, line
        )


class _RejectSink:
    """All rejects of a build, in a deterministic order, in files of at most `rows_per_file`."""

    def __init__(self, directory: Path, rows_per_file: int = 1_000_000) -> None:
        self.directory = directory
        self.rows_per_file = rows_per_file
        self.files: list[str] = []
        self._pending: list[Rejection] = []
        self._writer: RowGroupWriter | None = None
        self._path: Path | None = None

    def add(self, rejection: Rejection) -> None:
        self._pending.append(rejection)
        if len(self._pending) >= 8192:
            self.add_table(rejects_table(self._pending_take()))

    def _pending_take(self) -> list[Rejection]:
        pending, self._pending = self._pending, []
        return pending

    def add_table(self, table: pa.Table) -> None:
        if self._pending:
            pending = rejects_table(self._pending_take())
            self.add_table(pending)
        offset = 0
        while offset < table.num_rows:
            writer = self._current()
            room = self.rows_per_file - (writer.rows + writer._pending_rows)
            piece = table.slice(offset, room)
            writer.write(piece.cast(REJECT_SCHEMA))
            offset += piece.num_rows
            if writer.rows + writer._pending_rows >= self.rows_per_file:
                self._finish_file()

    def _current(self) -> RowGroupWriter:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._path = self.directory / f"rejects-{len(self.files):05d}.parquet"
            self._writer = RowGroupWriter(self._path, REJECT_SCHEMA)
        return self._writer

    def _finish_file(self) -> None:
        assert self._writer is not None and self._path is not None
        self._writer.close()
        self.files.append(self._path.name)
        self._writer = self._path = None

    def close(self) -> list[str]:
        if self._pending:
            self.add_table(rejects_table(self._pending_take()))
        if self._writer is not None:
            self._finish_file()
        if not self.files:  # always leave a (possibly empty) rejects file: readers expect one
            self._current()
            self._finish_file()
        return self.files
