"""The held-out split of a shard dataset and the model's loss on it (loop-independent).

A dataset built with a validation split lists it in its manifest as
`"splits": {"validation": {"shards": [...], "num_blocks": N}}`, shard entries as in `shards`.
Its blocks are never trained on. Each rank scores every `world_size`-th block; the sums of
token losses and token counts are added over the ranks, so the loss is per token of the split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from tinylm_shards import IGNORE_INDEX, DatasetReader, Manifest, ShardError
from tinylm_shards.verify import shard_problems
from tinylm_train.loss import Loss

log = logging.getLogger(__name__)

SPLIT = "validation"


def validation_manifest(manifest: Manifest) -> Manifest | None:
    """The manifest of the dataset's validation split (same root), or None when it has none."""
    return manifest.split(SPLIT) if SPLIT in manifest.splits else None


class ValidationSet:
    """This rank's share of the validation blocks; each shard's presence and size are checked.

    The checksums are not: rank 0's `verify_shards` on the whole dataset covers the held-out
    splits too, so hashing them here again would read every validation shard twice on rank 0
    and once on every other rank.
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        rank: int = 0,
        world_size: int = 1,
        token_columns: Sequence[str] = (),
    ) -> None:
        problems = [
            p for shard in manifest.shards for p in shard_problems(manifest, shard, checksum=False)
        ]
        if problems:
            raise ShardError(f"validation split: {'; '.join(problems)}")
        self.reader = DatasetReader(manifest, verify=False, token_columns=token_columns)
        self.indices = list(range(rank, self.reader.num_blocks, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, batch_size: int):
        for start in range(0, len(self.indices), batch_size):
            yield [self.reader.block(i) for i in self.indices[start : start + batch_size]]


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module,
    blocks: ValidationSet,
    *,
    collate: Callable[[Sequence], dict],
    loss: Loss,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> tuple[float, int]:
    """Mean loss per predicted token over the split (all ranks), and that token count."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (loss sum, tokens)
    try:
        for batch in blocks.batches(batch_size):
            inputs = {
                k: v.to(device) if torch.is_tensor(v) else v for k, v in collate(batch).items()
            }
            labels = inputs.pop("labels")
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(**inputs).logits
            total[0] += loss(logits.float(), labels, num_items_in_batch=1).double()
            total[1] += (labels[:, 1:] != IGNORE_INDEX).sum()  # why: no host sync per batch
    finally:
        model.train(was_training)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(total)
    tokens = int(total[1])
    if tokens == 0:
        raise ShardError("the validation split holds no predicted token")
    return float(total[0] / tokens), tokens
