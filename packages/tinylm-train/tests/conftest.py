from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
# why: --import-mode=importlib does not put the test directory on sys.path for helpers.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _shared_data_dir() -> Path:
    override = os.environ.get("TINYLM_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The optional real data beside the checkout; tests that use it skip when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"optional real data not found at {path} (set TINYLM_SHARED_DATA)")
    return path
