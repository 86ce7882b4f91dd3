"""The process group and accelerate's view of it, set up before TrainingArguments.

why: accelerate's `PartialState` chooses a backend only for an accelerator (nccl, …) or when told
`cpu=True`, and counts processes only when it has a backend. Under torchrun or the deepspeed
launcher on a CPU-only machine it therefore reports one process at index 0 on every rank, even
though DeepSpeed has joined all ranks in one gloo group: every rank then acts as rank 0 (each
writes the metrics, each reads the data as the only rank). With `use_deepspeed`, TrainingArguments
builds that state without passing `ddp_backend`, so the fix is to build it here with the gloo
backend and let TrainingArguments reuse it (`accelerator_config={"use_configured_state": True}`).
Without DeepSpeed, `use_cpu=True` with `ddp_backend="gloo"` is enough.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch

log = logging.getLogger(__name__)


def launched_world_size() -> int:
    """The number of processes a launcher (torchrun, deepspeed) started; 1 when run directly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def barrier() -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def declare_cpu_accelerator() -> None:
    """Tell DeepSpeed it runs on the CPU when there is no CUDA device.

    why: transformers imports deepspeed whenever it is installed, and deepspeed's accelerator
    detection then warns "Setting accelerator to CPU" on every CPU run, DeepSpeed used or not.
    """
    if "DS_ACCELERATOR" not in os.environ and not torch.cuda.is_available():
        os.environ["DS_ACCELERATOR"] = "cpu"


def configure_cpu_deepspeed_state(*, timeout_s: int = 1800) -> bool:
    """Join the gloo group of a multi-process DeepSpeed run on CPU; True when it did.

    Returns False (nothing done) on CUDA, where accelerate picks nccl itself, or in one process.
    """
    if torch.cuda.is_available() or launched_world_size() <= 1:
        return False
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    # why: accelerate joins the group through deepspeed.comm only when this is set.
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    state = PartialState(backend="gloo", timeout=timedelta(seconds=timeout_s))
    if state.distributed_type != DistributedType.DEEPSPEED or state.num_processes < 2:
        raise RuntimeError(f"expected a multi-process DeepSpeed state on CPU, got {state}")
    log.info("rank %d of %d (DeepSpeed on CPU, gloo)", state.process_index, state.num_processes)
    return True
