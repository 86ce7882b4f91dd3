"""This rank's stream of preference pairs, resumable through state_dict, their batches, and the
reference model's log-probabilities cached with the run.

Loop-independent, like data.py: the stream has the same seeded, rank-sharded, per-epoch order and
state_dict contract as the block stream, so the checkpoint and exact resume code serve both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from tinylm_shards import (
    IGNORE_INDEX,
    PREFERENCE_PAIRS,
    Manifest,
    PairReader,
    PreferencePair,
    ShardError,
    load_manifest,
)

log = logging.getLogger(__name__)

REFERENCE_CACHE = "reference-logps.npz"


def load_pairs_manifest(data: str | Path) -> Manifest:
    return load_manifest(data, formats=(PREFERENCE_PAIRS,))


class PairStream(torch.utils.data.IterableDataset):
    """This rank's endless stream of pairs: epoch e is a permutation seeded by (seed, e); rank r
    of w takes every w-th entry, trimmed so every rank sees the same count. `reference` holds
    the cached reference log-probabilities per pair (attached to each pair it yields)."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        seed: int,
        rank: int,
        world_size: int,
        reference: np.ndarray | None = None,
    ) -> None:
        self.reader = PairReader(manifest, verify=False)
        self.version = manifest.version
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.per_rank = len(self.reader) // world_size
        if self.per_rank == 0:
            raise ShardError(f"{len(self.reader)} pairs cannot feed {world_size} ranks")
        self.reference = reference
        self.epoch, self.index = 0, 0

    def _order(self, epoch: int) -> np.ndarray:
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.reader))
        return perm[self.rank :: self.world_size][: self.per_rank]

    def __iter__(self):
        order = self._order(self.epoch)
        while True:
            if self.index >= self.per_rank:
                self.epoch, self.index = self.epoch + 1, 0
                order = self._order(self.epoch)
            pair = self.reader.pair(int(order[self.index]))
            self.index += 1
            yield pair, None if self.reference is None else self.reference[pair.index]

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "index": self.index,
            "rank": self.rank,
            "world_size": self.world_size,
            "version": self.version,
        }

    def load_state_dict(self, state: dict) -> None:
        current = {"seed": self.seed, "world_size": self.world_size, "version": self.version}
        for key, value in current.items():
            if state[key] != value:
                raise ValueError(
                    f"cannot resume the data position: {key} was {state[key]!r}, now {value!r}"
                )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


def collate_pairs(
    items: Sequence[tuple[PreferencePair, np.ndarray | None]], *, pad_id: int
) -> dict[str, torch.Tensor]:
    """B pairs as 2B right-padded rows, the B chosen first, then the B rejected.

    Returns
      input_ids       (2B, T) int64, T the longest prompt + answer, pad_id after each row
      attention_mask  (2B, T) int64, 1 on real tokens
      labels          (2B, T) int64, the ids on answer tokens, IGNORE_INDEX on prompt and padding
      reference       (B, 2) float64 cached reference (chosen, rejected) log-probs, when cached
      tokens          () int64, the real tokens of the batch
    """
    pairs = [pair for pair, _ in items]
    rows = [pair.sequences()[0] for pair in pairs] + [pair.sequences()[1] for pair in pairs]
    prompts = [len(pair.prompt_ids) for pair in pairs] * 2
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.int64)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.int64)
    attention = torch.zeros((len(rows), width), dtype=torch.int64)
    for k, (row, prompt) in enumerate(zip(rows, prompts, strict=True)):
        ids = torch.from_numpy(np.asarray(row, dtype=np.int64))
        input_ids[k, : len(row)] = ids
        labels[k, prompt : len(row)] = ids[prompt:]
        attention[k, : len(row)] = 1
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": labels,
        "tokens": attention.sum(),
    }
    references = [ref for _, ref in items]
    if all(ref is not None for ref in references):
        batch["reference"] = torch.from_numpy(np.stack(references).astype(np.float64))
    return batch


@torch.no_grad()
def pair_logps(
    model: torch.nn.Module,
    reader: PairReader,
    indices: Sequence[int],
    *,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    length_normalised: bool,
    bf16: bool = False,
    forward: Callable | None = None,
) -> np.ndarray:
    """(len(indices), 2) the model's (chosen, rejected) log-probabilities of those pairs."""
    from tinylm_train.dpo_loss import sequence_logps

    was_training = model.training
    model.eval()
    out = np.zeros((len(indices), 2), dtype=np.float64)
    try:
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = collate_pairs([(reader.pair(i), None) for i in chunk], pad_id=pad_id)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = (forward or model)(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).logits
            logps, _ = sequence_logps(
                logits, batch["labels"].to(device), length_normalised=length_normalised
            )
            out[start : start + len(chunk)] = logps.double().view(2, -1).T.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def reference_fingerprint(manifest: Manifest, *, init_from: str, length_normalised: bool) -> dict:
    """What the cached log-probabilities depend on; a cache with another is recomputed."""
    return {
        "data_version": manifest.version,
        "data_root": str(manifest.root.resolve()),
        "model": str(Path(init_from).resolve()),
        "length_normalised": length_normalised,
    }


def load_reference_cache(path: Path, fingerprint: dict) -> dict[str, np.ndarray] | None:
    """The cached arrays ("train", "validation") when `path` holds them for `fingerprint`."""
    if not path.is_file():
        return None
    with np.load(path) as cache:
        stored = json.loads(str(cache["fingerprint"]))
        if stored != fingerprint:
            log.warning("reference cache %s was made for %s: recomputing", path, stored)
            return None
        return {k: cache[k] for k in cache.files if k != "fingerprint"}


def save_reference_cache(path: Path, fingerprint: dict, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, fingerprint=np.array(json.dumps(fingerprint)), **arrays)
    tmp.replace(path)
