"""Retrieval on real data (optional, ../shared/data/rag/drcd_dev.json): every DRCD context indexed,
every question searched; recall@5 of its gold passage printed and at least 0.8."""

import pytest

from tinylm_data.config import parse_model
from tinylm_data.rag.build import run_rag_index
from tinylm_data.rag.config import RagIndexConfig


@pytest.mark.shared
@pytest.mark.slow
def test_drcd_recall_at_5(shared_data, tmp_path):
    drcd = shared_data / "rag" / "drcd_dev.json"
    if not drcd.is_file():
        pytest.skip("no rag/drcd_dev.json in the shared data")
    config = parse_model(
        RagIndexConfig,
        {
            "name": "drcd",
            "sources": [{"name": "drcd", "kind": "squad", "paths": [str(drcd)]}],
            "quality": {"squad": str(drcd)},
        },
    )
    quality = run_rag_index(config, tmp_path, tmp_path / "out").stats["quality"]
    print({k: v for k, v in quality.items() if k != "file"})
    assert quality["questions"] > 3000
    assert quality["recall@5"] >= 0.8
