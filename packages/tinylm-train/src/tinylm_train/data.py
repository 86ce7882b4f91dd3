"""This rank's block stream, resumable through state_dict, and the collator into model inputs.

Loop-independent: an HF-Trainer loop and a pipeline loop both iterate a BlockDataset and call a
ModelInputCollator on each micro-batch of blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from tinylm_shards import PACKED_BLOCKS, ShardFormat
from tinylm_train.collate import collate_blocks
from tinylm_train.loss import LOSS_WEIGHTS
from tinylm_train.models.qwen2.attention import model_inputs
from tinylm_train.shards import Block, ShardReader


class BlockDataset(torch.utils.data.IterableDataset):
    """This rank's endless stream of blocks; its position is saved in every checkpoint.

    The shards are checked against the manifest (sizes, SHA-256, rows) by rank 0 only: once per
    dataset, not once per rank. A bad shard stops rank 0, and with it the run.
    """

    def __init__(
        self,
        data: str | Path,
        *,
        seed: int,
        rank: int,
        world_size: int,
        state: dict | None = None,
        formats: Sequence[ShardFormat] = (PACKED_BLOCKS,),
        token_columns: Sequence[str] = (),
    ) -> None:
        self.reader = ShardReader(
            data,
            seed=seed,
            rank=rank,
            world_size=world_size,
            verify=rank == 0,
            formats=formats,
            token_columns=token_columns,
        )
        if state is not None:
            self.reader.load_state_dict(state)

    def __iter__(self):
        return iter(self.reader)

    def state_dict(self) -> dict:
        return self.reader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.reader.load_state_dict(state)


class BlockLog:
    """Appends the block indices of each optimizer step to a JSONL file (one line per micro-batch).

    `start_step` is the step a resumed run continues after, so step numbers keep counting.
    """

    def __init__(
        self, path: Path, *, gradient_accumulation_steps: int, start_step: int = 0
    ) -> None:
        self.path = path
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.micro_batches = start_step * gradient_accumulation_steps

    def record(self, blocks: Sequence[Block]) -> None:
        step = self.micro_batches // self.gradient_accumulation_steps + 1
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "blocks": [b.index for b in blocks]}) + "\n")
        self.micro_batches += 1


class ModelInputCollator:
    """Blocks → forward kwargs for the chosen attention path (optionally logging the blocks).

    `loss_mask`: labels only where the SFT blocks' loss mask is 1; `sample_weights`: add the
    per-sample loss weights (`loss_weights`, taken off again by the loop before the forward);
    `group_size`: the S²-Attn group of attention `tinylm_s2attn`.
    """

    def __init__(
        self,
        attention: str,
        *,
        block_log: BlockLog | None = None,
        loss_mask: bool = False,
        sample_weights: bool = False,
        group_size: int | None = None,
    ) -> None:
        self.attention = attention
        self.group_size = group_size
        self.block_log = block_log
        self.loss_mask = loss_mask
        self.sample_weights = sample_weights

    def __call__(self, blocks: Sequence[Block]) -> dict:
        if self.block_log is not None:
            self.block_log.record(blocks)
        batch = collate_blocks(blocks, loss_mask=self.loss_mask, sample_weights=self.sample_weights)
        inputs = model_inputs(batch, self.attention, group_size=self.group_size)
        if LOSS_WEIGHTS in batch:
            inputs[LOSS_WEIGHTS] = batch[LOSS_WEIGHTS]
        return inputs
