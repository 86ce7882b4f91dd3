"""Packing tokenized documents into fixed-size blocks with cumulative document offsets.

Two modes:

* `concat` — the seed's concatenate-and-cut: documents (each ending in EOS) are laid end to end and cut
  every `block_size` tokens. No padding except in the final block, which is kept and marked partial.
  A document may span blocks; each piece is its own segment.
* `bestfit` — best-fit-decreasing bin packing inside a bounded window of documents: a document that
  fits a block is never split, longer ones are cut into full blocks plus a remainder that is packed
  like any other piece, and the padding left over is what bin packing cannot avoid.

Per-token columns (such as a label mask) ride along with the token ids: every piece of a document
carries the same slice of each column, so a block's columns line up with its `input_ids`; their
padding is 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

PACK_MODES = ("concat", "bestfit")


@dataclass(slots=True)
class Block:
    """One row of a shard: `block_size` token ids and the segments inside them."""

    input_ids: np.ndarray  # (block_size,) int32, padded with pad_id after num_tokens
    doc_offsets: np.ndarray  # (segments + 1,) int32, 0 .. num_tokens
    doc_ids: list[str]
    is_partial: bool = False
    token_columns: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (block_size,)

    @property
    def num_tokens(self) -> int:
        return int(self.doc_offsets[-1])


@dataclass(slots=True)
class PackStats:
    blocks: int = 0
    partial_blocks: int = 0
    real_tokens: int = 0
    slots: int = 0
    documents: int = 0
    split_documents: int = 0

    @property
    def utilisation(self) -> float:
        return self.real_tokens / self.slots if self.slots else 0.0

    @property
    def split_fraction(self) -> float:
        return self.split_documents / self.documents if self.documents else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "blocks": self.blocks,
            "partial_blocks": self.partial_blocks,
            "real": self.real_tokens,
            "slots": self.slots,
            "utilisation": round(self.utilisation, 6),
            "documents": self.documents,
            "split_documents": self.split_documents,
            "split_fraction": round(self.split_fraction, 6),
        }


@dataclass(slots=True)
class Piece:
    """A document, or the part of one that goes into one block."""

    doc_id: str
    tokens: np.ndarray
    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.tokens)

    def cut(self, start: int, end: int) -> Piece:
        return Piece(
            self.doc_id,
            self.tokens[start:end],
            {name: values[start:end] for name, values in self.columns.items()},
        )


class _BlockBuilder:
    """Accumulates segments for one block and turns them into a `Block`."""

    def __init__(
        self, block_size: int, pad_id: int, token_columns: Mapping[str, str] | None = None
    ) -> None:
        self.block_size = block_size
        self.pad_id = pad_id
        self.column_dtypes = {name: np.dtype(t) for name, t in (token_columns or {}).items()}
        self.reset()

    def reset(self) -> None:
        self.ids = np.full(self.block_size, self.pad_id, dtype=np.int32)
        self.columns = {
            name: np.zeros(self.block_size, dtype=dtype)
            for name, dtype in self.column_dtypes.items()
        }
        self.offsets = [0]
        self.doc_ids: list[str] = []

    @property
    def fill(self) -> int:
        return self.offsets[-1]

    def append(self, piece: Piece) -> None:
        start = self.fill
        end = start + len(piece.tokens)
        self.ids[start:end] = piece.tokens
        for name, values in self.columns.items():
            values[start:end] = piece.columns[name]
        self.offsets.append(end)
        self.doc_ids.append(piece.doc_id)

    def build(self, *, is_partial: bool) -> Block:
        block = Block(
            input_ids=self.ids,
            doc_offsets=np.asarray(self.offsets, dtype=np.int32),
            doc_ids=self.doc_ids,
            is_partial=is_partial,
            token_columns=self.columns,
        )
        self.reset()
        return block


@dataclass
class Packer:
    """Common interface: `add` documents in order, then `finish`; both yield finished blocks."""

    block_size: int
    pad_id: int
    token_columns: Mapping[str, str] = field(default_factory=dict)  # name -> numpy dtype
    stats: PackStats = field(default_factory=PackStats)

    def __post_init__(self) -> None:
        if self.block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {self.block_size}")

    def add(
        self, doc_id: str, tokens: np.ndarray, columns: Mapping[str, np.ndarray] | None = None
    ) -> Iterator[Block]:
        """`columns` holds one array per declared token column, each as long as `tokens`."""
        raise NotImplementedError

    def _piece(
        self, doc_id: str, tokens: np.ndarray, columns: Mapping[str, np.ndarray] | None
    ) -> Piece:
        if len(tokens) == 0:
            raise ValueError(f"document {doc_id} has no tokens")
        columns = columns or {}
        if set(columns) != set(self.token_columns):
            raise ValueError(
                f"document {doc_id}: token columns {sorted(columns)} differ from the declared "
                f"{sorted(self.token_columns)}"
            )
        for name, values in columns.items():
            if len(values) != len(tokens):
                raise ValueError(
                    f"document {doc_id}: token column {name!r} has {len(values)} values "
                    f"for {len(tokens)} tokens"
                )
        return Piece(doc_id, tokens, columns)

    def finish(self) -> Iterator[Block]:
        raise NotImplementedError

    def _emit(self, block: Block) -> Block:
        self.stats.blocks += 1
        self.stats.partial_blocks += block.is_partial
        self.stats.real_tokens += block.num_tokens
        self.stats.slots += self.block_size
        return block

    def _count_document(self, pieces: int) -> None:
        self.stats.documents += 1
        self.stats.split_documents += pieces > 1


class ConcatPacker(Packer):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._builder = _BlockBuilder(self.block_size, self.pad_id, self.token_columns)

    def add(
        self, doc_id: str, tokens: np.ndarray, columns: Mapping[str, np.ndarray] | None = None
    ) -> Iterator[Block]:
        document = self._piece(doc_id, tokens, columns)
        builder = self._builder
        pieces = 0
        pos = 0
        while pos < len(tokens):
            take = min(self.block_size - builder.fill, len(tokens) - pos)
            # Most documents fit whole: no slice of the piece to make.
            builder.append(document if take == len(tokens) else document.cut(pos, pos + take))
            pieces += 1
            pos += take
            if builder.fill == self.block_size:
                yield self._emit(builder.build(is_partial=False))
        self._count_document(pieces)

    def finish(self) -> Iterator[Block]:
        if self._builder.fill:
            yield self._emit(self._builder.build(is_partial=True))


class BestFitPacker(Packer):
    """Best-fit-decreasing over a window of `window_docs` documents (bounded memory)."""

    def __init__(
        self,
        block_size: int,
        pad_id: int,
        window_docs: int = 8192,
        token_columns: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(block_size, pad_id, dict(token_columns or {}))
        if window_docs < 1:
            raise ValueError("window_docs must be positive")
        self.window_docs = window_docs
        self._pieces: list[Piece] = []
        self._docs_in_window = 0

    def add(
        self, doc_id: str, tokens: np.ndarray, columns: Mapping[str, np.ndarray] | None = None
    ) -> Iterator[Block]:
        document = self._piece(doc_id, tokens, columns)
        full, rest = divmod(len(tokens), self.block_size)
        for k in range(full):
            self._pieces.append(document.cut(k * self.block_size, (k + 1) * self.block_size))
        if rest:
            self._pieces.append(document.cut(full * self.block_size, len(tokens)))
        self._count_document(full + (rest > 0))
        self._docs_in_window += 1
        if self._docs_in_window >= self.window_docs:
            yield from self._pack_window()

    def finish(self) -> Iterator[Block]:
        yield from self._pack_window()

    def _pack_window(self) -> Iterator[Block]:
        # Largest first; ties keep arrival order, so the result is deterministic.
        order = sorted(range(len(self._pieces)), key=lambda i: -len(self._pieces[i]))
        bins: list[list[int]] = []  # piece indices per bin, in placement order
        # Open bins as (free slots, bin index), sorted: the first entry with room >= size is the
        # best fit, and among equals the oldest bin.
        open_bins: list[tuple[int, int]] = []
        for piece in order:
            size = len(self._pieces[piece])
            at = bisect.bisect_left(open_bins, (size, -1))
            if at < len(open_bins):
                room, chosen = open_bins.pop(at)
            else:
                room, chosen = self.block_size, len(bins)
                bins.append([])
            bins[chosen].append(piece)
            if room - size:
                bisect.insort(open_bins, (room - size, chosen))
        builder = _BlockBuilder(self.block_size, self.pad_id, self.token_columns)
        for contents in bins:
            for piece in contents:
                builder.append(self._pieces[piece])
            yield self._emit(builder.build(is_partial=False))
        self._pieces = []
        self._docs_in_window = 0


class OnePerRowPacker(Packer):
    """One document per block, padded (SFT's `pack_mode: none`); a longer document is an error."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._builder = _BlockBuilder(self.block_size, self.pad_id, self.token_columns)

    def add(
        self, doc_id: str, tokens: np.ndarray, columns: Mapping[str, np.ndarray] | None = None
    ) -> Iterator[Block]:
        document = self._piece(doc_id, tokens, columns)
        if len(tokens) > self.block_size:
            raise ValueError(
                f"document {doc_id} has {len(tokens)} tokens, more than a row of {self.block_size}"
            )
        self._builder.append(document)
        self._count_document(1)
        yield self._emit(self._builder.build(is_partial=False))

    def finish(self) -> Iterator[Block]:
        return iter(())


def make_packer(
    mode: str,
    block_size: int,
    pad_id: int,
    *,
    window_docs: int = 8192,
    token_columns: Mapping[str, str] | None = None,
) -> Packer:
    """A packer for `mode` (or "none", one per row); `token_columns` (name -> numpy dtype) are packed beside the ids."""
    columns = dict(token_columns or {})
    if mode == "concat":
        return ConcatPacker(block_size, pad_id, columns)
    if mode == "bestfit":
        return BestFitPacker(block_size, pad_id, window_docs, columns)
    if mode == "none":
        return OnePerRowPacker(block_size, pad_id, columns)
    raise ValueError(f"unknown pack mode {mode!r}; choose one of {', '.join(PACK_MODES)}")
