"""Stage 2, the assembly: exact and near dedup over all tasks, mixture sampling, packing, shards.

The engine finds the duplicates (which needs every document at once); then one pass over the
per-task files of stage 1, in task order, puts each batch of kept documents through the declared
assembly steps (`assembly_steps`) and packs the survivors, so the result does not depend on the
engine or the number of workers. Per document it keeps only what dedup needs (a 16-byte key, and
MinHash signatures on disk when near dedup is on); token ids are streamed from disk while packing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow_writers import REJECT_SCHEMA, RowGroupWriter, rejects_table
from .config import BuildConfig
from .document import Batch, Rejection, Row
from .mixture import copies, held_out, rounds_needed
from .pack import make_packer
from .progress import Progress
from .shards import ShardWriter
from .stage_one import Task, task_files
from .stages import Stage
from .steps import Step, StepChain

if TYPE_CHECKING:
    from .engines import Engine
    from .quality.judge import QualityJudge
    from .quality.scoring import ScoringPlan

logger = logging.getLogger(__name__)

# Document-length histogram bins (tokens): powers of two up to 2**24.
LENGTH_BINS = np.concatenate([[0], 2 ** np.arange(0, 25)])


@dataclass
class Removal:
    stage: Stage  # EXACT_DEDUP or NEAR_DEDUP
    kept_ordinal: int
    cluster: int | None = None


@dataclass
class AssemblyResult:
    shards: list[dict]
    pack_stats: dict[str, Any]
    # per source: documents removed per stage and reason, and the kept/packed counts
    removed: dict[str, dict[str, Counter]] = field(default_factory=dict)
    per_source: dict[str, Counter] = field(default_factory=dict)
    length_histograms: dict[str, list[int]] = field(default_factory=dict)
    reject_files: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    validation_shards: list[dict] = field(default_factory=list)
    validation_pack_stats: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] | None = None  # QualityJudge.summary(), when the build has scorers


@dataclass(frozen=True)
class KeptFiles:
    """The kept-document files of stage 1, in task order, with what dedup needs to know of them."""

    tasks: list[Task]
    paths: list[Path]
    rows: list[int]
    offsets: np.ndarray  # (tasks + 1,) global ordinal of each file's first document
    groups: list[int]  # dedup group per task: 0 for global scope, the source index per source

    @classmethod
    def of(cls, config: BuildConfig, tasks: list[Task], stage_dir: Path) -> KeptFiles:
        paths = [task_files(stage_dir, t)["kept"] for t in tasks]
        rows = [pq.ParquetFile(p).metadata.num_rows for p in paths]
        offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        groups = [t.source_index if config.dedup.scope == "source" else 0 for t in tasks]
        return cls(tasks, paths, rows, offsets, groups)


def keys_of(path: Path) -> np.ndarray:
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
    keys = np.concatenate(key_arrays)
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


def local_exact_duplicates(kept: KeptFiles) -> dict[int, Removal]:
    keys = [keys_of(path) for path in kept.paths]
    return {
        dup: Removal(Stage.EXACT_DEDUP, first)
        for dup, first in exact_duplicates(keys, kept.groups).items()
    }


def local_near_duplicates(
    kept: KeptFiles, config: BuildConfig, removed: Mapping[int, Removal], work_dir: Path
) -> dict[int, Removal]:
    from .dedup import near_dedup_local

    near = config.dedup.near

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for task_index, path in enumerate(kept.paths):
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(columns=["ordinal", "signature"], batch_size=8192):
                ordinals = batch.column("ordinal").to_numpy() + kept.offsets[task_index]
                sig = batch.column("signature")
                matrix = sig.values.to_numpy().astype(np.uint64).reshape(len(batch), -1)
                alive = np.array([o not in removed for o in ordinals.tolist()], dtype=bool)
                if alive.any():
                    group = np.full(int(alive.sum()), kept.groups[task_index], dtype=np.int64)
                    yield ordinals[alive], group, matrix[alive]

    result = near_dedup_local(
        batches(),
        threshold=near.threshold,
        num_perm=near.num_perm,
        work_dir=work_dir / "near",
        verify=near.verify,
        slack=near.slack,
    )
    return {
        int(doc): Removal(Stage.NEAR_DEDUP, int(kept_doc), int(cluster))
        for doc, cluster, kept_doc in result.removed()
    }


# --- the assembly steps ---------------------------------------------------------------------


class DuplicateStep(Step):
    """Drops the documents the engine found to be duplicates in this step's stage."""

    def __init__(self, stage: Stage, removals: Mapping[int, Removal], ids: Mapping[int, str]):
        self.stage = stage  # type: ignore[misc]  # one class for both dedup stages
        self.removals = removals
        self.ids = ids  # doc_id of every kept ordinal a removal points at, filled as rows pass
        self.reason = "duplicate" if stage is Stage.EXACT_DEDUP else "near_duplicate"

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        kept, rejected = [], []
        for row in batch.rows:
            removal = self.removals.get(row.ordinal)
            if removal is None or removal.stage is not self.stage:
                kept.append(row)
                continue
            kept_id = self.ids[removal.kept_ordinal]
            cluster = removal.kept_ordinal if removal.cluster is None else removal.cluster
            rejected.append(
                batch.rejection(
                    row,
                    self.stage,
                    self.reason,
                    f"duplicate of {kept_id} (cluster {cluster})",
                    duplicate_of=kept_id,
                    cluster=cluster,
                )
            )
        batch.rows = kept
        return batch, rejected


