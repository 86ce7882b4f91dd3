"""Fetching a seeded sample of Dolma v1.7 files from the official URL list into a local cache.

Parallel (a thread pool), resumable (finished files are skipped, `.part` files continue with an
HTTP Range request when the server allows it), verified and atomic: a file keeps its `.part` name
until every check that can be made has passed — its size (from the URL list, the response or a
HEAD request), the integrity of a `.gz` stream, and its sha256 when the list has one. What could
not be verified is logged and reported. Every target path stays inside the cache directory.
`download-manifest.json` in the cache records what was fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

OFFICIAL_DOLMA_V17_URLS = "https://huggingface.co/datasets/allenai/dolma/resolve/main/urls/v1_7.txt"
CHUNK = 1 << 20
NETWORK_SCHEMES = ("http", "https")


class DownloadError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the URL list; `size` and `sha256` when the list gives them."""

    subset: str
    url: str
    size: int | None = None
    sha256: str | None = None


@dataclass
class FileResult:
    subset: str
    url: str
    path: str
    status: str  # downloaded | cached | failed
    bytes: int = 0
    attempts: int = 0
    error: str = ""
    verified: list[str] = field(default_factory=list)  # size | gzip | sha256
    unverified: str = ""  # why nothing could be checked, when that is so


@dataclass
class DownloadReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def unverified(self) -> list[FileResult]:
        return [f for f in self.files if f.status != "failed" and not f.verified]

    def as_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files]}


def _fetch_text(location: str, timeout: float) -> str:
    if urlparse(location).scheme in NETWORK_SCHEMES:
        with urllib.request.urlopen(location, timeout=timeout) as response:
            return response.read().decode("utf-8")
    return Path(location).read_text(encoding="utf-8")


def _entry(subset: str, item: str | dict) -> FileEntry:
    if isinstance(item, str):
        return FileEntry(subset, item)
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ValueError(
            f"subset {subset!r}: an entry is neither a URL nor {{'url': ...}}: {item!r}"
        )
    size, sha256 = item.get("size"), item.get("sha256")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValueError(f"{item['url']}: size must be a non-negative integer, not {size!r}")
    if sha256 is not None and not (
        isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)
    ):
        raise ValueError(f"{item['url']}: sha256 must be 64 lower-case hex digits")
    return FileEntry(subset, item["url"], size, sha256)


