"""Where inputs live: local paths, or fsspec URLs (`s3://`, `gs://`, `hdfs://`, `memory://`, ...).

An input is a `Path` (a local file, or a `file://` URL turned into one) or the URL string itself;
every reader opens, sizes and lists its inputs through these functions, so the same build reads
either. The file system packages are the user's to install (s3fs, gcsfs, ...): a URL whose package
is missing is a config error that names it, before any work starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from ..config import ConfigError

InputPath = Path | str  # str: a URL other than file://

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_GLOB = re.compile(r"[*?\[]")

# The package fsspec needs for each URL scheme (fsspec itself says so less plainly).
FILESYSTEM_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "hdfs": "pyarrow (with the Hadoop client's libhdfs)",
    "abfs": "adlfs",
    "az": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}


class MissingFilesystem(ConfigError):
    """A URL input whose file system package is not installed."""


def as_input(pattern: str) -> InputPath:
    """`file://` URLs as local paths; other URLs as they are; anything else as a `Path`."""
    match = _SCHEME.match(pattern)
    if match is None:
        return Path(pattern)
    if match.group(1).lower() == "file":
        return Path(unquote(urlparse(pattern).path))
    return pattern


def is_url(path: InputPath) -> bool:
    return isinstance(path, str)


def url_filesystem(url: str, *, role: str = "input"):
    """(fsspec file system, path inside it) of `url`; `MissingFilesystem` naming the package to
    install when fsspec cannot load it (`role` says what the URL is for: input, --out)."""
    scheme = _SCHEME.match(url).group(1).lower()  # type: ignore[union-attr]
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        package = FILESYSTEM_PACKAGES.get(scheme, "the fsspec implementation for it")
        raise MissingFilesystem(
            f"{role} {url!r} needs {package} installed ({scheme}:// through fsspec: {exc})"
        ) from None
    except ValueError as exc:  # a protocol fsspec does not know
        raise MissingFilesystem(f"{role} {url!r}: {exc}") from None


def expand_url(pattern: str) -> list[str]:
    """The files a URL (or URL glob) names, as URLs, sorted."""
    fs, path = url_filesystem(pattern)
    candidates = fs.glob(path) if _GLOB.search(path) else ([path] if fs.exists(path) else [])
    return sorted(fs.unstrip_protocol(p) for p in candidates if fs.isfile(p))


def open_input(path: InputPath) -> BinaryIO:
    """The raw bytes of an input (closing the handle closes whatever fsspec opened)."""
    if not is_url(path):
        return open(path, "rb")
    import fsspec

    return fsspec.open(path, "rb").open()


def input_is_file(path: InputPath) -> bool:
    if not is_url(path):
        import os

        return Path(path).is_file() and os.access(path, os.R_OK)
    fs, inner = url_filesystem(path)
    return fs.isfile(inner)


def input_size(path: InputPath) -> int:
    if not is_url(path):
        return Path(path).stat().st_size
    fs, inner = url_filesystem(path)
    return int(fs.size(inner))


def input_name(path: InputPath) -> str:
    return Path(path).name if not is_url(path) else path.rstrip("/").rsplit("/", 1)[-1]
