"""Where a model comes from: a local directory first, a hub id only when the name is one.

transformers treats any name that is not an existing directory as a hub id, so a mistyped local
path ends in a hub error after a long wait, or in `Repo id must be in the form ...`. Here a name
that exists must be a model directory, a name that looks like a path must exist, and a hub id
is checked against the local cache and then the hub itself with a short timeout, so an offline
machine fails in seconds with one line that says what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HUB_TIMEOUT_S = 5.0
"""How long the hub may take to answer one metadata request before it counts as unreachable."""

MODEL_FILES = ("config.json", "adapter_config.json")

LOCAL_HINT = (
    "pass a local model directory (a tinylm-train export holds config.json and "
    "model.safetensors, a LoRA adapter adapter_config.json)"
)


class ModelSourceError(ValueError):
    """A model name that is neither a local model directory nor a reachable hub model."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    name: str | Path
    """A local directory (Path) or a hub id (str)."""
    local_files_only: bool
    """Load without asking the hub: a local directory, or a hub id read from the cache."""


def resolve_model(name: str | Path, *, timeout: float = HUB_TIMEOUT_S) -> ModelSource:
    """A local model directory, or a hub id that is cached or that the hub confirms."""
    path = Path(name)
    if path.exists():
        if not path.is_dir():
            raise ModelSourceError(f"{path} is a file, not a model directory; {LOCAL_HINT}")
        if not any((path / f).is_file() for f in MODEL_FILES):
            raise ModelSourceError(
                f"{path} is not a model directory: it holds neither {' nor '.join(MODEL_FILES)}"
            )
        return ModelSource(path, local_files_only=True)
    text = str(name)
    if _looks_like_path(text) or not _is_hub_id(text):
        raise ModelSourceError(f"{text}: no such directory; {LOCAL_HINT}")
    return _check_hub_id(text, timeout)


def _looks_like_path(text: str) -> bool:
    # why: "org/name" is a hub id; anything with a drive, a leading ./ ~ or / or two slashes is not
    return (
        text.startswith((".", "~", "/", "\\"))
        or text.count("/") > 1
        or "\\" in text
        or Path(text).is_absolute()
    )


def _is_hub_id(text: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def _offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(f.upper() in {"1", "ON", "YES", "TRUE"} for f in flags)


def _check_hub_id(repo: str, timeout: float) -> ModelSource:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    cached = any(isinstance(try_to_load_from_cache(repo, f), str) for f in MODEL_FILES)
    if _offline():
        if cached:
            return ModelSource(repo, local_files_only=True)
        raise ModelSourceError(
            f"{repo}: no such local directory, and the hub is off (HF_HUB_OFFLINE) with no "
            f"cached copy; {LOCAL_HINT}"
        )
    try:
        get_hf_file_metadata(hf_hub_url(repo, "config.json"), timeout=timeout)
    except (RepositoryNotFoundError, GatedRepoError, EntryNotFoundError) as error:
        first = str(error).strip().splitlines()[0]
        raise ModelSourceError(
            f"{repo}: no such local directory, and the hub has no such model ({first})"
        ) from None
    except Exception as error:  # why: any transport failure (refused, DNS, timeout) means offline
        if cached:
            return ModelSource(repo, local_files_only=True)
        raise ModelSourceError(
            f"{repo}: no such local directory, and the hub could not be reached within "
            f"{timeout:g} s ({type(error).__name__}); {LOCAL_HINT}"
        ) from None
    return ModelSource(repo, local_files_only=False)
