"""Content fingerprints of inputs, and the version id derived from inputs + config + code."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xxhash


def file_fingerprint(path: Path | str, chunk: int = 1 << 22) -> str:
    """xxh3-128 of the file's bytes (a path or an fsspec URL): fast enough for every input."""
    from .readers.storage import open_input

    digest = xxhash.xxh3_128()
    with open_input(path) as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Modules that never change what a build writes: the command line, downloads, inspection, the
# tokenizer-training corpus and publishing to a URL (where, not what). Every other module is on
# the data path (a new one is, by default).
OFF_DATA_PATH = frozenset(
    {
        "__main__.py",
        "cli.py",
        "cli_download.py",
        "cli_out.py",
        "cli_sft.py",
        "cli_quality.py",
        "quality/report.py",
        "download.py",
        "inspect_dataset.py",
        "publish.py",
        "spark_submit.py",
        "training_text.py",
    }
)


def code_fingerprint(package: Path | None = None) -> str:
    """The package version plus a hash of the code on the data path.

    A code change that could change the output changes the version id, even between releases;
    each module is hashed as its syntax tree, so comments and formatting do not count, and the
    modules in `OFF_DATA_PATH` do not count at all. The shard bytes come from tinylm-shards, so
    its version counts too. Parsing every module costs most of a second, so the tree hash of each
    module's exact bytes is cached (`syntax_digests`).
    """
    import tinylm_shards

    from . import __version__

    package = package or Path(__file__).resolve().parent
    digest = xxhash.xxh3_64()
    digest.update(f"tinylm-shards {tinylm_shards.__version__}".encode())
    with syntax_digests() as trees:
        for path in sorted(package.rglob("*.py")):
            name = path.relative_to(package).as_posix()
            if name in OFF_DATA_PATH:
                continue
            digest.update(name.encode())
            digest.update(trees.of(name, path.read_bytes()).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


class _SyntaxDigests:
    """Module bytes -> hash of their syntax tree, remembered in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.used: dict[str, str] = {}

    def of(self, name: str, source: bytes) -> str:
        key = xxhash.xxh3_128_hexdigest(name.encode() + b"\0" + source)
        tree = self.known.get(key)
        if tree is None:
            tree = xxhash.xxh3_128_hexdigest(ast.dump(ast.parse(source, filename=name)).encode())
        self.used[key] = tree
        return tree

    def save(self) -> None:
        """Keep the digests of the modules just hashed (a failed write only costs the next parse)."""
        if self.used == self.known:
            return
        from .atomic import write_json

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.used)
        except OSError:
            pass


@contextmanager
def syntax_digests() -> Iterator[_SyntaxDigests]:
    """The module syntax-tree digests cached under `$TINYLM_CACHE` (default ~/.cache/tinylm)."""
    from .tokenizer import tokenizer_cache_dir

    digests = _SyntaxDigests(tokenizer_cache_dir() / "code-syntax.json")
    yield digests
    digests.save()


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
