"""Where a build's output goes: a local `--out`, or an fsspec URL (`s3://bucket/datasets`).

A build always writes OUT/<name>/<version>/ on local storage (its resumable work beside it).
With a URL `--out`, that local root is the work root (`--work-dir`), and once the version is
complete there it is published: every file but the manifest is put at URL/<name>/<version>/,
the size of every file that arrived is checked against the local copy, the manifest goes last
(and is checked), then URL/<name>/LATEST. A reader that looks for the manifest or follows
LATEST never sees half a version. A rerun that finds the manifest at the URL does nothing; an
upload cut off midway is finished from the local copy (files already there at their full size
are not sent again), without rebuilding.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_text
from .config import ConfigError
from .faults import crash_point, fail_point
from .readers.storage import as_input, is_url, url_filesystem

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATS = "stats.json"
LATEST = "LATEST"


class PublishError(RuntimeError):
    """What arrived at the URL does not match the local copy (the URL's LATEST is untouched)."""


def default_work_root() -> Path:
    """The work root of a URL `--out` when `--work-dir` is not given: the user's cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tinylm-data" / "work"


@dataclass(frozen=True)
class RemoteRoot:
    """An output root on an fsspec file system: URL/<name>/<version>/ and URL/<name>/LATEST."""

    url: str
    fs: Any
    path: str  # the root inside `fs`

    @classmethod
    def of(cls, url: str) -> RemoteRoot:
        """`MissingFilesystem` (a `ConfigError`) when the URL's file system package is missing."""
        fs, path = url_filesystem(url, role="--out")
        return cls(url.rstrip("/"), fs, path.rstrip("/"))

    def url_of(self, name: str, version: str | None = None) -> str:
        return "/".join([self.url, name, *([version] if version else [])])

    def check_writable(self, name: str) -> None:
        """Write and delete a small file under URL/<name>/: a `ConfigError` if that fails."""
        probe = f"{self.path}/{name}/.write-check-{uuid.uuid4().hex}"
        try:
            self._make_dirs([f"{self.path}/{name}"])
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except Exception as exc:  # why: each file system raises its own (OSError, botocore, ...)
            raise ConfigError(
                f"--out {self.url!r} is not writable ({type(exc).__name__}: {exc})"
            ) from None

    def published(self, name: str, version: str) -> tuple[dict, dict] | None:
        """(manifest, stats) of a version whose manifest is at the URL, else None."""
        root = f"{self.path}/{name}/{version}"
        try:
            return tuple(json.loads(self.fs.cat_file(f"{root}/{f}")) for f in (MANIFEST, STATS))  # type: ignore[return-value]
        except FileNotFoundError:
            return None

    def set_latest(self, name: str, version: str) -> None:
        latest = f"{self.path}/{name}/{LATEST}"
        text = (version + "\n").encode()
        if not self.fs.exists(latest) or self.fs.cat_file(latest) != text:
            self.fs.pipe_file(latest, text)

    def publish(self, local: Path, name: str, version: str) -> str:
        """Copy the complete version directory `local` to URL/<name>/<version>/ (see the module
        docstring for the order); returns its URL."""
        target = f"{self.path}/{name}/{version}"
        wanted = {
            p.relative_to(local).as_posix(): p.stat().st_size
            for p in sorted(local.rglob("*"))
            if p.is_file()
        }
        present = self._sizes(target)
        for extra in sorted(present.keys() - wanted.keys()):
            self.fs.rm_file(f"{target}/{extra}")  # not part of this version
        body = [r for r in wanted if r != MANIFEST and present.get(r) != wanted[r]]
        if len(body) < len(wanted) - 1:
            logger.info(
                "%s: %d of %d files already there (an earlier upload); sending %d",
                self.url_of(name, version),
                len(wanted) - 1 - len(body),
                len(wanted) - 1,
                len(body),
            )
        self._put(local, target, body)
        crash_point("publish")
        fail_point("publish")
        self._verify(target, {r: s for r, s in wanted.items() if r != MANIFEST})
        self._put(local, target, [MANIFEST])
        self._verify(target, {MANIFEST: wanted[MANIFEST]})
        self.set_latest(name, version)
        logger.info("published %s (%d files)", self.url_of(name, version), len(wanted))
        return self.url_of(name, version)

    def _sizes(self, root: str) -> dict[str, int]:
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        return {path[len(root) + 1 :]: int(info["size"]) for path, info in found.items()}

    def _put(self, local: Path, target: str, relative: list[str]) -> None:
        if not relative:
            return
        self._make_dirs(sorted({f"{target}/{r}".rsplit("/", 1)[0] for r in relative}))
        # one call with lists: asynchronous file systems (s3, gcs, abfs) send them concurrently
        self.fs.put([str(local / r) for r in relative], [f"{target}/{r}" for r in relative])

    def _make_dirs(self, directories: list[str]) -> None:
        # why: object stores (s3fs, gcsfs, adlfs: the asynchronous ones) need no directories,
        # and their makedirs would create a bucket that is missing instead of failing
        if not self.fs.async_impl:
            for directory in directories:
                self.fs.makedirs(directory, exist_ok=True)

    def _verify(self, target: str, wanted: dict[str, int]) -> None:
        arrived = self._sizes(target)
        wrong = [
            f"{r} ({arrived.get(r, 'missing')} bytes, {size} expected)"
            for r, size in wanted.items()
            if arrived.get(r) != size
        ]
        if wrong:
            raise PublishError(
                f"{self.url}/{target[len(self.path) + 1 :]}: {len(wrong)} file(s) did not arrive "
                f"whole: {', '.join(wrong[:5])}; rerun to upload them again"
            )


def resolve_out(out: str, work_dir: Path | None, name: str) -> tuple[Path, RemoteRoot | None]:
    """(local root the build writes under, URL to publish to or None) for `--out`/`--work-dir`.

    A local `--out` (a path or `file://`) is the root itself, as always. A URL is checked now,
    before any work: its file system package must be installed and URL/<name>/ writable.
    """
    target = as_input(out)
    if not is_url(target):
        if work_dir is not None:
            raise ConfigError(
                "--work-dir goes with a URL --out; a local --out keeps its work under OUT/<name>/"
            )
        return target, None  # type: ignore[return-value]
    remote = RemoteRoot.of(target)  # type: ignore[arg-type]
    remote.check_writable(name)
    return (work_dir or default_work_root()), remote


def local_out(out: str, command: str) -> Path:
    """`--out` of a command that writes a local directory only; a `ConfigError` for a URL
    (rather than a directory named `s3:`)."""
    target = as_input(out)
    if is_url(target):
        raise ConfigError(
            f"{command} --out {out!r}: a local directory only (URL outputs are for build, "
            "sft build, pref build and rag index)"
        )
    return target  # type: ignore[return-value]


@dataclass(frozen=True)
class Finished:
    """A version found complete: its manifest and stats, and its URL when it is published."""

    manifest: dict[str, Any]
    stats: dict[str, Any]
    url: str | None = None


def finished_version(
    dataset_dir: Path, version: str, remote: RemoteRoot | None, *, keep_local: bool = False
) -> Finished | None:
    """The version when nothing is left to build: at the URL already (LATEST set there), or
    complete in `dataset_dir` (LATEST set; with a URL, published now: an upload a run did not
    finish). None when it still has to be built."""
    name = dataset_dir.name
    if remote is not None:
        found = remote.published(name, version)
        if found is not None:
            logger.info("%s is already published; nothing to do", remote.url_of(name, version))
            remote.set_latest(name, version)
            return Finished(*found, url=remote.url_of(name, version))
    local = dataset_dir / version
    if not (local / MANIFEST).is_file():
        return None
    logger.info(
        "%s is already built; %s", local, "publishing it" if remote is not None else "nothing to do"
    )
    write_text(dataset_dir / LATEST, version + "\n")
    manifest, stats = (json.loads((local / f).read_text("utf-8")) for f in (MANIFEST, STATS))
    url = publish_version(dataset_dir, version, remote, keep_local=keep_local)
    return Finished(manifest, stats, url)


def publish_version(
    dataset_dir: Path, version: str, remote: RemoteRoot | None, *, keep_local: bool = False
) -> str | None:
    """Publish the complete local `dataset_dir/version` to `remote` (None: nothing to do, the
    local directory is the output); the local copy is removed after unless `keep_local`."""
    if remote is None:
        return None
    url = remote.publish(dataset_dir / version, dataset_dir.name, version)
    if not keep_local:
        shutil.rmtree(dataset_dir / version)
        latest = dataset_dir / LATEST
        if latest.is_file() and latest.read_text().strip() == version:
            latest.unlink()
    return url
