"""Preference pairs: prompt-first truncation, the writer, and row-group-granular reading.

A pair is a prompt and two answers to it. The sequences a model scores are prompt + chosen and
prompt + rejected; only the answer tokens are labelled (`answer_mask`). Rows are truncated to
the dataset's max_length (the manifest's block_size) on the prompt side first: the prompt loses
its oldest tokens down to `min_prompt_tokens`, and only then are the answers cut at their end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrow import list_array
from .errors import ShardError
from .formats import PREFERENCE_PAIRS
from .manifest import Manifest
from .reader import DatasetReader, RowGroupFile, row_of
from .writer import ROW_GROUP_SIZE, ShardWriter


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


class PairWriter(ShardWriter):
    """Writes pairs `rows_per_shard` per file, part-00000.parquet onwards, reproducibly (the
    ShardWriter's files, with the pair columns)."""

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
        super().__init__(
            directory,
            rows_per_shard=rows_per_shard,
            root=root,
            row_group_size=row_group_size,
            before_write=before_write,
        )
        self.schema = PREFERENCE_PAIRS.schema
        self.max_length = max_length

    def _check(self, pair: PreferencePair) -> None:  # type: ignore[override]
        check_pair(f"pair {self._rows} ({pair.pair_id})", pair, self.max_length)
        self._rows += 1

    def _table(self, pairs: list[PreferencePair]) -> tuple[pa.Table, int]:  # type: ignore[override]
        columns = {
            "pair_id": pa.array([p.pair_id for p in pairs], pa.string()),
            "prompt_ids": list_array([p.prompt_ids for p in pairs], pa.int32()),
            "chosen_ids": list_array([p.chosen_ids for p in pairs], pa.int32()),
            "rejected_ids": list_array([p.rejected_ids for p in pairs], pa.int32()),
            "prompt_truncated": pa.array([p.prompt_truncated for p in pairs], pa.int32()),
            "answer_truncated": pa.array([p.answer_truncated for p in pairs], pa.int32()),
        }
        tokens = sum(len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
        return pa.Table.from_pydict(columns, schema=self.schema), tokens


class PairReader(DatasetReader):
    """Every pair of one preference dataset (or split) by index, in manifest order.

    With `verify`, each shard is checked against the manifest (size, SHA-256, rows) when first
    opened; a distributed job checks once (`verify_shards`) and passes verify=False elsewhere.
    """

    noun = "pair"

    def __init__(self, data: str | Path | Manifest, *, verify: bool = True) -> None:
        super().__init__(data, verify=verify, formats=(PREFERENCE_PAIRS,))
        if self.manifest.format is not PREFERENCE_PAIRS:
            raise ShardError(
                f"{self.manifest.root} holds {self.manifest.format.name}, not {PREFERENCE_PAIRS.name}"
            )
        self.num_pairs = self.num_blocks

    def __len__(self) -> int:
        return self.num_pairs

    def pair(self, index: int) -> PreferencePair:
        return self._row(index)

    def pairs(self) -> list[PreferencePair]:
        return [self.pair(i) for i in range(self.num_pairs)]

    def _open(self, path: Path) -> _PairFile:
        return _PairFile(path, self.manifest.block_size)


class _PairFile(RowGroupFile):
    def __init__(self, path: Path, max_length: int) -> None:
        names = PREFERENCE_PAIRS.schema.names
        super().__init__(path, required=names, columns=names)
        self.max_length = max_length

    def row(self, index: int, *, global_index: int = -1) -> PreferencePair:
        g, local = self.group_of(index)
        pair = PreferencePair(
            pair_id=g["pair_id"][local],
            prompt_ids=row_of(g["prompt_ids"], local).astype(np.int64),
            chosen_ids=row_of(g["chosen_ids"], local).astype(np.int64),
            rejected_ids=row_of(g["rejected_ids"], local).astype(np.int64),
            prompt_truncated=int(g["prompt_truncated"][local]),
            answer_truncated=int(g["answer_truncated"][local]),
            index=global_index,
        )
        check_pair(f"{self.path} row {index}", pair, self.max_length)
        return pair
