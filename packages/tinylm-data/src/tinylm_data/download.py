"""Fetching a seeded sample of Dolma v1.7 files from the official URL list into a local cache.

Parallel (a thread pool), resumable (finished files are skipped, `.part` files continue with an
HTTP Range request when the server allows it), verified (every file must have the size the server
announced; a mismatch is retried, then reported), and atomic (a file gets its final name only when
complete). `download-manifest.json` in the cache records what was fetched.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

OFFICIAL_DOLMA_V17_URLS = "https://huggingface.co/datasets/allenai/dolma/resolve/main/urls/v1_7.txt"
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    pass


@dataclass
class FileResult:
    subset: str
    url: str
    path: str
    status: str  # downloaded | cached | failed
    bytes: int = 0
    attempts: int = 0
    error: str = ""


@dataclass
class DownloadReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def as_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files]}


def _fetch_text(location: str, timeout: float) -> str:
    if urlparse(location).scheme in ("http", "https"):
        with urllib.request.urlopen(location, timeout=timeout) as response:
            return response.read().decode("utf-8")
    return Path(location).read_text(encoding="utf-8")


def parse_url_list(text: str) -> dict[str, list[str]]:
    """Subset -> URLs, from the grouped JSON ({subset: {urls: [...]}}) or a flat list of URLs.

    In a flat list the subset is the URL's parent folder (…/dolma-v1_7/cc_en_head/x.json.gz → cc_en_head).
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = json.loads(text)
        return {name: list(entry["urls"]) for name, entry in data.items()}
    groups: dict[str, list[str]] = {}
    for line in text.splitlines():
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        parts = urlparse(url).path.rstrip("/").split("/")
        subset = parts[-2] if len(parts) >= 2 else "default"
        groups.setdefault(subset, []).append(url)
    return groups


def choose_files(
    groups: dict[str, list[str]],
    *,
    subsets: list[str] | None,
    fraction: float | None,
    count: int | None,
    seed: int,
) -> list[tuple[str, str]]:
    """(subset, url) pairs: per subset, a seeded sample of `count` files or `fraction` of them."""
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
        urls = sorted(groups[name])
        rng = random.Random(f"{seed}:{name}")
        if count is not None:
            k = min(count, len(urls))
        elif fraction is not None:
            k = max(1, round(fraction * len(urls)))
        else:
            k = len(urls)
        chosen += [(name, url) for url in sorted(rng.sample(urls, k))]
    return chosen


def _download_one(
    subset: str,
    url: str,
    cache_dir: Path,
    *,
    retries: int,
    timeout: float,
    on_bytes: Callable[[int], None],
) -> FileResult:
    name = Path(urlparse(url).path).name
    target = cache_dir / subset / name
    part = target.with_name(name + ".part")
    size_file = target.with_name(name + ".size")
    target.parent.mkdir(parents=True, exist_ok=True)
    if (
        target.is_file()
        and size_file.is_file()
        and int(size_file.read_text()) == target.stat().st_size
    ):
        return FileResult(subset, url, str(target), "cached", target.stat().st_size)
    error = ""
    for attempt in range(1, retries + 1):
        try:
            have = part.stat().st_size if part.exists() else 0
            request = urllib.request.Request(
                url, headers={"Range": f"bytes={have}-"} if have else {}
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if have and response.status != 206:  # the server ignored the range: start over
                    have = 0
                length = response.headers.get("Content-Length")
                if response.status == 206:
                    content_range = response.headers.get("Content-Range", "")
                    expected = (
                        int(content_range.rsplit("/", 1)[-1]) if "/" in content_range else None
                    )
                else:
                    expected = int(length) if length is not None else None
                with open(part, "ab" if have else "wb") as out:
                    while block := response.read(CHUNK):
                        out.write(block)
                        on_bytes(len(block))
            got = part.stat().st_size
            if expected is not None and got != expected:
                error = f"size {got} != announced {expected}"
                if got > expected:
                    part.unlink()
                continue
            part.replace(target)
            size_file.write_text(str(got))
            return FileResult(subset, url, str(target), "downloaded", got, attempt)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            time.sleep(min(0.2 * attempt, 2))
    return FileResult(subset, url, str(target), "failed", 0, retries, error)


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
    on_start: Callable[[int], None] = lambda n: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_file: Callable[[FileResult], None] = lambda f: None,
) -> DownloadReport:
    groups = parse_url_list(_fetch_text(str(url_list), timeout))
    chosen = choose_files(groups, subsets=subsets, fraction=fraction, count=count, seed=seed)
    on_start(len(chosen))
    cache_dir.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                _download_one,
                subset,
                url,
                cache_dir,
                retries=retries,
                timeout=timeout,
                on_bytes=on_bytes,
            )
            for subset, url in chosen
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
