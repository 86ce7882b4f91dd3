"""Run one of the workspace's CLIs as a user would, and fail with its output when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "120"}


def run_cli(*args: str, cwd: Path) -> str:
    """`args[0]` is the command (tinylm-data, tinylm-train, tinylm-eval); returns its stdout."""
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{args[:2]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def save_random_qwen2(
    path: Path,
    *,
    vocab_size: int,
    hidden_size: int = 64,
    max_position_embeddings: int = 256,
) -> None:
    """A seeded random 2-layer tied Qwen2 (what `model.init_from` starts the tests from)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