class MixtureStep(Step):
    """How many times each document is used (`mixture.copies`); none drops it."""

    stage = Stage.MIXTURE

    def __init__(self, config: BuildConfig) -> None:
        self.weights = [s.weight for s in config.sources]
        self.seed = config.seed

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        kept, rejected = [], []
        weight = self.weights[batch.source_index]
        for row in batch.rows:
            row.copies = copies(row.doc_id, weight, self.seed)
            if row.copies:
                kept.append(row)
            else:
                rejected.append(batch.rejection(row, self.stage, "sampled_out"))
        batch.rows = kept
        return batch, rejected


class SplitStep(Step):
    """Marks the documents held out for validation (`mixture.held_out`); it removes none."""

    stage = Stage.SPLIT

    def __init__(self, config: BuildConfig) -> None:
        self.share = config.validation_share
        self.seed = config.seed

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        for row in batch.rows:
            row.validation = held_out(row.doc_id, self.share, self.seed)
        return batch, []


def assembly_steps(
    config: BuildConfig,
    removals: Mapping[int, Removal],
    ids: Mapping[int, str],
    judge: QualityJudge | None = None,
) -> list[Step]:
    """The per-document chain of the assembly, in order; the survivors are packed."""
    from .quality.judge import QualityStep

    return [
        DuplicateStep(Stage.EXACT_DEDUP, removals, ids),
        DuplicateStep(Stage.NEAR_DEDUP, removals, ids),
        *([QualityStep(judge)] if judge is not None else []),
        MixtureStep(config),
        SplitStep(config),
    ]


