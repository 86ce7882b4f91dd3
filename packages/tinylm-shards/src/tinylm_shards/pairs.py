"""Preference pairs: prompt-first truncation, the writer, and row-group-granular reading.

A pair is a prompt and two answers to it. The sequences a model scores are prompt + chosen and
prompt + rejected; only the answer tokens are labelled (`answer_mask`). Rows are truncated to
the dataset's max_length (the manifest's block_size) on the prompt side first: the prompt loses
its oldest tokens down to `min_prompt_tokens`, and only then are the answers cut at their end.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow import list_array, list_parts
from .errors import ShardError
from .files import atomic_path, sha256_file
from .formats import PREFERENCE_PAIRS
from .manifest import Manifest, load_manifest
from .verify import shard_problems
from .writer import PARQUET_OPTIONS, ROW_GROUP_SIZE


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreferencePair:
    """One row of preference-pair shards."""

    pair_id: str
    prompt_ids: np.ndarray
    """(P,) the prompt (template included), after truncation."""
    chosen_ids: np.ndarray
    """(C,) the preferred answer, every token labelled."""
    rejected_ids: np.ndarray
    """(R,) the other answer, every token labelled."""
    prompt_truncated: int = 0
    """Prompt tokens removed from its start to fit max_length."""
    answer_truncated: int = 0
    """Answer tokens removed from the answers' ends (both answers together)."""
    index: int = -1
    """The pair's index in its dataset (-1 when not read from shards)."""

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """prompt + chosen and prompt + rejected."""
        return (
            np.concatenate([self.prompt_ids, self.chosen_ids]),
            np.concatenate([self.prompt_ids, self.rejected_ids]),
        )

    @property
    def length(self) -> int:
        """The longer of the two sequences."""
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


def answer_mask(prompt_length: int, answer_length: int) -> np.ndarray:
    """(prompt_length + answer_length,) int8: 1 on the answer's tokens, 0 on the prompt's."""
    mask = np.zeros(prompt_length + answer_length, dtype=np.int8)
    mask[prompt_length:] = 1
    return mask


def truncate_pair(
    pair_id: str,
    prompt: Sequence[int],
    chosen: Sequence[int],
    rejected: Sequence[int],
    *,
    max_length: int,
    min_prompt_tokens: int = 1,
) -> PreferencePair:
    """The pair cut to fit max_length, prompt first (its start), then the answers (their ends).

    ValueError for a pair that cannot be written: an empty prompt or answer, or a max_length
    that leaves no answer token beside `min_prompt_tokens` of prompt.
    """
    if not len(prompt) or not len(chosen) or not len(rejected):
        raise ValueError(f"pair {pair_id!r}: prompt and both answers must be non-empty")
    if max_length <= min_prompt_tokens:
        raise ValueError(
            f"max_length {max_length} leaves no answer token after {min_prompt_tokens} of prompt"
        )
    excess = len(prompt) + max(len(chosen), len(rejected)) - max_length
    drop = max(0, min(excess, len(prompt) - min_prompt_tokens))
    kept_prompt = np.asarray(prompt, dtype=np.int32)[drop:]
    room = max_length - len(kept_prompt)
    kept_chosen = np.asarray(chosen, dtype=np.int32)[:room]
    kept_rejected = np.asarray(rejected, dtype=np.int32)[:room]
    return PreferencePair(
        pair_id=pair_id,
        prompt_ids=kept_prompt,
        chosen_ids=kept_chosen,
        rejected_ids=kept_rejected,
        prompt_truncated=drop,
        answer_truncated=len(chosen) - len(kept_chosen) + len(rejected) - len(kept_rejected),
    )


def check_pair(where: str, pair: PreferencePair, max_length: int) -> None:
    """Raise ShardError naming `where` when a pair breaks the contract."""
    if not len(pair.prompt_ids) or not len(pair.chosen_ids) or not len(pair.rejected_ids):
        raise ShardError(f"{where}: empty prompt or answer")
    if pair.length > max_length:
        raise ShardError(f"{where}: {pair.length} tokens, max_length (block_size) is {max_length}")
    if pair.prompt_truncated < 0 or pair.answer_truncated < 0:
        raise ShardError(f"{where}: negative truncation count")


