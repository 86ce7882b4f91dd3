"""Packing tokenized documents into fixed-size blocks with cumulative document offsets.

Two modes:

* `concat` — the seed's concatenate-and-cut: documents (each ending in EOS) are laid end to end and cut
  every `block_size` tokens. No padding except in the final block, which is kept and marked partial.
  A document may span blocks; each piece is its own segment.
* `bestfit` — best-fit-decreasing bin packing inside a bounded window of documents: a document that
  fits a block is never split, longer ones are cut into full blocks plus a remainder that is packed
  like any other piece, and the padding left over is what bin packing cannot avoid.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
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


class _BlockBuilder:
    """Accumulates segments for one block and turns them into a `Block`."""

    def __init__(self, block_size: int, pad_id: int) -> None:
        self.block_size = block_size
        self.pad_id = pad_id
        self.reset()

    def reset(self) -> None:
        self.ids = np.full(self.block_size, self.pad_id, dtype=np.int32)
        self.offsets = [0]
        self.doc_ids: list[str] = []

    @property
    def fill(self) -> int:
        return self.offsets[-1]

    def append(self, doc_id: str, tokens: np.ndarray) -> None:
        start = self.fill
        self.ids[start : start + len(tokens)] = tokens
        self.offsets.append(start + len(tokens))
        self.doc_ids.append(doc_id)

    def build(self, *, is_partial: bool) -> Block:
        block = Block(
            input_ids=self.ids,
            doc_offsets=np.asarray(self.offsets, dtype=np.int32),
            doc_ids=self.doc_ids,
            is_partial=is_partial,
        )
        self.reset()
        return block


@dataclass
class Packer:
    """Common interface: `add` documents in order, then `finish`; both yield finished blocks."""

    block_size: int
    pad_id: int
    stats: PackStats = field(default_factory=PackStats)

    def __post_init__(self) -> None:
        if self.block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {self.block_size}")

    def add(self, doc_id: str, tokens: np.ndarray) -> Iterator[Block]:
        raise NotImplementedError

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
        self._builder = _BlockBuilder(self.block_size, self.pad_id)

    def add(self, doc_id: str, tokens: np.ndarray) -> Iterator[Block]:
        if len(tokens) == 0:
            raise ValueError(f"document {doc_id} has no tokens")
        pieces = 0
        pos = 0
        while pos < len(tokens):
            room = self.block_size - self._builder.fill
            take = min(room, len(tokens) - pos)
            self._builder.append(doc_id, tokens[pos : pos + take])
            pieces += 1
            pos += take
            if self._builder.fill == self.block_size:
                yield self._emit(self._builder.build(is_partial=False))
        self._count_document(pieces)

    def finish(self) -> Iterator[Block]:
        if self._builder.fill:
            yield self._emit(self._builder.build(is_partial=True))


class BestFitPacker(Packer):
    """Best-fit-decreasing over a window of `window_docs` documents (bounded memory)."""

    def __init__(self, block_size: int, pad_id: int, window_docs: int = 8192) -> None:
        super().__init__(block_size, pad_id)
        if window_docs < 1:
            raise ValueError("window_docs must be positive")
        self.window_docs = window_docs
        self._pieces: list[tuple[str, np.ndarray]] = []
        self._docs_in_window = 0

    def add(self, doc_id: str, tokens: np.ndarray) -> Iterator[Block]:
        if len(tokens) == 0:
            raise ValueError(f"document {doc_id} has no tokens")
        full, rest = divmod(len(tokens), self.block_size)
        for k in range(full):
            self._pieces.append((doc_id, tokens[k * self.block_size : (k + 1) * self.block_size]))
        if rest:
            self._pieces.append((doc_id, tokens[full * self.block_size :]))
        self._count_document(full + (rest > 0))
        self._docs_in_window += 1
        if self._docs_in_window >= self.window_docs:
            yield from self._pack_window()

    def finish(self) -> Iterator[Block]:
        yield from self._pack_window()

    def _pack_window(self) -> Iterator[Block]:
        # Largest first; ties keep arrival order, so the result is deterministic.
        order = sorted(range(len(self._pieces)), key=lambda i: -len(self._pieces[i][1]))
        bins: list[list[int]] = []  # piece indices per bin, in placement order
        # Open bins as (free slots, bin index), sorted: the first entry with room >= size is the
        # best fit, and among equals the oldest bin.
        open_bins: list[tuple[int, int]] = []
        for piece in order:
            size = len(self._pieces[piece][1])
            at = bisect.bisect_left(open_bins, (size, -1))
            if at < len(open_bins):
                room, chosen = open_bins.pop(at)
            else:
                room, chosen = self.block_size, len(bins)
                bins.append([])
            bins[chosen].append(piece)
            if room - size:
                bisect.insort(open_bins, (room - size, chosen))
        builder = _BlockBuilder(self.block_size, self.pad_id)
        for contents in bins:
            for piece in contents:
                builder.append(*self._pieces[piece])
            yield self._emit(builder.build(is_partial=False))
        self._pieces = []
        self._docs_in_window = 0


def make_packer(mode: str, block_size: int, pad_id: int, *, window_docs: int = 8192) -> Packer:
    if mode == "concat":
        return ConcatPacker(block_size, pad_id)
    if mode == "bestfit":
        return BestFitPacker(block_size, pad_id, window_docs)
    raise ValueError(f"unknown pack mode {mode!r}; choose one of {', '.join(PACK_MODES)}")
