"""Loading the tokenizer a build uses, describing it for the manifest, and training our own.

Any Hugging Face tokenizer works: a hub name (downloaded by transformers), a local directory, or
`builtin:sample`, the byte-level BPE trained on the embedded sample and shipped with the package so
that the sample builds offline. Encoding always goes through the fast Rust `tokenizers.Tokenizer`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .config import ConfigError

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


class TokenizerUnavailable(ConfigError):
    """A tokenizer that is neither a local directory nor fetchable from the hub, said in one line."""


# What the hub accepts as a repository id: NAME or OWNER/NAME of letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"[\w-][\w.-]*(/[\w-][\w.-]*)?")
_HINT = "pass a local tokenizer directory (--tokenizer DIR) or builtin:sample"


def resolve_tokenizer_source(spec: str, base: Path | None = None) -> str:
    """Turn a config value into what can be loaded: a directory path or a hub id.

    Local paths come first: a value that exists (beside the config, or as given) is a path, and
    one that cannot be a hub id (`./tok`, `/data/tok`, `a/b/c`, `~/tok`) is a path that is missing.
    """
    if spec.startswith(BUILTIN_PREFIX):
        return str(builtin_tokenizer_dir(spec.removeprefix(BUILTIN_PREFIX)))
    candidate = Path(spec).expanduser()
    tried = (
        [candidate] if candidate.is_absolute() or base is None else [base / candidate, candidate]
    )
    for path in tried:
        if path.exists():
            return str(path)
    if not _HUB_ID.fullmatch(spec) or ".." in spec or "--" in spec:
        looked = " or ".join(str(p) for p in dict.fromkeys(tried))
        raise TokenizerUnavailable(
            f"tokenizer directory {spec!r} does not exist (looked for {looked})"
        )
    return spec


def fetch_hub_tokenizer(repo_id: str) -> Path:
    """The hub snapshot of `repo_id`'s tokenizer files: from the local cache, or downloaded.

    Offline (HF_HUB_OFFLINE) or with the hub unreachable, this fails at once with one line,
    instead of transformers' retries.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = [*_TOKENIZER_FILES, "*.jinja"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if constants.HF_HUB_OFFLINE:
        raise TokenizerUnavailable(
            f"tokenizer {repo_id!r} is not a local directory, and as a hub name it is not in the "
            f"local hub cache while HF_HUB_OFFLINE is set: {_HINT}"
        )
    problem = _hub_unreachable(constants.ENDPOINT)
    if problem is None:
        try:
            return Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10))
        except (HfHubHTTPError, OSError, ValueError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    raise TokenizerUnavailable(
        f"tokenizer {repo_id!r} is not a local directory, and as a hub name it cannot be "
        f"fetched ({problem}): {_HINT}"
    )


def _hub_unreachable(endpoint: str, timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (None when a connection opens, or a proxy is configured)."""
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # the proxy decides; the download reports its own error
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        return f"the hub at {url.hostname} is unreachable: {exc}"
    return None


class LoadedTokenizer:
    """A tokenizer's fast backend, its files and its identity.

    A directory with a `tokenizer.json` loads with `tokenizers` alone. Anything else (a hub
    name, or a directory of slow-tokenizer files such as vocab.json + merges.txt) goes through
    transformers (whose import takes seconds), and a local directory's conversion is cached
    (`$TINYLM_CACHE`, default ~/.cache/tinylm), so the next build loads it directly.
    """

    def __init__(self, spec: str, base: Path | None = None) -> None:
        source = resolve_tokenizer_source(spec, base)
        local = Path(source)
        if (local / "tokenizer.json").is_file():
            self.directory = local
        elif local.is_dir():
            self.directory = _cached_conversion(local)
        else:  # a hub id
            snapshot = fetch_hub_tokenizer(source)
            has_json = (snapshot / "tokenizer.json").is_file()
            self.directory = snapshot if has_json else _cached_conversion(snapshot)
        self.backend: Tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        config_path = self.directory / "tokenizer_config.json"
        config = json.loads(config_path.read_text("utf-8")) if config_path.is_file() else {}
        eos_id = self._token_id(config.get("eos_token"))
        if eos_id is None:
            raise ValueError(
                f"tokenizer {spec!r} has no EOS token; every document must end with one"
            )
        pad_id = self._token_id(config.get("pad_token"))
        # The canonical JSON, serialised once: it names the tokenizer in the manifest and is
        # what build workers load (to_str of a large vocabulary costs a noticeable fraction of
        # a second).
        self.json: str = self.backend.to_str()
        _PARSED[self.json] = self.backend
        self.info = TokenizerInfo(
            name=spec,
            sha256=hashlib.sha256(self.json.encode()).hexdigest(),
            vocab_size=self.backend.get_vocab_size(with_added_tokens=True),
            eos_id=eos_id,
            pad_id=eos_id if pad_id is None else pad_id,
        )

    def _token_id(self, token: str | dict | None) -> int | None:
        if isinstance(token, dict):  # {"content": "<|endoftext|>", ...}
            token = token.get("content")
        return None if not token else self.backend.token_to_id(token)

    def save(self, directory: Path) -> None:
        """Copy the tokenizer files to `directory`, loadable as saved (see `pin_tokenizer_class`)."""
        directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.iterdir()):
            if path.is_file() and (path.name in _TOKENIZER_FILES or path.name.endswith(".jinja")):
                shutil.copyfile(path, directory / path.name)
        pin_tokenizer_class(directory)


_TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "merges.txt",
    }
)

AS_SAVED_MODULE = "tokenization_as_saved"
AS_SAVED_CLASS = "AsSavedTokenizer"
_AS_SAVED_SOURCE = f'''"""Loads tokenizer.json exactly as saved: the pipeline the token ids were made with."""

from transformers import PreTrainedTokenizerFast


class {AS_SAVED_CLASS}(PreTrainedTokenizerFast):
    """No model-specific rebuild of the normalizer or pre-tokenizer."""
'''


def pin_tokenizer_class(directory: Path) -> None:
    """Make `AutoTokenizer.from_pretrained` load `directory`'s tokenizer.json as it is.

    Beside a `config.json` of some model types (qwen2 among them), transformers 5 ignores
    `tokenizer_class` and rebuilds that model's own tokenizer from vocab and merges, with its
    own pre-tokenizer regex and normaliser: a byte-level BPE trained with another regex (ours,
    or any user's) then gives other ids than the shards hold. It keeps the declared class only
    when the config has an `auto_map`, so one is written, naming a class without a rebuild
    (used only with `trust_remote_code=True`; otherwise `tokenizer_class` is loaded). Older
    releases read `tokenizer_class`, so it names the class every release knows.
    """
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text("utf-8")) if config_path.is_file() else {}
    config.pop("backend", None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["auto_map"] = {"AutoTokenizer": [None, f"{AS_SAVED_MODULE}.{AS_SAVED_CLASS}"]}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")
    (directory / f"{AS_SAVED_MODULE}.py").write_text(_AS_SAVED_SOURCE, "utf-8")


def _convert(source: str, target: Path) -> Path:
    from transformers import AutoTokenizer  # slow import: only when there is no tokenizer.json

    hf = AutoTokenizer.from_pretrained(source)
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"tokenizer {source!r} has no fast (Rust) version")
    hf.save_pretrained(str(target))
    return target


def tokenizer_cache_dir() -> Path:
    root = os.environ.get("TINYLM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "tinylm"


def _cached_conversion(source: Path) -> Path:
    """The fast tokenizer converted from the directory `source`, kept in the cache.

    Keyed by the directory's file contents, so a later build skips the conversion.
    """
    import xxhash

    def key(directory: Path) -> str:
        digest = xxhash.xxh3_128()
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    root = tokenizer_cache_dir() / "tokenizers"
    cached = root / key(source)
    if (cached / "tokenizer.json").is_file():
        return cached
    logger.info("converting tokenizer %s to its fast version (cached in %s)", source, root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        _convert(str(source), staging)
        try:
            os.replace(staging, cached)
        except OSError:
            if not (cached / "tokenizer.json").is_file():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cached


_PARSED: dict[str, Tokenizer] = {}
"""Tokenizer JSON -> its parsed backend in this process. Build workers forked from the process that
loaded the tokenizer find it here instead of parsing the JSON again (about a second each for a
150k vocabulary); a spawned worker or a Spark executor parses it once."""


def backend_of(tokenizer_json: str) -> Tokenizer:
    """The tokenizer that `tokenizer_json` describes, parsed at most once per process."""
    backend = _PARSED.get(tokenizer_json)
    if backend is None:
        backend = _PARSED[tokenizer_json] = Tokenizer.from_str(tokenizer_json)
    return backend


PARALLELISM = "TOKENIZERS_PARALLELISM"
_OFF = frozenset({"", "off", "false", "f", "no", "n", "0"})  # what tokenizers reads as off


def thread_pool_allowed() -> bool:
    """False when the user turned the tokenizer's thread pool off (TOKENIZERS_PARALLELISM)."""
    value = os.environ.get(PARALLELISM)
    return value is None or value.lower() not in _OFF


@contextmanager
def forking_encoders() -> Iterator[None]:
    """Wraps the lifetime of a fork-started pool whose workers call `use_thread_pool`.

    A process forked after its parent ran the tokenizer's (rayon) thread pool inherits the pool
    without its threads, and its first batch would wait for them forever. tokenizers' fork
    handler keeps such a child on the serial path, but only while TOKENIZERS_PARALLELISM is
    unset (a set variable counts as the user's decision). So the variable is unset while the
    pool forks its workers, a replacement for a dead one included.
    """
    saved = os.environ.pop(PARALLELISM, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[PARALLELISM] = saved


@contextmanager
def encoder_settings_restored() -> Iterator[None]:
    """Puts TOKENIZERS_PARALLELISM and RAYON_NUM_THREADS back as they were: `use_thread_pool`
    run in the user's own process leaves nothing behind that would change their later forks."""
    names = (PARALLELISM, "RAYON_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def use_thread_pool(threads: int, *, allowed: bool, forked: bool) -> None:
    """Set up this process to encode through the tokenizer's thread pool with `threads` threads,
    or on the serial path where the user turned the pool off (`allowed`, read in the parent,
    since a worker forked inside `forking_encoders` does not see it). In a `forked` worker whose
    parent had already run the pool, tokenizers keeps to the serial path whatever is set here.

    The pool is worth it with one thread too: a build's workers encoding through it took about
    a fifth less time than on the serial path (see the README's Benchmarks); token ids do not
    depend on the path or the thread count.
    """
    os.environ[PARALLELISM] = "true" if allowed else "false"
    if not allowed:
        return
    if forked:
        os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when the pool starts
    else:  # the user's own process: a value they set stays
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))


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
    pin_tokenizer_class(directory)