class PairWriter:
    """Writes pairs `rows_per_shard` per file, part-00000.parquet onwards, reproducibly."""

    def __init__(
        self,
        directory: Path,
        *,
        max_length: int,
        rows_per_shard: int,
        root: Path | None = None,
        row_group_size: int = ROW_GROUP_SIZE,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be at least 1, got {rows_per_shard}")
        self.directory = Path(directory)
        self.root = Path(root) if root is not None else self.directory.parent
        self.max_length = max_length
        self.rows_per_shard = rows_per_shard
        self.row_group_size = row_group_size
        self.before_write = before_write
        self.shards: list[dict] = []
        self._pairs: list[PreferencePair] = []
        self._rows = 0

    def add(self, pair: PreferencePair) -> None:
        check_pair(f"pair {self._rows} ({pair.pair_id})", pair, self.max_length)
        self._rows += 1
        self._pairs.append(pair)
        if len(self._pairs) >= self.rows_per_shard:
            self._flush()

    def close(self) -> list[dict]:
        """Write what is buffered; the manifest entries of every file written."""
        self._flush()
        return self.shards

    def _flush(self) -> None:
        if not self._pairs:
            return
        pairs, self._pairs = self._pairs, []
        columns = {
            "pair_id": pa.array([p.pair_id for p in pairs], pa.string()),
            "prompt_ids": list_array([p.prompt_ids for p in pairs], pa.int32()),
            "chosen_ids": list_array([p.chosen_ids for p in pairs], pa.int32()),
            "rejected_ids": list_array([p.rejected_ids for p in pairs], pa.int32()),
            "prompt_truncated": pa.array([p.prompt_truncated for p in pairs], pa.int32()),
            "answer_truncated": pa.array([p.answer_truncated for p in pairs], pa.int32()),
        }
        table = pa.Table.from_pydict(columns, schema=PREFERENCE_PAIRS.schema)
        path = self.directory / f"part-{len(self.shards):05d}.parquet"
        if self.before_write is not None:
            self.before_write()
        with atomic_path(path) as tmp:
            pq.write_table(table, str(tmp), row_group_size=self.row_group_size, **PARQUET_OPTIONS)
        tokens = sum(len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
        self.shards.append(
            {
                "path": path.relative_to(self.root).as_posix(),
                "rows": len(pairs),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
                "tokens": tokens,
            }
        )


class PairReader:
    """Every pair of one preference dataset (or split) by index, in manifest order.

    With `verify`, each shard is checked against the manifest (size, SHA-256, rows) when first
    opened; a distributed job checks once (`verify_shards`) and passes verify=False elsewhere.
    """

    def __init__(self, data: str | Path | Manifest, *, verify: bool = True) -> None:
        self.manifest = (
            data if isinstance(data, Manifest) else load_manifest(data, formats=(PREFERENCE_PAIRS,))
        )
        if self.manifest.format is not PREFERENCE_PAIRS:
            raise ShardError(
                f"{self.manifest.root} holds {self.manifest.format.name}, not {PREFERENCE_PAIRS.name}"
            )
        self.verify = verify
        self._starts = np.concatenate(
            [[0], np.cumsum([int(s["rows"]) for s in self.manifest.shards])]
        ).astype(np.int64)
        self.num_pairs = int(self._starts[-1])
        self._files: dict[int, _PairFile] = {}

    def __len__(self) -> int:
        return self.num_pairs

    def pair(self, index: int) -> PreferencePair:
        if not 0 <= index < self.num_pairs:
            raise IndexError(f"pair index {index} outside the dataset's {self.num_pairs} pairs")
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self._file(shard).row(index - int(self._starts[shard]), index)

    def pairs(self) -> list[PreferencePair]:
        return [self.pair(i) for i in range(self.num_pairs)]

    def _file(self, shard: int) -> _PairFile:
        opened = self._files.get(shard)
        if opened is None:
            entry = self.manifest.shards[shard]
            if self.verify:
                problems = shard_problems(self.manifest, entry)
                if problems:
                    raise ShardError("; ".join(problems))
            opened = _PairFile(self.manifest.root / entry["path"], self.manifest.block_size)
            if opened.num_rows != int(entry["rows"]):
                raise ShardError(
                    f"{opened.path} has {opened.num_rows} rows, the manifest says {entry['rows']}"
                )
            self._files[shard] = opened
        return opened


class _PairFile:
    def __init__(self, path: Path, max_length: int) -> None:
        self.path = path
        self.max_length = max_length
        self.file = pq.ParquetFile(path, memory_map=True)
        missing = [
            c for c in PREFERENCE_PAIRS.schema.names if c not in self.file.schema_arrow.names
        ]
        if missing:
            raise ShardError(f"{path} lacks columns {missing}")
        meta = self.file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.num_rows = int(self.group_starts[-1])
        self._cached = -1
        self._group: dict = {}

    def row(self, local: int, index: int) -> PreferencePair:
        group = bisect.bisect_right(self.group_starts, local) - 1
        if group != self._cached:
            table = self.file.read_row_group(group)
            self._group = {
                name: list_parts(table.column(name))
                if name.endswith("_ids") and name != "pair_id"
                else table.column(name).to_pylist()
                for name in PREFERENCE_PAIRS.schema.names
            }
            self._cached = group
        row = local - int(self.group_starts[group])
        g = self._group

        def ids(name: str) -> np.ndarray:
            offsets, values = g[name]
            return values[offsets[row] : offsets[row + 1]].astype(np.int64)

        pair = PreferencePair(
            pair_id=g["pair_id"][row],
            prompt_ids=ids("prompt_ids"),
            chosen_ids=ids("chosen_ids"),
            rejected_ids=ids("rejected_ids"),
            prompt_truncated=int(g["prompt_truncated"][row]),
            answer_truncated=int(g["answer_truncated"][row]),
            index=index,
        )
        check_pair(f"{self.path} row {local}", pair, self.max_length)
        return pair
