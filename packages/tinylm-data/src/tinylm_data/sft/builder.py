"""The chat-data builder both `sft build` and `pref build` run, with a `ChatKind` plug-in each.

    read -> clean -> checks -> exact dedup   per input file, in order       (work: read-NNNNN.*)
    hold out                                 per source, seeded coin of the id
    augment -> encode                        per input file, worker pool     (work: encode-NNNNN.*)
    pack / write                             from the encoded rows, in order (staging, then publish)

The kind (`sft.build.SftKind`, `pref.build.PrefKind`) says what a record is, how a source's
files are read into records, how a record is cleaned and checked (its reject reasons), what its
dedup text is, how it is encoded (in a worker) and how the encoded rows are written and counted.

Resume: every input file's read and encode results go to OUT/<name>/.work-<version>/, each
with a summary JSON written last (the completion marker), so a killed build rerun with the same
version skips the files it finished (the dedup keys of finished files are read back, so dedup
stays exact across files) and ends with the same bytes as an uninterrupted build. The version is
derived from the inputs' contents, the resolved config, the tokenizer and the code: a changed
config is a new version, and the work an older interrupted build left is removed with a line
saying so. Memory holds the dedup keys, one batch per worker in flight, and the packer's window.

Where a source's records become records of the build (`ChatKind.source_stream`), a transform can
be inserted: it takes and yields records (or `Rejection`s) of one source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tinylm_shards import ShardFormat, write_manifest

from .. import __version__
from ..arrow_writers import REJECT_SCHEMA, WORK_PARQUET_OPTIONS, RowGroupWriter, rejects_table
from ..assembly import _RejectSink
from ..atomic import atomic_path, remove_temporaries, write_json, write_text
from ..clean import Cleaner
from ..document import Rejection
from ..faults import crash_point
from ..fingerprint import code_fingerprint, file_fingerprint, version_id
from ..mixture import validation_coin
from ..progress import Progress
from ..publish import RemoteRoot, finished_version, publish_version
from ..readers import expand_paths
from ..stage_one import bounded_ordered_map
from ..textnorm import dedup_key
from ..tokenizer import LoadedTokenizer
from .config import ChatBuildConfig, ChatSourceConfig
from .conversation import Conversation
from .encode import EncodeError
from .templates import TEMPLATES, Template

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation")
ACCOUNTING = ("in", "kept", "rejected", "duplicates")
LENGTH_BINS = np.array([0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 1 << 30])
ENCODE_BATCH = 256
"""Records per batch sent to an encoding worker."""
WORK_ROWS_PER_GROUP = 1024

RECORD_SCHEMA = pa.schema(
    [
        ("ordinal", pa.int64()),  # position among the file's kept records
        ("id", pa.string()),
        ("key", pa.binary(16)),  # the exact-dedup key
        ("group", pa.string()),  # held out together (`ChatKind.hold_out_key`)
        ("record", pa.string()),  # the cleaned record as JSON (`ChatKind.to_json`)
    ]
)

Record = Any


def encoded_schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    """The encoded rows of a kind: `id` and `validation` (held out?), then the kind's columns."""
    return pa.schema([("id", pa.string()), ("validation", pa.bool_()), *columns])


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return dataclasses.asdict(conversation)


def conversation_from_json(data: dict[str, Any]) -> Conversation:
    return Conversation(**(data | {"turns": [tuple(t) for t in data["turns"]]}))


RecordStream = Iterator[Any]  # records and Rejections of one source, in file order
RecordTransform = Callable[[RecordStream], RecordStream]


class EmptyChatBuild(RuntimeError):
    """Nothing survived: publishing would hand training an empty dataset."""


@dataclass
class ChatResult:
    out_dir: Path
    manifest: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False
    resumed: dict[str, int] = field(default_factory=dict)  # {"read": files, "encoded": files}
    published: str | None = None  # the version's URL when it was published there


