"""Fetch a benchmark's official release into the user cache when no --data directory is given."""

from __future__ import annotations

import logging
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "tinylm-eval"


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """Where a benchmark's official release is published: a tar at `url`, or a zip `file` in the
    hub dataset repository `hub_repo`. `first_split` is a directory of its layout, which finds the
    data root inside the unpacked archive."""

    url: str = ""
    hub_repo: str = ""
    file: str = ""
    first_split: str = "test"

    def __post_init__(self):
        if bool(self.url) == bool(self.hub_repo and self.file):
            raise ValueError("a release is either a url or a hub_repo and file")

    def fetch(self, name: str) -> Path:
        """The cached release directory of benchmark `name`, downloaded and unpacked on first use."""
        target = CACHE / name
        complete = target / ".complete"  # holds the data root, relative to `target`
        if complete.exists():
            return target / complete.read_text().strip()
        target.mkdir(parents=True, exist_ok=True)
        if self.url:
            archive = target / Path(self.url).name
            logger.info("downloading %s from %s", name, self.url)
            urllib.request.urlretrieve(self.url, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        else:
            from huggingface_hub import hf_hub_download

            archive = Path(hf_hub_download(self.hub_repo, self.file, repo_type="dataset"))
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(target)
        root = _data_root(target, self.first_split)
        complete.write_text(str(root.relative_to(target)))
        return root


def _data_root(target: Path, split: str) -> Path:
    """`target`, or the one directory inside it that holds the split (an archive's top folder)."""
    if (target / split).is_dir() or (target / "data" / split).is_dir():
        return target
    nested = [p for p in target.iterdir() if (p / split).is_dir() or (p / "data" / split).is_dir()]
    if len(nested) != 1:
        raise FileNotFoundError(f"{target}: no single directory holds a {split}/ split")
    return nested[0]
