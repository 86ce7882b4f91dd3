"""Start a run from the weights of a local HF model directory (`model.init_from`).

Used by SFT and by continued pretraining: our own export or any local Qwen2 model. Its
vocabulary must be the shard tokenizer's (the same id for every token of the model's own
tokenizer); tokens the shard tokenizer gained (a chat template's special tokens) get new
embedding rows, tied to the head as before, and the resize is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tinylm_train.config import ConfigError
from tinylm_train.models.qwen2.shapes import padded_vocab_size

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


class VocabularyMismatch(ValueError):
    """The model was trained with another tokenizer than the one the shards were made with."""


def check_init_from(path: str | Path) -> Path:
    """The model directory, or a ConfigError naming `model.init_from` (no torch import)."""
    model_dir = Path(path)
    if not model_dir.is_dir():
        raise ConfigError(f"model.init_from: {model_dir} is not a directory (a local HF model)")
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"model.init_from: {model_dir} has no config.json: not an HF model")
    return model_dir


def check_vocabulary(model_vocab: dict[str, int], shard_vocab: dict[str, int], where: Path) -> None:
    """Every token of the model's tokenizer must have the same id in the shard tokenizer."""
    differing = [
        (token, model_id, shard_vocab.get(token))
        for token, model_id in model_vocab.items()
        if shard_vocab.get(token) != model_id
    ]
    if differing:
        token, model_id, shard_id = min(differing, key=lambda item: item[1])
        there = "missing" if shard_id is None else f"id {shard_id}"
        raise VocabularyMismatch(
            f"model.init_from {where}: its tokenizer and the shard tokenizer differ at "
            f"{len(differing)} of {len(model_vocab)} tokens (e.g. {token!r} is id {model_id} in "
            f"the model, {there} in the shards): tokenize the data with the model's tokenizer"
        )


def tokenizer_vocab(directory: Path) -> dict[str, int]:
    """Token -> id of the tokenizer in `directory`, added tokens included."""
    if (directory / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(directory / "tokenizer.json")).get_vocab(
            with_added_tokens=True
        )
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, local_files_only=True).get_vocab()


def load_init_from(
    path: str | Path,
    *,
    tokenizer_dir: Path,
    eos_id: int,
    pad_id: int,
    attention: str,
):
    """The Qwen2ForCausalLM of `path` (float32), its embeddings resized to the shard tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_dir = check_init_from(path)
    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    if config.model_type != "qwen2":
        raise ValueError(
            f"model.init_from {model_dir}: model_type {config.model_type!r}; "
            "tinylm-train trains Qwen2 models"
        )
    shard_vocab = tokenizer_vocab(tokenizer_dir)
    if any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        check_vocabulary(tokenizer_vocab(model_dir), shard_vocab, model_dir)
    else:
        log.warning("%s has no tokenizer files: its vocabulary is checked by size only", model_dir)
    # why: an absolute name, so a LoRA adapter's base_model_name_or_path resolves from anywhere
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir.resolve()),
        local_files_only=True,
        dtype=torch.float32,
        attn_implementation=attention,
    )
    needed = max(shard_vocab.values()) + 1
    rows = model.get_input_embeddings().weight.shape[0]
    if needed > rows:
        target = padded_vocab_size(needed)
        # why: the mean, not transformers' random draw around it, so a LoRA export that loads
        # the base again gets the same rows
        model.resize_token_embeddings(target, mean_resizing=False)
        with torch.no_grad():
            for layer in {model.get_input_embeddings(), model.get_output_embeddings()}:
                layer.weight[rows:] = layer.weight[:rows].mean(dim=0)
        tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
        log.info(
            "resized the embeddings from %d to %d rows for the shard tokenizer's %d tokens "
            "(new tokens start at the mean embedding; %s)",
            rows,
            target,
            needed,
            "tied to the head" if tied else "head resized too",
        )
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = pad_id
    model.config.use_cache = False
    return model
