"""A release is fetched once into the cache and its data root found inside the archive."""

import tarfile

import pytest

from tinylm_eval import download
from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.download import Release, _data_root
from tinylm_eval.tasks import get_task


def test_a_tar_release_is_unpacked_once_and_read_in_its_layout(tmp_path, monkeypatch):
    archive = tmp_path / "data.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(SAMPLE_DIR / "mmlu" / "data", arcname="data")
    monkeypatch.setattr(download, "CACHE", tmp_path / "cache")
    release = Release(url=archive.as_uri())
    root = release.fetch("mmlu")
    assert root == tmp_path / "cache" / "mmlu"
    layout = get_task("mmlu").layout
    assert layout.subjects(root, "test") == layout.subjects(SAMPLE_DIR / "mmlu", "test")
    archive.unlink()  # a second fetch reads the cache
    assert release.fetch("mmlu") == root


def test_the_data_root_may_be_the_archives_one_top_folder(tmp_path):
    (tmp_path / "cmmlu_v1_0_1" / "test").mkdir(parents=True)
    assert _data_root(tmp_path, "test") == tmp_path / "cmmlu_v1_0_1"
    (tmp_path / "other" / "test").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no single directory"):
        _data_root(tmp_path, "test")


def test_a_release_is_a_url_or_a_hub_file():
    with pytest.raises(ValueError, match="either a url or a hub_repo"):
        Release(url="data.tar", hub_repo="a/b", file="x.zip")
    with pytest.raises(ValueError, match="either a url or a hub_repo"):
        Release(hub_repo="a/b")