@dataclass
class SourceStats:
    counts: Counter = field(default_factory=Counter)
    removed: dict[str, Counter] = field(default_factory=dict)  # stage -> reason -> n
    lengths: list[int] = field(default_factory=list)

    def merge(self, summary: dict[str, Any]) -> None:
        self.counts.update(summary["counts"])
        for stage, reasons in summary["removed"].items():
            self.removed.setdefault(stage, Counter()).update(reasons)

    def accounting(self, name: str, noun: str) -> dict[str, int]:
        duplicates = sum(self.removed.get("exact_dedup", Counter()).values())
        rejected = sum(sum(r.values()) for s, r in self.removed.items() if s != "exact_dedup")
        c = self.counts
        accounting = {
            "in": c["in"],
            "kept": c["kept"],
            "rejected": rejected,
            "duplicates": duplicates,
        }
        if accounting["in"] != accounting["kept"] + rejected + duplicates:
            raise RuntimeError(f"{noun} accounting does not close for source {name}: {accounting}")
        return accounting

    def clean_changes(self) -> dict[str, int]:
        c = self.counts
        return {k.removeprefix("clean_"): v for k, v in sorted(c.items()) if k.startswith("clean_")}


class ChatKind:
    """What one kind of chat-data build adds to the builder (subclassed per kind)."""

    format: ClassVar[ShardFormat]
    noun: ClassVar[str]  # "sample", "pair": what a kept record is called in messages
    empty_error: ClassVar[type[EmptyChatBuild]] = EmptyChatBuild
    encoded_schema: ClassVar[pa.Schema]  # `id` and `validation` first, then the kind's columns

    def __init__(self, config: ChatBuildConfig, base: Path) -> None:
        self.config = config
        self.base = base  # the config file's directory: relative paths start there

    # Records in.
    reader: ClassVar[Callable[..., RecordStream]]
    """(kind, path, *, source, display_path, fields) -> records and read Rejections."""

    def read(self, source: ChatSourceConfig, path: Path, display: str) -> RecordStream:
        return type(self).reader(
            source.kind, path, source=source.name, display_path=display, fields=source.fields
        )

    def transforms(self, source: ChatSourceConfig) -> list[RecordTransform]:
        """Applied in order to the source's stream of records (none by default)."""
        return []

    def source_stream(self, source: ChatSourceConfig, path: Path, display: str) -> RecordStream:
        """One input file's records (and read rejections), through the source's transforms."""
        stream = self.read(source, path, display)
        for transform in self.transforms(source):
            stream = transform(stream)
        return stream

    def prepare(
        self, record: Record, cleaner: Cleaner, source: ChatSourceConfig
    ) -> tuple[Record | None, Counter, tuple[str, str, str] | None]:
        """(the cleaned record, cleaning changes, None) or (None, changes, (stage, reason,
        detail)) for a record cleaning or the kind's checks reject."""
        raise NotImplementedError

    def dedup_text(self, record: Record) -> str:
        raise NotImplementedError

    def extra_inputs(self) -> list[dict[str, Any]]:
        """Inputs besides the sources' files that the output depends on (their identities go
        into the version id), checked before any work."""
        return []

    def hold_out_key(self, record: Record) -> str:
        """Records with one key land on the same side of the held-out split."""
        return record.id

    def to_json(self, record: Record) -> str:
        raise NotImplementedError

    def from_json(self, text: str) -> Record:
        raise NotImplementedError

    # Encoding (in a worker process).
    def encoder(self, tokenizer: ChatTokenizer) -> Callable[[Record, bool, Counter], dict]:
        """(record, held out?, per-source counts) -> an encoded row (a dict of the
        encoded_schema's columns); raises EncodeError for a record that cannot be encoded."""
        raise NotImplementedError

    def encoded_table(self, rows: list[dict]) -> pa.Table:
        raise NotImplementedError

    # Rows out.
    def sink(self, staging: Path, split: str, tokenizer: ChatTokenizer) -> Any:
        """An object with `add(batch: pa.RecordBatch) -> lengths` and `close() -> shards`."""
        raise NotImplementedError

    def stats(self, stats: dict[str, SourceStats], sinks: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def manifest_fields(
        self, stats_data: dict[str, Any], sinks: dict[str, Any], tokenizer: ChatTokenizer
    ) -> dict[str, Any]:
        """The kind's own manifest fields (the builder adds name, version, inputs, shards...)."""
        raise NotImplementedError


class ChatTokenizer:
    """The build's tokenizer with the template's special tokens added where missing."""

    def __init__(self, spec: str, base: Path, template: Template) -> None:
        from tokenizers import AddedToken

        self.loaded = LoadedTokenizer(spec, base)
        self.backend = self.loaded.backend
        self.template = template
        self.eos_token = self.backend.id_to_token(self.loaded.info.eos_id)
        self.added = [t for t in template.special_tokens if self.backend.token_to_id(t) is None]
        if self.added:
            self.backend.add_special_tokens(
                [AddedToken(t, special=True, normalized=False) for t in self.added]
            )
        self.sha256 = (
            hashlib.sha256(self.backend.to_str().encode()).hexdigest()
            if self.added
            else self.loaded.info.sha256
        )
        self.info = dataclasses.replace(
            self.loaded.info,
            sha256=self.sha256,
            vocab_size=self.backend.get_vocab_size(with_added_tokens=True),
        )

    @property
    def chat_template(self) -> str:
        return self.template.jinja(self.eos_token)

    def save(self, directory: Path) -> None:
        """The tokenizer files with the Jinja chat template (and added tokens) in its config."""
        self.loaded.save(directory)
        for stale in directory.glob("*.jinja"):  # a copied template would override ours
            stale.unlink()
        config_path = directory / "tokenizer_config.json"
        config = json.loads(config_path.read_text("utf-8"))
        config["chat_template"] = self.chat_template
        if self.added:
            (directory / "tokenizer.json").write_text(self.backend.to_str(), "utf-8")
            decoder = config.setdefault("added_tokens_decoder", {})
            for token in self.added:
                decoder[str(self.backend.token_to_id(token))] = {
                    "content": token,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
        config_path.write_text(
            json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
        )


@dataclass(frozen=True, slots=True)
class InputFile:
    index: int
    source_index: int
    path: Path
    display: str  # relative to the config's directory: what rejects and manifests show
    fingerprint: str
    size: int


def hold_out(config: ChatBuildConfig, samples: Iterable[tuple[int, str, Any]]) -> set:
    """The places of the held-out samples among `(source index, sample id, place)`: per source,
    those whose seeded coin is below `heldout_share`, at most `heldout_max` (the lowest coins;
    ties go to the earlier place)."""
    candidates: dict[int, list] = {}
    for index, sample_id, place in samples:
        source = config.sources[index]
        if source.heldout_share <= 0 or source.heldout_max == 0:
            continue
        coin = validation_coin(sample_id, config.seed)
        if coin < source.heldout_share:
            heap = candidates.setdefault(index, [])
            item = (-coin, _Descending(place))  # a max-heap of the lowest heldout_max coins
            if len(heap) < source.heldout_max:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    return {item[1].value for heap in candidates.values() for item in heap}


@dataclass(frozen=True, slots=True)
class _Descending:
    """Orders places in reverse, so the max-heap evicts the later of two equal coins first."""

    value: Any

    def __lt__(self, other: _Descending) -> bool:
        return self.value > other.value


def run_chat_build(
    kind: ChatKind,
    base: Path,
    out_root: Path,
    progress: Progress | None = None,
    *,
    allow_empty: bool = False,
    workers: int = 1,
    publish_to: RemoteRoot | None = None,
) -> ChatResult:
    config = kind.config
    progress = progress or Progress()
    seconds: Counter = Counter()
    started = perf_counter()
    progress.stage("load tokenizer, hash inputs", None)
    tokenizer = ChatTokenizer(config.tokenizer, base, TEMPLATES[config.template])
    inputs, config_data, code, version = _hash_inputs(
        config, base, tokenizer.sha256, kind.extra_inputs()
    )
    dataset_dir = out_root / config.name
    out_dir = dataset_dir / version
    done = finished_version(dataset_dir, version, publish_to)
    if done is not None:
        if done.url is not None:  # an upload this run finished
            shutil.rmtree(dataset_dir / f".work-{version}", ignore_errors=True)
        return ChatResult(out_dir, done.manifest, done.stats, reused=True, published=done.url)
    identity = {
        "version": version,
        "config": config_data,
        "code": code,
        "tokenizer": tokenizer.sha256,
        "inputs": [[f.display, f.fingerprint] for f in inputs],
    }
    work = _work_dir(dataset_dir, version, identity)
    seconds["hash"] += perf_counter() - started

    stats = {s.name: SourceStats() for s in config.sources}
    reader = _FileReader(kind, work)
    read_summaries, resumed_read = reader.run(inputs, progress, seconds)
    for f, summary in zip(inputs, read_summaries, strict=True):
        stats[config.sources[f.source_index].name].merge(summary)

    held = hold_out(
        config,
        (
            (f.source_index, sample_id, (f.index, ordinal))
            for f in inputs
            for ordinal, sample_id in enumerate(_column(work.records(f), "group"))
        ),
    )
    encode_summaries, resumed_encode = _encode_files(
        kind, tokenizer, work, inputs, read_summaries, held, workers, progress, seconds
    )
    for f, summary in zip(inputs, encode_summaries, strict=True):
        stats[config.sources[f.source_index].name].merge(summary)

    t0 = perf_counter()
    staging = dataset_dir / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    progress.stage(
        "pack, write shards", sum(s["counts"].get("kept", 0) for s in encode_summaries) or None
    )
    sinks = {split: kind.sink(staging, split, tokenizer) for split in SPLITS}
    for f in inputs:
        lengths = stats[config.sources[f.source_index].name].lengths
        for batch in pq.ParquetFile(work.encoded(f)).iter_batches(WORK_ROWS_PER_GROUP):
            held_out = batch.column("validation").to_numpy(zero_copy_only=False)
            for split, wanted in (("train", ~held_out), ("validation", held_out)):
                if wanted.any():
                    lengths += sinks[split].add(batch.filter(pa.array(wanted)))
            progress.advance(batch.num_rows)
    for sink in sinks.values():
        sink.close()
    rejects = _RejectSink(staging / "rejects")
    for stage in ("read", "encode"):
        for f in inputs:
            for batch in pq.ParquetFile(work.rejects(stage, f)).iter_batches(8192):
                rejects.add_table(pa.Table.from_batches([batch]))
    reject_files = rejects.close()
    seconds["pack_write"] += perf_counter() - t0

    progress.stage("write manifest", None)
    for summary in [*read_summaries, *encode_summaries]:
        seconds.update(summary["seconds"])
    stats_data = kind.stats(stats, sinks)
    # the only part that differs between two runs of one build
    stats_data["seconds"] = {k: round(v, 3) for k, v in sorted(seconds.items())}
    total = stats_data["total"]
    if total["kept"] == 0 and not allow_empty:
        shutil.rmtree(staging, ignore_errors=True)
        raise kind.empty_error(
            f"nothing to build: all {total['in']:,} input records were removed "
            f"({total['rejected']:,} rejected, {total['duplicates']:,} duplicates; see the rejects)"
        )
    tokenizer.save(staging / "tokenizer")
    write_json(staging / "stats.json", stats_data)
    try:
        from .plots import plot_sft

        plot_sft(
            stats_data, {n: s.lengths for n, s in stats.items()}, LENGTH_BINS, staging / "plots"
        )
    except Exception as exc:  # a plot must never cost the user the build
        logger.warning("could not draw plots: %s", exc)
    fields = {
        "name": config.name,
        "version": version,
        "created_by": {"package": "tinylm-data", "version": __version__, "code": code},
        "tokenizer": tokenizer.info.as_dict(),
        "block_size": config.max_length,
        **kind.manifest_fields(stats_data, sinks, tokenizer),
        "inputs": [
            {
                "source": config.sources[f.source_index].name,
                "file": f.display,
                "bytes": f.size,
                "xxh3_128": f.fingerprint,
            }
            for f in inputs
        ],
        "config": config_data,
        "rejects": [f"rejects/{name}" for name in reject_files],
    }
    manifest = write_manifest(staging, fields, format=kind.format).raw
    if out_dir.exists():  # a directory left without a manifest: not a finished build
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    write_text(dataset_dir / "LATEST", version + "\n")
    url = publish_version(dataset_dir, version, publish_to)
    shutil.rmtree(work.root, ignore_errors=True)
    return ChatResult(
        out_dir,
        manifest,
        stats_data,
        resumed={"read": resumed_read, "encoded": resumed_encode},
        published=url,
    )


def _hash_inputs(
    config: ChatBuildConfig, base: Path, tokenizer_sha256: str, extra: list[dict[str, Any]]
):
    """(input files, resolved config, code fingerprint, version id) of a chat-data build."""
    code = code_fingerprint()
    inputs: list[InputFile] = []
    for index, source in enumerate(config.sources):
        for path in expand_paths(source.paths, base):
            try:
                display = path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                display = path.name
            inputs.append(
                InputFile(
                    len(inputs), index, path, display, file_fingerprint(path), path.stat().st_size
                )
            )
    config_data = config.model_dump(mode="json")
    version = version_id(
        inputs=[
            {
                "source": config.sources[f.source_index].name,
                "file": f.display,
                "content": f.fingerprint,
            }
            for f in inputs
        ]
        + extra,
        config=config_data,
        code_version=code,
        tokenizer_sha256=tokenizer_sha256,
    )
    return inputs, config_data, code, version


@dataclass(frozen=True)
class _Work:
    """OUT/<name>/.work-<version>/: the per-input-file results a rerun resumes from."""

    root: Path

    def records(self, f: InputFile) -> Path:
        return self.root / f"read-{f.index:05d}.parquet"

    def encoded(self, f: InputFile) -> Path:
        return self.root / f"encode-{f.index:05d}.parquet"

    def rejects(self, stage: str, f: InputFile) -> Path:
        return self.root / f"{stage}-{f.index:05d}.rejects.parquet"

    def summary(self, stage: str, f: InputFile) -> Path:
        return self.root / f"{stage}-{f.index:05d}.json"

    def finished(self, stage: str, f: InputFile) -> dict[str, Any] | None:
        path = self.summary(stage, f)
        if not path.is_file():
            return None
        data = json.loads(path.read_text("utf-8"))
        return data if data.get("fingerprint") == f.fingerprint else None


def _work_dir(dataset_dir: Path, version: str, identity: dict[str, Any]) -> _Work:
    """This version's work directory, kept from an interrupted run when it is the same build;
    the work and staging directories of other versions are removed, saying why."""
    root = dataset_dir / f".work-{version}"
    for other in sorted(dataset_dir.glob(".work-*")) if dataset_dir.is_dir() else ():
        if other != root:
            logger.warning(
                "the config, inputs, tokenizer or code changed since an interrupted build left "
                "%s: its work is not reused (removed); building %s from the start",
                other.name,
                version,
            )
            shutil.rmtree(other, ignore_errors=True)
    for other in dataset_dir.glob(".staging-*") if dataset_dir.is_dir() else ():
        shutil.rmtree(other, ignore_errors=True)
    marker = root / "identity.json"
    if marker.is_file():
        found = json.loads(marker.read_text("utf-8"))
        if found != identity:
            raise RuntimeError(
                f"{root} holds the work of another build than {version}: refusing to mix "
                "outputs (delete the directory to start over)"
            )
        stale = remove_temporaries(root)
        if stale:
            logger.info("removed %d partial files left by an interrupted run", stale)
    else:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        write_json(marker, identity)
    return _Work(root)


def _column(path: Path, name: str) -> Iterator[Any]:
    for batch in pq.ParquetFile(path).iter_batches(8192, columns=[name]):
        yield from batch.column(0).to_pylist()


def _write_rejects(path: Path, rejections: list[Rejection]) -> None:
    writer = RowGroupWriter(path, REJECT_SCHEMA, options=WORK_PARQUET_OPTIONS)
    writer.write(rejects_table(rejections))
    writer.close()


def _finish(
    work: _Work, stage: str, f: InputFile, counts: Counter, rejections: list[Rejection],
    seconds: dict[str, float], **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """The summary of one file's stage, written last: the mark that the stage finished it."""
    removed: dict[str, Counter] = {}
    for r in rejections:
        removed.setdefault(r.stage, Counter())[r.reason] += 1
    summary = {
        "file": f.display,
        "fingerprint": f.fingerprint,
        "counts": dict(sorted(counts.items())),
        "removed": {s: dict(sorted(reasons.items())) for s, reasons in removed.items()},
        "seconds": seconds,
        **extra,
    }
    write_json(work.summary(stage, f), summary)
    return summary


class _FileReader:
    """Read, clean, check and dedup every input file in order, resuming finished ones."""

    def __init__(self, kind: ChatKind, work: _Work) -> None:
        self.kind, self.config, self.work = kind, kind.config, work
        self.seen: dict[bytes, str] = {}  # dedup key -> the id of its first record

    def run(
        self, inputs: list[InputFile], progress: Progress, seconds: Counter
    ) -> tuple[list[dict], int]:
        summaries: list[dict] = []
        todo = [f for f in inputs if self.work.finished("read", f) is None]
        progress.stage("read, clean, dedup", sum(f.size for f in todo) or None)
        for f in inputs:
            summary = self.work.finished("read", f)
            if summary is not None:
                if self.config.dedup:  # the keys of a finished file, for the files after it
                    table = pq.read_table(self.work.records(f), columns=["key", "id"])
                    for key, sample_id in zip(
                        *(table.column(c).to_pylist() for c in ("key", "id")), strict=True
                    ):
                        self.seen.setdefault(key, sample_id)
            else:
                summary = self._read(f)
                progress.advance(f.size)
                crash_point("chat_read")
            summaries.append(summary)
        if len(todo) < len(inputs):
            logger.info(
                "resuming: %d of %d input files were read by an interrupted run",
                len(inputs) - len(todo),
                len(inputs),
            )
        return summaries, len(inputs) - len(todo)

    def _read(self, f: InputFile) -> dict[str, Any]:
        t0 = perf_counter()
        source = self.config.sources[f.source_index]
        cleaner = Cleaner(source.clean)
        counts: Counter = Counter()
        rejections: list[Rejection] = []
        rows: list[tuple[str, bytes, str]] = []
        with (
            atomic_path(self.work.records(f)) as records_tmp,
            atomic_path(self.work.rejects("read", f)) as rejects_tmp,
        ):
            records = RowGroupWriter(
                records_tmp, RECORD_SCHEMA, WORK_ROWS_PER_GROUP, WORK_PARQUET_OPTIONS
            )
            for item in self.kind.source_stream(source, f.path, f.display):
                counts["in"] += 1
                if isinstance(item, Rejection):
                    rejections.append(item)
                    continue
                record, changes, problem = self.kind.prepare(item, cleaner, source)
                counts.update({f"clean_{k}": v for k, v in changes.items()})
                if problem is not None:
                    rejections.append(
                        Rejection(source.name, *problem, item.id, item.file, item.line)
                    )
                    continue
                key = dedup_key(self.kind.dedup_text(record))
                if self.config.dedup:
                    first = self.seen.setdefault(key, record.id)
                    if first != record.id:
                        rejections.append(
                            Rejection(
                                source.name, "exact_dedup", "duplicate", f"same as {first}",
                                record.id, record.file, record.line,
                            )
                        )  # fmt: skip
                        continue
                rows.append(
                    (record.id, key, self.kind.hold_out_key(record), self.kind.to_json(record))
                )
                if len(rows) >= WORK_ROWS_PER_GROUP:
                    self._write_records(records, counts, rows)
                    rows = []
            self._write_records(records, counts, rows)
            records.close()
            _write_rejects(rejects_tmp, rejections)
        records_written = counts.pop("read_records", 0)
        seconds = {"read_clean_dedup": perf_counter() - t0}
        return _finish(self.work, "read", f, counts, rejections, seconds, records=records_written)

    @staticmethod
    def _write_records(writer: RowGroupWriter, counts: Counter, rows: list) -> None:
        if not rows:
            return
        start = counts["read_records"]
        counts["read_records"] += len(rows)
        ids, keys, groups, texts = zip(*rows, strict=True)
        writer.write(
            pa.Table.from_pydict(
                {
                    "ordinal": pa.array(np.arange(start, start + len(rows), dtype=np.int64)),
                    "id": pa.array(ids, pa.string()),
                    "key": pa.array(keys, pa.binary(16)),
                    "group": pa.array(groups, pa.string()),
                    "record": pa.array(texts, pa.string()),
                },
                schema=RECORD_SCHEMA,
            )
        )


# Encoding workers: set up once per process, then given batches (stage_one's pool pattern).
_ENCODE: tuple[ChatKind, Callable] | None = None


def _init_encoder(kind: ChatKind, tokenizer: ChatTokenizer) -> None:
    global _ENCODE
    _ENCODE = (kind, kind.encoder(tokenizer))


def _init_encoder_worker(kind: ChatKind, tokenizer: ChatTokenizer) -> None:
    # The pool is the parallelism; nested tokenizer threads would oversubscribe the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _init_encoder(kind, tokenizer)


def _encode_batch(
    items: list[tuple[str, bool]],
) -> tuple[pa.Table, list[Rejection], Counter, float]:
    """(encoded rows, tokenize rejections, counts, seconds) of (record JSON, held out?) items."""
    assert _ENCODE is not None, "_init_encoder was not called in this process"
    kind, encode = _ENCODE
    t0 = perf_counter()
    rows, rejections, counts = [], [], Counter()
    for text, validation in items:
        record = kind.from_json(text)
        try:
            rows.append(encode(record, validation, counts))
        except EncodeError as exc:
            rejections.append(
                Rejection(
                    record.source, "tokenize", exc.reason, exc.detail,
                    record.id, record.file, record.line,
                )
            )  # fmt: skip
    return kind.encoded_table(rows), rejections, counts, perf_counter() - t0


def _encode_files(
    kind: ChatKind,
    tokenizer: ChatTokenizer,
    work: _Work,
    inputs: list[InputFile],
    read_summaries: list[dict],
    held: set,
    workers: int,
    progress: Progress,
    seconds: Counter,
) -> tuple[list[dict], int]:
    summaries: list[dict | None] = [work.finished("encode", f) for f in inputs]
    todo = [f for f, s in zip(inputs, summaries, strict=True) if s is None]
    progress.stage(
        f"augment, tokenize ({workers} worker{'s' * (workers > 1)})",
        sum(read_summaries[f.index]["records"] for f in todo) or None,
    )
    if not todo:
        return summaries, len(inputs)  # type: ignore[return-value]
    pool = None
    if workers > 1:
        import multiprocessing as mp

        pool = mp.get_context("fork").Pool(
            workers, initializer=_init_encoder_worker, initargs=(kind, tokenizer)
        )
    else:
        _init_encoder(kind, tokenizer)
    try:
        for f in todo:
            summaries[f.index] = _encode_file(kind, work, f, held, pool, workers, progress)
            crash_point("chat_encode")
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        raise
    if pool is not None:
        pool.close()
        pool.join()
    if len(todo) < len(inputs):
        logger.info(
            "resuming: %d of %d input files were encoded by an interrupted run",
            len(inputs) - len(todo),
            len(inputs),
        )
    return summaries, len(inputs) - len(todo)  # type: ignore[return-value]


def _encode_file(kind, work: _Work, f: InputFile, held: set, pool, workers, progress) -> dict:
    def batches() -> Iterator[tuple]:
        parquet = pq.ParquetFile(work.records(f))
        for batch in parquet.iter_batches(ENCODE_BATCH, columns=["ordinal", "record"]):
            ordinals = batch.column(0).to_pylist()
            texts = batch.column(1).to_pylist()
            items = [(t, (f.index, o) in held) for o, t in zip(ordinals, texts, strict=True)]
            yield len(items), items

    counts: Counter = Counter()
    rejections: list[Rejection] = []
    spent = 0.0
    with (
        atomic_path(work.encoded(f)) as encoded_tmp,
        atomic_path(work.rejects("encode", f)) as rejects_tmp,
    ):
        encoded = RowGroupWriter(
            encoded_tmp, kind.encoded_schema, WORK_ROWS_PER_GROUP, WORK_PARQUET_OPTIONS
        )
        for size, (table, rejected, batch_counts, batch_seconds) in bounded_ordered_map(
            pool, batches(), 2 * max(workers, 1), fn=_encode_batch
        ):
            encoded.write(table)
            rejections += rejected
            counts.update(batch_counts)
            spent += batch_seconds
            progress.advance(size)
        encoded.close()
        _write_rejects(rejects_tmp, rejections)
    return _finish(work, "encode", f, counts, rejections, {"encode": spent})  # summed over workers
