"""Load an exported HF model directory, or a LoRA adapter directory applied to its base."""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def load_model(
    path: str | Path,
    *,
    base: str | Path | None = None,
    trust_remote_code: bool = False,
    dtype: str = "float32",
    device: str = "cpu",
):
    """(model, tokenizer, identity). Weights come only from safetensors; an adapter needs its base."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    adapter_config = path / "adapter_config.json"
    torch_dtype = getattr(torch, dtype)
    if adapter_config.is_file():
        from peft import PeftModel

        base = Path(base or json.loads(adapter_config.read_text())["base_model_name_or_path"])
        model = AutoModelForCausalLM.from_pretrained(
            base, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
        model = PeftModel.from_pretrained(model, path)
        tokenizer_dir = path if (path / "tokenizer_config.json").is_file() else base
        identity = {"model": str(path), "adapter": True, "base": str(base)}
    else:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
        tokenizer_dir = path
        identity = {"model": str(path), "adapter": False}
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=trust_remote_code)
    model.to(device).eval()
    identity["model_type"] = getattr(model.config, "model_type", None)
    return model, tokenizer, identity
