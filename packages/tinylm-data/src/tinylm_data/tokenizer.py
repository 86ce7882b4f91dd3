"""Loading the tokenizer a build uses, describing it for the manifest, and training our own.

Any Hugging Face tokenizer works: a hub name (downloaded by transformers), a local directory, or
`builtin:sample`, the byte-level BPE trained on the embedded sample and shipped with the package so
that the sample builds offline. Encoding always goes through the fast Rust `tokenizers.Tokenizer`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
EOS_TOKEN = "<|endoftext|>"


@dataclass(frozen=True, slots=True)
class TokenizerInfo:
    """The tokenizer identity recorded in every manifest."""

    name: str
    sha256: str
    vocab_size: int
    eos_id: int
    pad_id: int

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


def builtin_tokenizer_dir(name: str) -> Path:
    path = Path(str(resources.files("tinylm_data") / "assets" / f"{name}_tokenizer"))
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"no built-in tokenizer {name!r} (looked for {name}_tokenizer in the package assets)"
        )
    return path


def resolve_tokenizer_source(spec: str, base: Path | None = None) -> str:
    """Turn a config value into what transformers can load: a directory path or a hub name."""
    if spec.startswith(BUILTIN_PREFIX):
        return str(builtin_tokenizer_dir(spec.removeprefix(BUILTIN_PREFIX)))
    candidate = Path(spec).expanduser()
    if not candidate.is_absolute() and base is not None and (base / candidate).exists():
        candidate = base / candidate
    return str(candidate) if candidate.exists() else spec


class LoadedTokenizer:
    """A transformers tokenizer plus its fast backend and identity."""

    def __init__(self, spec: str, base: Path | None = None) -> None:
        from transformers import AutoTokenizer  # slow import: only when a build needs it

        source = resolve_tokenizer_source(spec, base)
        self.hf = AutoTokenizer.from_pretrained(source)
        self.backend: Tokenizer = self.hf.backend_tokenizer
        eos_id = self.hf.eos_token_id
        if eos_id is None:
            raise ValueError(
                f"tokenizer {spec!r} has no EOS token; every document must end with one"
            )
        pad_id = self.hf.pad_token_id if self.hf.pad_token_id is not None else eos_id
        canonical = self.backend.to_str().encode()
        self.info = TokenizerInfo(
            name=spec,
            sha256=hashlib.sha256(canonical).hexdigest(),
            vocab_size=len(self.hf),
            eos_id=int(eos_id),
            pad_id=int(pad_id),
        )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(directory))


def encode_documents(backend: Tokenizer, texts: list[str], eos_id: int) -> list[np.ndarray]:
    """Token ids of each text followed by EOS, as int32 arrays."""
    encodings = backend.encode_batch_fast(texts, add_special_tokens=False)
    out = []
    for enc in encodings:
        ids = np.empty(len(enc.ids) + 1, dtype=np.int32)
        ids[:-1] = enc.ids
        ids[-1] = eos_id
        out.append(ids)
    return out


def train_bpe_tokenizer(
    texts: Iterable[str], *, vocab_size: int, min_frequency: int = 2
) -> Tokenizer:
    """A byte-level BPE (GPT-2/Qwen family) trained on `texts`, with `<|endoftext|>` as id 0."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_trained_tokenizer(
    tokenizer: Tokenizer, directory: Path, *, max_length: int = 32768
) -> None:
    """Save in the transformers layout so `AutoTokenizer.from_pretrained(directory)` works."""
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )
    directory.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(str(directory))
    # Name the class every transformers release knows, so older ones load it too.
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("backend", None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
