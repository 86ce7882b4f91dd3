"""Fetch a benchmark's official release into the user cache when no --data directory is given."""

from __future__ import annotations

import logging
import tarfile
import urllib.request
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "tinylm-eval"
# (hub dataset repo, archive file) of each official release in the layout data.py reads.
_HUB_ARCHIVES = {
    "ceval": ("ceval/ceval-exam", "ceval-exam.zip"),
    "cmmlu": ("haonan-li/cmmlu", "cmmlu_v1_0_1.zip"),
}
_MMLU_URL = "https://people.eecs.berkeley.edu/~hendrycks/data.tar"


def download_benchmark(benchmark: str) -> Path:
    """The cached release directory of `benchmark`, downloaded and unpacked on first use."""
    target = CACHE / benchmark
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    if benchmark == "mmlu":
        archive = target / "data.tar"
        logger.info("downloading MMLU from %s", _MMLU_URL)
        urllib.request.urlretrieve(_MMLU_URL, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    else:
        from huggingface_hub import hf_hub_download

        repo, name = _HUB_ARCHIVES[benchmark]
        archive = Path(hf_hub_download(repo, name, repo_type="dataset"))
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
        if benchmark == "cmmlu" and not (target / "test").is_dir():
            nested = next(p for p in target.iterdir() if (p / "test").is_dir())
            return nested
    (target / ".complete").touch()
    return target
