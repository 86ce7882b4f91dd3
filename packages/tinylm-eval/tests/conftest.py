from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).parent))


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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer Qwen2 with a BPE tokenizer trained on the sample, saved like a tinylm-train export."""
    from eval_test_helpers import save_tiny_qwen2, train_tokenizer

    out = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer = train_tokenizer(out)
    save_tiny_qwen2(out, len(tokenizer))
    return out


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen2 with the seed chat template, trained to give the answers in
    `chat_test_helpers.ANSWERS` (greedy), saved as an SFT export."""
    import torch
    from chat_test_helpers import save_chat_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return save_chat_model(tmp_path_factory.mktemp("chat-qwen2"))