class Assembly:
    def __init__(
        self,
        config: BuildConfig,
        tasks: list[Task],
        stage_dir: Path,
        work_dir: Path,
        out_dir: Path,
        *,
        pad_id: int,
        token_columns: Mapping[str, str],
        engine: Engine,
        progress: Progress,
        quality: ScoringPlan | None = None,
    ) -> None:
        self.config = config
        self.tasks = tasks
        self.stage_dir = stage_dir  # the stage-1 files
        self.work_dir = work_dir  # this build's scratch space (near dedup)
        self.out_dir = out_dir
        self.pad_id = pad_id
        self.token_columns = dict(token_columns)
        self.engine = engine
        self.progress = progress
        self.quality = quality
        self.kept = KeptFiles.of(config, tasks, stage_dir)

    def find_removals(self, seconds: Counter) -> dict[int, Removal]:
        removals: dict[int, Removal] = {}
        if self.config.dedup.exact:
            self.progress.stage(Stage.EXACT_DEDUP, None)
            start = perf_counter()
            removals.update(self.engine.exact_duplicates(self.kept, self.config))
            seconds[Stage.EXACT_DEDUP] += perf_counter() - start
        if self.config.dedup.near.enabled:
            self.progress.stage(Stage.NEAR_DEDUP, None)
            start = perf_counter()
            removals.update(
                self.engine.near_duplicates(self.kept, self.config, removals, self.work_dir)
            )
            seconds[Stage.NEAR_DEDUP] += perf_counter() - start
        return removals

    def _batches(self, task_index: int, referenced: set[int], ids: dict[int, str]):
        task = self.tasks[task_index]
        parquet = pq.ParquetFile(self.kept.paths[task_index])
        columns = ["ordinal", "doc_id", "line", "tokens", *self.token_columns]
        for record in parquet.iter_batches(columns=columns, batch_size=4096):
            ordinals = (
                record.column("ordinal").to_numpy() + self.kept.offsets[task_index]
            ).tolist()
            doc_ids = record.column("doc_id").to_pylist()
            lines = record.column("line").to_pylist()
            flat, offsets = _list_values(record.column("tokens"))
            extra = [(name, *_list_values(record.column(name))) for name in self.token_columns]
            rows = []
            for i, (ordinal, doc_id, line) in enumerate(zip(ordinals, doc_ids, lines, strict=True)):
                if ordinal in referenced:
                    ids[ordinal] = doc_id
                row = Row(doc_id, line, tokens=flat[offsets[i] : offsets[i + 1]], ordinal=ordinal)
                for name, values, offs in extra:
                    row.token_columns[name] = values[offs[i] : offs[i + 1]]
                rows.append(row)
            yield Batch(task.source_index, task.source, task.display_path, rows)

    def run(self) -> AssemblyResult:
        config = self.config
        seconds: Counter = Counter()
        removals = self.find_removals(seconds)
        judge = None
        if self.quality is not None:
            from .quality.judge import QualityJudge

            self.progress.stage(Stage.QUALITY, None)
            start = perf_counter()
            judge = QualityJudge(self.quality, self.kept, self.stage_dir, removals)
            seconds[Stage.QUALITY] += perf_counter() - start
        ids: dict[int, str] = {}
        referenced = {r.kept_ordinal for r in removals.values()}
        chain = StepChain(assembly_steps(config, removals, ids, judge))
        weights = [s.weight for s in config.sources]
        names = [s.name for s in config.sources]
        removed: dict[str, dict[str, Counter]] = {name: {} for name in names}
        per_source = {name: Counter() for name in names}
        histograms = {name: np.zeros(len(LENGTH_BINS) - 1, dtype=np.int64) for name in names}
        packer, shards = self._packer(), self._shard_writer("shards")
        # Held-out documents are packed apart, once each, whatever their mixture copies.
        validation_packer, validation_shards = self._packer(), self._shard_writer("validation")
        rejects = _RejectSink(self.out_dir / "rejects")
        rounds = max(rounds_needed(weights), 1)
        self.progress.stage(Stage.PACK, sum(self.kept.rows) * rounds)
        for round_index in range(rounds):
            for task_index, task in enumerate(self.tasks):
                if round_index == 0 and task.first_of_file:
                    # A file's read and stage-1 rejects come first, whether or not it was split.
                    for unit in _units_of_file(self.tasks, task_index):
                        rejects.add_table(
                            pq.read_table(task_files(self.stage_dir, unit)["rejects"])
                        )
                if round_index > 0 and weights[task.source_index] <= round_index:
                    self.progress.advance(self.kept.rows[task_index])
                    continue
                counts = per_source[task.source]
                for batch in self._batches(task_index, referenced, ids):
                    size = len(batch.rows)
                    result = chain(batch)
                    if round_index == 0:  # later rounds only pack further copies
                        seconds.update(result.seconds)
                        for rejection in result.rejections:
                            by_reason = removed[task.source].setdefault(rejection.stage, Counter())
                            by_reason[rejection.reason] += 1
                            rejects.add(rejection)
                        lengths = np.fromiter(
                            (len(row.tokens) for row in result.batch.rows),
                            dtype=np.int64,
                            count=len(result.batch.rows),
                        )
                        counts["kept"] += len(lengths)
                        counts["tokens_kept"] += int(lengths.sum())
                        np.add.at(
                            histograms[task.source],
                            np.searchsorted(LENGTH_BINS, lengths, "right") - 1,
                            1,
                        )
                    start = perf_counter()
                    for row in result.batch.rows:
                        if row.validation:
                            if round_index == 0:
                                counts["validation_documents"] += 1
                                counts["validation_tokens"] += len(row.tokens)
                                for block in validation_packer.add(
                                    row.doc_id, row.tokens, row.token_columns
                                ):
                                    validation_shards.add(block)
                            continue
                        if row.copies <= round_index:
                            continue
                        counts["tokens_packed"] += len(row.tokens)
                        counts["copies_packed"] += 1
                        for block in packer.add(row.doc_id, row.tokens, row.token_columns):
                            shards.add(block)
                    seconds[Stage.PACK] += perf_counter() - start
                    self.progress.advance(size)
        start = perf_counter()
        for block in packer.finish():
            shards.add(block)
        written = shards.close()
        for block in validation_packer.finish():
            validation_shards.add(block)
        validation_written = validation_shards.close()
        seconds[Stage.PACK] += perf_counter() - start
        if judge is not None:
            start = perf_counter()
            judge.write_table(self.out_dir)
            seconds[Stage.QUALITY] += perf_counter() - start
        return AssemblyResult(
            shards=written,
            pack_stats=packer.stats.as_dict(),
            removed={
                name: {stage: dict(sorted(c.items())) for stage, c in by_stage.items()}
                for name, by_stage in removed.items()
            },
            per_source=per_source,
            length_histograms={k: v.tolist() for k, v in histograms.items()},
            reject_files=rejects.close(),
            seconds=dict(seconds),
            validation_shards=validation_written,
            validation_pack_stats=validation_packer.stats.as_dict(),
            quality=judge.summary() if judge is not None else None,
        )

    def _packer(self):
        config = self.config
        return make_packer(
            config.pack_mode,
            config.block_size,
            self.pad_id,
            window_docs=config.bestfit_window,
            token_columns=self.token_columns,
        )

    def _shard_writer(self, subdirectory: str) -> ShardWriter:
        return ShardWriter(
            self.out_dir / subdirectory,
            rows_per_shard=self.config.rows_per_shard,
            root=self.out_dir,
            token_columns={
                name: pa.from_numpy_dtype(np.dtype(dtype))
                for name, dtype in self.token_columns.items()
            },
        )


def _list_values(column: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, offsets) of a list column of one record batch."""
    return column.values.to_numpy(), column.offsets.to_numpy()


def _units_of_file(tasks: list[Task], first: int) -> Iterator[Task]:
    """The task at `first` and the further units of its file (they follow it in task order)."""
    yield tasks[first]
    for task in tasks[first + 1 :]:
        if task.first_of_file:
            return
        yield task


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