def parse_url_list(text: str) -> dict[str, list[FileEntry]]:
    """Subset -> files, from the grouped JSON or a flat list of URLs.

    Grouped: `{subset: {"urls": [url or {"url", "size", "sha256"}, ...]}}`. In a flat list the
    subset is the URL's parent folder (…/dolma-v1_7/cc_en_head/x.json.gz → cc_en_head).
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = json.loads(text)
        return {name: [_entry(name, u) for u in entry["urls"]] for name, entry in data.items()}
    groups: dict[str, list[FileEntry]] = {}
    for line in text.splitlines():
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        parts = urlparse(url).path.rstrip("/").split("/")
        subset = parts[-2] if len(parts) >= 2 else "default"
        groups.setdefault(subset, []).append(FileEntry(subset, url))
    return groups


def choose_files(
    groups: dict[str, list[FileEntry]],
    *,
    subsets: list[str] | None,
    fraction: float | None,
    count: int | None,
    seed: int,
) -> list[FileEntry]:
    """Per subset, a seeded sample of `count` files or `fraction` of them (all by default)."""
    if fraction is not None and count is not None:
        raise ValueError("give --fraction or --count, not both")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError("--fraction must be in (0, 1]")
    names = subsets or sorted(groups)
    unknown = [s for s in names if s not in groups]
    if unknown:
        raise ValueError(
            f"unknown subset(s) {', '.join(unknown)}; the list has {', '.join(sorted(groups))}"
        )
    chosen = []
    for name in names:
        entries = sorted(groups[name], key=lambda e: e.url)
        rng = random.Random(f"{seed}:{name}")
        if count is not None:
            k = min(count, len(entries))
        elif fraction is not None:
            k = max(1, round(fraction * len(entries)))
        else:
            k = len(entries)
        chosen += sorted(rng.sample(entries, k), key=lambda e: e.url)
    return chosen


def _plain_name(name: str) -> bool:
    """A single path component that cannot leave its folder."""
    return bool(name) and name not in (".", "..") and not re.search(r"[/\\\x00]", name)


def target_path(entry: FileEntry, cache_dir: Path, *, allow_file_urls: bool = False) -> Path:
    """`<cache>/<subset>/<file name>`, refused when it would be anywhere else.

    Only http(s) URLs are fetched unless `allow_file_urls` (then file:// too): a URL list
    must not make the downloader read local files.
    """
    scheme = urlparse(entry.url).scheme
    if scheme not in NETWORK_SCHEMES and not (allow_file_urls and scheme == "file"):
        allowed = (
            "http(s) or file" if allow_file_urls else "http(s) (file:// needs --allow-file-urls)"
        )
        raise ValueError(f"{entry.url}: scheme {scheme or 'none'!r} is not {allowed}")
    name = PurePosixPath(unquote(urlparse(entry.url).path)).name
    for label, part in (("subset", entry.subset), ("file name", name)):
        if not _plain_name(part):
            raise ValueError(f"{entry.url}: {label} {part!r} is not a plain name in the cache")
    return cache_dir / entry.subset / name


def check_local(path: Path, *, size: int | None, sha256: str | None) -> list[str]:
    """The checks `path` passes (size, gzip, sha256); raises DownloadError on a failed one."""
    checks = []
    got = path.stat().st_size
    if size is not None:
        if got != size:
            raise DownloadError(f"size {got} != expected {size}")
        checks.append("size")
    digest = hashlib.sha256() if sha256 is not None else None
    if path.name.removesuffix(".part").endswith(".gz"):
        try:
            with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
                while stream.read(CHUNK):
                    pass
        except (EOFError, OSError, zlib.error) as exc:
            raise DownloadError(f"corrupt or truncated gzip: {exc}") from None
        checks.append("gzip")
    if digest is not None:
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
        if digest.hexdigest() != sha256:
            raise DownloadError(f"sha256 {digest.hexdigest()} != expected {sha256}")
        checks.append("sha256")
    return checks


def _head_size(url: str, timeout: float) -> int | None:
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length is not None else None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None


def _announced_size(response, resumed: bool) -> int | None:
    if resumed:  # 206: the total is after the slash of Content-Range
        total = response.headers.get("Content-Range", "").rsplit("/", 1)[-1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _cached(entry: FileEntry, target: Path) -> FileResult | None:
    """The result for a file a previous run finished and verified, else None."""
    sidecar = _sidecar(target)
    if not (target.is_file() and sidecar.is_file()):
        return None
    try:
        record = json.loads(sidecar.read_text())
    except ValueError:
        return None
    got = target.stat().st_size
    if record.get("bytes") != got or (entry.size is not None and entry.size != got):
        return None
    return FileResult(
        entry.subset,
        entry.url,
        str(target),
        "cached",
        got,
        verified=list(record.get("verified", [])),
        unverified=record.get("unverified", ""),
    )


def _attempt(
    entry: FileEntry, target: Path, part: Path, *, timeout: float, on_bytes: Callable[[int], None]
) -> tuple[int, list[str], str]:
    """One try: fetch (resuming `part`), verify, rename. (bytes, checks passed, why unverified).

    Raises DownloadError (or a network error) when the file is not complete and verified.
    """
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(entry.url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = have > 0 and response.status == 206
        announced = _announced_size(response, resumed)
        with open(part, "ab" if resumed else "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
                on_bytes(len(block))
    if announced is None and entry.size is None:
        announced = _head_size(entry.url, timeout)
    if entry.size is not None and announced is not None and announced != entry.size:
        raise DownloadError(f"server announces {announced} bytes, the list {entry.size}")
    expected = entry.size if entry.size is not None else announced
    got = part.stat().st_size
    if expected is not None and got < expected:  # cut short: the next try resumes it
        raise DownloadError(f"size {got} != expected {expected}")
    try:
        verified = check_local(part, size=expected, sha256=entry.sha256)
    except DownloadError:
        part.unlink()  # wrong content: resuming it cannot help
        raise
    unverified = "" if verified else "no size announced or listed, no checksum, not gzip"
    if unverified:
        logger.warning("%s: downloaded but not verified (%s)", entry.url, unverified)
    part.replace(target)
    record = {"bytes": got, "verified": verified, "unverified": unverified}
    _sidecar(target).write_text(json.dumps(record) + "\n")
    return got, verified, unverified


def _download_one(
    entry: FileEntry,
    target: Path,
    *,
    retries: int,
    timeout: float,
    on_bytes: Callable[[int], None],
) -> FileResult:
    target.parent.mkdir(parents=True, exist_ok=True)
    if (cached := _cached(entry, target)) is not None:
        return cached
    part = target.with_name(target.name + ".part")
    error = ""
    for attempt in range(1, retries + 1):
        try:
            got, verified, unverified = _attempt(
                entry, target, part, timeout=timeout, on_bytes=on_bytes
            )
        except DownloadError as exc:
            error = str(exc)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            return FileResult(
                entry.subset,
                entry.url,
                str(target),
                "downloaded",
                got,
                attempt,
                "",
                verified,
                unverified,
            )
        if attempt < retries:
            time.sleep(min(0.2 * attempt, 2))
    logger.warning("%s: failed after %d attempt(s): %s", entry.url, retries, error)
    return FileResult(entry.subset, entry.url, str(target), "failed", 0, retries, error)


def download_dolma(
    url_list: str | Path = OFFICIAL_DOLMA_V17_URLS,
    cache_dir: Path = Path("cache/dolma"),
    *,
    subsets: list[str] | None = None,
    fraction: float | None = None,
    count: int | None = None,
    seed: int = 0,
    workers: int = 8,
    retries: int = 4,
    timeout: float = 60.0,
    allow_file_urls: bool = False,
    on_start: Callable[[int], None] = lambda n: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_file: Callable[[FileResult], None] = lambda f: None,
) -> DownloadReport:
    """Downloads the chosen files; a bad URL or target path is refused before any download."""
    if retries < 1:
        raise ValueError("retries must be at least 1")
    groups = parse_url_list(_fetch_text(str(url_list), timeout))
    chosen = choose_files(groups, subsets=subsets, fraction=fraction, count=count, seed=seed)
    targets, problems = [], []
    for entry in chosen:
        try:
            targets.append(target_path(entry, cache_dir, allow_file_urls=allow_file_urls))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("refused before downloading anything:\n  " + "\n  ".join(problems))
    on_start(len(chosen))
    cache_dir.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                _download_one, entry, target, retries=retries, timeout=timeout, on_bytes=on_bytes
            )
            for entry, target in zip(chosen, targets, strict=True)
        ]
        for future in futures:
            result = future.result()
            report.files.append(result)
            on_file(result)
    manifest = {
        "url_list": str(url_list),
        "subsets": subsets,
        "fraction": fraction,
        "count": count,
        "seed": seed,
        **report.as_dict(),
    }
    tmp = cache_dir / ".download-manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(cache_dir / "download-manifest.json")
    return report
