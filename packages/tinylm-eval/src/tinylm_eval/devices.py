"""`--device` and `--dtype`: names checked when the command starts, `auto` resolved on this machine."""

from __future__ import annotations

import re

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class DeviceError(ValueError):
    """A device or dtype that is misspelled or that this machine does not have."""


def check_device_name(device: str) -> str:
    """`device` when it is auto, cpu, mps, cuda or cuda:N (no torch needed to tell)."""
    if not DEVICE_PATTERN.fullmatch(device):
        raise DeviceError(f"{device!r} is not a device: expected auto, cpu, cuda, cuda:N or mps")
    return device


def check_dtype_name(dtype: str) -> str:
    if dtype not in DTYPES:
        raise DeviceError(f"{dtype!r} is not a dtype: expected one of {', '.join(DTYPES)}")
    return dtype


def resolve_device(device: str) -> str:
    """The torch device to load onto: `auto` is the first GPU, else Apple's mps, else the CPU;
    a named accelerator must exist here."""
    import torch

    check_device_name(device)
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise DeviceError(f"--device {device}: this machine has {count} CUDA devices")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("--device mps: MPS is not available on this machine")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto` is bfloat16 on a GPU that supports it and float32 elsewhere (CPU kernels in half
    precision are slow and less exact)."""
    check_dtype_name(dtype)
    if dtype != "auto":
        return dtype
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"
