"""TinyLM data: raw corpora to versioned Parquet shards of packed token blocks.

The public API is importable from here; heavy modules load on first use so the CLI starts fast.
"""

from importlib import import_module
from importlib.metadata import version as _version

from .document import Document, Rejection

__version__ = _version("tinylm-data")

_LAZY = {
    "BuildConfig": "config",
    "parse_config": "config",
    "load_config_file": "config",
    "BuildOptions": "build",
    "BuildResult": "build",
    "run_build": "build",
    "EmptyBuildError": "build",
    "Engine": "engines",
    "LocalEngine": "engines",
    "SparkEngine": "spark_engine",
    "spark_engine": "spark_engine",
    "Stage": "stages",
    "STAGES": "stages",
    "Step": "steps",
    "make_packer": "pack",
    "LoadedTokenizer": "tokenizer",
    "train_bpe_tokenizer": "tokenizer",
    "TokenizerUnavailable": "tokenizer",
    "resolve_dataset_dir": "inspect_dataset",
    "load_manifest": "inspect_dataset",
    "verify_shards": "inspect_dataset",
    "sample_dir": "sample",
    "SftConfig": "sft",
    "run_sft_build": "sft",
    "PrefConfig": "pref",
    "run_pref_build": "pref",
}

__all__ = ["Document", "Rejection", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
