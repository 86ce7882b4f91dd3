"""Content fingerprints of inputs, and the version id derived from inputs + config + code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xxhash


def file_fingerprint(path: Path, chunk: int = 1 << 22) -> str:
    """xxh3-128 of the file's bytes: fast enough to run over every input of a build."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def code_fingerprint() -> str:
    """The package version plus a hash of its Python sources.

    A code change that could change the output changes the version id, even between releases.
    """
    from . import __version__

    package = Path(__file__).resolve().parent
    digest = xxhash.xxh3_64()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def version_id(
    *,
    inputs: list[dict[str, Any]],
    config: dict[str, Any],
    code_version: str,
    tokenizer_sha256: str,
) -> str:
    """`v-` + 16 hex digits; equal exactly when inputs, configuration and code are equal."""
    payload = json.dumps(
        {"inputs": inputs, "config": config, "code": code_version, "tokenizer": tokenizer_sha256},
        sort_keys=True,
        ensure_ascii=False,
    )
    return "v-" + xxhash.xxh3_64_hexdigest(payload.encode())
